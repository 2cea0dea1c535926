"""The Dagster side: the definitions load, the schema asset materializes, and dagster.yaml gives
a PostgreSQL-backed instance whose history stays apart from the project's."""

import subprocess
import sys
from typing import Any

import dagster as dg
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
from sqlalchemy import Engine, inspect, text

from toban_orchestration.db import migrations
from toban_orchestration.definitions import build_defs, defs
from toban_orchestration.defs.platform.assets import app_database_schema, schema_matches_models
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.settings import Settings, get_settings
from toban_orchestration_tests.helpers import disposing_engine


def _materialize_schema(**kwargs: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [app_database_schema, schema_matches_models],
        resources=build_resources(get_settings()),
        **kwargs,
    )


def test_definitions_load_with_the_schema_asset_and_its_check() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("app_database_schema") in graph.get_all_asset_keys()
    assert dg.AssetCheckKey(dg.AssetKey("app_database_schema"), "schema_matches_models") in (
        graph.asset_check_keys
    )


def test_schema_asset_migrates_and_its_check_passes(
    app_environment: dict[str, str], migrated_engine: Engine
) -> None:
    migrations.downgrade(migrated_engine, "base")

    result = _materialize_schema()
    assert result.success
    metadata = result.asset_materializations_for_node("app_database_schema")[0].metadata
    assert metadata["alembic_revision"].value == migrations.head_revision()
    assert metadata["migrated_from"].value == "(empty database)"
    assert metadata["table_count"].value == 19
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("schema_matches_models", True)]


def test_schema_check_fails_on_a_drifted_database(
    app_environment: dict[str, str], migrated_engine: Engine
) -> None:
    with migrated_engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_slack_message_thread_ts"))
    result = _materialize_schema(raise_on_error=False)
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("schema_matches_models", False)]
    assert checks[0].metadata["difference_count"].value == 1


def test_project_dagster_yaml_keeps_runs_in_their_own_postgres_database(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    assert isinstance(project_instance.run_storage, PostgresRunStorage)
    concurrency = project_instance.get_concurrency_config()
    assert concurrency.run_queue_config is not None
    assert concurrency.run_queue_config.max_concurrent_runs == 4
    limits = {
        (limit["key"], limit["limit"])
        for limit in concurrency.run_queue_config.tag_concurrency_limits
    }
    assert limits == {("dagster/partition/workspace", 1), ("slack_workspace", 1)}
    assert concurrency.pool_config.default_pool_limit == 2
    assert (project_instance.run_retries_enabled, project_instance.run_retries_max_retries) == (
        True,
        2,
    )
    assert isinstance(project_instance.event_log_storage, PostgresEventLogStorage)
    result = _materialize_schema(instance=project_instance)
    assert result.success
    assert project_instance.get_run_by_id(result.run_id) is not None
    assert (
        project_instance.get_latest_materialization_event(dg.AssetKey("app_database_schema"))
        is not None
    )

    with disposing_engine(app_environment["TOBAN_DAGSTER_STORAGE_URL"]) as dagster_engine:
        dagster_tables = set(inspect(dagster_engine).get_table_names())
    app_tables = set(inspect(migrated_engine).get_table_names())
    assert {"runs", "event_logs", "alembic_version"} <= dagster_tables
    assert "alembic_version" not in app_tables
    assert migrations.VERSION_TABLE in app_tables
    assert not dagster_tables & {"slack_message", migrations.VERSION_TABLE}


def test_sensor_intervals_and_schedules_follow_the_settings() -> None:
    """TOBAN_SENSOR_INTERVAL_SECONDS sets the sensors' cadence (the automation sensor waits
    twice as long), and the crons and time zone the schedules'. The definitions are built from
    the settings they are given: no environment variable, no new interpreter."""
    built = build_defs(
        Settings(
            sensor_interval_seconds=7,
            daily_schedule_cron="15 4 * * *",
            schedule_timezone="Europe/Paris",
            token_refresh_cron="*/5 * * * *",
            retention_cron="0 5 * * *",
        )
    )
    intervals = [
        built.get_sensor_def(name).minimum_interval_seconds
        for name in (
            "slack_integration_sensor",
            "slack_analysis_request_sensor",
            "slack_analysis_automation",
        )
    ]
    assert intervals == [7, 7, 14]
    schedules = {
        name: (
            built.get_schedule_def(name).cron_schedule,
            built.get_schedule_def(name).execution_timezone,
        )
        for name in (
            "daily_slack_sync",
            "daily_slack_snapshot",
            "slack_token_refresh_schedule",
            "slack_retention_schedule",
        )
    }
    assert schedules == {
        "daily_slack_sync": ("15 4 * * *", "Europe/Paris"),
        "daily_slack_snapshot": ("15 4 * * *", "Europe/Paris"),
        "slack_token_refresh_schedule": ("*/5 * * * *", "UTC"),
        "slack_retention_schedule": ("0 5 * * *", "Europe/Paris"),
    }


def test_loading_the_definitions_imports_neither_the_llm_sdk_nor_matplotlib() -> None:
    """Every run process and code server loads the definitions before its first step: the
    openai SDK and matplotlib (about a second each) are imported only where an analysis calls
    the model or draws a chart."""
    script = (
        "import sys\n"
        "import toban_orchestration.definitions\n"
        "print(sorted(m for m in ('openai', 'matplotlib') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
