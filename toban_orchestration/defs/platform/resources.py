from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.db.engine import app_session, get_app_engine


class AppDatabase(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The app database. It has no config on purpose: its URL may hold a password, and run
    config is visible in the UI, so it comes from TOBAN_DATABASE_URL (or the embedded server)."""

    def engine(self) -> Engine:
        return get_app_engine()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with app_session() as session:
            yield session
