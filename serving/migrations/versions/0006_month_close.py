"""Closing a month re-ranks the API's claims by the facility early warning (serving/month_close.py):
each scored row keeps the weighted facility-shift money its priority holds (`shift_added`), so a
month closed again replaces it instead of adding it twice. NULL: never assessed (0 added).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001 creates the tables from the current models, so a new store already has the column
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("scored_claims")}
    if "shift_added" not in have:
        with op.batch_alter_table("scored_claims") as t:
            t.add_column(sa.Column("shift_added", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scored_claims") as t:
        t.drop_column("shift_added")
