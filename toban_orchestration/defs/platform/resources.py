from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from toban_orchestration.db.engine import app_engine


class AppDatabase(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The app database (Toban's tables). `definitions.py` builds it from the settings, with the
    URL as `dg.EnvVar("TOBAN_DATABASE_URL")`: the UI then shows the variable's name, never the
    URL's password."""

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the app database (TOBAN_DATABASE_URL). Unset: the "
        "embedded server's `toban` database, in embedded_pgdata.",
    )
    embedded_pgdata: str | None = Field(
        default=None,
        description="Data folder of the embedded PostgreSQL server (TOBAN_STATE_DIR/pgdata), "
        "used when database_url is unset.",
    )

    def engine(self) -> Engine:
        pgdata = Path(self.embedded_pgdata) if self.embedded_pgdata else None
        return app_engine(self.database_url, pgdata)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with sessionmaker(self.engine(), expire_on_commit=False).begin() as session:
            yield session
