"""Resubmissions and personal data at rest (issue 13): a claim is identified by its facility and
MA_LK (`claim_key`) and each new content is a new version of it; scored rows carry the content
hash and version, cases the claim key and the version they are on, decisions the version they were
made on; the identity of a case is kept sealed in its own column, and a claim that is not a case
keeps its summary alone.

The old unique keys go: (MA_LK, model version) on scored claims, MA_LK on cases. Existing rows
get their claim key from their facility and MA_LK, version 1 and no content hash (the first
content recorded after this revision is taken as theirs). Claims that are not cases keep their
summary alone; a case's identity is sealed with the data key the store is opened with (`Store(url,
data_key=...)` passes it to the migration), or dropped when there is none: never left in clear.

Revision 0001 creates its tables from the models as they are when it runs, so a fresh database
already has everything added here: each step below adds only what the database lacks.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = {
    "scored_claims": [
        sa.Column("claim_key", sa.String(120), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("claim_version", sa.Integer(), nullable=True),
        sa.Column("identity", sa.Text(), nullable=True),
    ],
    "cases": [
        sa.Column("claim_key", sa.String(120), nullable=True),
        sa.Column("claim_version", sa.Integer(), nullable=True),
    ],
    "decisions": [sa.Column("claim_version", sa.Integer(), nullable=True)],
}
# unnamed unique constraints (SQLite's `claim_id UNIQUE` on cases) get a name when reflected
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _uniques(table: str) -> dict[tuple, str | None]:
    insp = sa.inspect(op.get_bind())
    return {tuple(u["column_names"]): u["name"] for u in insp.get_unique_constraints(table)}


def upgrade() -> None:
    bind = op.get_bind()
    insp = sa.inspect(bind)
    for table, cols in COLUMNS.items():
        have = {c["name"] for c in insp.get_columns(table)}
        new = [c for c in cols if c.name not in have]
        if new:
            with op.batch_alter_table(table) as t:
                for col in new:
                    t.add_column(col)
    key = "COALESCE(facility_id, '') || '/' || claim_id"
    op.execute(f"UPDATE scored_claims SET claim_key = {key} WHERE claim_key IS NULL")
    op.execute("UPDATE scored_claims SET claim_version = 1 WHERE claim_version IS NULL")
    op.execute(
        "UPDATE cases SET claim_key = (SELECT s.claim_key FROM scored_claims s "
        "WHERE s.id = cases.scored_claim_id) WHERE claim_key IS NULL"
    )
    op.execute("UPDATE cases SET claim_version = 1 WHERE claim_version IS NULL")
    _documents(bind, op.get_context().config.attributes.get("data_key"))

    scored = _uniques("scored_claims")
    with op.batch_alter_table("scored_claims", naming_convention=NAMING) as t:
        if ("claim_id", "model_version") in scored:
            t.drop_constraint(scored[("claim_id", "model_version")] or "uq_scored_claim", "unique")
        if ("claim_key", "content_hash", "model_version") not in scored:
            t.create_unique_constraint(
                "uq_scored_content", ["claim_key", "content_hash", "model_version"]
            )
        if ("claim_key", "claim_version", "model_version") not in scored:
            t.create_unique_constraint(
                "uq_scored_version", ["claim_key", "claim_version", "model_version"]
            )
    cases = _uniques("cases")
    with op.batch_alter_table("cases", naming_convention=NAMING) as t:
        if ("claim_id",) in cases:
            t.drop_constraint(cases[("claim_id",)] or "uq_cases_claim_id", "unique")
        if ("claim_key",) not in cases:
            t.create_unique_constraint("uq_case_claim", ["claim_key"])
    if "ix_cases_claim_id" not in {i["name"] for i in sa.inspect(bind).get_indexes("cases")}:
        op.create_index("ix_cases_claim_id", "cases", ["claim_id"])


def _documents(bind, data_key: str | None) -> None:
    """Claims that are not cases keep their summary alone; a case's identity moves out of its
    document, sealed with the data key (dropped when the migration runs without one)."""
    import json

    from serving.sealing import Sealer

    sealer = Sealer(data_key) if data_key else None
    scored = sa.table(
        "scored_claims",
        sa.column("id", sa.Integer),
        sa.column("claim", sa.JSON),
        sa.column("claim_key", sa.String),
        sa.column("identity", sa.Text),
    )
    with_case = set(bind.execute(sa.text("SELECT claim_key FROM cases")).scalars())
    rows = bind.execute(sa.select(scored.c.id, scored.c.claim, scored.c.claim_key)).all()
    for rid, doc, key in rows:
        doc = json.loads(doc) if isinstance(doc, str) else doc
        if not isinstance(doc, dict):
            continue
        values: dict = {}
        if key not in with_case and set(doc) - {"summary"}:
            values["claim"] = {"summary": doc["summary"]} if "summary" in doc else {}
        elif "identity" in doc:
            identity = doc.pop("identity")
            values["claim"] = doc
            if identity and sealer is not None:
                values["identity"] = sealer.seal(identity, key)
        if values:
            bind.execute(sa.update(scored).where(scored.c.id == rid).values(**values))


def downgrade() -> None:
    with op.batch_alter_table("cases", naming_convention=NAMING) as t:
        t.drop_constraint("uq_case_claim", "unique")
        t.create_unique_constraint("uq_cases_claim_id", ["claim_id"])
    with op.batch_alter_table("scored_claims") as t:
        t.drop_constraint("uq_scored_content", "unique")
        t.drop_constraint("uq_scored_version", "unique")
        t.create_unique_constraint("uq_scored_claim", ["claim_id", "model_version"])
    for table, cols in COLUMNS.items():
        with op.batch_alter_table(table) as t:
            for col in cols:
                t.drop_column(col.name)
