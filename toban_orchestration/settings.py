"""Every TOBAN_* environment variable, parsed and validated in one place.

Database URLs may carry passwords, so they are SecretStr: they never show up in a repr, a log
line or an exception message.
"""

from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def backfill_days_within(backfill_days: int, first_day: date, last: date) -> int:
    """How many days of a `backfill_days` window ending on `last` have a day partition: the
    window does not reach back before `first_day` (TOBAN_PARTITIONS_START_DATE)."""
    return max(0, min(backfill_days, (last - first_day).days + 1))


def default_partitions_start(today: date | None = None) -> str:
    """The first day of the month a year before `today` (UTC): the backfill window and a year of
    monthly, weekly and daily analyses fit, and the first month is whole."""
    today = today or datetime.now(UTC).date()
    return date(today.year - 1, today.month, 1).isoformat()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOBAN_", extra="ignore", frozen=True)

    database_url: SecretStr | None = None
    """The app database (Toban's tables). Unset: the embedded server's `toban` database."""

    dagster_storage_url: SecretStr | None = None
    """Dagster's run, event and schedule storage. Required when TOBAN_DATABASE_URL is set; must
    be another database than the app's. Unset with no TOBAN_DATABASE_URL: the embedded server's
    `dagster` database."""

    state_dir: Path = PROJECT_ROOT / ".toban"
    """Local state of the project (the embedded server's data folder lives here)."""

    reports_dir: Path | None = None
    """Where the HTML reports of the analyses are written (one file per workspace and window).
    Unset: `reports/` in the state dir."""

    encryption_keys: SecretStr | None = None
    """Fernet keys (comma-separated, newest first) that encrypt Slack tokens at rest. The first
    key encrypts; every key decrypts, so a new key can be put in front without downtime."""

    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    """The Slack app's OAuth client (TOBAN_SLACK_CLIENT_ID / TOBAN_SLACK_CLIENT_SECRET): needed
    only to refresh rotating tokens (`oauth.v2.access` with `grant_type=refresh_token`)."""
    token_refresh_margin_minutes: int = 30
    """A rotating token is refreshed when it expires within this many minutes."""
    token_refresh_cron: str = "*/10 * * * *"  # noqa: S105 (a schedule, not a secret)
    """When the sweep that refreshes soon-to-expire tokens of every workspace runs."""

    slack_app_token: SecretStr | None = None
    """The Slack app's app-level token (`xapp-...`, scope `connections:write`): with it the
    event receiver connects through Socket Mode (no public URL needed)."""
    slack_signing_secret: SecretStr | None = None
    """The Slack app's signing secret: with it the event receiver serves the HTTP Events
    endpoint (Slack's Request URL) and verifies every request's signature."""
    events_host: str = "127.0.0.1"
    events_port: int = Field(default=3001, ge=0, le=65535)
    """Where the HTTP Events endpoint listens (`POST /slack/events`); 3001 because `toban dev`
    serves the Dagster UI on 3000."""
    events_retention_days: int = Field(default=7, ge=1)
    """Applied events stay in the inbox this long (for diagnosis), then are deleted."""
    events_lag_warn_seconds: int = Field(default=600, ge=1)
    """The inbox check warns when the oldest unapplied event is older than this."""

    retention_days: int | None = None
    """Default retention of Slack messages in days, for workspaces that set none of their own
    (`slack_workspace.workspace_metadata["retention_days"]`). Unset: kept until deleted."""
    retention_cron: str = "30 3 * * *"
    """When the retention purge runs."""

    partitions_start_date: str = Field(
        default_factory=lambda: default_partitions_start(), pattern=r"^\d{4}-\d{2}-\d{2}$"
    )
    """First day (UTC, YYYY-MM-DD) of the daily message partitions and of the weekly and monthly
    analysis windows. The syncs never ask for a day before it. Unset: the first day of the
    month a year ago (`default_partitions_start`), so the UI shows a year of days, not years of
    empty ones. Set it to your oldest data's month to see more (an older export: `toban slack
    import` says what to set)."""

    backfill_days: int = 30
    """Days of messages a newly connected workspace gets (and the daily catch-up looks back)."""
    daily_schedule_cron: str = "0 2 * * *"
    schedule_timezone: str = "UTC"

    llm_base_url: str | None = None
    """An OpenAI-compatible endpoint (OpenAI, OpenRouter, Azure OpenAI, Ollama, vLLM, llama.cpp),
    e.g. https://api.openai.com/v1. Unset (or no model): the offline analyzer runs."""
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_temperature: float = 0.0
    llm_max_tokens: int = 1500
    llm_timeout_seconds: float = 120.0
    llm_max_attempts: int = 3
    """Answers that fail validation are asked again at most this many times in all."""
    llm_concurrency: int = 2
    """Requests in flight at once for the chunks of one long channel."""
    llm_context_tokens: int = 12000
    """Transcript budget of one request; a longer window is analyzed in chunks, never cut."""
    llm_price_per_1k_tokens: str = "{}"
    """JSON price table: {"model": [prompt USD per 1k tokens, completion USD per 1k]}."""
    trend_weeks: int = Field(default=12, ge=2, le=104)
    """Weeks of weekly scores `slack_contributions_trends` shows per person: at least this week
    and the one before, at most two years (analysis/trends.py checks the same bounds)."""
    sensor_interval_seconds: int = Field(default=10, ge=1)
    """Seconds between evaluations of the integration and analysis-request sensors (the analysis
    automation sensor waits twice as long): how soon a new integration starts syncing. Each
    evaluation is one small query; Dagster's own default (30 s) made a new workspace wait
    half a minute for its first call to Slack (docs/benchmarks.md, the `dev` path)."""
    dagster_executor: str = "default"
    """Where steps run: "default" (in the run's process) or "k8s" (a Kubernetes pod per step,
    see toban_orchestration/defs/platform/executor.py)."""

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @property
    def first_partition_day(self) -> date:
        return date.fromisoformat(self.partitions_start_date)

    def backfill_days_to(self, last: date) -> int:
        """How many days of the backfill window ending on `last` have a day partition: the
        window does not reach back before TOBAN_PARTITIONS_START_DATE."""
        return backfill_days_within(self.backfill_days, self.first_partition_day, last)

    @property
    def report_directory(self) -> Path:
        return self.reports_dir or self.state_dir / "reports"

    @property
    def embedded_pgdata(self) -> Path:
        return self.state_dir / "pgdata"

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None


@cache
def get_settings() -> Settings:
    return Settings()
