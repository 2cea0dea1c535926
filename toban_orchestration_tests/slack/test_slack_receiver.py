"""The Slack Events API receiver, against a real PostgreSQL and over real sockets.

HTTP: requests signed the way Slack signs them (`v0=` + hex HMAC-SHA256 of `v0:{ts}:{body}`)
are posted to the receiver's listener. "PostgreSQL down" is a real server stopped: a PostgreSQL
of this module's own (the embedded kind, in a temporary folder), stopped with `pg_ctl stop` and
started again, so the receiver meets exactly what it meets in production (connection refused).
Socket Mode: the test suite's local Slack server delivers events over a websocket, the way Slack
does, and redelivers what is not acknowledged.
"""

import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from pydantic import SecretStr
from slack_sdk import WebClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

from toban_orchestration.db import migrations
from toban_orchestration.db.embedded import EmbeddedPostgres
from toban_orchestration.db.engine import APP_DRIVER, opened_engine
from toban_orchestration.slack.receiver import (
    EVENTS_PATH,
    HEALTH_PATH,
    EventReceiver,
    ReceiverConfig,
    ReceiverError,
    database_error_summary,
)
from toban_orchestration_tests.fakes.slack_server import (
    FakeSlackServer,
    FakeWorkspace,
    generate_workspace,
)
from toban_orchestration_tests.helpers import TOBAN_SCRIPT, TOBAN_VARIABLES, run_toban
from toban_orchestration_tests.support.event_receiver import SIGNING_SECRET

RECEIVER_VARIABLES = (
    *TOBAN_VARIABLES,
    "TOBAN_SLACK_APP_TOKEN",
    "TOBAN_SLACK_SIGNING_SECRET",
    "TOBAN_EVENTS_HOST",
    "TOBAN_EVENTS_PORT",
)


# --- helpers ------------------------------------------------------------------------------------


def envelope(
    event_id: str = "Ev0001", *, text_: str = "hello", ts: str = "1700000000.000100"
) -> dict[str, Any]:
    """An `event_callback` envelope as Slack sends it for a message in a channel."""
    return {
        "token": "verification-token-never-stored",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": {
            "type": "message",
            "channel": "C0001",
            "user": "U0001",
            "text": text_,
            "ts": ts,
            "event_ts": ts,
            "channel_type": "channel",
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(ts)),
        "authorizations": [
            {"team_id": "T0001", "user_id": "UBOT", "is_bot": True, "is_enterprise_install": False}
        ],
    }


def signed_headers(
    body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Slack's signature, computed here (not with slack-sdk, which the receiver uses)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
        "Content-Type": "application/json",
    }


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: Mapping[str, str]


def request(
    address: tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Answer(
            response.status,
            response.read().decode(),
            {name.lower(): value for name, value in response.getheaders()},
        )
    finally:
        connection.close()


def post_event(
    address: tuple[str, int],
    payload: Mapping[str, Any] | bytes,
    *,
    extra_headers: Mapping[str, str] | None = None,
    **signing: Any,
) -> Answer:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signed_headers(body, **signing) | dict(extra_headers or {})
    return request(address, "POST", EVENTS_PATH, body, headers)


def inbox_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT event_id, team_id, event_type, channel_slack_id, transport, deliveries, "
                "payload FROM slack_event_inbox ORDER BY event_id"
            )
        )
        return [dict(row._mapping) for row in rows]


def http_config(**overrides: Any) -> ReceiverConfig:
    values: dict[str, Any] = {
        "signing_secret": SecretStr(SIGNING_SECRET),
        "http_listener": True,
        "host": "127.0.0.1",
        "port": 0,  # a free port; the receiver reports the one it got
    }
    return ReceiverConfig(**(values | overrides))


@pytest.fixture
def receiver_engine(migrated_engine: Engine) -> Iterator[Engine]:
    """An engine made as the CLI makes it (pre-ping on), on the test's migrated database."""
    with opened_engine(migrated_engine.url) as engine:
        yield engine


@pytest.fixture
def http_receiver(receiver_engine: Engine) -> Iterator[EventReceiver]:
    with EventReceiver(receiver_engine, http_config()) as receiver:
        yield receiver


def address_of(receiver: EventReceiver) -> tuple[str, int]:
    address = receiver.http_address
    assert address is not None
    return address


# --- a PostgreSQL this module can stop --------------------------------------------------------


@dataclass(frozen=True)
class StoppableDatabase:
    server: EmbeddedPostgres
    url: URL

    def stop(self) -> None:
        self.server.stop()
        assert not self.server.is_running()

    def start(self) -> None:
        self.server.start()


@pytest.fixture(scope="module")
def stoppable_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("stoppable") / "pgdata")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stoppable_database(stoppable_server: EmbeddedPostgres) -> Iterator[StoppableDatabase]:
    """A migrated database on a server of its own, which the test may stop and start again."""
    stoppable_server.start()
    name = f"receiver_{os.urandom(6).hex()}"
    url = stoppable_server.ensure_database(name).set(drivername=APP_DRIVER)
    engine = create_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    yield StoppableDatabase(stoppable_server, url)
    stoppable_server.start()  # a test that failed while it was down leaves it stopped


# --- HTTP Events endpoint ----------------------------------------------------------------------


def test_http_signed_event_is_stored_once_and_answered_200(
    http_receiver: EventReceiver, receiver_engine: Engine
) -> None:
    answer = post_event(address_of(http_receiver), envelope("Ev0001"))

    assert (answer.status, answer.body) == (200, "")
    (row,) = inbox_rows(receiver_engine)
    assert row["event_id"] == "Ev0001"
    assert (row["team_id"], row["event_type"], row["channel_slack_id"]) == (
        "T0001",
        "message",
        "C0001",
    )
    assert (row["transport"], row["deliveries"]) == ("http", 1)
    assert row["payload"]["event"]["text"] == "hello"
    assert "token" not in row["payload"]  # the verification token is a credential
    assert http_receiver.counts.stored == 1


def test_http_redelivery_with_retry_num_is_counted_not_doubled(
    http_receiver: EventReceiver, receiver_engine: Engine
) -> None:
    address = address_of(http_receiver)
    assert post_event(address, envelope("Ev0002")).status == 200
    for retry in ("1", "2"):
        answer = post_event(
            address,
            envelope("Ev0002"),
            extra_headers={"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"},
        )
        assert answer.status == 200

    (row,) = inbox_rows(receiver_engine)
    assert (row["event_id"], row["deliveries"]) == ("Ev0002", 3)
    counts = http_receiver.counts
    assert (counts.stored, counts.duplicates) == (1, 2)


@pytest.mark.parametrize(
    ("secret", "clock_offset"),
    [
        pytest.param("another-apps-secret", 0, id="wrong secret"),
        pytest.param(SIGNING_SECRET, -6 * 60, id="older than 5 minutes"),
        pytest.param(SIGNING_SECRET, 6 * 60, id="5 minutes in the future"),
    ],
)
def test_http_bad_or_old_signature_gets_401_and_stores_nothing(
    http_receiver: EventReceiver, receiver_engine: Engine, secret: str, clock_offset: int
) -> None:
    # The timestamp is taken now, not when the tests were collected (minutes earlier).
    stamp = int(time.time()) + clock_offset
    answer = post_event(address_of(http_receiver), envelope(), secret=secret, timestamp=stamp)

    assert (answer.status, answer.body) == (401, "")  # nothing that helps a forger
    assert inbox_rows(receiver_engine) == []
    assert http_receiver.counts.refused == 1


def test_http_tampered_missing_or_malformed_signature_headers_get_401(
    http_receiver: EventReceiver, receiver_engine: Engine
) -> None:
    address = address_of(http_receiver)
    body = json.dumps(envelope()).encode()
    headers = signed_headers(body)
    tampered = body.replace(b"hello", b"hullo")
    cases: list[tuple[bytes, dict[str, str]]] = [
        (tampered, headers),
        (body, {"Content-Type": "application/json"}),
        (body, headers | {"X-Slack-Request-Timestamp": "not-a-number"}),
        (body, headers | {"X-Slack-Signature": "v0=" + "0" * 64}),
        (b"\xff\xfe not utf-8", signed_headers(b"\xff\xfe not utf-8")),
    ]
    for payload, case_headers in cases:
        answer = request(address, "POST", EVENTS_PATH, payload, case_headers)
        assert (answer.status, answer.body) == (401, ""), case_headers
    assert inbox_rows(receiver_engine) == []
    assert http_receiver.counts.refused == len(cases)


def test_http_url_verification_returns_the_challenge(
    http_receiver: EventReceiver, receiver_engine: Engine
) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    answer = post_event(
        address_of(http_receiver),
        {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"},
    )

    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert json.loads(answer.body) == {"challenge": challenge}
    assert inbox_rows(receiver_engine) == []


def test_http_malformed_body_or_envelope_gets_400_naming_the_field(
    http_receiver: EventReceiver, receiver_engine: Engine
) -> None:
    address = address_of(http_receiver)
    without_event_id = envelope()
    del without_event_id["event_id"]
    without_event_type = envelope()
    del without_event_type["event"]["type"]
    cases: list[tuple[Mapping[str, Any] | bytes, str]] = [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (without_event_id, "`event_id`"),
        (without_event_type, "`event.type`"),
        ({"type": "block_actions"}, "`type`"),
        ({"type": "url_verification"}, "`challenge`"),
    ]
    for payload, named in cases:
        answer = post_event(address, payload)
        assert answer.status == 400, named
        assert named in answer.body, answer.body
        assert "\n" not in answer.body.rstrip("\n")  # one line
        # A retry would not make it storable: Slack is asked not to send it again.
        assert answer.headers["x-slack-no-retry"] == "1"
    assert inbox_rows(receiver_engine) == []
    assert http_receiver.counts.refused == len(cases)


def test_http_health_and_unknown_paths(http_receiver: EventReceiver) -> None:
    address = address_of(http_receiver)
    assert post_event(address, envelope("Ev0003")).status == 200

    health = request(address, "GET", HEALTH_PATH)
    assert health.status == 200
    report = json.loads(health.body)
    assert report["status"] == "ok"
    assert report["transports"] == ["http"]
    assert report["socket_mode_connected"] is None
    assert report["counts"]["stored"] == 1
    assert SIGNING_SECRET not in health.body

    assert request(address, "GET", "/").status == 404
    assert request(address, "POST", "/other", b"{}", {"Content-Length": "2"}).status == 404
    assert request(address, "GET", EVENTS_PATH).status == 404


def test_receiver_without_a_transport_refuses_to_start(receiver_engine: Engine) -> None:
    config = http_config(signing_secret=None, app_token=None)
    with pytest.raises(ReceiverError, match="TOBAN_SLACK_APP_TOKEN"):
        EventReceiver(receiver_engine, config).start()


def test_http_database_down_gets_503_stores_nothing_and_slacks_retry_is_stored_later(
    stoppable_database: StoppableDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        opened_engine(stoppable_database.url) as engine,
        EventReceiver(engine, http_config()) as receiver,
    ):
        address = address_of(receiver)
        assert post_event(address, envelope("Ev0100")).status == 200

        stoppable_database.stop()
        try:
            started = time.monotonic()
            down = post_event(address, envelope("Ev0101"))
            elapsed = time.monotonic() - started
            # Slack's own patience is 3 s: the answer comes well before that.
            assert down.status == 503
            assert elapsed < 3, elapsed
            assert SIGNING_SECRET not in down.body
            assert receiver.counts.db_failures == 1
            # Health stays up (it is liveness: restarting the pod would not bring PostgreSQL).
            assert request(address, "GET", HEALTH_PATH).status == 200
        finally:
            stoppable_database.start()

        retry = post_event(
            address,
            envelope("Ev0101"),
            extra_headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"},
        )
        assert retry.status == 200
        rows = inbox_rows(engine)
        assert [(r["event_id"], r["deliveries"]) for r in rows] == [("Ev0100", 1), ("Ev0101", 1)]
        assert (receiver.counts.stored, receiver.counts.db_failures) == (2, 1)
    (failure,) = [r.getMessage() for r in caplog.records if "Ev0101" in r.getMessage()
                  and "not stored" in r.getMessage()]  # fmt: skip
    assert "OperationalError" in failure
    assert "hello" not in failure


def test_database_error_summary_never_quotes_the_row(receiver_engine: Engine) -> None:
    # A constraint's message quotes the failing row; the receiver's log line must not.
    with pytest.raises(sqlalchemy.exc.IntegrityError) as failed, receiver_engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO slack_event_inbox (event_id, team_id, event_type, event_time, "
                "transport, payload) VALUES ('Ev1', 'T1', 'message', now(), 'http', NULL)"
            )
        )
    assert "Ev1" in str(failed.value)
    assert database_error_summary(failed.value) == "NotNullViolation (SQLSTATE 23502)"


def test_http_stop_is_quick_closes_the_port_and_leaves_no_thread(receiver_engine: Engine) -> None:
    before = set(threading.enumerate())
    receiver = EventReceiver(receiver_engine, http_config())
    receiver.start()
    address = address_of(receiver)
    assert post_event(address, envelope("Ev0200")).status == 200
    started = time.monotonic()
    receiver.stop()
    assert time.monotonic() - started < 2
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(address, timeout=2):
        pass
    receiver.stop()  # idempotent


def test_http_listen_failure_names_the_setting(receiver_engine: Engine) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ReceiverError, match="TOBAN_EVENTS_PORT") as error:
            EventReceiver(receiver_engine, http_config(port=port)).start()
    assert SIGNING_SECRET not in str(error.value)


# --- the CLI ------------------------------------------------------------------------------------


def _without_receiver_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in RECEIVER_VARIABLES}


def test_cli_events_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    result = run_toban(
        "events",
        env={
            "TOBAN_STATE_DIR": str(tmp_path),
            "TOBAN_SLACK_APP_TOKEN": "",
            "TOBAN_SLACK_SIGNING_SECRET": "",
        },
    )
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: no Slack event transport is configured")
    assert "TOBAN_SLACK_APP_TOKEN" in line
    assert "TOBAN_SLACK_SIGNING_SECRET" in line
    # Nothing was started for it: the embedded database folder was not even created.
    assert not (tmp_path / "pgdata").exists()


def test_cli_events_refuses_when_the_flags_switch_every_transport_off(tmp_path: Path) -> None:
    result = run_toban(
        "events",
        "--no-http",
        env={
            "TOBAN_STATE_DIR": str(tmp_path),
            "TOBAN_SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "TOBAN_SLACK_APP_TOKEN": "",
        },
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "--no-http/--no-socket-mode leave no transport" in line
    assert SIGNING_SECRET not in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_events_serves_http_until_a_signal(
    app_environment: dict[str, str],
    migrated_engine: Engine,
    tmp_path: Path,
    stop_signal: signal.Signals,
) -> None:
    port = _free_port()
    environment = _without_receiver_settings() | app_environment
    environment |= {"TOBAN_SLACK_SIGNING_SECRET": SIGNING_SECRET, "TOBAN_SLACK_APP_TOKEN": ""}
    log_path = tmp_path / "events.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(TOBAN_SCRIPT), "events", "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Receiving Slack events" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert post_event(("127.0.0.1", port), envelope("Ev0300")).status == 200
        assert [r["event_id"] for r in inbox_rows(migrated_engine)] == ["Ev0300"]

        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    output = log_path.read_text()
    (line,) = [line for line in output.splitlines() if "Receiving Slack events" in line]
    assert f"HTTP Events endpoint http://127.0.0.1:{port}{EVENTS_PATH}" in line
    assert "Socket Mode" not in line
    assert "1 events stored" in output
    assert SIGNING_SECRET not in output
    assert "Traceback" not in output


def _wait_for_line(
    log_path: Path, process: subprocess.Popen[bytes], needle: str, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log_path.read_text().splitlines() if needle in line]
        if lines:
            return lines[0]
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)


def _dagster_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def test_dev_runs_the_receiver_next_to_dagster_and_stops_it_with_dagster(tmp_path: Path) -> None:
    dagster_port, events_port = _free_port(), _free_port()
    environment = _without_receiver_settings() | {
        "TOBAN_STATE_DIR": str(tmp_path / "state"),
        "TOBAN_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "TOBAN_EVENTS_PORT": str(events_port),
    }
    log_path = tmp_path / "dev.log"
    with log_path.open("w") as log:
        launcher = subprocess.Popen(
            [str(TOBAN_SCRIPT), "dev", "--port", str(dagster_port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        line = _wait_for_line(log_path, launcher, "Slack events:", timeout=120)
        assert f"HTTP Events endpoint http://127.0.0.1:{events_port}{EVENTS_PATH}" in line
        assert post_event(("127.0.0.1", events_port), envelope("EvDEV001")).status == 200
        deadline = time.monotonic() + 120
        while not _dagster_answers(dagster_port):
            assert launcher.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(1)

        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=90) == 0, log_path.read_text()
    finally:
        if launcher.poll() is None:
            launcher.kill()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", events_port), timeout=2),
    ):
        pass
    output = log_path.read_text()
    assert "Slack event receiver stopped: 1 events stored" in output
    assert SIGNING_SECRET not in output


def test_dev_refuses_an_events_port_that_is_dagsters(tmp_path: Path) -> None:
    port = _free_port()
    result = run_toban(
        "dev",
        "--port",
        str(port),
        env={
            "TOBAN_STATE_DIR": str(tmp_path / "state"),
            "TOBAN_SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "TOBAN_SLACK_APP_TOKEN": "",
            "TOBAN_EVENTS_PORT": str(port),
        },
    )
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"TOBAN_EVENTS_PORT is {port}, the port of the Dagster UI" in line
    assert "Traceback" not in result.stderr
    assert not EmbeddedPostgres(tmp_path / "state" / "pgdata").is_running()


# --- Socket Mode, through the local Slack server ------------------------------------------------

BOT_TOKEN = "xoxb-receiver-test"
APP_TOKEN = "xapp-1-ARECEIVER-1-test"


def small_workspace(seed: int = 21) -> FakeWorkspace:
    return generate_workspace(
        seed, users=4, channels=2, private_channels=0, days=1, messages_per_channel_day=3
    )


def member_channel(workspace: FakeWorkspace) -> str:
    return next(c.id for c in workspace.channels if c.is_member and not c.is_archived)


def a_human(workspace: FakeWorkspace) -> str:
    return next(u.id for u in workspace.users if not u.is_bot and not u.deleted)


@contextmanager
def slack_events(workspace: FakeWorkspace, **options: Any) -> Iterator[FakeSlackServer]:
    """The local Slack server delivering the workspace's events over Socket Mode."""
    with FakeSlackServer(workspace, BOT_TOKEN) as server:
        server.enable_events(app_token=APP_TOKEN, **options)
        yield server
        assert server.internal_errors == []


def socket_receiver(
    engine: Engine, server: FakeSlackServer, *, app_token: str = APP_TOKEN
) -> EventReceiver:
    return EventReceiver(
        engine,
        ReceiverConfig(app_token=SecretStr(app_token)),
        web_client=WebClient(base_url=server.base_url),
    )


def sent_event_ids(server: FakeSlackServer) -> list[str]:
    return [str(envelope["event_id"]) for envelope in server.events_sent()]


def post_messages(workspace: FakeWorkspace, count: int, prefix: str, pause: float = 0.0) -> None:
    channel = member_channel(workspace)
    for index in range(count):
        workspace.add_message(channel, text=f"{prefix} {index}")
        time.sleep(pause)


def test_socket_mode_events_arrive_in_the_inbox_and_are_acknowledged(
    receiver_engine: Engine,
) -> None:
    workspace = small_workspace()
    channel = member_channel(workspace)
    with (
        slack_events(workspace, ack_timeout=2.0) as server,
        socket_receiver(receiver_engine, server) as receiver,
    ):
        assert server.wait_for_socket_clients(1)
        assert receiver.socket_mode_connected() is True
        assert receiver.describe() == "Socket Mode"
        ts = workspace.add_message(channel, text="over the socket")
        workspace.add_reply(channel, ts, text="in the thread")
        workspace.add_reaction(channel, ts, "rocket", a_human(workspace))
        workspace.edit_message(channel, ts, "over the socket, edited")
        workspace.delete_message(channel, ts)
        assert server.wait_until_events_delivered(10)

        sent = sent_event_ids(server)
        assert len(sent) == 5
        # The SDK hands envelopes to a pool of workers: acknowledgements come in any order.
        assert sorted(server.events_acknowledged()) == sorted(sent)
        rows = inbox_rows(receiver_engine)
        assert sorted(r["event_id"] for r in rows) == sorted(sent)
        assert {(r["transport"], r["deliveries"]) for r in rows} == {("socket_mode", 1)}
        assert {r["team_id"] for r in rows} == {workspace.team_id}
        assert sorted(r["event_type"] for r in rows) == [
            "message", "message", "message", "message", "reaction_added"
        ]  # fmt: skip
        assert all("token" not in r["payload"] for r in rows)
        assert (receiver.counts.stored, receiver.counts.duplicates) == (5, 0)
        # Each was acknowledged on its first delivery.
        assert {a.retry_attempt for a in server.delivery_attempts()} == {0}


def test_socket_mode_database_down_acknowledges_nothing_and_every_event_lands_once_later(
    stoppable_database: StoppableDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    workspace = small_workspace()
    with (
        opened_engine(stoppable_database.url) as engine,
        slack_events(workspace, ack_timeout=0.4, max_retries=100) as server,
        socket_receiver(engine, server) as receiver,
    ):
        assert server.wait_for_socket_clients(1)
        post_messages(workspace, 2, "before")
        assert server.wait_until_events_delivered(10)
        before = list(server.events_acknowledged())

        stoppable_database.stop()
        try:
            post_messages(workspace, 5, "while PostgreSQL is down")
            # Several ack timeouts: Slack (the fake) redelivers, and still nothing is acked.
            deadline = time.monotonic() + 10
            down = set(sent_event_ids(server)) - set(before)
            while not all(
                sum(a.event_id == event_id for a in server.delivery_attempts()) >= 3
                for event_id in down
            ):
                assert time.monotonic() < deadline, server.delivery_attempts()
                time.sleep(0.1)
            assert server.events_acknowledged() == before
            assert server.pending_events() == 5
            # Each refused at least twice by now (the third may still be in the SDK's queue).
            assert receiver.counts.db_failures >= 10
            # The connection stayed up all along.
            assert server.socket_clients == 1
            assert server.calls["apps.connections.open"] == 1
        finally:
            stoppable_database.start()

        assert server.wait_until_events_delivered(15)
        assert server.events_dropped() == []
        sent = sent_event_ids(server)
        assert sorted(server.events_acknowledged()) == sorted(sent)
        rows = inbox_rows(engine)
        assert sorted(r["event_id"] for r in rows) == sorted(sent)  # each exactly once
        assert len(rows) == 7
        assert receiver.counts.stored == 7
    failures = [r.getMessage() for r in caplog.records if "not acknowledged" in r.getMessage()]
    assert len(failures) >= 10
    assert all("OperationalError" in line for line in failures)
    assert "while PostgreSQL is down" not in caplog.text  # no payload text in the log


def test_socket_mode_receiver_stopped_half_way_and_restarted_loses_nothing(
    receiver_engine: Engine,
) -> None:
    workspace = small_workspace()
    with slack_events(workspace, ack_timeout=0.5, max_retries=100) as server:
        first = socket_receiver(receiver_engine, server)
        first.start()
        assert server.wait_for_socket_clients(1)

        # Events keep coming (for about 2 s) while the receiver stops and a new one starts.
        producer = threading.Thread(target=post_messages, args=(workspace, 40, "steady", 0.05))
        producer.start()
        deadline = time.monotonic() + 10
        while first.counts.stored < 5:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        first.stop()
        assert time.monotonic() - started < 2
        stored_by_the_first = first.counts.stored
        assert producer.is_alive()  # stopped half-way

        with socket_receiver(receiver_engine, server) as second:
            producer.join()
            assert server.wait_until_events_delivered(15)
            assert server.events_dropped() == []
            sent = sent_event_ids(server)
            assert len(sent) == 40
            rows = inbox_rows(receiver_engine)
            assert sorted(r["event_id"] for r in rows) == sorted(sent)
            assert stored_by_the_first + second.counts.stored == 40
            assert stored_by_the_first > 0


def test_socket_mode_reconnects_when_slack_closes_the_connection(
    receiver_engine: Engine,
) -> None:
    workspace = small_workspace()
    with (
        slack_events(workspace, ack_timeout=2.0) as server,
        socket_receiver(receiver_engine, server) as receiver,
    ):
        assert server.wait_for_socket_clients(1)
        post_messages(workspace, 1, "first connection")
        assert server.wait_until_events_delivered(5)

        # Slack's refresh: a `disconnect` message, then the close.
        assert server.disconnect_socket_clients() == 1
        assert server.wait_for_socket_clients(1, timeout=10)
        post_messages(workspace, 1, "second connection")
        assert server.wait_until_events_delivered(5)

        # A close without notice (a load balancer, a network blip).
        assert server.disconnect_socket_clients(send_disconnect=False) == 1
        assert server.wait_for_socket_clients(1, timeout=15)
        post_messages(workspace, 1, "third connection")
        assert server.wait_until_events_delivered(5)

        # A new URL for each connection (the `disconnect` message and the close may each ask
        # for one).
        assert server.calls["apps.connections.open"] >= 3
        assert len(inbox_rows(receiver_engine)) == 3
        assert receiver.counts.stored == 3


def test_socket_mode_envelope_it_cannot_store_is_acknowledged_and_logged(
    receiver_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    workspace = small_workspace()
    with (
        slack_events(workspace, ack_timeout=1.0) as server,
        socket_receiver(receiver_engine, server) as receiver,
    ):
        assert server.wait_for_socket_clients(1)
        broken = envelope("EvBROKEN1", text_="secret words of a user")
        del broken["event"]["type"]
        server.event_delivery.record(broken)
        assert server.wait_until_events_delivered(5)

        assert server.events_acknowledged() == ["EvBROKEN1"]
        assert inbox_rows(receiver_engine) == []
        assert receiver.counts.refused == 1
    (line,) = [
        r.getMessage()
        for r in caplog.records
        if "EvBROKEN1" in r.getMessage() or "`event.type`" in r.getMessage()
    ]
    assert "`event.type` is missing" in line
    assert "secret words" not in caplog.text


def test_socket_mode_refused_app_token_fails_start_in_one_line(receiver_engine: Engine) -> None:
    workspace = small_workspace()
    with slack_events(workspace) as server:
        before = set(threading.enumerate())
        wrong = "xapp-1-AOTHER-1-wrong-token"
        with pytest.raises(ReceiverError) as refused:
            socket_receiver(receiver_engine, server, app_token=wrong).start()
        message = str(refused.value)
        assert "invalid_auth" in message
        assert "TOBAN_SLACK_APP_TOKEN" in message
        assert wrong not in message
        assert "\n" not in message
        assert set(threading.enumerate()) - before == set()  # the SDK's threads are gone


def test_socket_mode_and_http_in_one_receiver_stop_quickly_without_leaking_threads(
    receiver_engine: Engine,
) -> None:
    workspace = small_workspace()
    with slack_events(workspace, ack_timeout=2.0) as server:
        before = set(threading.enumerate())
        config = http_config(app_token=SecretStr(APP_TOKEN))
        receiver = EventReceiver(
            receiver_engine, config, web_client=WebClient(base_url=server.base_url)
        )
        receiver.start()
        assert server.wait_for_socket_clients(1)
        assert config.transports == ["socket_mode", "http"]
        assert receiver.describe().startswith("Socket Mode, HTTP Events endpoint http://")
        post_messages(workspace, 1, "socket")
        assert post_event(address_of(receiver), envelope("EvHTTP0001")).status == 200
        assert server.wait_until_events_delivered(5)
        health = json.loads(request(address_of(receiver), "GET", HEALTH_PATH).body)
        assert health["socket_mode_connected"] is True
        assert health["transports"] == ["socket_mode", "http"]

        started = time.monotonic()
        receiver.stop()
        assert time.monotonic() - started < 2
        assert set(threading.enumerate()) - before == set()
        assert server.wait_for_socket_clients(1, timeout=0.5) is False  # really disconnected
        transports = {r["event_id"]: r["transport"] for r in inbox_rows(receiver_engine)}
        assert transports.pop("EvHTTP0001") == "http"
        assert list(transports.values()) == ["socket_mode"]


# --- HTTP, delivered by the local Slack server --------------------------------------------------


def test_http_events_delivered_by_slack_with_retries_land_once_after_the_database_is_back(
    stoppable_database: StoppableDatabase,
) -> None:
    workspace = small_workspace()
    with (
        opened_engine(stoppable_database.url) as engine,
        EventReceiver(engine, http_config()) as receiver,
        FakeSlackServer(workspace, BOT_TOKEN) as server,
    ):
        host, port = address_of(receiver)
        server.enable_events(
            signing_secret=SIGNING_SECRET,
            request_url=f"http://{host}:{port}{EVENTS_PATH}",
            ack_timeout=3.0,
            max_retries=50,
            retry_delay=0.2,
        )
        stoppable_database.stop()
        try:
            post_messages(workspace, 3, "while PostgreSQL is down")
            deadline = time.monotonic() + 10
            while receiver.counts.db_failures < 6:
                assert time.monotonic() < deadline, server.delivery_attempts()
                time.sleep(0.05)
            assert server.events_acknowledged() == []
            outcomes = {(a.outcome, a.status) for a in server.delivery_attempts()}
            assert outcomes == {("http_error", 503)}
        finally:
            stoppable_database.start()

        assert server.wait_until_events_delivered(15)
        assert server.internal_errors == []
        rows = inbox_rows(engine)
        assert sorted(r["event_id"] for r in rows) == sorted(sent_event_ids(server))
        assert len(rows) == 3
