from datetime import date

import dagster as dg
from pydantic import Field

from toban_orchestration.security.tokens import EncryptionKeyError, TokenCipher
from toban_orchestration.settings import backfill_days_within


class SlackCredentials(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Decrypts workspace tokens. `definitions.py` gives it the keys as
    `dg.EnvVar("TOBAN_ENCRYPTION_KEYS")`, never as a value: run and resource config are shown in
    the UI, an environment variable's name only."""

    encryption_keys: str | None = Field(
        default=None,
        description="Fernet keys, comma-separated, newest first (TOBAN_ENCRYPTION_KEYS). Unset: "
        "export workspaces still sync; token workspaces fail saying how to set one.",
    )

    def cipher(self) -> TokenCipher | None:
        """None when no key is configured: export workspaces need none, and a token workspace
        then fails with the message that says how to set one. Malformed keys fail the step
        without retries (a retry cannot fix them), naming which key is wrong, never its value."""
        if not self.encryption_keys or not self.encryption_keys.strip():
            return None
        try:
            return TokenCipher.from_keys(self.encryption_keys)
        except EncryptionKeyError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None


class SlackSyncSettings(dg.ConfigurableResource):  # type: ignore[type-arg]
    """How far back the sensors, schedules and Launchpad jobs sync a workspace. `definitions.py`
    builds it from the same settings that give the day partitions their first day, so a run
    never asks for a day before it."""

    backfill_days: int = Field(
        ge=0,
        description="Days of messages a newly connected workspace or channel gets, and the daily "
        "catch-up looks back (TOBAN_BACKFILL_DAYS).",
    )
    partitions_start_date: str = Field(
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="First day (UTC, YYYY-MM-DD) of the daily message partitions "
        "(TOBAN_PARTITIONS_START_DATE): no sync reaches before it.",
    )

    @property
    def first_partition_day(self) -> date:
        return date.fromisoformat(self.partitions_start_date)

    def backfill_days_to(self, last: date) -> int:
        """Days of the backfill window ending on `last` that have a day partition."""
        return backfill_days_within(self.backfill_days, self.first_partition_day, last)


class SlackEventSettings(dg.ConfigurableResource):  # type: ignore[type-arg]
    """How the events sensor and the `inbox_lag` check judge and prune the event inbox."""

    lag_warn_seconds: int = Field(
        ge=1,
        description="The inbox_lag check warns when the oldest unapplied event is older than "
        "this (TOBAN_EVENTS_LAG_WARN_SECONDS).",
    )
    retention_days: int = Field(
        ge=1,
        description="Applied events stay in the inbox this long, then are deleted "
        "(TOBAN_EVENTS_RETENTION_DAYS).",
    )
