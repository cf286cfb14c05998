"""Migration 0005 on a store written before it (revision 0004), on SQLite and PostgreSQL: claims
get their facility-scoped key and version 1, the old unique keys go (the same MA_LK at another
facility, or a new content, can be recorded), the first content recorded after the upgrade is taken
as the legacy version's, claims that are not cases lose their full documents, and a case's
identity leaves its document: sealed with the data key, or dropped without one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.pool import NullPool

from serving.records import document_hash
from serving.sealing import new_key
from serving.store import Base, Case, ScoredClaim, Store, now

NEW = {
    "scored_claims": {"claim_key", "content_hash", "claim_version", "identity"},
    "cases": {"claim_key", "claim_version", "claim_id"},
    "decisions": {"claim_version"},
}
IDENTITY = {"patient_name": "NGUYEN VAN BI MAT", "card_number": "DN4797912345678"}


def _legacy_schema() -> MetaData:
    """The tables as revision 0004 left them."""
    md = MetaData()
    for t in Base.metadata.sorted_tables:
        if t.name not in NEW:
            t.to_metadata(md)
            continue
        cols = [c._copy() for c in t.columns if c.name not in NEW[t.name]]
        extra = []
        if t.name == "scored_claims":
            extra = [UniqueConstraint("claim_id", "model_version", name="uq_scored_claim")]
        if t.name == "cases":
            cols.append(Column("claim_id", String(100), unique=True))
        Table(t.name, md, *cols, *extra)
    return md


def _legacy_store(url: str) -> None:
    eng = create_engine(url, poolclass=NullPool)
    md = _legacy_schema()
    md.create_all(eng)
    t = md.tables
    doc = {"summary": {"claim_id": "A", "person_key": "pk"}, "identity": IDENTITY, "lines": [{}]}
    with eng.begin() as c:
        c.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        c.execute(text("INSERT INTO alembic_version VALUES ('0004')"))
        for i, (cid, band) in enumerate((("A", "high"), ("B", "low")), 1):
            c.execute(
                insert(t["scored_claims"]).values(
                    id=i, claim_id=cid, model_version="3", risk_score=0.5, expected_overbilled=1.0,
                    priority=10.0, band=band, facility_id="01001", reasons=[], rule_hits=[],
                    claim={**doc, "summary": {**doc["summary"], "claim_id": cid}},
                    scored_at=now(),
                )
            )  # fmt: skip
        c.execute(
            insert(t["cases"]).values(
                id=1, claim_id="A", scored_claim_id=1, status="decided", priority=10.0, version=3,
                opened_at=now(), updated_at=now(),
            )
        )  # fmt: skip
    eng.dispose()


def _dump(url: str) -> str:
    eng = create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            return "\n".join(
                " ".join(map(str, row))
                for name in inspect(c).get_table_names()
                for row in c.execute(text(f'SELECT * FROM "{name}"'))
            )
    finally:
        eng.dispose()


def _uniques(url: str, table: str) -> set[tuple]:
    eng = create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            return {tuple(u["column_names"]) for u in inspect(c).get_unique_constraints(table)}
    finally:
        eng.dispose()


@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_0005_upgrades_a_store_written_before_it(store_url, with_key):
    _legacy_store(store_url)
    key = new_key() if with_key else None
    store = Store(store_url, data_key=key)
    try:
        assert _uniques(store_url, "scored_claims") == {
            ("claim_key", "content_hash", "model_version"),
            ("claim_key", "claim_version", "model_version"),
        }
        assert _uniques(store_url, "cases") == {("claim_key",)}
        with store.session() as s:
            a, b = s.scalars(select(ScoredClaim).order_by(ScoredClaim.id)).all()
            case = s.scalars(select(Case)).one()
        assert (a.claim_key, a.claim_version, b.claim_key) == ("01001/A", 1, "01001/B")
        assert (case.claim_key, case.claim_version) == ("01001/A", 1)
        assert set(b.claim) == {"summary"}  # not a case: the summary alone
        assert "identity" not in a.claim and a.claim["lines"]  # a case keeps its document
        assert store.identity(a.identity, a.claim_key) == (IDENTITY if with_key else {})
        dump = _dump(store_url)
        assert all(v not in dump for v in IDENTITY.values())

        # the first content recorded after the upgrade is the legacy version's: nothing moves
        row = {"claim_id": "A", "facility_id": "01001", "model_version": "3", "risk_score": 0.5,
               "expected_overbilled": 1.0, "priority": 10.0, "band": "high",
               "content_hash": document_hash("first")}  # fmt: skip
        assert store.record_scores([row], "t", ("high",)) == 0
        # a change after it is a new version (the old unique key would have refused it) and
        # re-opens the decided case; the same MA_LK at another facility is another claim
        changed = {**row, "content_hash": document_hash("second")}
        elsewhere = {**row, "facility_id": "79002"}
        assert store.record_scores([changed, elsewhere], "t", ("high",)) == 2
        with store.session() as s:
            cases = {c.claim_key: c for c in s.scalars(select(Case))}
        assert cases["01001/A"].status == "open" and cases["01001/A"].claim_version == 2
        assert set(cases) == {"01001/A", "79002/A"}
    finally:
        store.engine.dispose()


def test_0005_upgrades_a_sqlite_store_written_by_the_0004_release(tmp_path):
    """tests/serving/data/store-0004.db was written by the code at revision 0004 (commit 8e6d81a:
    its own tables, foreign keys declared): three scored claims, a decided case with a final
    decision, an open case. SQLite rebuilds scored_claims and cases to change their constraints;
    with the store's foreign keys on, dropping the old scored_claims under a case failed
    (FOREIGN KEY constraint failed) and the store could not start."""
    import shutil

    db = tmp_path / "store.db"
    shutil.copy(Path(__file__).parent / "data" / "store-0004.db", db)
    store = Store(f"sqlite:///{db}")
    try:
        with store.session() as s:
            cases = {c.claim_key: c for c in s.scalars(select(Case))}
            assert set(cases) == {"01001/A", "01001/B"}
            assert cases["01001/A"].status == "decided" and cases["01001/A"].scored_claim_id == 1
            assert len(s.scalars(select(ScoredClaim)).all()) == 3
        with store.engine.connect() as c:
            assert not c.execute(text("PRAGMA foreign_key_check")).all()
            assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert c.execute(text("SELECT count(*) FROM decisions")).scalar() == 1
    finally:
        store.engine.dispose()
