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


# -- request bodies: orjson, and stdlib json for whatever orjson reads otherwise (issue 14) ------
BODIES = [
    b'{"claims": [{"MA_LK": "A", "T_BHTT": 12.5}]}',
    b'{"a": 1, "a": 2}',  # the last key wins in both
    b'{"a": -0.0, "b": 1.0000000000000002, "c": 5e-324, "d": 0.1e-400}',
    b'{"a": 12345678901234567890123}',  # orjson: a float; json: the integer
    b'{"a": -9223372036854775809}',
    b'{"a": 1234567890123456789}',
    b'{"a": NaN, "b": Infinity}',  # json's extensions
    b'{"a": 1e400}',
    b'\xef\xbb\xbf{"a": 1}',  # a BOM
    '{"a": "é"}'.encode("utf-16"),
    b'{"a": "\\ud800"}',  # a lone surrogate
    b'{"a": "Nguy\xe1\xbb\x85n"}',
    b"[1, 2,]",
    b'{"a": "\x01"}',
    b'"\xff"',
    b"",
]


def _parsed(body: bytes):
    """JsonRequest.json() of a request with this body, or the type of what it raised."""
    import asyncio

    from serving.api import JsonRequest

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/score", "headers": []}
    try:
        return "ok", repr(asyncio.run(JsonRequest(scope, receive).json()))
    except Exception as e:
        return "error", type(e).__name__


def _reference(body: bytes):
    try:
        return "ok", repr(json.loads(body))
    except Exception as e:
        return "error", type(e).__name__


def test_request_bodies_read_as_stdlib_json_reads_them():
    for body in BODIES:
        assert _parsed(body) == _reference(body), body


def test_a_big_integer_stays_an_integer():
    kind, value = _parsed(b'{"a": 12345678901234567890123}')
    assert (kind, value) == ("ok", "{'a': 12345678901234567890123}")


def test_the_routes_take_their_json_bodies_through_jsonrequest():
    from types import SimpleNamespace

    from serving.api import JsonRoute, create_app

    settings = SimpleNamespace(api_max_claims=1000, api_max_xml_bytes=1 << 20)
    app = create_app(SimpleNamespace(served=None), store=None, settings=settings)
    routes = {r.path: r for r in app.router.routes if hasattr(r, "methods")}
    assert isinstance(routes["/score"], JsonRoute)
