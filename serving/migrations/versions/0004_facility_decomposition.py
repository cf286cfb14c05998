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
    with op.batch_alter_table("facility_months") as t:
        for name in COLUMNS:
            t.add_column(sa.Column(name, sa.Float(), nullable=True))
        t.add_column(sa.Column("evidence", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("facility_months") as t:
        for name in (*COLUMNS, "evidence"):
            t.drop_column(name)
