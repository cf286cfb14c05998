"""The initial case store: users, API keys, scored claims, cases, decisions, audit events.

Revision ID: 0001
Revises:
"""

from alembic import op

from serving.store import Base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Audit events are immutable: the database itself refuses updates and deletes.
SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit events are immutable'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit events are immutable'); END""",
]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION audit_immutable() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit events are immutable'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit_events
       FOR EACH ROW EXECUTE FUNCTION audit_immutable()""",
]


def upgrade() -> None:
    bind = op.get_bind()
    Base.metadata.create_all(bind=bind)
    for sql in SQLITE_TRIGGERS if bind.dialect.name == "sqlite" else POSTGRES_TRIGGERS:
        op.execute(sql)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_no_change ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_immutable()")
    Base.metadata.drop_all(bind=bind)
