"""The scoring service over HTTP: a real `claimradar serve` (BentoML) on loopback."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from claims_json import claims_json

from contract.schema import CLAIMS


@pytest.fixture(scope="module")
def api(service):
    with service.client() as c:
        yield c


@pytest.fixture(scope="module")
def claims(sim_dataset):
    return claims_json(sim_dataset.parent / "tabular", 40)


def _no_5xx(r):
    assert r.status_code < 500, r.text


def test_health_endpoints_are_open_and_metrics_need_a_key(service):
    with service.client(key=None) as c:
        for path in ("/livez", "/readyz", "/docs.json"):
            assert c.get(path).status_code == 200
        r = c.get("/metrics")
        assert r.status_code == 401 and "missing API key" in r.json()["detail"]
        r = c.get("/metrics", headers={"Authorization": "Bearer crk_wrong"})
        assert r.status_code == 401 and "unknown API key" in r.json()["detail"]
    with service.client() as c:
        assert "claimradar_scoring_seconds" in c.get("/metrics").text


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        (None, 401, "missing API key"),
        ("Basic abc", 401, "malformed Authorization header"),
        ("Bearer crk_not-a-real-key", 401, "unknown API key"),
    ],
)
def test_every_endpoint_needs_a_valid_key(service, claims, header, status, message):
    headers = {"Authorization": header} if header else {}
    with service.client(key=None, headers=headers) as c:
        for r in (
            c.post("/score", json={"claims": claims[:1]}),
            c.post("/score_xml", content=b"<GIAMDINHHS/>"),
            c.get("/model"),
        ):
            assert r.status_code == status and message in r.json()["detail"]


def test_a_revoked_key_is_forbidden(service, claims):
    from serving.store import Store

    store = Store(service.case_store_url)
    key = store.create_key("to-revoke")
    with service.client(key=key) as c:
        assert c.get("/model").status_code == 200
        assert store.revoke_key("to-revoke")
        r = c.get("/model")
    assert r.status_code == 403 and "revoked" in r.json()["detail"]


def test_good_claims_are_scored_and_bad_ones_named(api, claims):
    batch = json.loads(json.dumps(claims[:5]))
    batch[1]["NGAY_VAO"] = "2025-13-45"
    batch[3]["xml2"][0]["SO_LUONG"] = {"not": "a number"}
    r = api.post("/score", json={"claims": batch})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [s["MA_LK"] for s in out["scored"]] == [batch[i]["MA_LK"] for i in (0, 2, 4)]
    errs = {e["index"]: e for e in out["errors"]}
    assert set(errs) == {1, 3}
    assert errs[1]["MA_LK"] == batch[1]["MA_LK"]
    assert errs[1]["errors"][0]["field"] == "NGAY_VAO"
    assert errs[3]["errors"][0]["field"] == "SO_LUONG"
    for s in out["scored"]:
        assert 0 <= s["risk_score"] <= 1 and s["band"] in ("high", "review", "watch", "low")
        assert s["expected_overbilled"] >= 0 and s["model_version"] == out["model_version"]
        assert s["scored_at"]
        for reason in s["reasons"]:
            assert reason["text_vi"] and reason["text_en"] and "contribution" in reason
        for hit in s["rule_hits"]:
            assert hit["code"].startswith("R") and hit["amount"] >= 0


def test_review_band_claims_come_with_reasons(api, claims):
    out = api.post("/score", json={"claims": claims}).json()
    flagged = [s for s in out["scored"] if s["band"] in ("high", "review")]
    assert flagged, "no claim of the sample reached the review band"
    assert all(3 <= len(s["reasons"]) <= 5 for s in flagged)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"claims": [', 422, "body"),  # malformed JSON
        (b'{"claims": "all of them"}', 422, "claims"),
        (b'{"claims": ["MA_LK"]}', 422, "claims.0"),
        (b'{"claims": [{"MA_LK": "A", "xml2": "none"}]}', 422, "claims.0.xml2"),
        (b'{"claims": []}', 422, "claims"),
        (b'{"other": 1}', 422, "claims"),
    ],
)
def test_malformed_requests_get_4xx_naming_the_field(api, body, status, field):
    r = api.post("/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert any(d["field"].startswith(field) for d in detail), detail


def test_too_many_claims_is_refused_whole(api):
    r = api.post("/score", json={"claims": [{"MA_LK": str(i)} for i in range(1001)]})
    assert r.status_code == 413
    assert r.json()["detail"][0]["field"] == "claims" and "at most 1000" in r.text


def test_a_claim_with_only_junk_is_an_error_not_a_crash(api):
    junk = [{"MA_LK": "J1", "NGAY_VAO": [1, 2]}, {"MA_LK": None}, {"T_TONGCHI_BV": "abc"}]
    r = api.post("/score", json={"claims": junk})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["scored"] == [] and [e["index"] for e in out["errors"]] == [0, 1, 2]
    assert all(e["errors"] for e in out["errors"])


def _envelope(world, ids, tmp_path):
    from contract.export import export_xml
    from contract.ingest import load_dataset

    tables = load_dataset(world)
    keep = {
        "claims": tables["claims"][tables["claims"]["claim_id"].isin(ids)],
        **{t: tables[t][tables[t]["claim_id"].isin(ids)] for t in ("drug_lines", "service_lines")},
    }
    return [f.read_bytes() for f in export_xml(keep, tmp_path, per_file=100)]  # per facility


def test_an_envelope_raw_or_base64_scores_like_json(api, claims, sim_dataset, tmp_path):
    ids = [c["MA_LK"] for c in claims[-6:]]
    envelopes = _envelope(sim_dataset, ids, tmp_path)
    as_json = {
        s["MA_LK"]: s for s in api.post("/score", json={"claims": claims[-6:]}).json()["scored"]
    }
    for kind, encode in (("application/xml", bytes), ("text/plain", base64.b64encode)):
        got = {}
        for xml in envelopes:
            r = api.post("/score_xml", content=encode(xml), headers={"content-type": kind})
            assert r.status_code == 200, r.text
            assert r.json()["errors"] == []
            got.update({s["MA_LK"]: s for s in r.json()["scored"]})
        assert set(got) == set(ids)
        for k in ids:
            assert got[k]["risk_score"] == as_json[k]["risk_score"]
            assert got[k]["band"] == as_json[k]["band"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><GIAMDINHHS>&a;</GIAMDINHHS>',
         400, "DTD"),
        (b"<GIAMDINHHS><THONGTINDONVI>", 400, "envelope refused"),
        (b"%%% not xml, not base64 %%%", 400, "neither XML nor base64"),
        (base64.b64encode(b"<<<<"), 400, "envelope refused"),
    ],
)  # fmt: skip
def test_hostile_or_broken_envelopes_are_refused(api, body, status, words):
    r = api.post("/score_xml", content=body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_a_huge_envelope_is_refused_before_parsing(api):
    big = b"<GIAMDINHHS>" + b" " * (70 * 1024**2) + b"</GIAMDINHHS>"
    r = api.post("/score_xml", content=big, headers={"content-type": "application/xml"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_model_endpoint_describes_the_served_model(api, trained_model):
    m = api.get("/model").json()
    assert m["name"] == "claimradar-abuse" and m["version"] == str(trained_model.version)
    assert m["alias"] in ("champion", "challenger")
    assert {"train_until", "cutoff"} <= set(m["data_window"])
    assert 0 < m["holdout_metrics"]["model_amount_top5pct"] <= 1
    assert len(m["features"]) > 100 and set(m["bands"]) == {"high", "review", "watch"}


def test_scoring_requests_stay_out_of_the_access_log(service, api, claims):
    """CLAIMRADAR_SCORING_TELEMETRY is off by default: BentoML's access log (and its traces) skip
    the scoring routes, ~8% of a one-claim request's CPU, and keep the other routes."""
    start = service.log.stat().st_size
    assert api.post("/score", json={"claims": claims[:1]}).status_code == 200
    assert api.get("/model").status_code == 200
    deadline, new = time.monotonic() + 10, ""
    while "path=/model" not in new and time.monotonic() < deadline:
        time.sleep(0.2)
        with service.log.open(errors="replace") as f:
            f.seek(start)
            new = f.read()
    assert "path=/model" in new
    assert "path=/score" not in new


def test_docs_json_documents_every_field(service):
    with service.client(key=None) as c:
        spec = c.get("/docs.json").json()
    assert {"/score", "/score_xml", "/model", "/livez", "/readyz", "/metrics"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    claim = schemas["Claim"]["properties"]
    for f in CLAIMS.fields:
        if f.xml:
            assert f.xml in claim and claim[f.xml]["description"], f.xml
    assert claim["MA_LK"]["examples"] and "xml2" in claim and "xml3" in claim
    for name in ("ScoredClaim", "Reason", "RuleHit", "ClaimError"):
        assert all(p.get("description") or "$ref" in p or "items" in p
                   for p in schemas[name]["properties"].values()), name  # fmt: skip
    assert spec["paths"]["/score"]["post"]["requestBody"]


def test_counters_follow_what_was_scored(service, api, claims):
    def counts():
        with service.client() as c:
            text = c.get("/metrics").text
        total = rejected = 0.0
        for line in text.splitlines():
            if line.startswith("claimradar_scored_claims_total{"):
                total += float(line.rsplit(" ", 1)[1])
            if line.startswith("claimradar_rejected_claims_total"):
                rejected += float(line.rsplit(" ", 1)[1])
        return total, rejected

    before = counts()
    bad = dict(claims[0], NGAY_RA="x")
    api.post("/score", json={"claims": [*claims[:3], bad]})
    after = counts()
    assert after[0] - before[0] == 3 and after[1] - before[1] == 1


def test_scored_claims_are_recorded_once(service, api, claims):
    from sqlalchemy import func, select

    from serving.store import ScoredClaim, Store

    api.post("/score", json={"claims": claims[:10]})
    api.post("/score", json={"claims": claims[:10]})
    store = Store(service.case_store_url)
    ids = [c["MA_LK"] for c in claims[:10]]
    with store.session() as s:
        n = s.scalar(
            select(func.count()).select_from(ScoredClaim).where(ScoredClaim.claim_id.in_(ids))
        )
    assert n == 10


def test_api_and_batch_scores_are_identical(api, sim_dataset, trained_model, mlflow_store, claims):
    """One scorer for both: the claims scored over HTTP get the scores `claimradar score` gives."""
    from serving.batch import resolve_bundle, score_dataset

    bundle, version = resolve_bundle(
        str(trained_model.version), mlflow_store["tracking_uri"], mlflow_store["artifact_root"]
    )
    batch = score_dataset(sim_dataset, bundle, version).set_index("claim_id")
    out = api.post("/score", json={"claims": claims}).json()
    assert len(out["scored"]) == len(claims)
    for s in out["scored"]:
        b = batch.loc[s["MA_LK"]]
        assert s["risk_score"] == pytest.approx(float(b["risk_score"]), abs=1e-6)
        assert s["band"] == b["band"]
        assert s["expected_overbilled"] == pytest.approx(float(b["expected_overbilled"]), rel=1e-6)
        assert [r["feature"] for r in s["reasons"]] == [r["feature"] for r in b["reasons"]][:5]
        assert [h["code"] for h in s["rule_hits"]] == [h["code"] for h in b["rule_hits"]]


def test_a_promotion_is_served_without_a_restart_or_a_failed_request(service, claims):
    """Requests keep flowing while the champion moves to a new version."""
    from scoring import registry

    client = registry.connect(service.tracking_uri, service.artifact_root)
    first = registry.default_version(client)
    mv = client.get_model_version(registry.MODEL_NAME, str(first))
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def traffic():
        with service.client() as c:
            while not stop.is_set():
                r = c.post("/score", json={"claims": claims[:2]})
                results.append((r.status_code, r.json().get("model_version", r.text)))

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        time.sleep(2)
        new = client.create_model_version(registry.MODEL_NAME, mv.source, run_id=mv.run_id)
        client.set_registered_model_alias(registry.MODEL_NAME, "champion", new.version)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(v == str(new.version) for _, v in results):
            time.sleep(0.5)
        time.sleep(2)
    finally:
        stop.set()
        worker.join(60)
    statuses = {s for s, _ in results}
    versions = [v for _, v in results]
    assert statuses == {200}, [r for r in results if r[0] != 200][:3]
    assert versions[0] == str(first) and versions[-1] == str(new.version)
    switch = versions.index(str(new.version))
    assert set(versions[switch:]) == {str(new.version)}  # no flapping back
    with service.client() as c:
        assert c.get("/model").json()["version"] == str(new.version)


def test_the_readme_client_works(service, tmp_path):
    """The Python client shown in README.md, run as written against the live service."""
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    section = readme.split("## Scoring claims over HTTP", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    code = code.replace("http://127.0.0.1:3000", service.url)
    (tmp_path / "serving").mkdir()
    shutil.copy(root / "serving" / "example_claim.json", tmp_path / "serving")
    (tmp_path / "key.txt").write_text(service.key + "\n")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0].split()
    example = json.loads((root / "serving" / "example_claim.json").read_text())
    assert first[0] == example["MA_LK"] and first[1] in ("high", "review", "watch", "low")


def _raw_request(url: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    """Send only the request head (a huge Content-Length, no body) and read the answer: a server
    that tried to read the body first would wait for it until the timeout."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(url)
    head = f"POST {path} HTTP/1.1\r\nHost: {u.hostname}\r\nContent-Length: 10000000000\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "Connection: close\r\n\r\n"
    with socket.create_connection((u.hostname, u.port), timeout=20) as s:
        s.sendall(head.encode())
        data = b""
        while True:
            top, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                lines = top.decode("latin-1").lower().split("\r\n")
                length = next(int(x.split(":")[1]) for x in lines if x.startswith("content-length"))
                if len(rest) >= length:
                    break
            chunk = s.recv(65536)
            assert chunk, f"connection closed: {data!r}"
            data += chunk
    return int(top.split(b" ", 2)[1]), json.loads(rest[:length])


@pytest.mark.parametrize("path", ["/score", "/score_xml"])
def test_the_key_and_the_size_are_checked_before_the_body_is_read(service, path):
    status, body = _raw_request(service.url, path, {})
    assert status == 401 and "missing API key" in body["detail"]
    status, body = _raw_request(service.url, path, {"Authorization": f"Bearer {service.key}"})
    assert status == 413 and "larger than" in body["detail"]


def test_null_cards_unknown_keys_and_future_dates_are_answered_cleanly(api, claims):
    nulls = {**claims[0], "MA_THE_BHYT": None, "SO_CCCD": None, "NOT_A_FIELD": {"x": [1]}}
    future = {**claims[1], "NGAY_VAO": "209901010800", "NGAY_RA": "209901050800"}
    r = api.post("/score", json={"claims": [nulls, future]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [s["MA_LK"] for s in out["scored"]] == [claims[0]["MA_LK"]]
    assert [e["index"] for e in out["errors"]] == [1]
    assert {"NGAY_VAO", "NGAY_RA"} <= {e["field"] for e in out["errors"][0]["errors"]}


def test_concurrent_single_claims_each_get_their_own_answer(service, claims):
    """Clients sending one claim a request at once (scored together where they wait on each
    other: serving.combine): every request answered 200 with its own claim, and /metrics counts
    every request in a scoring batch."""
    from claims_json import moved_claim

    def batched():
        with service.client() as c:
            text = c.get("/metrics").text
        got = {}
        for line in text.splitlines():
            for k in ("count", "sum"):
                if line.startswith(f"claimradar_requests_per_batch_{k} "):
                    got[k] = got.get(k, 0.0) + float(line.rsplit(" ", 1)[1])
        return got.get("count", 0.0), got.get("sum", 0.0)

    # a few days on: the month after the snapshot's, which the per-key state answers
    moved = [moved_claim(c, c["MA_LK"][:-3] + f"H{i:02d}", days=3) for i, c in enumerate(claims)]
    month = max(str(c["NGAY_VAO"])[:6] for c in moved)
    sent = [c for c in moved if str(c["NGAY_VAO"])[:6] == month][:30]
    assert len(sent) >= 20
    before = batched()
    answers: dict[str, list] = {}
    failures: list = []

    def client(mine):
        with service.client() as c:
            for claim in mine:
                r = c.post("/score", json={"claims": [claim]})
                if r.status_code != 200:
                    failures.append((r.status_code, r.text))
                    continue
                answers[claim["MA_LK"]] = [s["MA_LK"] for s in r.json()["scored"]]

    threads = [threading.Thread(target=client, args=(sent[k::10],)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures
    assert answers == {c["MA_LK"]: [c["MA_LK"]] for c in sent}
    after = batched()
    assert after[1] - before[1] == len(sent)  # every request scored in some batch, once
    assert 1 <= after[0] - before[0] <= len(sent)
