"""Every TOBAN_* environment variable, parsed and validated in one place.

Database URLs may carry passwords, so they are SecretStr: they never show up in a repr, a log
line or an exception message.
"""

from functools import cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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

    @property
    def embedded_pgdata(self) -> Path:
        return self.state_dir / "pgdata"

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None


@cache
def get_settings() -> Settings:
    return Settings()
