"""Where the databases are, and how to connect to them with a clear error when that fails."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import sqlalchemy.exc
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from toban_orchestration.db.embedded import EmbeddedPostgres
from toban_orchestration.settings import Settings, get_settings

APP_DATABASE_NAME = "toban"
DAGSTER_DATABASE_NAME = "dagster"

# The project's code and Alembic use psycopg 3. Dagster's storage needs psycopg2: with psycopg 3
# dagster-postgres fails on its first event write (see shared/STACK_NOTES.md).
APP_DRIVER = "postgresql+psycopg"
DAGSTER_DRIVER = "postgresql+psycopg2"
_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}


class DatabaseConfigError(RuntimeError):
    """The database settings are missing or malformed."""


class DatabaseConnectionError(RuntimeError):
    """The database could not be reached; the message names host and database, never secrets."""


@dataclass(frozen=True)
class DatabaseTargets:
    app_url: URL
    dagster_url: URL
    embedded: bool


def parse_postgres_url(raw: str, setting: str) -> URL:
    """Parse a PostgreSQL URL from setting `setting`; the error never echoes the URL itself."""
    try:
        url = make_url(raw)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # ValueError: a port that is no number
        raise DatabaseConfigError(
            f"{setting} is not a valid database URL; expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        ) from None
    if url.drivername not in _POSTGRES_SCHEMES:
        raise DatabaseConfigError(
            f"{setting} uses the scheme '{url.drivername}'; Toban needs PostgreSQL "
            "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE)."
        )
    if not url.database:
        raise DatabaseConfigError(f"{setting} names no database (postgresql://.../DATABASE).")
    return url


def resolve_database_targets(settings: Settings | None = None) -> DatabaseTargets:
    """The app and Dagster database URLs; starts the embedded server when none is configured."""
    settings = settings or get_settings()
    if settings.database_url is None:
        if settings.dagster_storage_url is not None:
            raise DatabaseConfigError(
                "TOBAN_DAGSTER_STORAGE_URL is set but TOBAN_DATABASE_URL is not; set both to use "
                "an external server, or neither to use the embedded one."
            )
        embedded = EmbeddedPostgres(settings.embedded_pgdata)
        return DatabaseTargets(
            app_url=embedded.ensure_database(APP_DATABASE_NAME).set(drivername=APP_DRIVER),
            dagster_url=embedded.ensure_database(DAGSTER_DATABASE_NAME).set(
                drivername=DAGSTER_DRIVER
            ),
            embedded=True,
        )
    app_url = parse_postgres_url(settings.database_url.get_secret_value(), "TOBAN_DATABASE_URL")
    if settings.dagster_storage_url is None:
        raise DatabaseConfigError(
            "TOBAN_DATABASE_URL is set but TOBAN_DAGSTER_STORAGE_URL is not; Dagster keeps its "
            "runs in a database of its own (for example the same server's 'dagster' database)."
        )
    dagster_url = parse_postgres_url(
        settings.dagster_storage_url.get_secret_value(), "TOBAN_DAGSTER_STORAGE_URL"
    )
    if (app_url.host, app_url.port, app_url.database) == (
        dagster_url.host,
        dagster_url.port,
        dagster_url.database,
    ):
        # Both keep an Alembic history; Dagster's table is `alembic_version`.
        raise DatabaseConfigError(
            "TOBAN_DAGSTER_STORAGE_URL points at the app database; give Dagster a database of "
            "its own."
        )
    return DatabaseTargets(
        app_url=app_url.set(drivername=APP_DRIVER),
        dagster_url=dagster_url.set(drivername=DAGSTER_DRIVER),
        embedded=False,
    )


def describe_url(url: URL) -> str:
    """Host and database of `url`, for messages (never the user's password)."""
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    port = f":{url.port}" if url.port else ""
    return f"database '{url.database}' on host {host}{port}"


def connection_error(url: URL, error: BaseException) -> DatabaseConnectionError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return DatabaseConnectionError(
        f"Cannot connect to PostgreSQL {describe_url(url)}: {reason}. Check that the server is "
        "running and that TOBAN_DATABASE_URL is right, or unset TOBAN_DATABASE_URL (and "
        "TOBAN_DAGSTER_STORAGE_URL) to use the embedded database."
    )


def make_engine(url: URL, **kwargs: object) -> Engine:
    """An engine for `url` whose first connection is checked, failing with a clear error."""
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    check_connection(engine)
    return engine


@contextmanager
def opened_engine(url: URL, **kwargs: object) -> Iterator[Engine]:
    """`make_engine` whose pooled connections are closed when the block ends, however it ends."""
    engine = make_engine(url, **kwargs)
    try:
        yield engine
    finally:
        engine.dispose()


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except sqlalchemy.exc.OperationalError as error:
        raise connection_error(engine.url, error) from None


def database_now(engine: Engine) -> datetime:
    """The database's clock (`now()`), the one `created_at` and `updated_at` are set by."""
    with engine.connect() as connection:
        now: datetime = connection.exec_driver_sql("SELECT now()").scalar_one()
    return now


@cache
def get_app_engine() -> Engine:
    return make_engine(resolve_database_targets().app_url)


def app_database_url(database_url: str | None, embedded_pgdata: Path | None) -> URL:
    """The app database named by a resource's configuration: `database_url` (as
    TOBAN_DATABASE_URL), or else the `toban` database of the embedded server in `embedded_pgdata`
    (started when it is not running)."""
    if database_url:
        return parse_postgres_url(database_url, "TOBAN_DATABASE_URL").set(drivername=APP_DRIVER)
    if embedded_pgdata is None:
        raise DatabaseConfigError(
            "The app database is not configured: give a database URL (TOBAN_DATABASE_URL) or the "
            "embedded server's data folder."
        )
    return (
        EmbeddedPostgres(embedded_pgdata)
        .ensure_database(APP_DATABASE_NAME)
        .set(drivername=APP_DRIVER)
    )


_app_engines: dict[tuple[str | None, Path | None], Engine] = {}


def app_engine(database_url: str | None, embedded_pgdata: Path | None) -> Engine:
    """One pooled engine per configured app database, shared by every step of a process (a
    resource is built again for each run and step; its pool should not be)."""
    key = (database_url or None, embedded_pgdata)
    if key not in _app_engines:
        _app_engines[key] = make_engine(app_database_url(database_url, embedded_pgdata))
    return _app_engines[key]


def forget_app_engine() -> None:
    """Close and drop the engines `get_app_engine` and `app_engine` cached, so that their next
    calls read the settings again. Clearing the caches alone would leave those engines'
    connections open until the garbage collector finds them."""
    if get_app_engine.cache_info().currsize:
        get_app_engine().dispose()
    get_app_engine.cache_clear()
    while _app_engines:
        _, engine = _app_engines.popitem()
        engine.dispose()


@contextmanager
def app_session() -> Iterator[Session]:
    """A session on the app database that commits on success and rolls back on error."""
    factory = sessionmaker(get_app_engine(), expire_on_commit=False)
    with factory.begin() as session:
        yield session
