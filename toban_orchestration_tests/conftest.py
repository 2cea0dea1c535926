"""A real PostgreSQL for every test session.

Database tests run against the embedded server (started in a temporary folder) and, when
TOBAN_TEST_DATABASE_URL names a server (CI sets it to the one at 127.0.0.1:5432), against that
server too. Each test that needs a database gets a database of its own, created empty and
dropped afterwards, so tests never see each other's rows.
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

# The partitions start a year before today unless set; the tests' data has fixed dates (some in
# 2026), so their partitions must not move with the clock. Set before any project module builds
# its partitions definitions (at import), and inherited by the `toban` subprocesses.
os.environ.setdefault("TOBAN_PARTITIONS_START_DATE", "2020-01-01")

from toban_orchestration.db import migrations
from toban_orchestration.db.embedded import EmbeddedPostgres
from toban_orchestration.db.engine import APP_DRIVER, DAGSTER_DRIVER, forget_app_engine
from toban_orchestration.db.models import Base
from toban_orchestration.settings import PROJECT_ROOT, get_settings

EXTERNAL_URL_VARIABLE = "TOBAN_TEST_DATABASE_URL"


def _backends() -> list[str]:
    return ["embedded", "external"] if os.environ.get(EXTERNAL_URL_VARIABLE) else ["embedded"]


@dataclass(frozen=True)
class PostgresServer:
    name: str
    maintenance_url: URL
    """A URL to a database that always exists (used to create and drop test databases)."""

    def libpq(self, url: URL) -> str:
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    def create_database(self) -> URL:
        name = f"toban_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.libpq(self.maintenance_url), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.maintenance_url.set(database=name, drivername=APP_DRIVER)

    def drop_database(self, url: URL) -> None:
        with psycopg.connect(self.libpq(self.maintenance_url), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(url.database or "")
                )
            )


# The suite runs on two pytest-xdist workers (pyproject's addopts, `--dist loadgroup`). Each
# module stays on one worker, so its module-scoped fixtures (a migrated database, a server) are
# made once; the modules that share the session-scoped end-to-end stack (`dagster dev` with its
# daemon) stay together, so it is started once.
SHARED_STACK_MODULES = ("test_end_to_end", "test_ui_browser")
# The longest groups go first (each worker takes the next group in collection order), so that
# the last group to finish is a short one: the end-to-end stack alone takes minutes.
LONGEST_FIRST = (
    "e2e_stack",
    "test_dev_launcher",
    "test_demo",
    "test_slack_receiver",
    "test_quiet_output_and_stop",
    "test_cli_slack",
    "test_cli",
    "test_embedded",
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    groups: dict[str, str] = {}
    for item in items:
        module = item.path.stem
        group = "e2e_stack" if module in SHARED_STACK_MODULES else module
        groups[item.nodeid] = group
        item.add_marker(pytest.mark.xdist_group(group))

    def rank(item: pytest.Item) -> int:
        group = groups[item.nodeid]
        return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: a module's tests keep their order


@pytest.fixture(scope="session")
def embedded_pgdata(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    pgdata = tmp_path_factory.mktemp("embedded") / "pgdata"
    server = EmbeddedPostgres(pgdata)
    server.start()
    yield pgdata
    server.stop()


@pytest.fixture(scope="session", params=_backends())
def postgres_server(request: pytest.FixtureRequest) -> PostgresServer:
    if request.param == "external":
        url = make_url(os.environ[EXTERNAL_URL_VARIABLE])
        return PostgresServer("external", url)
    pgdata: Path = request.getfixturevalue("embedded_pgdata")
    return PostgresServer("embedded", EmbeddedPostgres(pgdata).start().url)


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[URL]:
    """A new, empty database (no tables); dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def empty_engine(empty_database: URL) -> Iterator[Engine]:
    engine = create_engine(empty_database)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated_engine(empty_engine: Engine) -> Engine:
    """An engine on a new database migrated to head."""
    migrations.upgrade(empty_engine)
    return empty_engine


@pytest.fixture(scope="module")
def shared_migrated_engine(postgres_server: PostgresServer) -> Iterator[Engine]:
    """One migrated database for a whole module of row-level tests (tables are emptied after
    each test by `db_session`); migrating once per module keeps the suite fast."""
    url = postgres_server.create_database()
    engine = create_engine(url)
    migrations.upgrade(engine)
    yield engine
    engine.dispose()
    postgres_server.drop_database(url)


@pytest.fixture
def db_session(shared_migrated_engine: Engine) -> Iterator[Session]:
    session = sessionmaker(shared_migrated_engine, expire_on_commit=False)()
    yield session
    session.rollback()
    session.close()
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with shared_migrated_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture
def report_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TOBAN_REPORTS_DIR in the test's folder (report pages, which privacy cleans up too)."""
    monkeypatch.setenv("TOBAN_REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    yield tmp_path / "reports"
    get_settings.cache_clear()


@pytest.fixture
def app_environment(
    migrated_engine: Engine,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    """TOBAN_* variables that point the code (and any `toban` subprocess) at a migrated test
    database (the one `migrated_engine` reaches: tests use that engine for their own queries)
    and a separate, empty Dagster database."""
    dagster_url = postgres_server.create_database().set(drivername=DAGSTER_DRIVER)
    environment = {
        "TOBAN_DATABASE_URL": migrated_engine.url.render_as_string(hide_password=False),
        "TOBAN_DAGSTER_STORAGE_URL": dagster_url.render_as_string(hide_password=False),
        # The analyses write HTML reports: into the test's folder, not the project's state dir.
        "TOBAN_REPORTS_DIR": str(tmp_path / "reports"),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    forget_app_engine()
    yield environment
    forget_app_engine()
    get_settings.cache_clear()
    postgres_server.drop_database(dagster_url)


@pytest.fixture
def project_instance(
    app_environment: dict[str, str], tmp_path: Path
) -> Iterator[dg.DagsterInstance]:
    """An instance configured by the project's own dagster.yaml (as `toban dev` uses it), with
    its local artifacts in a temporary folder."""
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        yield instance
