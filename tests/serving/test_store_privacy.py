"""Personal data stays out of database error messages (issue 13): the store's engines hide the
bound parameters of a failing statement."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from serving.store import Store, make_engine


def test_a_failing_statement_does_not_show_its_values(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'cases.db'}")
    secret = "NGUYEN VAN A 0123456789"
    with store.engine.begin() as c:
        c.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"))
        c.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": secret})
    with pytest.raises(IntegrityError) as failed, store.engine.begin() as c:
        c.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": secret})
    message = str(failed.value)
    assert "UNIQUE" in message and "hidden due to hide_parameters" in message
    assert secret not in message and secret not in repr(failed.value)
    store.engine.dispose()


def test_every_engine_hides_parameters(tmp_path):
    for url in (f"sqlite:///{tmp_path / 'x.db'}", "postgresql+psycopg://u:p@localhost:1/x"):
        engine = make_engine(url)
        assert engine.hide_parameters, url
        engine.dispose()


# -- identities at rest (issue 13): sealed, for cases only ---------------------------------------

PEOPLE = {
    "C1": {"patient_name": "NGUYEN VAN BIMAT", "card_number": "DN4797912345678",
           "national_id": "079123456789", "address": "12 Duong Bi Mat, Quan 1",
           "phone": "0912345678", "patient_id": "BN-SECRET-1"},
    "C2": {"patient_name": "TRAN THI KIN", "card_number": "HC4797900000001",
           "national_id": "079987654321", "address": "99 Hem Kin, Quan 3",
           "phone": "0987654321", "patient_id": "BN-SECRET-2"},
}  # fmt: skip


def _world():
    import pandas as pd

    claims = pd.DataFrame(
        [
            {"claim_id": cid, "facility_id": "01001", "person_key": f"pk{cid}",
             "admitted_at": pd.Timestamp("2025-03-01 08:00"), "fund_claimed": 1000.0, **who}
            for cid, who in PEOPLE.items()
        ]
    )  # fmt: skip
    lines = pd.DataFrame(
        {"claim_id": ["C1", "C2"], "line_no": [1, 1], "drug_code": ["40.1", "40.2"],
         "quantity": [1.0, 2.0], "unit_price": [10.0, 20.0], "amount": [10.0, 40.0]}
    )  # fmt: skip
    scored = pd.DataFrame(
        {"claim_id": ["C1", "C2"], "model_version": ["1", "1"], "risk_score": [0.9, 0.1],
         "expected_overbilled": [500.0, 0.0], "priority": [900.0, 1.0], "band": ["high", "low"],
         "reasons": [[], []], "rule_hits": [[], []]}
    )  # fmt: skip
    return scored, {"claims": claims, "drug_lines": lines, "service_lines": lines.iloc[:0]}


def _raw(url: str) -> str:
    """Everything the database holds, as text; for SQLite the files' bytes too (db, WAL)."""
    from pathlib import Path

    from sqlalchemy import create_engine, inspect
    from sqlalchemy.pool import NullPool

    eng = create_engine(url, poolclass=NullPool)
    with eng.connect() as c:
        rows = [
            " ".join(map(str, r))
            for t in inspect(c).get_table_names()
            for r in c.execute(text(f'SELECT * FROM "{t}"'))
        ]
    eng.dispose()
    out = "\n".join(rows)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        out += raw.decode("utf-8", "replace")
    return out


def test_identities_are_sealed_at_rest_and_kept_for_cases_only(store_url):
    from sqlalchemy import select

    from serving.casefile import fill_store
    from serving.review.cases import case_view
    from serving.sealing import new_key
    from serving.store import Case, ScoredClaim

    store = Store(store_url, data_key=new_key())
    scored, tables = _world()
    fill_store(store, scored, tables, None, "cli:test", facility_months=False)
    raw = _raw(store_url)
    for who in PEOPLE.values():
        for value in who.values():
            assert value not in raw, value
    with store.session() as s:
        by = {sc.claim_id: sc for sc in s.scalars(select(ScoredClaim))}
        (case_id,) = s.scalars(select(Case.id))
    assert by["C1"].identity and by["C1"].claim["lines"]  # a case: full document, sealed identity
    assert by["C2"].identity is None and set(by["C2"].claim) == {"summary"}  # not a case
    # the key opens it for the case page; another key does not (the page shows none)
    assert case_view(store, case_id)["identity"] == PEOPLE["C1"]
    other = Store(store_url, migrate=False, data_key=new_key())
    assert case_view(other, case_id)["identity"] == {}
    keyless = Store(store_url, migrate=False)
    assert case_view(keyless, case_id)["identity"] == {}
    for s in (store, other, keyless):
        s.engine.dispose()


def test_without_a_data_key_no_identity_is_kept(tmp_path):
    from sqlalchemy import select

    from serving.casefile import fill_store
    from serving.store import ScoredClaim

    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = Store(url)
    scored, tables = _world()
    fill_store(store, scored, tables, None, "cli:test", facility_months=False)
    assert all(v not in _raw(url) for who in PEOPLE.values() for v in who.values())
    with store.session() as s:
        assert all(sc.identity is None for sc in s.scalars(select(ScoredClaim)))
    store.engine.dispose()


def test_a_sealed_identity_opens_only_on_its_own_claim():
    from serving.sealing import Sealer, SealError, new_key

    sealer = Sealer(new_key())
    sealed = sealer.seal(PEOPLE["C1"], "01001/C1")
    assert sealer.open(sealed, "01001/C1") == PEOPLE["C1"]
    with pytest.raises(SealError):
        sealer.open(sealed, "01001/C2")  # copied onto another claim's row
    with pytest.raises(SealError):
        sealer.open(sealed[:-4] + "AAAA", "01001/C1")  # tampered
    with pytest.raises(SealError, match="32 random bytes"):
        Sealer("too-short")
