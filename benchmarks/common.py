"""Shared set-up of the benchmarks: a fresh database and a team to own the workspace."""

import os
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from toban_orchestration.db import migrations
from toban_orchestration.db.embedded import EmbeddedPostgres
from toban_orchestration.db.engine import APP_DRIVER
from toban_orchestration.db.models import Team


@contextmanager
def fresh_database() -> Iterator[Engine]:
    """A new, migrated database on TOBAN_TEST_DATABASE_URL's server, or on an embedded server in
    a temporary folder; dropped afterwards."""
    external = os.environ.get("TOBAN_TEST_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="toban-bench-") as folder:
        embedded = None if external else EmbeddedPostgres(Path(folder) / "pgdata")
        server: URL = make_url(external) if external else embedded.start().url  # type: ignore[union-attr]
        name = f"toban_bench_{uuid.uuid4().hex[:8]}"
        admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        engine = create_engine(server.set(database=name, drivername=APP_DRIVER))
        try:
            migrations.upgrade(engine)
            yield engine
        finally:
            engine.dispose()
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            if embedded is not None:
                embedded.stop()


def make_team(engine: Engine) -> uuid.UUID:
    with Session(engine) as session, session.begin():
        team = Team(name="Benchmark", slug=f"bench-{uuid.uuid4().hex[:6]}")
        session.add(team)
        session.flush()
        return team.id


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """The machine, with a reference speed: instances of one machine kind differed by almost
    two times between sessions, so a figure is only comparable next to its reference."""
    return (
        f"{os.cpu_count()} CPUs, {os.uname().sysname} {os.uname().machine}; reference loop "
        f"{reference_loop_ms():.0f} ms (sum of 1,000,000 squares, best of 5; lower is faster)"
    )


def reference_loop_ms() -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - started)
    return best * 1000
