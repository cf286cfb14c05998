"""The review workflow: browser sessions, facility months (early warning), the patient key and
filterable rule/reason text on scored claims, the claimed amount and supervisor note on decisions.

Revision 0001 creates its tables from the models as they are when it runs, so a fresh database
already has everything added here: each step below adds only what the database lacks. The
definitions are written out (not taken from the models) so this revision stays what it was.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = {
    "scored_claims": [
        sa.Column("person_key", sa.String(64), nullable=True),
        sa.Column("rule_codes", sa.String(255), nullable=True),
        sa.Column("reason_features", sa.Text(), nullable=True),
    ],
    "decisions": [
        sa.Column("amount_claimed", sa.Float(), nullable=True),
        sa.Column("supervisor_note", sa.Text(), nullable=True),
    ],
}
INDEXES = [("ix_scored_claims_person_key", "scored_claims", ["person_key"])]


def upgrade() -> None:
    insp = sa.inspect(op.get_bind())
    tables = set(insp.get_table_names())
    for table, cols in COLUMNS.items():
        have = {c["name"] for c in insp.get_columns(table)}
        for col in cols:
            if col.name not in have:
                op.add_column(table, col)
    for name, table, cols in INDEXES:
        if name not in {i["name"] for i in insp.get_indexes(table)}:
            op.create_index(name, table, cols)
    if "web_sessions" not in tables:
        op.create_table(
            "web_sessions",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("last_seen_at", sa.DateTime(), nullable=False),
            sa.Column("expires_at", sa.DateTime(), nullable=False),
        )
        op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    if "facility_months" not in tables:
        op.create_table(
            "facility_months",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("facility_id", sa.String(5), nullable=False),
            sa.Column("month", sa.String(7), nullable=False),
            sa.Column("facility_level", sa.String(4), nullable=True),
            sa.Column("facility_name", sa.String(255), nullable=True),
            sa.Column("claims", sa.Integer(), nullable=False),
            sa.Column("cost_per_visit", sa.Float(), nullable=True),
            sa.Column("peer_cost_per_visit", sa.Float(), nullable=True),
            sa.Column("growth_vs_trend", sa.Float(), nullable=True),
            sa.Column("peer_growth_median", sa.Float(), nullable=True),
            sa.Column("growth_excess", sa.Float(), nullable=True),
            sa.Column("robust_z", sa.Float(), nullable=True),
            sa.Column("warning", sa.Boolean(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.UniqueConstraint("facility_id", "month", name="uq_facility_month"),
        )
        op.create_index("ix_facility_months_facility_id", "facility_months", ["facility_id"])


def downgrade() -> None:
    op.drop_table("facility_months")
    op.drop_table("web_sessions")
    op.drop_index("ix_scored_claims_person_key", "scored_claims")
    for table, cols in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for col in cols:
                batch.drop_column(col.name)
