"""The resources' configuration: values passed in as fields, secrets given to the definitions as
environment variable names only, and clear errors for what is missing or malformed."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import URL

from toban_orchestration.analysis.llm import Usage, estimated_cost
from toban_orchestration.db.engine import DatabaseConfigError, forget_app_engine
from toban_orchestration.defs.analysis.resources import AnalysisSettings
from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.resources import (
    SlackCredentials,
    SlackEventSettings,
    SlackSyncSettings,
)
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import Settings


def test_slack_credentials_decrypt_with_any_key_and_need_none_for_exports() -> None:
    old, new = generate_key(), generate_key()
    stored = TokenCipher([old]).encrypt("xoxb-stored-under-the-old-key")
    cipher = SlackCredentials(encryption_keys=f"{new}, {old}").cipher()
    assert cipher is not None
    assert cipher.decrypt(stored) == "xoxb-stored-under-the-old-key"
    assert SlackCredentials().cipher() is None
    assert SlackCredentials(encryption_keys=" ").cipher() is None


def test_a_malformed_key_fails_without_retries_naming_the_key_but_not_its_value() -> None:
    malformed = "not-a-fernet-key-but-a-secret-all-the-same"
    with pytest.raises(dg.Failure) as raised:
        SlackCredentials(encryption_keys=f"{generate_key()},{malformed}").cipher()
    assert "key 2 is not a Fernet key" in str(raised.value.description)
    assert malformed not in str(raised.value.description)
    assert raised.value.allow_retries is False


def test_the_definitions_give_secrets_as_environment_variable_names() -> None:
    settings = Settings(
        database_url=SecretStr("postgresql://toban:hunter2@db.internal/toban"),
        dagster_storage_url=SecretStr("postgresql://toban:hunter2@db.internal/dagster"),
        encryption_keys=SecretStr(generate_key()),
    )
    resources = build_resources(settings)
    database, slack = resources["app_database"], resources["slack"]
    assert isinstance(database, AppDatabase)
    assert isinstance(slack, SlackCredentials)
    assert isinstance(database.database_url, dg.EnvVar)
    assert database.database_url.env_var_name == "TOBAN_DATABASE_URL"
    assert isinstance(slack.encryption_keys, dg.EnvVar)
    assert slack.encryption_keys.env_var_name == "TOBAN_ENCRYPTION_KEYS"
    unset = build_resources(Settings())
    assert unset["app_database"].database_url is None  # type: ignore[attr-defined]
    assert unset["slack"].encryption_keys is None  # type: ignore[attr-defined]


def test_app_database_reaches_the_database_it_is_given(empty_database: URL) -> None:
    database = AppDatabase(database_url=empty_database.render_as_string(hide_password=False))
    try:
        with database.session() as session:
            assert session.execute(text("SELECT current_database()")).scalar() == (
                empty_database.database
            )
        assert database.engine() is database.engine()  # one pool per database, not per call
    finally:
        forget_app_engine()


def test_app_database_without_a_url_or_a_folder_says_what_is_missing() -> None:
    with pytest.raises(DatabaseConfigError, match="TOBAN_DATABASE_URL"):
        AppDatabase().engine()
    with pytest.raises(DatabaseConfigError, match="not a valid database URL") as raised:
        AppDatabase(database_url="postgresql://toban:hunter2@db:notaport/toban").engine()
    assert "hunter2" not in str(raised.value)


def test_the_values_runs_read_are_resource_fields_built_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        backfill_days=5,
        partitions_start_date="2026-11-20",
        events_lag_warn_seconds=90,
        events_retention_days=3,
        reports_dir=tmp_path / "reports",
        trend_weeks=8,
        llm_model="m",
        llm_price_per_1k_tokens='{"m": [1.0, 2.0]}',
    )
    resources = build_resources(settings)
    sync, events, analysis = (
        resources["slack_sync"],
        resources["slack_events"],
        resources["analysis"],
    )
    assert isinstance(sync, SlackSyncSettings)
    assert isinstance(events, SlackEventSettings)
    assert isinstance(analysis, AnalysisSettings)
    assert sync.first_partition_day == date(2026, 11, 20)
    # The window stops at the first day partition, as the settings' own rule does.
    assert sync.backfill_days_to(date(2026, 11, 22)) == 3
    assert sync.backfill_days_to(date(2026, 12, 6)) == settings.backfill_days_to(date(2026, 12, 6))
    assert (events.lag_warn_seconds, events.retention_days) == (90, 3)
    assert analysis.report_path == tmp_path / "reports"
    assert analysis.trend_weeks == 8
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    assert analysis.estimated_cost(usage) == estimated_cost(settings, usage) == 2.0
    # A test gives its own values, no environment variable needed.
    assert AnalysisSettings(report_directory="r", trend_weeks=2).estimated_cost(usage) == 0.0
