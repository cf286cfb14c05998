"""The scoring routes' answers, written by orjson without pydantic's validation, are the JSON the
response model would have written: the same keys, values and number types."""

from __future__ import annotations

import json

from serving.api import ScoreResponse, scores_response


def _answer() -> dict:
    reason = {"feature": "n_lab", "value": 7, "peer_value": 2, "contribution": 0.4123,
              "text_vi": "Số xét nghiệm 7", "text_en": "7 lab tests"}  # fmt: skip
    flag = {**reason, "feature": "weekend", "value": True, "peer_value": None}
    hit = {"code": "R06", "rule": "bed-days", "amount": 120000.0, "text_vi": "Giường",
           "text_en": "Bed"}  # fmt: skip
    return {
        "scored": [
            {
                "MA_LK": "A1",
                "risk_score": 0.912345,
                "band": "review",
                "expected_overbilled": 1234.5,
                "priority": 2345.25,
                "reasons": [reason, flag],
                "rule_hits": [hit],
                "model_version": "3",
                "scored_at": "2025-03-08T01:02:03",
            },
            {
                "MA_LK": "A2",
                "risk_score": 0.01,
                "band": "low",
                "expected_overbilled": 0.0,
                "priority": 0.0,
                "reasons": [],
                "rule_hits": [],
                "model_version": "3",
                "scored_at": "2025-03-08T01:02:03",
            },
        ],
        "errors": [
            {
                "index": 2,
                "MA_LK": "B1",
                "errors": [
                    {
                        "table": "claims",
                        "field": "NGAY_VAO",
                        "value": "2025-13-45",
                        "error": "unparseable date, expected yyyyMMddHHmm",
                    },
                    {"table": "claims", "field": "MA_THE_BHYT", "value": None, "error": "missing"},
                ],
            },
        ],
        "model_version": "3",
    }


def test_the_answer_is_what_the_response_model_writes():
    expected = ScoreResponse.model_validate(_answer()).model_dump_json()
    body = scores_response(_answer()).body
    assert json.loads(body) == json.loads(expected)
    for got, want in zip(
        json.loads(body)["scored"][0]["reasons"],
        json.loads(expected)["scored"][0]["reasons"],
        strict=True,
    ):
        for k in ("value", "peer_value", "contribution"):
            assert type(got[k]) is type(want[k]), (k, got[k], want[k])  # 7.0, not 7


def test_the_answer_is_json():
    r = scores_response(_answer())
    assert r.media_type == "application/json" and r.status_code == 200
    assert json.loads(r.body)["scored"][0]["reasons"][1]["value"] == 1.0
