"""The resources every run gets, built from the settings (by `definitions.py`, and by the demo
for its in-process runs)."""

import dagster as dg

from toban_orchestration.defs.analysis.resources import AnalysisSettings
from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack.resources import (
    SlackCredentials,
    SlackEventSettings,
    SlackSyncSettings,
)
from toban_orchestration.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:  # type: ignore[type-arg]
    """Secrets are given as `dg.EnvVar`s, resolved when a run starts: the UI shows the
    variables' names, never their values. An unset variable stays unset (None): the embedded
    database, no encryption key. Every other value an asset, op, sensor or schedule reads while
    it runs is a field here too, so the UI shows it and a test passes its own."""
    return {
        "app_database": AppDatabase(
            database_url=dg.EnvVar("TOBAN_DATABASE_URL") if settings.database_url else None,
            embedded_pgdata=str(settings.embedded_pgdata),
        ),
        "slack": SlackCredentials(
            encryption_keys=dg.EnvVar("TOBAN_ENCRYPTION_KEYS") if settings.encryption_keys else None
        ),
        "slack_sync": SlackSyncSettings(
            backfill_days=settings.backfill_days,
            partitions_start_date=settings.partitions_start_date,
        ),
        "slack_events": SlackEventSettings(
            lag_warn_seconds=settings.events_lag_warn_seconds,
            retention_days=settings.events_retention_days,
        ),
        "analysis": AnalysisSettings(
            report_directory=str(settings.report_directory),
            trend_weeks=settings.trend_weeks,
            llm_model=settings.llm_model,
            llm_price_per_1k_tokens=settings.llm_price_per_1k_tokens,
        ),
    }
