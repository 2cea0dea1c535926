"""Bad database settings fail once, clearly, naming host and database and never the password."""

from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from toban_orchestration.db.embedded import EmbeddedPostgres
from toban_orchestration.db.engine import (
    APP_DRIVER,
    DAGSTER_DRIVER,
    DatabaseConfigError,
    DatabaseConnectionError,
    make_engine,
    resolve_database_targets,
)
from toban_orchestration.settings import Settings
from toban_orchestration_tests.conftest import PostgresServer
from toban_orchestration_tests.helpers import run_toban

PASSWORD = "s3cret-Pa55word"
UNREACHABLE = f"postgresql://toban:{PASSWORD}@127.0.0.1:9/toban_app"


def _settings(**values: str) -> Settings:
    return Settings(**{key: SecretStr(value) for key, value in values.items()})  # type: ignore[arg-type]


def test_unreachable_server_names_host_and_database_but_not_the_password() -> None:
    targets = resolve_database_targets(
        _settings(database_url=UNREACHABLE, dagster_storage_url=UNREACHABLE + "_dagster")
    )
    with pytest.raises(DatabaseConnectionError) as raised:
        make_engine(targets.app_url)
    message = str(raised.value)
    assert "'toban_app'" in message
    assert "127.0.0.1:9" in message
    assert "TOBAN_DATABASE_URL" in message
    assert PASSWORD not in message
    assert raised.value.__cause__ is None


def test_missing_database_on_a_real_server_is_named(postgres_server: PostgresServer) -> None:
    url = postgres_server.maintenance_url.set(database="no_such_toban_db", drivername=APP_DRIVER)
    with pytest.raises(DatabaseConnectionError, match="no_such_toban_db") as raised:
        make_engine(url)
    assert 'database "no_such_toban_db" does not exist' in str(raised.value)


def test_cli_reports_an_unreachable_database_in_one_line() -> None:
    result = run_toban(
        "db",
        "upgrade",
        env={
            "TOBAN_DATABASE_URL": UNREACHABLE,
            "TOBAN_DAGSTER_STORAGE_URL": UNREACHABLE + "_dagster",
        },
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "'toban_app' on host 127.0.0.1:9" in errors[0]
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"database_url": "not a url at all"}, "TOBAN_DATABASE_URL is not a valid database URL"),
        ({"database_url": "sqlite:///toban.db"}, "uses the scheme 'sqlite'"),
        ({"database_url": "postgresql://u@h:5432"}, "TOBAN_DATABASE_URL names no database"),
        ({"database_url": "postgresql://u@h/app"}, "TOBAN_DAGSTER_STORAGE_URL is not"),
        ({"dagster_storage_url": "postgresql://u@h/dagster"}, "TOBAN_DATABASE_URL is not"),
        (
            {"database_url": "postgresql://u@h/app", "dagster_storage_url": "postgresql://v@h/app"},
            "points at the app database",
        ),
    ],
)
def test_misconfiguration_is_refused_with_the_setting_named(
    values: dict[str, str], expected: str
) -> None:
    with pytest.raises(DatabaseConfigError, match=expected):
        resolve_database_targets(_settings(**values))


def test_external_urls_get_the_right_driver_for_each_side() -> None:
    targets = resolve_database_targets(
        _settings(
            database_url=f"postgres://toban:{PASSWORD}@db.internal:5433/toban",
            dagster_storage_url=f"postgresql+psycopg://toban:{PASSWORD}@db.internal:5433/dagster",
        )
    )
    assert targets.app_url.drivername == APP_DRIVER
    assert targets.dagster_url.drivername == DAGSTER_DRIVER
    assert (targets.app_url.database, targets.dagster_url.database) == ("toban", "dagster")
    assert targets.embedded is False
    assert PASSWORD not in repr(_settings(database_url=f"postgresql://u:{PASSWORD}@h/db"))


def test_no_url_means_the_embedded_server_with_two_databases(tmp_path: Path) -> None:
    targets = resolve_database_targets(Settings(state_dir=tmp_path / "state"))
    try:
        assert targets.embedded is True
        assert (targets.app_url.database, targets.dagster_url.database) == ("toban", "dagster")
        assert targets.dagster_url.drivername == DAGSTER_DRIVER
        engine = make_engine(targets.app_url)
        with engine.connect() as connection:
            databases = set(connection.execute(text("SELECT datname FROM pg_database")).scalars())
            version = connection.execute(text("SHOW server_version_num")).scalar_one()
        engine.dispose()
        assert {"toban", "dagster"} <= databases
        assert int(version) >= 160000
    finally:
        EmbeddedPostgres(tmp_path / "state" / "pgdata").stop()
