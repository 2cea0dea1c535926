"""A running Toban for end-to-end tests: `dagster dev` (webserver, daemon, code server) on a real
PostgreSQL, two token workspaces on the local Slack server, and the integration sensor's runs
finished. Started once per test session and shared by the modules that import `e2e_stack`.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import psutil
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import make_url

from toban_orchestration.backfill import BackfillError, graphql
from toban_orchestration.db import migrations
from toban_orchestration.db.embedded import EmbeddedPostgres
from toban_orchestration.db.engine import DAGSTER_DRIVER
from toban_orchestration.db.enums import AnalysisStatus
from toban_orchestration.db.models import SlackAnalysis
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import PROJECT_ROOT
from toban_orchestration_tests.conftest import EXTERNAL_URL_VARIABLE, PostgresServer
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace
from toban_orchestration_tests.support.web_api_sync import Connected, connect

# Days the sensor syncs for a new workspace (TOBAN_BACKFILL_DAYS): the two days before today.
SYNCED_DAYS = 2
SENSOR_INTERVAL_SECONDS = 5
STARTUP_TIMEOUT_SECONDS = 120
RUNS_TIMEOUT_SECONDS = 420
SHUTDOWN_GRACE_SECONDS = 20
FINISHED_RUN_STATES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
SYNC_JOBS = frozenset(
    {"slack_workspace_snapshot_job", "slack_messages_job", "slack_messages_range_job"}
)

RUNS_QUERY = """
query Runs {
  runsOrError {
    __typename
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}
"""
RUN_EVENTS_QUERY = """
query RunEvents($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message level } } }
  }
}
"""

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    poll: float = 1.0,
    describe: Callable[[], str] = lambda: "",
) -> T:
    """Call `check` until it returns something other than None; fail after `timeout` s, with
    `describe()` saying where things stand."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s\n{describe()}")
        time.sleep(poll)


@dataclass
class Run:
    run_id: str
    job_name: str
    status: str
    tags: dict[str, str]


@dataclass
class DagsterDev:
    """`dagster dev` in its own process group, so that one signal reaches every process it
    starts (webserver, daemon, code servers, runs)."""

    home: Path
    environment: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "dagster-dev.log"

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> None:
        command = [
            sys.executable, "-m", "dagster", "dev",
            "-w", str(PROJECT_ROOT / "workspace.yaml"),
            "-h", "127.0.0.1", "-p", str(self.port),
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env=self.environment,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._answers, STARTUP_TIMEOUT_SECONDS, "Dagster's GraphQL API")

    def _answers(self) -> bool | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"dagster dev exited early:\n{self.log_tail()}")
        try:
            graphql(self.url, "{ version }", {}, timeout=5)
        except BackfillError:
            return None
        return True

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=SHUTDOWN_GRACE_SECONDS)
        # Whatever outlived the grace period (code servers, runs) goes, group and strays alike.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for process in descendants:
            with suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(descendants, timeout=10)
        self.process.wait()

    def runs(self) -> list[Run]:
        result = graphql(self.url, RUNS_QUERY, {}, timeout=30)["runsOrError"]
        assert result["__typename"] == "Runs", result
        return [
            Run(r["runId"], r["jobName"], r["status"], {t["key"]: t["value"] for t in r["tags"]})
            for r in result["results"]
        ]

    def failure_messages(self, run_id: str) -> list[str]:
        result = graphql(self.url, RUN_EVENTS_QUERY, {"runId": run_id}, timeout=30)["logsForRun"]
        return [
            str(event.get("message"))
            for event in result.get("events", [])
            if event.get("level") in ("ERROR", "CRITICAL")
        ]

    def wait_until_settled(
        self, done: Callable[[list[Run]], bool], timeout: float, what: str
    ) -> list[Run]:
        """Wait until `done(runs)` holds and no run is queued or running; every run must have
        succeeded (a failed one fails the wait at once, with its error messages)."""

        def settled() -> list[Run] | None:
            runs = self.runs()
            failed = [r for r in runs if r.status in ("FAILURE", "CANCELED")]
            if failed:
                details = "\n".join(
                    f"{r.job_name} {r.tags.get('dagster/partition', '')}: "
                    + " | ".join(self.failure_messages(r.run_id))
                    for r in failed
                )
                raise AssertionError(f"runs failed:\n{details}\n{self.log_tail()}")
            if all(r.status in FINISHED_RUN_STATES for r in runs) and done(runs):
                return runs
            return None

        def describe() -> str:
            states = sorted(f"{r.job_name} {r.status}" for r in self.runs())
            return "runs: " + ", ".join(states) + "\n" + self.log_tail()

        return wait_for(settled, timeout, what, 2.0, describe)


@dataclass
class E2EStack:
    dagster: DagsterDev
    app_engine: Engine
    slack: FakeSlackServer
    workspaces: dict[str, Connected]
    """Slack team id -> the workspace as registered, with its ground truth."""
    days: list[date]
    """The UTC days the sensor synced."""
    runs: list[Run]
    """Every run until the workspaces were synced."""
    started_in_seconds: float
    synced_in_seconds: float

    @property
    def url(self) -> str:
        return self.dagster.url


def _postgres(request: pytest.FixtureRequest) -> PostgresServer:
    # One server is enough for a test this slow: CI's when it has one, the embedded one else.
    if os.environ.get(EXTERNAL_URL_VARIABLE):
        return PostgresServer("external", make_url(os.environ[EXTERNAL_URL_VARIABLE]))
    pgdata: Path = request.getfixturevalue("embedded_pgdata")
    return PostgresServer("embedded", EmbeddedPostgres(pgdata).start().url)


def _environment(app_url: str, dagster_url: str, key: str, home: Path) -> dict[str, str]:
    # No TOBAN_LLM_*: the analyses use the offline analyzer.
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("TOBAN_") and k != "DAGSTER_HOME"
    }
    environment.update(
        {
            "TOBAN_DATABASE_URL": app_url,
            "TOBAN_DAGSTER_STORAGE_URL": dagster_url,
            "TOBAN_ENCRYPTION_KEYS": key,
            "TOBAN_BACKFILL_DAYS": str(SYNCED_DAYS),
            # The sensors' default 30 s (60 s for the automation) would be most of the tests'
            # time: they wait for several ticks in a row.
            "TOBAN_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL_SECONDS),
            "DAGSTER_HOME": str(home),
            # The analyses' HTML reports (the browser test opens one), out of the project tree.
            "TOBAN_REPORTS_DIR": str(home / "reports"),
        }
    )
    return environment


ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def _keep_log(dagster: DagsterDev) -> None:
    """dagster dev's output, kept for a failure's post-mortem (test-artifacts/ is git-ignored)."""
    if dagster.log_path.exists():
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(dagster.log_path, ARTIFACTS / "e2e-dagster-dev.log")


_stacks: list[E2EStack] = []


@pytest.fixture(scope="session")
def e2e_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[E2EStack]:
    """Toban running as a user runs it, with two Slack workspaces connected before it starts,
    and the runs the integration sensor requested for them finished successfully."""
    if _stacks:  # imported by several modules: each gets its own fixture, one stack serves all
        yield _stacks[0]
        return
    with ExitStack() as cleanup:
        began = time.monotonic()
        server = _postgres(request)
        app_url = server.create_database()
        cleanup.callback(server.drop_database, app_url)
        dagster_url = server.create_database().set(drivername=DAGSTER_DRIVER)
        cleanup.callback(server.drop_database, dagster_url)
        engine = create_engine(app_url)
        cleanup.callback(engine.dispose)
        migrations.upgrade(engine)

        key = generate_key()
        first = datetime.now(UTC).date() - timedelta(days=SYNCED_DAYS)
        slack = cleanup.enter_context(FakeSlackServer())
        workspaces: dict[str, Connected] = {}
        for n, seed in enumerate((51, 52)):
            workspace = generate_workspace(
                seed,
                users=6,
                channels=3,
                private_channels=1,
                days=SYNCED_DAYS,
                start=first,
                messages_per_channel_day=8,
            )
            connected = connect(
                engine,
                slack,
                workspace,
                TokenCipher([key]),
                token=f"xoxb-e2e-{n}-5550100",
                team_slug=f"e2e-team-{n}",
            )
            workspaces[connected.slack_id] = connected

        home = tmp_path_factory.mktemp("dagster_home")
        shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        dagster = DagsterDev(
            home,
            _environment(
                app_url.render_as_string(hide_password=False),
                dagster_url.render_as_string(hide_password=False),
                key,
                home,
            ),
        )
        cleanup.callback(_keep_log, dagster)
        cleanup.callback(dagster.stop)
        dagster.start()
        started = time.monotonic() - began
        days = [first + timedelta(days=n) for n in range(SYNCED_DAYS)]

        def synced(runs: list[Run]) -> bool:
            # Per workspace: one range run for all the days of the backfill window, which
            # refreshes the workspace, users and channels first (no snapshot run of its own).
            syncs = [r for r in runs if r.job_name in SYNC_JOBS]
            return len(syncs) == len(workspaces)

        runs = dagster.wait_until_settled(synced, RUNS_TIMEOUT_SECONDS, "the sensor's syncs")
        stack = E2EStack(
            dagster=dagster,
            app_engine=engine,
            slack=slack,
            workspaces=workspaces,
            days=days,
            runs=runs,
            started_in_seconds=started,
            synced_in_seconds=time.monotonic() - began,
        )
        _stacks.append(stack)
        try:
            yield stack
        finally:
            _stacks.clear()


def completed_analyses(engine: Engine, analysis_type: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count())
            .select_from(SlackAnalysis)
            .where(
                SlackAnalysis.analysis_type == analysis_type,
                SlackAnalysis.status == AnalysisStatus.COMPLETED.value,
            )
        ).scalar_one()
