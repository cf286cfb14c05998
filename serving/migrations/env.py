"""Alembic environment for the case store; the URL comes from serving.store.upgrade()."""

from alembic import context

from serving.store import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    # The store's own engine (SQLite pragmas, dialect set-up), disposed when done so no pooled
    # connection outlives the migration. (Swapping in a bare pool dropped the dialect's
    # first-connect initialisation: server_version_info stayed None and reflection failed.)
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # SQLite changes a constraint by rebuilding the table (batch mode): with foreign
                # keys enforced, dropping the old scored_claims under a case fails. Off for the
                # migration (the pragma only takes effect outside a transaction), checked after.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
                if broken:
                    raise RuntimeError(f"migration left {len(broken)} broken foreign keys")
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
