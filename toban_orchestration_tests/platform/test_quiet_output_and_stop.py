"""Quiet commands and sane defaults: Dagster's event logs in a log file (the terminal gets a line
per phase), `toban dev` stopped within seconds however it was started, new public channels
selected only when the app can read them, and the analysis windows that wait for days before
the backfill window named by `toban status`.

`test_demo.py` runs the demo itself: quiet (no Dagster event on the terminal, the log file
named and holding them), then with `--verbose` (the events printed)."""

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psutil
import pytest
from sqlalchemy import Engine, select, update

from toban_orchestration.analysis.store import analysis_status_counts
from toban_orchestration.cli import DAGSTER_SHUTDOWN_GRACE_SECONDS, _configure_logging, build_parser
from toban_orchestration.db.embedded import EmbeddedPostgres
from toban_orchestration.db.enums import IntegrationStatus
from toban_orchestration.db.models import Integration, SlackChannel
from toban_orchestration.demo import RunLogs, _materialize
from toban_orchestration.progress import file_handler
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import Settings, default_partitions_start
from toban_orchestration.slack import admin, ingest
from toban_orchestration.slack.admin import WaitingWindow
from toban_orchestration.slack.store import SlackStore
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace
from toban_orchestration_tests.helpers import TOBAN_SCRIPT, TOBAN_VARIABLES
from toban_orchestration_tests.support.event_receiver import SIGNING_SECRET
from toban_orchestration_tests.support.web_api_sync import archive_without_the_app, connect

STARTUP_TIMEOUT_SECONDS = 150
# SIGTERM to exit: the grace dagster dev gets, and the receiver and the embedded server stop.
STOP_SECONDS = DAGSTER_SHUTDOWN_GRACE_SECONDS + 5
DAGSTER_DEBUG = " - dagster - DEBUG - "


# --- the demo's run logs --------------------------------------------------------------------


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["one"]))
def tiny() -> int:
    return 1


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_demo_runs_log_their_events_to_the_file_and_to_the_terminal_only_when_verbose(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], verbose: bool
) -> None:
    handler = file_handler(tmp_path / "demo.log")
    try:
        with dg.instance_for_test() as instance:
            _materialize(instance, [tiny], "one", {}, RunLogs(handler, verbose))
    finally:
        handler.close()
    out, err = capfd.readouterr()
    events = (tmp_path / "demo.log").read_text()
    for event in ("RUN_START", "STEP_START", "ASSET_MATERIALIZATION", "RUN_SUCCESS"):
        assert f"{DAGSTER_DEBUG}__ephemeral_asset_job__ - " in events
        assert f" - {event} - " in events, event
    assert (DAGSTER_DEBUG in out + err) is verbose


def test_verbose_is_accepted_before_and_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["demo"]).verbose is False
    assert parser.parse_args(["demo", "--verbose"]).verbose is True
    assert parser.parse_args(["--verbose", "dev"]).verbose is True
    assert parser.parse_args(["slack", "import", "x", "--team", "t", "-v"]).verbose is True
    assert parser.parse_args(["-v", "status"]).verbose is True


# --- toban dev stops, however it was started --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def _listening(port: int) -> bool:
    with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@dataclass
class Launch:
    """One `toban dev`, started as a script or a service manager would."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    state_dir: Path
    output: Path
    events_port: int | None = None
    tree: list[psutil.Process] | None = None

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    @property
    def server(self) -> EmbeddedPostgres:
        return EmbeddedPostgres(self.state_dir / "pgdata")


def _environment(state_dir: Path, **extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in TOBAN_VARIABLES}
    environment |= {
        "TOBAN_STATE_DIR": str(state_dir),
        "TOBAN_SLACK_APP_TOKEN": "",
        "TOBAN_SLACK_SIGNING_SECRET": "",
    }
    return environment | extra


def _launch(tmp_path: Path, name: str, *, background: bool, receiver: bool) -> Launch:
    port = _free_port()
    state_dir = tmp_path / name
    events_port = _free_port() if receiver else None
    extra = (
        {"TOBAN_SLACK_SIGNING_SECRET": SIGNING_SECRET, "TOBAN_EVENTS_PORT": str(events_port)}
        if receiver
        else {}
    )
    command = [str(TOBAN_SCRIPT), "dev", "--port", str(port)]
    output = tmp_path / f"{name}.out"
    with output.open("wb") as sink:
        if background:
            # `toban dev &` from a non-interactive shell: SIGINT ignored, as a background job.
            command = ["sh", "-c", 'trap "" INT; exec "$0" "$@"', *command]
            process = subprocess.Popen(
                command, env=_environment(state_dir, **extra), stdout=sink, stderr=sink
            )
        else:
            # `setsid toban dev`, or a service manager: a session of its own, no terminal.
            process = subprocess.Popen(
                command,
                env=_environment(state_dir, **extra),
                stdout=sink,
                stderr=sink,
                start_new_session=True,
            )
    return Launch(name, process, port, state_dir, output, events_port)


def _cleanup(launch: Launch) -> None:
    if launch.process.poll() is None:
        launch.process.kill()
        launch.process.wait()
    for leftover in launch.tree or []:
        with suppress(psutil.NoSuchProcess):
            leftover.kill()
    launch.server.stop()


@pytest.fixture
def launches(tmp_path: Path) -> Iterator[list[Launch]]:
    """Two `toban dev` started at once (the start is slow): in the background of a script with
    the event receiver, and in a session of its own."""
    with ExitStack() as cleanup:
        started = []
        for name, background, receiver in (("background", True, True), ("setsid", False, False)):
            launch = _launch(tmp_path, name, background=background, receiver=receiver)
            cleanup.callback(_cleanup, launch)
            started.append(launch)
        yield started


def test_dev_started_in_the_background_or_setsid_stops_everything_on_sigterm(
    launches: list[Launch],
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    waiting = list(launches)
    while waiting:
        for launch in list(waiting):
            assert launch.process.poll() is None, launch.text()
            if "Dagster UI: " in launch.text() and _answers(launch.port):
                waiting.remove(launch)
        assert time.monotonic() < deadline, [launch.text() for launch in waiting]
        time.sleep(1)
    for launch in launches:
        launch.tree = psutil.Process(launch.process.pid).children(recursive=True)
        assert len(launch.tree) >= 3, launch.name  # dagster dev, its webserver and daemon
        assert launch.server.is_running(), launch.name
        if launch.events_port is not None:
            assert _listening(launch.events_port), launch.text()

    signalled = time.monotonic()
    for launch in launches:
        launch.process.send_signal(signal.SIGTERM)
    for launch in launches:
        assert launch.process.wait(timeout=STOP_SECONDS + 30) == 0, launch.text()
        stopped_after = time.monotonic() - signalled
        assert stopped_after <= STOP_SECONDS, (launch.name, stopped_after, launch.text())

    for launch in launches:
        assert launch.tree is not None
        _, alive = psutil.wait_procs(launch.tree, timeout=2)
        assert alive == [], [process.cmdline() for process in alive]
        assert not launch.server.is_running(), launch.name
        assert not _listening(launch.port), launch.name
        if launch.events_port is not None:
            assert not _listening(launch.events_port), launch.name
        # The terminal: a line per phase; dagster dev's output is in the log file it names.
        text = launch.text()
        log = launch.state_dir / "logs" / "dev.log"
        assert f"its output goes to {log}" in text
        assert "Serving dagster-webserver" in log.read_text()
        assert " - dagster" not in text
        assert "SIGTERM: stopping Dagster" in text
        assert "Traceback" not in text
        assert len(text.splitlines()) <= 12, text
    assert "Slack event receiver stopped" in launches[0].text()


# --- new public channels ------------------------------------------------------------------------


def _selection(engine: Engine) -> dict[str, bool]:
    with engine.connect() as connection:
        rows = connection.execute(select(SlackChannel.name, SlackChannel.is_selected_for_analysis))
        return {name: selected for name, selected in rows}


def test_new_public_channels_are_selected_only_when_the_app_can_read_them(
    migrated_engine: Engine,
) -> None:
    workspace = generate_workspace(seed=7, days=1)
    outsider = next(c for c in workspace.channels if c.kind == "public" and not c.is_member)
    archived = archive_without_the_app(workspace)  # archived, and the app is not in it
    cipher = TokenCipher([generate_key()])
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher)
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
        selection = _selection(migrated_engine)
        member_public = {c.name for c in workspace.channels if c.kind == "public" and c.is_member}
        assert member_public  # general, random, engineering
        assert {name for name, selected in selection.items() if selected} == member_public
        assert selection[outsider.name] is False
        assert selection[archived.name] is False
        assert not any(selection[c.name] for c in workspace.channels if c.kind == "private")

        # A choice made later is kept by the next refresh.
        with migrated_engine.begin() as connection:
            connection.execute(
                update(SlackChannel)
                .where(SlackChannel.name.in_([outsider.name, "random"]))
                .values(is_selected_for_analysis=SlackChannel.name == outsider.name)
            )
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
        again = _selection(migrated_engine)
        assert (again[outsider.name], again["random"]) == (True, False)


def test_with_join_public_channels_the_joinable_ones_start_selected_and_an_export_all(
    migrated_engine: Engine,
) -> None:
    workspace = generate_workspace(seed=9, days=1)
    outsider = next(c for c in workspace.channels if c.kind == "public" and not c.is_member)
    archived = archive_without_the_app(workspace)
    cipher = TokenCipher([generate_key()])
    joining = SyncOptions(pacing=False, join_public_channels=True)
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher, sync=joining)
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
    selection = _selection(migrated_engine)
    assert selection[outsider.name] is True  # the next sync joins it
    assert selection[archived.name] is False  # nobody can add the app to an archived channel

    # An export holds the messages of every public channel: all start selected.
    with migrated_engine.begin() as connection:
        workspace_id = connection.execute(select(SlackChannel.workspace_id)).scalars().first()
        assert workspace_id is not None
        SlackStore(connection, workspace_id).upsert_channels(
            [
                {"slack_id": "CEXPORT01", "name": "from-export", "type": "public",
                 "is_archived": True, "has_bot": False},
            ],
            select_public=True,
            join_public=False,
            from_export=True,
        )  # fmt: skip
    assert _selection(migrated_engine)["from-export"] is True


# --- windows waiting for days before the backfill window ----------------------------------------


def test_status_names_the_windows_that_wait_for_days_before_the_backfill_window(
    migrated_engine: Engine,
) -> None:
    first, last = date(2026, 11, 10), date(2026, 11, 11)  # a Tuesday and a Wednesday
    workspace = generate_workspace(seed=7, days=2, start=first, messages_per_channel_day=4)
    cipher = TokenCipher([generate_key()])
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher)
        connected.sync_all(first, last)
    now = datetime(2026, 11, 12, 8, tzinfo=UTC)

    def statuses(first_partition_day: date | None) -> list[admin.WorkspaceStatus]:
        with migrated_engine.connect() as connection:
            return admin.workspace_statuses(
                connection,
                backfill_days=2,
                lag_warn_seconds=600,
                now=now,
                first_partition_day=first_partition_day,
                analysis_counts=analysis_status_counts,
            )

    (status,) = statuses(date(2026, 11, 1))
    assert status.missing_days == []  # the backfill window is synced
    november = [date(2026, 11, 1) + timedelta(days=n) for n in range(9)]
    assert status.waiting == [
        WaitingWindow("weekly", "2026-11-09", [date(2026, 11, 9)]),
        WaitingWindow("monthly", "2026-11-01", november),
    ]
    rows = [line.split(maxsplit=1) for line in status.lines()[1:]]
    waiting = [text for name, text in rows if name == "waiting"]
    assert waiting[1] == (
        "the monthly analysis 2026-11-01 waits for 9 days before the backfill window "
        f"(2026-11-01 to 2026-11-09): `toban backfill --workspace {connected.slack_id} "
        "--start 2026-11-01 --end 2026-11-09`"
    )
    assert not any("waits" in problem for problem in status.problems)  # not a problem

    # A month that begins before the first day partition is not a Dagster partition: no wait.
    (status,) = statuses(date(2026, 11, 5))
    assert [window.frequency for window in status.waiting] == ["weekly"]
    # Nor without the partitions' start, nor for a workspace that is not synced day by day.
    assert statuses(None)[0].waiting == []
    with migrated_engine.begin() as connection:
        connection.execute(update(Integration).values(status=IntegrationStatus.EXPIRED))
    assert statuses(date(2026, 11, 1))[0].waiting == []


def test_the_backfill_window_does_not_reach_before_the_first_day_partition() -> None:
    settings = Settings(partitions_start_date="2026-11-01", backfill_days=30)
    assert settings.backfill_days_to(date(2026, 12, 6)) == 30
    assert settings.backfill_days_to(date(2026, 11, 10)) == 10
    assert settings.backfill_days_to(date(2026, 10, 30)) == 0


def test_the_partitions_start_a_year_back_on_the_first_of_a_month_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not in 2020: about 13 months of day partitions, the backfill window among them."""
    assert default_partitions_start(date(2026, 12, 7)) == "2025-12-01"
    assert default_partitions_start(date(2027, 1, 31)) == "2026-01-01"
    monkeypatch.delenv("TOBAN_PARTITIONS_START_DATE", raising=False)
    first = Settings().first_partition_day
    today = datetime.now(UTC).date()
    assert first.day == 1
    assert 365 <= (today - first).days <= 366 + 31
    assert Settings().backfill_days_to(today - timedelta(days=1)) == Settings().backfill_days


def test_alembic_info_lines_show_only_when_verbose() -> None:
    _configure_logging(verbose=False)
    assert logging.getLogger("alembic").getEffectiveLevel() == logging.WARNING
    _configure_logging(verbose=True)
    assert logging.getLogger("alembic").level == logging.NOTSET  # the root's INFO
