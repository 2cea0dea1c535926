"""The resources every run gets, built from the settings (by `definitions.py`, and by the demo
for its in-process runs)."""

import dagster as dg

from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack.resources import SlackCredentials
from toban_orchestration.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:  # type: ignore[type-arg]
    """Secrets are given as `dg.EnvVar`s, resolved when a run starts: the UI shows the
    variables' names, never their values. An unset variable stays unset (None): the embedded
    database, no encryption key."""
    return {
        "app_database": AppDatabase(
            database_url=dg.EnvVar("TOBAN_DATABASE_URL") if settings.database_url else None,
            embedded_pgdata=str(settings.embedded_pgdata),
        ),
        "slack": SlackCredentials(
            encryption_keys=dg.EnvVar("TOBAN_ENCRYPTION_KEYS") if settings.encryption_keys else None
        ),
    }
