"""Alembic environment for the app database.

The project's history lives in `toban_alembic_version`, never in `alembic_version`, which is
Dagster's own; Dagster's storage also lives in a database of its own.
"""

from alembic import context
from sqlalchemy import Connection

from toban_orchestration.db.engine import make_engine, resolve_database_targets
from toban_orchestration.db.migrations import VERSION_TABLE, include_object
from toban_orchestration.db.models import Base

target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # `toban db ...` and the tests hand over a connection; the plain `alembic` CLI does not.
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = make_engine(resolve_database_targets().app_url)
    try:
        with engine.connect() as new_connection:
            run_with(new_connection)
            new_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run against a database.")
run_migrations_online()
