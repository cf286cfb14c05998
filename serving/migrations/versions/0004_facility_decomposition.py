"""Facility months carry the early warning's decomposition: the change in cost per visit against
the facility's own baseline split into case mix, price and volume, the volume-aware z, and the
cells that moved (the evidence).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("change", "mix_effect", "price_effect", "volume_effect", "shift_z")


def upgrade() -> None:
    # 0001 creates the tables from the current models, so a new store already has the columns
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("facility_months")}
    new = [sa.Column(n, sa.Float(), nullable=True) for n in COLUMNS if n not in have]
    if "evidence" not in have:
        new.append(sa.Column("evidence", sa.String(1000), nullable=True))
    if new:
        with op.batch_alter_table("facility_months") as t:
            for column in new:
                t.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("facility_months") as t:
        for name in (*COLUMNS, "evidence"):
            t.drop_column(name)
