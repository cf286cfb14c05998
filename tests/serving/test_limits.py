"""Request limits of the scoring API (issue 13), in process: the ASGI gate (key before body, body
bytes per route), the spec agreeing with behaviour, dossiers per envelope, lines per claim, unknown
keys, and admission/discharge dates in the future. No model is needed: the claims used here are
refused before scoring, or scoring is replaced by a spy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest
from factories import claim, dossier, drug, raw_envelope
from fastapi.testclient import TestClient

from claimradar.settings import DEV_LINKAGE_KEY, Settings
from contract.ingest import Limits, validate_batch
from contract.validate import GROUP, RECORD, SOURCE
from serving.api import authorize, create_app
from serving.limits import ApiGate, RequestLimits
from serving.online import ScoringState, Served
from serving.store import Store

EXAMPLE = json.loads((Path(__file__).parents[2] / "serving" / "example_claim.json").read_text())
BODY_LIMIT, XML_LIMIT = 16_384, 262_144


class CountingStore(Store):
    checks = 0

    def check_key(self, key):
        type(self).checks += 1
        return super().check_key(key)


@pytest.fixture
def store(tmp_path):
    from serving.store import Base

    s = CountingStore(f"sqlite:///{tmp_path / 'cases.db'}", migrate=False)
    Base.metadata.create_all(s.engine)  # the tables as the models define them; no migrations
    return s


@pytest.fixture
def key(store):
    return store.create_key("tests")


@pytest.fixture
def state(tmp_path):
    s = ScoringState(
        "sqlite:///unused.db",
        tmp_path,
        DEV_LINKAGE_KEY,
        limits=Limits(workers=1),
        request_limits=RequestLimits(max_dossiers=3, max_lines_per_claim=4),
    )
    s.served = Served(bundle=None, snapshot=None, version="0", alias="test")  # nothing scored
    return s


def _gate(app, store):
    return ApiGate(
        app,
        authorize=lambda header: authorize(store, header),
        body_limits={"/score": BODY_LIMIT, "/score_xml": XML_LIMIT},
        key_paths=("/metrics",),
    )


@pytest.fixture
def client(state, store, key):
    app = _gate(create_app(state, store, Settings()), store)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        yield c


# -- the gate, at the ASGI level: what it reads and what it lets through -----------------------


class Inner:
    """An ASGI app that records whether it was called and what body it read."""

    def __init__(self):
        self.called, self.body = False, b""

    async def __call__(self, scope, receive, send):
        self.called = True
        while True:
            m = await receive()
            self.body += m.get("body", b"")
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send(
            {"type": "http.response.body", "body": scope.get("claimradar.api_key", "").encode()}
        )


def _call(app, path, headers, chunks):
    """Run one request through `app`; returns (status, body, how many body chunks were read)."""
    read = []
    sent = []

    async def receive():
        if len(read) < len(chunks):
            read.append(chunks[len(read)])
            return {"type": "http.request", "body": read[-1], "more_body": len(read) < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(m):
        sent.append(m)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, len(read)


@pytest.mark.parametrize("path", ["/score", "/score_xml"])
@pytest.mark.parametrize(
    ("header", "status", "words"),
    [
        (None, 401, "missing API key"),
        ("Basic abc", 401, "malformed Authorization header"),
        ("Bearer crk_unknown", 401, "unknown API key"),
    ],
)
def test_no_valid_key_is_401_without_reading_the_body(store, path, header, status, words):
    inner = Inner()
    headers = {"Authorization": header} if header else {}
    code, body, read = _call(_gate(inner, store), path, headers, [b"x" * 1000] * 100)
    assert (code, read, inner.called) == (status, 0, False)
    assert words in json.loads(body)["detail"]


def test_a_revoked_key_is_403_without_reading_the_body(store, key):
    store.revoke_key("tests")
    inner = Inner()
    code, body, read = _call(_gate(inner, store), "/score", {"Authorization": f"Bearer {key}"},
                             [b"{}"])  # fmt: skip
    assert (code, read, inner.called) == (403, 0, False) and b"revoked" in body


@pytest.mark.parametrize(("path", "limit"), [("/score", BODY_LIMIT), ("/score_xml", XML_LIMIT)])
def test_a_declared_oversize_body_is_413_before_reading(store, key, path, limit):
    inner = Inner()
    headers = {"Authorization": f"Bearer {key}", "Content-Length": str(limit + 1)}
    code, body, read = _call(_gate(inner, store), path, headers, [b"x" * (limit + 1)])
    assert (code, read, inner.called) == (413, 0, False)
    assert f"{limit:,} bytes" in json.loads(body)["detail"]


@pytest.mark.parametrize(("path", "limit"), [("/score", BODY_LIMIT), ("/score_xml", XML_LIMIT)])
def test_a_streamed_oversize_body_is_413_and_never_reaches_the_app(store, key, path, limit):
    inner = Inner()
    chunks = [b"x" * 1000] * (limit // 1000 + 10)  # no Content-Length: chunked
    code, body, read = _call(_gate(inner, store), path, {"Authorization": f"Bearer {key}"}, chunks)
    assert (code, inner.called) == (413, False) and b"larger than" in body
    assert read <= limit // 1000 + 1  # stopped reading at the limit


def test_a_body_within_the_limit_reaches_the_app_whole_and_the_key_is_checked_once(store, key):
    inner = Inner()
    chunks = [b"a" * 1000, b"b" * 1000, b"c" * 1000]
    CountingStore.checks = 0
    code, body, _ = _call(_gate(inner, store), "/score", {"Authorization": f"Bearer {key}"},
                          chunks)  # fmt: skip
    assert code == 200 and inner.body == b"".join(chunks) and body == b"tests"
    assert CountingStore.checks == 1


def test_other_paths_pass_untouched_and_key_paths_need_a_key(store, key):
    inner = Inner()
    code, _, read = _call(_gate(inner, store), "/livez", {}, [b"y" * 10_000])
    assert code == 200 and inner.called and read == 1
    code, _, _ = _call(_gate(Inner(), store), "/metrics", {}, [b""])
    assert code == 401


def test_the_app_checks_the_key_once_per_request(client, state):
    CountingStore.checks = 0
    r = client.post("/score", json={"claims": [{"MA_LK": "J1"}]})
    assert r.status_code == 200, r.text
    assert CountingStore.checks == 1


def test_an_oversize_score_request_is_413_over_the_app(client):
    big = {"claims": [{"MA_LK": "X" * 100, "HO_TEN": "y" * BODY_LIMIT}]}
    r = client.post("/score", json=big)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


# -- the spec says what the service does -------------------------------------------------------


def test_the_spec_asks_for_at_least_one_claim_and_a_non_empty_envelope(client, state, store):
    spec = create_app(state, store, Settings()).openapi()
    req = spec["components"]["schemas"]["ScoreRequest"]["properties"]["claims"]
    assert req["minItems"] == 1
    r = client.post("/score", json={"claims": []})
    assert r.status_code == 422 and r.json()["detail"][0]["field"].startswith("claims")
    xml = spec["paths"]["/score_xml"]["post"]
    for media in xml["requestBody"]["content"].values():
        assert media["schema"]["minLength"] == 1
    assert {"400", "401", "403", "413"} <= set(xml["responses"])
    assert client.post("/score_xml", content=b"").status_code == 400


# -- limits before work ------------------------------------------------------------------------


def test_too_many_dossiers_is_413_counted_while_reading(client):
    envelope = raw_envelope([{"XML1": [claim(f"D{i}")]} for i in range(5)])
    r = client.post("/score_xml", content=envelope, headers={"content-type": "application/xml"})
    assert r.status_code == 413, r.text
    assert "more than 3 dossiers" in r.json()["detail"]


def test_dossiers_up_to_the_limit_are_read(client):
    envelope = raw_envelope([{"XML1": [claim(f"D{i}", MA_CSKCB=None)]} for i in range(3)])
    r = client.post("/score_xml", content=envelope, headers={"content-type": "application/xml"})
    assert r.status_code == 200, r.text
    assert [e["index"] for e in r.json()["errors"]] == [0, 1, 2]


def test_too_many_lines_in_a_json_claim_is_a_field_error_for_that_claim(client):
    many = {**claim("L1"), "xml2": [drug("L1", i, SO_LUONG="junk") for i in range(1, 6)]}
    junk = {"MA_LK": "J1", "NGAY_VAO": "bad"}
    r = client.post("/score", json={"claims": [many, junk]})
    assert r.status_code == 200, r.text
    errs = {e["index"]: e["errors"] for e in r.json()["errors"]}
    assert set(errs) == {0, 1}
    # the lines were not validated: one error, the limit
    assert [(e["field"], e["error"]) for e in errs[0]] == [("xml2", "5 lines; at most 4 per claim")]
    assert any(e["field"] == "NGAY_VAO" for e in errs[1])


def test_too_many_lines_in_a_dossier_is_a_field_error_for_that_dossier(client):
    envelope = raw_envelope([dossier("E1", n_drugs=1, n_services=5, MA_CSKCB=None),
                             dossier("E2", n_drugs=1, n_services=1, MA_CSKCB=None)])  # fmt: skip
    r = client.post("/score_xml", content=envelope, headers={"content-type": "application/xml"})
    assert r.status_code == 200, r.text
    errs = {e["index"]: e["errors"] for e in r.json()["errors"]}
    assert any(e["error"] == "5 lines; at most 4 per claim" for e in errs[0])
    assert not any("lines" in e["error"] for e in errs[1])


def test_unknown_keys_are_ignored_and_aliases_accepted(client, state):
    seen = []

    def spy(claims, actor, served=None):
        seen.extend(claims)
        return {"scored": [], "errors": [], "model_version": "0"}

    state.score_records = spy
    c = {**EXAMPLE, "NOT_A_FIELD": "x" * 100, "MA_THE": "DN4490123456789"}
    c.pop("MA_THE_BHYT", None)
    c["xml2"] = [{**EXAMPLE["xml2"][0], "ALSO_NOT": 1}]
    r = client.post("/score", json={"claims": [c]})
    assert r.status_code == 200, r.text
    assert "NOT_A_FIELD" not in seen[0] and "ALSO_NOT" not in seen[0]["xml2"][0]
    assert seen[0]["MA_THE_BHYT"] == "DN4490123456789"  # the 4210 name still counts


# -- dates in the future -----------------------------------------------------------------------


def test_a_claim_admitted_in_2099_is_a_field_error(client):
    c = {**claim("F1", NGAY_VAO="209901010800", NGAY_RA="209901050800"), "xml2": [], "xml3": []}
    r = client.post("/score", json={"claims": [c]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["scored"] == []
    fields = {e["field"]: e["error"] for e in out["errors"][0]["errors"]}
    assert "in the future" in fields["NGAY_VAO"] and "in the future" in fields["NGAY_RA"]


def test_future_dates_beyond_the_skew_are_rejected_by_validation():
    now = pd.Timestamp("2025-03-10 12:00")
    rows = [
        claim("OK", NGAY_VAO="202503101100", NGAY_RA="202503111100"),  # within a day's skew
        claim("LATE", NGAY_VAO="202503101100", NGAY_RA="202503121300"),
        claim("ADMIT", NGAY_VAO="202504010800", NGAY_RA="202504020800"),
    ]
    raw = {"claims": pd.DataFrame([{**r, GROUP: str(i), SOURCE: "t", RECORD: str(i)}
                                   for i, r in enumerate(rows)])}  # fmt: skip
    r = validate_batch(raw, Limits(workers=1), DEV_LINKAGE_KEY,
                       max_time=now + pd.Timedelta(days=1))  # fmt: skip
    assert list(r.good["claims"]["claim_id"]) == ["OK"]
    errs = r.checked["claims"].errors
    assert set(zip(errs["row"], errs["field"], strict=True)) == {
        (1, "NGAY_RA"), (2, "NGAY_VAO"), (2, "NGAY_RA"),
    }  # fmt: skip
    # without a bound (batch ingest of past months) nothing changes
    assert len(validate_batch(raw, Limits(workers=1), DEV_LINKAGE_KEY).good["claims"]) == 3
