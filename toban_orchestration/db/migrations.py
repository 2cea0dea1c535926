"""Schema management of the app database through Alembic: upgrade, downgrade, reset, compare."""

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from toban_orchestration.settings import PROJECT_ROOT

# Dagster's storage keeps its own Alembic history in `alembic_version`; ours never shares it.
VERSION_TABLE = "toban_alembic_version"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave tables that no model describes (another tool's, in a shared database) alone."""
    return not (type_ == "table" and reflected and compare_to is None)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


# Any fixed key: every process that migrates this database takes the same lock.
_MIGRATION_LOCK = 7_301_542_118


def _lock_migrations(connection: Connection) -> None:
    """Wait for any other process migrating this database (two events-receiver pods, a CLI and
    the daemon starting together), until this transaction ends. The second one then finds the
    schema at head and does nothing, instead of failing on tables the first just created."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        _lock_migrations(connection)
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        _lock_migrations(connection)
        command.downgrade(alembic_config(connection), revision)


def schema_differences(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match the models."""
    from toban_orchestration.db.models import Base

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": VERSION_TABLE,
                "compare_type": True,
                "compare_server_default": True,
                "include_object": include_object,
            },
        )
        return list(compare_metadata(context, Base.metadata))


def table_row_estimates(engine: Engine) -> list[tuple[str, int]]:
    """(table, rows) of every app table but Alembic's, by name. Planner estimates, not
    count(*): exact counts of a large message table take seconds."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT relname, GREATEST(reltuples, 0)::bigint FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
                "AND relname <> :version_table ORDER BY relname"
            ),
            {"version_table": VERSION_TABLE},
        ).all()
    return [(str(name), int(count)) for name, count in rows]


def reset(engine: Engine) -> None:
    """Drop every object of the app database's public schema, then migrate to head."""
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
