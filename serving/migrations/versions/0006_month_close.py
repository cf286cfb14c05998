"""Closing a month re-ranks the API's claims by the facility early warning (serving/month_close.py):
each scored row keeps the weighted facility-shift money its priority holds (`shift_added`), so a
month closed again replaces it instead of adding it twice. NULL: never assessed (0 added).
`priority_base`: the row's money at stake without the shift, kept at its first close (a priority
capped at the fund amount does not tell it).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("shift_added", "priority_base")


def upgrade() -> None:
    # 0001 creates the tables from the current models, so a new store already has the column
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("scored_claims")}
    new = [n for n in COLUMNS if n not in have]
    if new:
        with op.batch_alter_table("scored_claims") as t:
            for n in new:
                t.add_column(sa.Column(n, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scored_claims") as t:
        for n in COLUMNS:
            t.drop_column(n)
