"""The `toban db ...` commands, run as a user runs them, against a real database."""

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from toban_orchestration.db import migrations
from toban_orchestration.db.models import Team
from toban_orchestration_tests.factories import build_graph
from toban_orchestration_tests.helpers import run_toban


def _team_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Team)) or 0


def _add_rows(engine: Engine) -> None:
    """Put a row in every table of the test's app database."""
    with Session(engine) as session:
        build_graph(session)
        session.commit()


def test_upgrade_current_and_check_on_an_empty_database(
    app_environment: dict[str, str], migrated_engine: Engine
) -> None:
    migrations.downgrade(migrated_engine, "base")

    behind = run_toban("db", "current", env=app_environment)
    assert behind.returncode == 1
    assert "run `toban db upgrade`" in behind.stdout

    upgraded = run_toban("db", "upgrade", env=app_environment)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"is at revision {migrations.head_revision()}" in upgraded.stdout
    assert migrations.current_revision(migrated_engine) == migrations.head_revision()

    assert run_toban("db", "current", env=app_environment).returncode == 0
    checked = run_toban("db", "check", env=app_environment)
    assert checked.returncode == 0
    assert "matches the models" in checked.stdout

    with migrated_engine.begin() as connection:
        connection.execute(text("ALTER TABLE team DROP COLUMN avatar_url"))
    drifted = run_toban("db", "check", env=app_environment)
    assert drifted.returncode == 1
    assert "avatar_url" in drifted.stdout


def test_reset_without_confirmation_refuses_and_changes_nothing(
    app_environment: dict[str, str], migrated_engine: Engine
) -> None:
    _add_rows(migrated_engine)
    result = run_toban("db", "reset", env=app_environment)
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert _team_count(migrated_engine) == 2
    assert migrations.schema_differences(migrated_engine) == []


def test_reset_with_confirmation_drops_the_data_and_recreates_the_schema(
    app_environment: dict[str, str], migrated_engine: Engine
) -> None:
    _add_rows(migrated_engine)
    with migrated_engine.begin() as connection:
        connection.execute(text("CREATE TABLE stray_table (id int)"))

    result = run_toban("db", "reset", "--yes", env=app_environment)
    assert result.returncode == 0, result.stderr
    assert _team_count(migrated_engine) == 0
    assert migrations.current_revision(migrated_engine) == migrations.head_revision()
    assert migrations.schema_differences(migrated_engine) == []
    with migrated_engine.connect() as connection:
        stray = connection.execute(text("SELECT to_regclass('stray_table')")).scalar_one()
    assert stray is None
