"""Benchmark: the user's path of a backfill, next to the library call and to a plain slack-sdk
read of the same local Slack server, in one run.

One workspace (``--shape``), one local Slack server in this process, and each path on a fresh
database of its own, so that each does the whole sync:

- plain: slack-sdk's ``WebClient`` and a cursor loop, one call after another, no database:
  the channel list, every selected channel's history of the window, every thread's replies,
  ``reactions.get`` where a reaction lists fewer users than its count;
- library: ``refresh_workspace/users/channels`` and ``sync_message_days`` over the window;
- range: the snapshot job, then ``slack_messages_range_job`` over the window, each with
  ``execute_in_process`` on a PostgreSQL-backed ``DagsterInstance`` (the project's dagster.yaml);
- days: the snapshot job, then ``slack_messages_job`` once per day partition (the old path);
- dev (``--dagster-dev``): a real ``dagster dev`` with its daemon; a new integration is
  registered and the integration sensor launches the snapshot and range runs; measured from
  the registration to the materialization of the window's last message day.

``--slack-limits`` makes the server refuse (429, Retry-After) calls beyond Slack's per-method
per-minute windows, and the product paces itself; ``--limited`` adds Slack's 2025 limits for
non-Marketplace apps (history and replies: 1 a minute, 15 a page). Each path is then reported
against its floor: for each method, its calls divided by its allowed rate; the floor is the
largest of these (the windows are per method, so the methods' calls can overlap in time).

    uv run --frozen python -m benchmarks.backfill_path --shape sparse
    uv run --frozen python -m benchmarks.backfill_path --shape dense --dagster-dev
    uv run --frozen python -m benchmarks.backfill_path --shape tiny --slack-limits --dagster-dev
    uv run --frozen python -m benchmarks.backfill_path --project-only   # floors, no sync
"""

import argparse
import contextlib
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import dagster as dg
import psycopg
from psycopg import sql
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import URL, make_url

from benchmarks.common import machine
from toban_orchestration.backfill import BackfillError, graphql
from toban_orchestration.db import migrations
from toban_orchestration.db.engine import APP_DRIVER, DAGSTER_DRIVER, forget_app_engine
from toban_orchestration.db.models import SlackMessage
from toban_orchestration.definitions import defs
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.defs.slack.sensors import message_partition_key
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import PROJECT_ROOT, get_settings
from toban_orchestration.slack.sample import DAY_US, Channel, Message
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration_tests.e2e_support import DagsterDev, wait_for
from toban_orchestration_tests.fakes.slack_server import (
    FakeSlackServer,
    FakeWorkspace,
    generate_workspace,
    page_count,
)
from toban_orchestration_tests.support.web_api_sync import connect, differences

PATHS = ("plain", "library", "range", "days", "dev")
DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/postgres"
# Slack's published limits, per method and workspace, in calls a minute (Tier 2: 20, Tier 3:
# 50, Tier 4: 100). Written here from Slack's documentation, not taken from the product's
# pacing table, which is what is measured against them.
SLACK_PER_MINUTE: dict[str, int] = {
    "users.list": 20,
    "conversations.list": 20,
    "conversations.history": 50,
    "conversations.replies": 50,
    "conversations.info": 50,
    "conversations.join": 50,
    "team.info": 50,
    "reactions.get": 50,
    "auth.test": 100,
}
# Since 2025, commercially distributed non-Marketplace apps: 1 call a minute, 15 items a page.
LIMITED_METHODS = ("conversations.history", "conversations.replies")
LIMITED_PER_MINUTE = 1
LIMITED_PAGE = 15
WINDOW_SECONDS = 60.0
COLUMNS = (
    "conversations.history",
    "conversations.replies",
    "reactions.get",
    "users.list",
    "conversations.list",
    "team.info",
)
SHORT = {
    "conversations.history": "history",
    "conversations.replies": "replies",
    "reactions.get": "react",
    "users.list": "users",
    "conversations.list": "lists",
    "team.info": "team",
}
# A loaded 2-core host took over 3 minutes to tick once (its load average was 12).
DEV_STARTUP_SECONDS = 420
# execute_in_process logs every event to the console at DEBUG; the table is the output here.
QUIET: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
DEV_SYNC_TIMEOUT_SECONDS = 6 * 3600
SYNC_JOBS = ("slack_workspace_snapshot_job", "slack_messages_range_job")


# --- the workspace ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    channels: int
    """Public channels, #general first; the generator makes the last one a channel the app is
    not in, and adds an archived public channel (quiet as soon as any channel is)."""
    days: int
    per_day: int
    """Messages (top level and replies) a day in an active channel."""
    quiet: float
    """Share of the public channels that are quiet."""
    quiet_messages: float
    """Top-level messages (with their threads) a quiet channel keeps over the window, on
    average."""


SHAPES: dict[str, Shape] = {
    "tiny": Shape(channels=4, days=7, per_day=6, quiet=0.0, quiet_messages=0.0),
    "sparse": Shape(channels=500, days=30, per_day=20, quiet=0.9, quiet_messages=2.0),
    "dense": Shape(channels=20, days=30, per_day=150, quiet=0.0, quiet_messages=0.0),
}


def build_workspace(shape: Shape, first: date, seed: int) -> FakeWorkspace:
    """The generator's workspace over [first, first + days), with its quiet channels thinned
    to a few messages each (the generator gives every conversation the same rate)."""
    workspace = generate_workspace(
        seed,
        channels=shape.channels,
        private_channels=0,
        days=shape.days,
        messages_per_channel_day=shape.per_day,
        start=first,
    )
    if shape.quiet <= 0:
        return workspace
    rng = random.Random(seed)
    public = [c for c in workspace.channels if c.kind == "public"]
    active = max(1, round(shape.channels * (1 - shape.quiet)))
    for channel in public[active:]:
        _quieten(channel, shape.quiet_messages, rng)
    return workspace


def _quieten(channel: Channel, keep_messages: float, rng: random.Random) -> None:
    top_level = [m for m in channel.history if m.parent is None]
    keep = keep_messages / len(top_level) if top_level else 0.0
    kept: dict[int, Message] = {}
    for message in top_level:
        if rng.random() < keep:
            kept[message.ts] = message
            for reply in message.replies or ():
                kept[reply.ts] = reply
    history = sorted((m for m in kept.values() if m.in_history), key=lambda m: m.ts)
    channel.by_ts = kept
    channel.history = history
    channel.history_ts = [m.ts for m in history]


def selected_channels(workspace: FakeWorkspace) -> list[Channel]:
    """What the product selects with its default options: the public channels the app is in
    (a new public channel starts selected only when the app can read it, and
    join_public_channels is off; private ones and DMs do not). The generator puts the app in
    every public channel but the last, which the product must skip without a call."""
    return [c for c in workspace.channels if c.kind == "public" and c.is_member]


def readable(workspace: FakeWorkspace) -> list[str]:
    """The selected channels the app can read: the ones compared with the database."""
    return [c.id for c in selected_channels(workspace) if c.is_member]


def minimum_calls(
    workspace: FakeWorkspace, first: date, days: int, page_size: int, *, per_day: bool
) -> Counter[str]:
    """The fewest calls of a complete sync of the selected channels, as ``minimum_calls`` of
    the local server counts them (its rules, restricted to what the product selects), plus the
    one ``team.info`` of a snapshot. ``per_day``: each day of each channel read on its own (the
    design of the per-day job), so every channel costs a history call a day."""
    history_limit = min(page_size, 999)
    replies_limit = min(page_size, 1000)
    calls: Counter[str] = Counter({"team.info": 1})
    calls["users.list"] = page_count(len(workspace.users), min(page_size, 1000))
    listed = [c for c in workspace.channels if c.kind == "public" or c.kind == "private"]
    listed = [c for c in listed if c.kind == "public" or c.is_member]
    calls["conversations.list"] = page_count(len(listed), min(page_size, 999))
    first_day = (datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()) // 86_400
    for channel in selected_channels(workspace):
        if not channel.is_member:
            continue
        if per_day:
            by_day = Counter(m.ts // DAY_US - int(first_day) for m in channel.history)
            calls["conversations.history"] += sum(
                page_count(by_day.get(day, 0), history_limit) for day in range(days)
            )
        else:
            calls["conversations.history"] += page_count(len(channel.history), history_limit)
        for parent in channel.thread_parents():
            calls["conversations.replies"] += page_count(
                1 + len(parent.replies or ()), replies_limit
            )
        calls["reactions.get"] += sum(
            1 for m in channel.by_ts.values() if m.has_incomplete_reactions
        )
    return calls


def allowed_per_minute(method: str, limited: bool) -> int:
    if limited and method in LIMITED_METHODS:
        return LIMITED_PER_MINUTE
    return SLACK_PER_MINUTE.get(method, 50)


def floor_seconds(calls: Mapping[str, int], limited: bool) -> tuple[float, str]:
    """The floor under Slack's limits: for each method its calls over its allowed rate; the
    largest, and its method (the windows are per method, so methods overlap)."""
    best, which = 0.0, ""
    for method, count in calls.items():
        seconds = count / allowed_per_minute(method, limited) * WINDOW_SECONDS
        if seconds > best:
            best, which = seconds, method
    return best, which


def server_limits(limited: bool) -> dict[str, int]:
    return {method: allowed_per_minute(method, limited) for method in SLACK_PER_MINUTE}


# --- databases -------------------------------------------------------------------------------


@dataclass
class Databases:
    """Fresh databases on one PostgreSQL server, dropped at the end."""

    maintenance: URL
    created: list[str] = field(default_factory=list)

    def _admin(self) -> str:
        return self.maintenance.set(drivername="postgresql").render_as_string(hide_password=False)

    def create(self, kind: str) -> URL:
        name = f"toban_bench_{kind}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self._admin(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        driver = DAGSTER_DRIVER if kind == "dagster" else APP_DRIVER
        return self.maintenance.set(database=name, drivername=driver)

    def drop_all(self) -> None:
        with psycopg.connect(self._admin(), autocommit=True) as connection:
            for name in self.created:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        self.created.clear()


def url_text(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _with_project_config(home: str) -> str:
    """`home` with a copy of the project's dagster.yaml: an instance of that configuration whose
    local artifacts stay in `home`."""
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home)
    return home


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """TOBAN_* variables for code that reads the settings (Dagster resources), restored after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    forget_app_engine()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
        forget_app_engine()


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Outcome:
    path: str
    seconds: float
    calls: Counter[str]
    rate_limited: int
    connections: int
    """TCP connections the clients opened to the Slack server."""
    stored: int | None
    """Messages stored (None: the plain read stores nothing)."""
    mismatches: int
    """Rows where the database (or, for the plain read, what was read) differs from Slack."""
    notes: list[str] = field(default_factory=list)
    failed: str | None = None
    """The error that stopped the path (the other paths still run)."""

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class DescriptorPeak:
    """The most file descriptors this process held at once (sampled every 20 ms; Linux)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="fd-sampler")

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, len(os.listdir("/proc/self/fd")))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Bench:
    args: argparse.Namespace
    workspace: FakeWorkspace
    server: FakeSlackServer
    databases: Databases
    first: date
    last: date
    key: str = field(default_factory=generate_key)

    @property
    def cipher(self) -> TokenCipher:
        return TokenCipher([self.key])

    @property
    def page_size(self) -> int:
        size: int = self.args.page_size
        return min(size, LIMITED_PAGE) if self.args.limited else size

    def options(self) -> SyncOptions:
        return SyncOptions(
            pacing=self.args.slack_limits,
            limited=self.args.limited,
            page_size=self.args.page_size,
        )

    def token(self, path: str) -> str:
        # A token of its own per path: the server's windows are per token, as Slack's are per
        # workspace, so no path inherits the calls of the one before.
        return f"xoxb-bench-{path}-{uuid.uuid4().hex[:6]}"

    def measure(
        self, path: str, run: Callable[[], tuple[float, int | None, int, list[str]]]
    ) -> Outcome:
        calls_before = self.server.calls
        log_before = len(self.server.call_log)
        connections = self.server.connections_accepted
        started = time.perf_counter()
        failed = None
        with DescriptorPeak() as descriptors:
            try:
                seconds, stored, mismatches, notes = run()
            except Exception as error:  # reported in the table; the next paths still run
                seconds, stored, mismatches = time.perf_counter() - started, None, -1
                failed = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
                notes = [f"failed after {seconds:.1f} s: {failed}"]
        notes.append(f"peak open file descriptors of this process: {descriptors.peak:,}")
        log = self.server.call_log[log_before:]
        limited = [r for r in log if r.rate_limited]
        calls = self.server.calls - calls_before
        calls.subtract(Counter(r.method for r in limited))
        connections = self.server.connections_accepted - connections
        return Outcome(
            path, seconds, +calls, len(limited), connections, stored, mismatches, notes, failed
        )

    # --- (a) plain slack-sdk read --------------------------------------------------------

    def plain(self) -> Outcome:
        token = self.token("plain")
        self.server.add_workspace(self.workspace, token)

        def run() -> tuple[float, int | None, int, list[str]]:
            started = time.perf_counter()
            seen = plain_read(self.server.base_url, token, self.first, self.last, self.page_size)
            seconds = time.perf_counter() - started
            wrong = 0
            for channel_id in readable(self.workspace):
                truth = {m["ts"] for m in self.workspace.iter_message_dicts(channel_id)}
                wrong += len(truth ^ seen.get(channel_id, set()))
            return seconds, None, wrong, []

        return self.measure("plain", run)

    # --- (b) the library call ------------------------------------------------------------

    def library(self) -> Outcome:
        engine = self._migrated()
        connected = connect(
            engine, self.server, self.workspace, self.cipher,
            token=self.token("library"), sync=self.options(),
        )  # fmt: skip

        def run() -> tuple[float, int | None, int, list[str]]:
            started = time.perf_counter()
            connected.sync_all(self.first, self.last)
            seconds = time.perf_counter() - started
            return seconds, *self._check(engine), []

        try:
            return self.measure("library", run)
        finally:
            engine.dispose()

    # --- (c) and (d) Dagster in process --------------------------------------------------

    def in_process(self, path: str) -> Outcome:
        app_url = self.databases.create("app")
        dagster_url = self.databases.create("dagster")
        engine = create_engine(app_url)
        migrations.upgrade(engine)
        connected = connect(
            engine, self.server, self.workspace, self.cipher,
            token=self.token(path), sync=self.options(),
        )  # fmt: skip
        slack_id = connected.slack_id
        values = {
            "TOBAN_DATABASE_URL": url_text(app_url),
            "TOBAN_DAGSTER_STORAGE_URL": url_text(dagster_url),
            "TOBAN_ENCRYPTION_KEYS": self.key,
        }
        snapshot_job = defs.resolve_job_def("slack_workspace_snapshot_job")
        range_job = defs.resolve_job_def("slack_messages_range_job")
        days_job = defs.resolve_job_def("slack_messages_job")
        days = [self.first + timedelta(n) for n in range((self.last - self.first).days + 1)]

        def run() -> tuple[float, int | None, int, list[str]]:
            with (
                environment(values),
                tempfile.TemporaryDirectory(prefix="toban-bench-dagster-") as home,
                dg.DagsterInstance.from_config(_with_project_config(home)) as instance,
            ):
                instance.add_dynamic_partitions(workspace_partitions.name or "", [slack_id])
                # The Definitions' resources were built from the settings at import, before
                # these databases existed: the runs get resources built from `values`.
                resources = build_resources(get_settings())
                started = time.perf_counter()
                runs = [
                    snapshot_job.execute_in_process(
                        partition_key=slack_id,
                        instance=instance,
                        run_config=QUIET,
                        resources=resources,
                    )
                ]
                if path == "range":
                    runs.append(
                        range_job.execute_in_process(
                            run_config=QUIET | range_config(slack_id, self.first, self.last),
                            instance=instance,
                            resources=resources,
                        )
                    )
                else:
                    runs += [
                        days_job.execute_in_process(
                            partition_key=message_partition_key(day.isoformat(), slack_id),
                            instance=instance,
                            run_config=QUIET,
                            resources=resources,
                        )
                        for day in days
                    ]
                seconds = time.perf_counter() - started
                materialized = instance.get_materialized_partitions(dg.AssetKey("slack_messages"))
                timings = [RunTimings.of(instance, r.run_id) for r in runs]
            ours = {k for k in materialized if k.endswith(f"|{slack_id}")}
            notes = [
                f"{len(runs)} runs, all succeeded: {all(r.success for r in runs)}; "
                f"{len(ours)} of {len(days)} days materialized; "
                f"step retries: {sum(t.retries for t in timings)}",
                *[f"step failure (retried): {m}" for t in timings for m in t.failures],
                f"snapshot run {timings[0].seconds:.2f} s",
            ]
            messages = timings[1:]
            if path == "range":
                notes.append(messages[0].describe_range())
            else:
                mean = sum(t.seconds for t in messages) / len(messages)
                steps = sum(t.step_seconds for t in messages) / len(messages)
                notes.append(
                    f"{len(messages)} day runs: {mean:.2f} s a run on average, of which "
                    f"{steps:.2f} s in its step"
                )
            return seconds, *self._check(engine), notes

        try:
            return self.measure(path, run)
        finally:
            engine.dispose()

    # --- (e) dagster dev ------------------------------------------------------------------

    def dev(self) -> Outcome:
        app_url = self.databases.create("app")
        dagster_url = self.databases.create("dagster")
        engine = create_engine(app_url)
        migrations.upgrade(engine)
        token = self.token("dev")
        with tempfile.TemporaryDirectory(prefix="toban-bench-dev-") as folder:
            home = Path(folder)
            shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
            variables = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith("TOBAN_") and k != "DAGSTER_HOME"
            }
            variables |= {
                "TOBAN_DATABASE_URL": url_text(app_url),
                "TOBAN_DAGSTER_STORAGE_URL": url_text(dagster_url),
                "TOBAN_ENCRYPTION_KEYS": self.key,
                "TOBAN_BACKFILL_DAYS": str((self.last - self.first).days + 1),
                "DAGSTER_HOME": str(home),
            }
            if self.args.sensor_interval is not None:
                variables["TOBAN_SENSOR_INTERVAL_SECONDS"] = str(self.args.sensor_interval)
            dagster = DagsterDev(home, variables)
            try:
                began = time.perf_counter()
                dagster.start()
                wait_for(
                    lambda: sensor_ticked(dagster.url),
                    DEV_STARTUP_SECONDS,
                    "the integration sensor's first tick",
                    poll=0.5,
                    describe=dagster.log_tail,
                )
                ready = time.perf_counter() - began

                def run() -> tuple[float, int | None, int, list[str]]:
                    registered = time.time()
                    started = time.perf_counter()
                    slack_id = connect(
                        engine, self.server, self.workspace, self.cipher,
                        token=token, sync=self.options(),
                    ).slack_id  # fmt: skip
                    keys = [
                        message_partition_key((self.first + timedelta(n)).isoformat(), slack_id)
                        for n in range((self.last - self.first).days + 1)
                    ]
                    done = wait_for(
                        lambda: all_materialized(dagster, keys),
                        DEV_SYNC_TIMEOUT_SECONDS,
                        "the sensor's runs to materialize every day",
                        poll=0.5,
                        describe=dagster.log_tail,
                    )
                    polled = time.perf_counter() - started
                    seconds = done - registered
                    # For the breakdown only: the range run ends after its last report.
                    wait_for(lambda: runs_ended(dagster.url), 120, "the runs to end", poll=0.5)
                    notes = [
                        f"dagster dev answered and its sensor ticked {ready:.1f} s after start",
                        f"last day materialized {seconds:.1f} s after the registration "
                        f"(seen by polling after {polled:.1f} s)",
                        *run_breakdown(dagster.url, registered, done),
                    ]
                    return seconds, *self._check(engine), notes

                return self.measure("dev", run)
            finally:
                dagster.stop()
                engine.dispose()

    # --- helpers ---------------------------------------------------------------------------

    def _migrated(self) -> Engine:
        engine = create_engine(self.databases.create("app"))
        migrations.upgrade(engine)
        return engine

    def _check(self, engine: Engine) -> tuple[int, int]:
        with engine.connect() as connection:
            stored = connection.execute(
                select(func.count()).select_from(SlackMessage).where(~SlackMessage.is_deleted)
            ).scalar_one()
        return int(stored), len(differences(engine, self.workspace, readable(self.workspace)))


@dataclass
class RunTimings:
    """Where an in-process run spent its time, from its event log."""

    seconds: float
    step_seconds: float
    first_report: float
    """From the step's start to its first materialization (the sync, for a range run)."""
    reporting: float
    """From the first materialization to the last event logged for a day."""
    materializations: int
    checks: int
    retries: int
    failures: list[str]

    @classmethod
    def of(cls, instance: dg.DagsterInstance, run_id: str) -> "RunTimings":
        events = [e for e in instance.all_logs(run_id) if e.dagster_event_type is not None]

        def stamps(kind: dg.DagsterEventType) -> list[float]:
            return [e.timestamp for e in events if e.dagster_event_type == kind]

        kinds = dg.DagsterEventType
        run = stamps(kinds.RUN_START) + stamps(kinds.RUN_SUCCESS) + stamps(kinds.RUN_FAILURE)
        steps = stamps(kinds.STEP_START) + stamps(kinds.STEP_SUCCESS) + stamps(kinds.STEP_FAILURE)
        materialized = stamps(kinds.ASSET_MATERIALIZATION)
        checks = stamps(kinds.ASSET_CHECK_EVALUATION)
        reports = materialized + checks
        failures = [
            _root_cause(e.dagster_event.event_specific_data)
            for e in events
            if e.dagster_event is not None
            and e.dagster_event_type in (kinds.STEP_UP_FOR_RETRY, kinds.STEP_FAILURE)
        ]
        return cls(
            seconds=max(run) - min(run) if run else 0.0,
            step_seconds=max(steps) - min(steps) if steps else 0.0,
            first_report=min(reports) - min(steps) if reports and steps else 0.0,
            reporting=max(reports) - min(reports) if reports else 0.0,
            materializations=len(materialized),
            checks=len(checks),
            retries=len(stamps(kinds.STEP_UP_FOR_RETRY)),
            failures=failures,
        )

    def describe_range(self) -> str:
        return (
            f"range run {self.seconds:.2f} s: its step read and stored for "
            f"{self.first_report:.2f} s, then reported the days for {self.reporting:.2f} s "
            f"({self.materializations} materializations, {self.checks} check evaluations)"
        )


def _root_cause(data: object) -> str:
    """The innermost error of a step's failure or retry: what went wrong, not Dagster's
    "retry requested" wrapper."""
    error = getattr(data, "error", None)
    while error is not None and (error.cause is not None or error.context is not None):
        error = error.cause or error.context
    if error is None:
        return str(data)[:200]
    return f"{error.cls_name}: {error.message.strip()}"[:300]


def range_config(slack_id: str, first: date, last: date) -> dict[str, Any]:
    config = {"workspace": slack_id, "first": first.isoformat(), "last": last.isoformat()}
    return {"ops": {"sync_slack_message_range": {"config": config}}}


def plain_read(
    base_url: str, token: str, first: date, last: date, page_size: int
) -> dict[str, set[str]]:
    """What any client of the Web API does, one call after another: the ts read per channel."""
    client = WebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=10_000)],
    )

    def pages(method: str, key: str, **params: Any) -> Iterator[list[dict[str, Any]]]:
        cursor = ""
        while True:
            page = {**params, "limit": page_size} | ({"cursor": cursor} if cursor else {})
            data = client.api_call(method, http_verb="GET", params=page).data
            assert isinstance(data, dict)
            yield data.get(key) or []
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return

    def read(channel_id: str, message: dict[str, Any], seen: set[str]) -> None:
        if message["ts"] in seen:
            return
        seen.add(message["ts"])
        if any(r["count"] > len(r["users"]) for r in message.get("reactions") or ()):
            client.api_call(
                "reactions.get",
                http_verb="GET",
                params={"channel": channel_id, "timestamp": message["ts"], "full": "true"},
            )

    client.api_call("team.info", http_verb="GET")
    for _ in pages("users.list", "members"):
        pass
    listed = [
        c
        for page in pages("conversations.list", "channels", types="public_channel,private_channel")
        for c in page
    ]
    start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
    end = int(datetime(last.year, last.month, last.day, tzinfo=UTC).timestamp()) + 86_400
    seen: dict[str, set[str]] = {}
    for channel in listed:
        if channel.get("is_private") or not channel.get("is_member"):
            continue  # not selected by default, or not readable: the list says so
        ids = seen.setdefault(channel["id"], set())
        window = {"oldest": f"{start}.000000", "latest": f"{end - 1}.999999", "inclusive": "true"}
        for page in pages("conversations.history", "messages", channel=channel["id"], **window):
            for message in page:
                read(channel["id"], message, ids)
                if message.get("reply_count") and message.get("thread_ts") == message["ts"]:
                    for replies in pages(
                        "conversations.replies", "messages", channel=channel["id"], ts=message["ts"]
                    ):
                        for reply in replies:
                            read(channel["id"], reply, ids)
    return seen


# --- dagster dev over GraphQL ----------------------------------------------------------------

TICKS_QUERY = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { ticks(limit: 1) { status timestamp } } }
  }
}
"""
SENSOR = {
    "repositoryLocationName": "toban_orchestration.definitions",
    "repositoryName": "__repository__",
    "sensorName": "slack_integration_sensor",
}
MATERIALIZED_QUERY = """
query Materialized($partitions: [String!]) {
  assetOrError(assetKey: {path: ["slack_messages"]}) {
    ... on Asset { assetMaterializations(partitions: $partitions) { partition timestamp } }
  }
}
"""
RUN_TIMES_QUERY = """
query RunTimes {
  runsOrError {
    ... on Runs { results { runId jobName status creationTime startTime endTime } }
  }
}
"""
RETRIES_QUERY = """
query Retries($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepUpForRetryEvent { error { message causes { message } } }
      }
    }
  }
}
"""


def _graphql(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return graphql(url, query, variables, timeout=30)
    except BackfillError:
        return None


def sensor_ticked(url: str) -> bool | None:
    data = _graphql(url, TICKS_QUERY, {"selector": SENSOR}) or {}
    sensor = data.get("sensorOrError") or {}
    return True if (sensor.get("sensorState") or {}).get("ticks") else None


def all_materialized(dagster: DagsterDev, keys: list[str]) -> float | None:
    """When the last of `keys` was materialized (epoch seconds), once all are; a sync run that
    failed ends the wait, with its errors."""
    failed = [r for r in _runs(dagster.url) if r["status"] in ("FAILURE", "CANCELED")]
    if failed:
        errors = [m for r in failed for m in dagster.failure_messages(r["runId"])]
        raise RuntimeError(
            f"{len(failed)} sync runs failed in dagster dev:\n" + "\n".join(errors[-12:])
        )
    data = _graphql(dagster.url, MATERIALIZED_QUERY, {"partitions": keys})
    events = ((data or {}).get("assetOrError") or {}).get("assetMaterializations") or []
    latest: dict[str, float] = {}
    for event in events:
        stamp = int(event["timestamp"]) / 1000
        latest[event["partition"]] = max(latest.get(event["partition"], 0.0), stamp)
    if set(keys) <= latest.keys():
        return max(latest.values())
    return None


def _runs(url: str) -> list[dict[str, Any]]:
    data = _graphql(url, RUN_TIMES_QUERY, {}) or {}
    runs: list[dict[str, Any]] = (data.get("runsOrError") or {}).get("results") or []
    return [r for r in runs if r["jobName"] in SYNC_JOBS]


def runs_ended(url: str) -> bool | None:
    runs = _runs(url)
    return True if runs and all(r["endTime"] is not None for r in runs) else None


def run_breakdown(url: str, registered: float, done: float) -> list[str]:
    """Each run's creation (the sensor's request), start and end, from the registration."""

    def at(stamp: float | None) -> str:
        return "-" if stamp is None else f"{stamp - registered:.1f}"

    runs = sorted(_runs(url), key=lambda r: float(r["creationTime"]))
    out = []
    for run in runs:
        out.append(
            f"{run['jobName']} {run['status']}: requested at {at(run['creationTime'])} s, "
            f"started {at(run['startTime'])} s, ended {at(run['endTime'])} s"
        )
        data = _graphql(url, RETRIES_QUERY, {"runId": run["runId"]}) or {}
        events = (data.get("logsForRun") or {}).get("events") or []
        retries = [e["error"] for e in events if e.get("error")]
        for error in retries:
            causes = error.get("causes") or []
            cause = (causes[-1] if causes else error)["message"].strip()
            out.append(f"  step retried by Dagster's retry policy: {cause[:300]}")
    if runs:
        requested = float(runs[0]["creationTime"])
        out.append(f"from the sensor's request to the last day: {done - requested:.1f} s")
    return out


# --- report ----------------------------------------------------------------------------------


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "-"


def report(
    bench: Bench,
    outcomes: list[Outcome],
    minimum: Counter[str],
    per_day_minimum: Counter[str],
) -> None:
    args = bench.args
    plain = next((o for o in outcomes if o.path == "plain"), None)
    library = next((o for o in outcomes if o.path == "library"), None)
    floor_total = sum(minimum.values())
    head = (
        f"{'path':<8}{'wall s':>9}{'calls':>8}{'/min':>7}"
        + "".join(f"{SHORT[m]:>9}" for m in COLUMNS)
        + f"{'other':>7}{'429':>6}{'plain/x':>9}{'x/lib':>7}"
    )
    if args.slack_limits:
        head += f"{'floor s':>9}{'x/floor':>9}"
    head += f"{'stored':>9}  database = Slack"
    print(head)
    rows = [("minimum", None, minimum), ("min/day", None, per_day_minimum)]
    for label, _, calls in rows:
        print(
            f"{label:<8}{'':>9}{sum(calls.values()):>8,}{'':>7}"
            + "".join(f"{calls.get(m, 0):>9,}" for m in COLUMNS)
        )
    for o in outcomes:
        other = o.total - sum(o.calls.get(m, 0) for m in COLUMNS)
        line = (
            f"{o.path:<8}{o.seconds:>9.2f}{o.total:>8,}{o.total / floor_total:>7.2f}"
            + "".join(f"{o.calls.get(m, 0):>9,}" for m in COLUMNS)
            + f"{other:>7,}{o.rate_limited:>6,}"
            + f"{ratio(plain.seconds, o.seconds) if plain else '-':>9}"
            + f"{ratio(o.seconds, library.seconds) if library else '-':>7}"
        )
        if args.slack_limits:
            floor, _ = floor_seconds(o.calls, args.limited)
            line += f"{floor:>9.0f}{ratio(o.seconds, floor):>9}"
        stored = "-" if o.stored is None else f"{o.stored:,}"
        verdict = "equal" if o.mismatches == 0 else f"{o.mismatches} rows differ"
        if o.failed:
            verdict = "FAILED (see below)"
        elif o.path == "plain":
            verdict = "read all" if o.mismatches == 0 else f"{o.mismatches} ts missed or extra"
        print(f"{line}{stored:>9}  {verdict}")
    print(
        "calls: answered calls (429s apart); /min: calls over the minimum of a complete range "
        "sync; plain/x: the plain read's wall time over the path's (above 1: faster than the "
        "plain read); x/lib: the path's wall time over the library call's"
    )
    if args.slack_limits:
        print(
            "floor: for each method, its calls over Slack's allowed rate; the largest (per-method "
            "windows overlap); x/floor: wall time over it"
        )
    others = {o.path: o.calls - Counter({m: o.calls[m] for m in COLUMNS}) for o in outcomes}
    for path, calls in others.items():
        if +calls:
            print(f"other calls of {path}: {dict(+calls)}")
    print(
        "connections opened to the Slack server: "
        + ", ".join(f"{o.path} {o.connections:,}" for o in outcomes)
    )
    for o in outcomes:
        for note in o.notes:
            print(f"{o.path}: {note}")


def print_projection(
    label: str, workspace: FakeWorkspace, first: date, days: int, page_size: int
) -> None:
    """Floors under Slack's limits for the minimum calls of this workspace: the range design
    and the per-day design, at the tiers and at the 2025 non-Marketplace limits."""
    for limited in (False, True):
        size = min(page_size, LIMITED_PAGE) if limited else page_size
        for design, per_day in (("range", False), ("per day", True)):
            calls = minimum_calls(workspace, first, days, size, per_day=per_day)
            floor, method = floor_seconds(calls, limited)
            print(
                f"  {label:<8}{'2025 limited' if limited else 'tiers':<14}{design:<9}"
                f"{sum(calls.values()):>9,} calls (history {calls['conversations.history']:,}, "
                f"replies {calls['conversations.replies']:,})  floor {_duration(floor)} "
                f"({method})"
            )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


# --- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--channels", type=int, help="public channels (the shape's by default)")
    parser.add_argument("--days", type=int, help="days of the window, ending yesterday (UTC)")
    parser.add_argument("--per-day", type=int, help="messages a day in an active channel")
    parser.add_argument("--quiet", type=float, help="share of quiet channels, 0 to 1")
    parser.add_argument("--quiet-messages", type=float, help="messages a quiet channel keeps")
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--paths",
        help=f"comma-separated, of {', '.join(PATHS)} (default: all but dev; dev with "
        "--dagster-dev; plain and range with --limited)",
    )
    parser.add_argument("--dagster-dev", action="store_true", help="also the dagster dev path")
    parser.add_argument(
        "--sensor-interval",
        type=int,
        help="TOBAN_SENSOR_INTERVAL_SECONDS of dagster dev (default: the product's, 10 s)",
    )
    parser.add_argument(
        "--slack-limits",
        action="store_true",
        help="the server enforces Slack's per-method per-minute windows; the product paces",
    )
    parser.add_argument(
        "--limited",
        action="store_true",
        help="with --slack-limits: the 2025 non-Marketplace limits (history and replies 1 a "
        "minute, 15 a page)",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help=f"a PostgreSQL server's maintenance database (default {DEFAULT_DATABASE_URL}); "
        "each path gets fresh databases on it, dropped afterwards",
    )
    parser.add_argument(
        "--server-idle-timeout",
        type=float,
        help="seconds after which the server closes an idle keep-alive connection, as Slack's "
        "front ends do (0: never; default 1, or 60 with --slack-limits). The server's ends of "
        "the connections a keep-alive client leaves open would otherwise hold file "
        "descriptors of this process (the product's slack-sdk client closes each call's)",
    )
    parser.add_argument(
        "--project-only",
        action="store_true",
        help="print the floors under Slack's limits of every shape, and sync nothing",
    )
    args = parser.parse_args()
    if args.limited:
        args.slack_limits = True
    if args.server_idle_timeout is None:
        # Short enough, on a fast sync, that the server's ends of connections a keep-alive
        # client left do not pile up here; long enough, on a paced one, not to close a
        # connection between two of its calls.
        args.server_idle_timeout = 60.0 if args.slack_limits else 1.0
    return args


def shape_of(args: argparse.Namespace) -> Shape:
    shape = SHAPES[args.shape]
    overrides = {
        name: getattr(args, name)
        for name in ("channels", "days", "per_day", "quiet", "quiet_messages")
        if getattr(args, name) is not None
    }
    return replace(shape, **overrides)


def main() -> None:
    # Dagster warns about its beta parameters each time a job is resolved.
    warnings.simplefilter("ignore", dg.BetaWarning)
    args = parse_args()
    today = datetime.now(UTC).date()
    if args.project_only:
        print("floors of the minimum calls under Slack's limits (page size "
              f"{args.page_size}; 15 when limited):")  # fmt: skip
        for name in ("tiny", "sparse", "dense"):
            shape = SHAPES[name]
            first = today - timedelta(shape.days)
            print_projection(
                name, build_workspace(shape, first, args.seed), first, shape.days, args.page_size
            )
        return
    shape = shape_of(args)
    first, last = today - timedelta(shape.days), today - timedelta(1)
    if args.paths:
        paths = [p.strip() for p in args.paths.split(",") if p.strip()]
        unknown = set(paths) - set(PATHS)
        if unknown:
            raise SystemExit(f"unknown paths: {', '.join(sorted(unknown))}")
    elif args.limited:
        paths = ["plain", "range"] + (["dev"] if args.dagster_dev else [])
    else:
        paths = ["plain", "library", "range", "days"] + (["dev"] if args.dagster_dev else [])

    started = time.perf_counter()
    workspace = build_workspace(shape, first, args.seed)
    prerendered = workspace.prerender()
    stats = workspace.stats()
    page = min(args.page_size, LIMITED_PAGE) if args.limited else args.page_size
    minimum = minimum_calls(workspace, first, shape.days, page, per_day=False)
    per_day_minimum = minimum_calls(workspace, first, shape.days, page, per_day=True)
    selected = selected_channels(workspace)
    print(f"machine: {machine()}")
    print(
        f"shape {args.shape}: {shape.channels} public channels ({len(readable(workspace))} "
        f"selected and readable, {sum(1 for c in selected if c.history)} with messages), "
        f"{shape.days} days {first}..{last}, {shape.per_day} messages a day in an active "
        f"channel, {shape.quiet:.0%} quiet ({shape.quiet_messages:g} messages each)"
    )
    in_selected = sum(workspace.message_count(c) for c in readable(workspace))
    print(
        f"workspace: {stats['messages']:,} messages in all conversations, {in_selected:,} in "
        f"the selected channels; {stats['threads']:,} threads; encoded ahead "
        f"({prerendered / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
    )
    if args.slack_limits:
        rule = "2025 non-Marketplace (history, replies: 1/min, 15 a page)" if args.limited else ""
        print(
            "Slack's limits enforced by the server, per method and token, 60 s windows: "
            + ", ".join(f"{m} {allowed_per_minute(m, args.limited)}" for m in COLUMNS)
            + (f"; {rule}" if rule else "")
        )
    timeout = args.server_idle_timeout
    print(
        f"the server closes a keep-alive connection idle for {timeout:g} s"
        if timeout
        else "the server never closes an idle keep-alive connection"
    )
    print("floors of the minimum calls under Slack's limits:")
    print_projection(args.shape, workspace, first, shape.days, args.page_size)
    server = FakeSlackServer(
        log_params=False,
        idle_timeout=args.server_idle_timeout or None,
        max_page_size=LIMITED_PAGE if args.limited else None,
        rate_limits=server_limits(args.limited) if args.slack_limits else None,
        rate_limit_window=WINDOW_SECONDS,
    )
    databases = Databases(make_url(args.database_url))
    outcomes: list[Outcome] = []
    with server:
        bench = Bench(args, workspace, server, databases, first, last)
        runners: dict[str, Callable[[], Outcome]] = {
            "plain": bench.plain,
            "library": bench.library,
            "range": lambda: bench.in_process("range"),
            "days": lambda: bench.in_process("days"),
            "dev": bench.dev,
        }
        try:
            for path in paths:
                print(f"... {path}", flush=True)
                outcomes.append(runners[path]())
                o = outcomes[-1]
                print(
                    f"    {o.seconds:.2f} s, {o.total:,} calls, "
                    + (f"FAILED: {o.failed}" if o.failed else f"mismatches {o.mismatches}")
                )
        finally:
            databases.drop_all()
        if server.internal_errors:
            print(f"the local Slack server failed {len(server.internal_errors)} times:")
            print(server.internal_errors[0])
    print()
    report(bench, outcomes, minimum, per_day_minimum)
    if datetime.now(UTC).date() != today:
        print("the UTC day changed during the run: the dev path's window may differ")


if __name__ == "__main__":
    main()
