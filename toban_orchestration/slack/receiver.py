"""The Slack Events API receiver: Socket Mode and the HTTP Events endpoint, into the inbox.

Each delivery is written to `slack_event_inbox` in one short transaction, and Slack hears back
only after that transaction committed: the Socket Mode envelope is acknowledged, the HTTP request
answered 200. When the write fails (PostgreSQL down), nothing is acknowledged (Socket Mode) or the
request gets a 503 (HTTP), so Slack delivers the event again; redeliveries, and deliveries that
were stored but whose acknowledgement got lost, collapse on `event_id` in the inbox. Applying the
events to the Slack tables is the business of a Dagster sensor, not of this process.

`toban dev` runs a receiver next to Dagster, `toban events` on its own, and
deploy/kubernetes/events-receiver.yaml as a Deployment. No Dagster import here.

Secrets (the app-level token, the signing secret) are never logged, never put in an exception
message; payload text is never logged either (one line names the event id, its type, the field
at fault or the kind of database error).
"""

import json
import logging
import socket
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.error import URLError

import sqlalchemy.exc
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from sqlalchemy import Engine

from toban_orchestration.settings import Settings
from toban_orchestration.slack.events import (
    TRANSPORT_HTTP,
    TRANSPORT_SOCKET_MODE,
    EventEnvelopeError,
    InboxEvent,
    parse_envelope,
)
from toban_orchestration.slack.store import store_event_delivery

logger = logging.getLogger(__name__)
_SDK_LOGGER = logging.getLogger("toban.events.socket_mode")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

MAX_BODY_BYTES = 1 << 20
"""Slack's envelopes are a few kB; a larger body is not Slack's and is refused unread."""
REQUEST_TIMEOUT_SECONDS = 5.0
"""A client that stops sending mid-request gives its thread back after this long (Slack itself
gives up after 3 s), which also bounds how long `stop()` waits for a request in progress."""
DATABASE_CONNECT_TIMEOUT_SECONDS = 2
"""For the receiver's engine: Slack waits 3 s for an answer, so a database that does not accept a
connection within 2 s (libpq's minimum) counts as down (503, no acknowledgement)."""
SOCKET_MODE_PING_INTERVAL_SECONDS = 5.0
"""slack-sdk's default: a connection without a pong for four intervals is replaced."""


class ReceiverError(RuntimeError):
    """The receiver cannot start. One line that names the setting to fix, never a secret."""


@dataclass(frozen=True)
class ReceiverConfig:
    """What the receiver serves. A transport whose secret is None is off."""

    app_token: SecretStr | None = None
    """Socket Mode's app-level token (`xapp-...`): set, the receiver connects through Socket
    Mode."""
    signing_secret: SecretStr | None = None
    """Set, the HTTP listener serves `POST /slack/events` and verifies each request with it."""
    http_listener: bool = False
    """Listen on host:port (GET /healthz, and the Events endpoint with a signing secret) even
    without a signing secret: Kubernetes probes a Socket Mode-only receiver there."""
    host: str = "127.0.0.1"
    port: int = 3001

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        socket_mode: bool = True,
        http: bool = True,
        health_without_http_events: bool = False,
        host: str | None = None,
        port: int | None = None,
    ) -> Self:
        """The transports the settings configure, minus those switched off (`--no-http`,
        `--no-socket-mode`)."""
        signing_secret = _configured(settings.slack_signing_secret) if http else None
        return cls(
            app_token=_configured(settings.slack_app_token) if socket_mode else None,
            signing_secret=signing_secret,
            http_listener=http and (signing_secret is not None or health_without_http_events),
            host=host if host is not None else settings.events_host,
            port=port if port is not None else settings.events_port,
        )

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @property
    def http_events(self) -> bool:
        return self.signing_secret is not None

    @property
    def transports(self) -> list[str]:
        """The transports that receive events (empty: nothing would arrive)."""
        return [TRANSPORT_SOCKET_MODE] * self.socket_mode + [TRANSPORT_HTTP] * self.http_events


def _configured(secret: SecretStr | None) -> SecretStr | None:
    """An empty value (a Secret's key left blank) configures nothing."""
    return secret if secret is not None and secret.get_secret_value().strip() else None


@dataclass(frozen=True)
class ReceiverCounts:
    stored: int = 0
    """Deliveries of events the inbox did not hold yet."""
    duplicates: int = 0
    """Redeliveries of events already in the inbox (counted in its `deliveries`)."""
    refused: int = 0
    """Requests or envelopes not stored: bad signature, not JSON, an envelope without a field
    the inbox needs."""
    db_failures: int = 0
    """Deliveries not acknowledged because the database write failed: Slack sends them again."""
    errors: int = 0
    """Deliveries not acknowledged because of an unexpected error (a bug): Slack sends them
    again."""

    def line(self) -> str:
        return (
            f"{self.stored} events stored, {self.duplicates} redeliveries, {self.refused} "
            f"refused, {self.db_failures} database failures, {self.errors} errors"
        )


class _Outcome(Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    FAILED = "failed"


class _Inbox:
    """Writes deliveries to the inbox and counts what happened, for both transports."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(
            ("stored", "duplicates", "refused", "db_failures", "errors"), 0
        )

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def counts(self) -> ReceiverCounts:
        with self._lock:
            return ReceiverCounts(**self._counts)

    def store(self, event: InboxEvent, transport: str) -> _Outcome:
        """One transaction; when this returns STORED or DUPLICATE the row is committed."""
        try:
            with self.engine.begin() as connection:
                new = store_event_delivery(connection, event, transport)
        except sqlalchemy.exc.SQLAlchemyError as error:
            self.count("db_failures")
            logger.warning(
                "Slack event %s (%s, %s) not stored, so not acknowledged (Slack delivers it "
                "again): %s",
                event.event_id, event.event_type, transport, database_error_summary(error),
            )  # fmt: skip
            return _Outcome.FAILED
        self.count("stored" if new else "duplicates")
        return _Outcome.STORED if new else _Outcome.DUPLICATE


def database_error_summary(error: BaseException) -> str:
    """What went wrong with the database, in one line without values of the row: the driver's
    first line for a connection-level error (server down, refused: it names host and database,
    and libpq never puts a password in it), only the kind of error and its SQLSTATE otherwise
    (a constraint's message quotes the values)."""
    original = getattr(error, "orig", None) or error
    kind = type(original).__name__
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        lines = str(original).strip().splitlines()
        return f"{kind}: {lines[0] if lines else 'no message'}"
    return kind + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


# --- Socket Mode ------------------------------------------------------------------------------


class _SocketMode:
    """slack-sdk's built-in Socket Mode client (no extra dependency), one listener on it."""

    def __init__(
        self, app_token: str, inbox: _Inbox, web_client: WebClient | None, ping_interval: float
    ) -> None:
        self.inbox = inbox
        self.client = SocketModeClient(
            app_token=app_token,
            web_client=web_client or WebClient(),
            logger=_SDK_LOGGER,
            # Slack closes connections now and then (a `disconnect` message a few seconds
            # ahead, or a plain close): the client opens a new one on its own.
            auto_reconnect_enabled=True,
            ping_interval=ping_interval,
        )
        self.client.socket_mode_request_listeners.append(self._on_request)

    def start(self) -> None:
        try:
            # apps.connections.open, then the WebSocket. A refused handshake is only logged by
            # the SDK; its monitor keeps retrying every ping interval.
            self.client.connect()
        except SlackApiError as error:
            self.client.close()
            code = error.response.get("error") if error.response is not None else None
            raise ReceiverError(
                f"Socket Mode: Slack refused apps.connections.open ({code or 'no error code'}); "
                "TOBAN_SLACK_APP_TOKEN must be the app's app-level token (xapp-...) with the "
                "connections:write scope"
            ) from None
        except (SlackClientError, URLError, OSError) as error:
            self.client.close()
            reason = getattr(error, "reason", None) or type(error).__name__
            raise ReceiverError(f"Socket Mode: cannot reach Slack's API ({reason})") from None

    def connected(self) -> bool:
        return self.client.is_connected()

    def stop(self) -> None:
        client = self.client
        # No new connection, and the message processor stops taking envelopes off its queue
        # (those left there were never acknowledged: Slack redelivers them).
        client.auto_reconnect_enabled = False
        client.closed = True
        # The processor waits up to 1 s on its queue; None is the SDK's own no-op message and
        # wakes it now. Once it has stopped, nothing new reaches the workers.
        client.message_queue.put(None)
        client.message_processor.event.set()
        client.message_processor.thread.join()
        # Envelopes being stored finish and are acknowledged while the connection is still up.
        client.message_workers.shutdown(wait=True)
        # The session's reader holds its lock in a recv() that times out only after 3 s; ending
        # the session and shutting the socket down wakes it now, so stop() takes milliseconds.
        client.current_session_state.terminated = True
        session = client.current_session
        sock = session.sock if session is not None else None
        if sock is not None:
            with suppress(OSError):  # already closed by the peer
                sock.shutdown(socket.SHUT_RDWR)
        client.close()

    def _on_request(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        """Runs in the SDK's worker threads; the SDK's `disconnect` handling happens before."""
        try:
            self._handle(client, request)
        except Exception as error:
            # A bug, not a condition we know: not acknowledged, so Slack delivers it again.
            self.inbox.count("errors")
            logger.error(
                "Socket Mode envelope %s not acknowledged after an unexpected %s",
                request.envelope_id, type(error).__name__,
            )  # fmt: skip

    def _handle(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        if request.type != "events_api":
            # Slash commands and interactivity are not this app's; acknowledged so that Slack
            # neither retries them nor shows the user an error.
            logger.info("Socket Mode %s envelope acknowledged and ignored", request.type)
            self._acknowledge(client, request.envelope_id)
            return
        try:
            event = parse_envelope(request.payload)
        except EventEnvelopeError as error:
            # Slack would send the same envelope again forever: acknowledged, not stored.
            self.inbox.count("refused")
            logger.warning(
                "Socket Mode envelope %s acknowledged without storing it: %s",
                request.envelope_id, error,
            )  # fmt: skip
            self._acknowledge(client, request.envelope_id)
            return
        if self.inbox.store(event, TRANSPORT_SOCKET_MODE) is _Outcome.FAILED:
            return  # not acknowledged: Slack redelivers it
        self._acknowledge(client, request.envelope_id)

    @staticmethod
    def _acknowledge(client: BaseSocketModeClient, envelope_id: str) -> None:
        try:
            client.send_socket_mode_response(SocketModeResponse(envelope_id=envelope_id))
        except (SlackClientError, OSError) as error:
            # Stored already (when it was an event): Slack's redelivery is counted, not doubled.
            logger.warning(
                "Socket Mode envelope %s not acknowledged, the connection went away (%s); Slack "
                "delivers it again",
                envelope_id, type(error).__name__,
            )  # fmt: skip


# --- HTTP Events endpoint -----------------------------------------------------------------------


class _HttpServer(ThreadingHTTPServer):
    """One thread per request; `server_close()` joins them (`block_on_close`), so a stopped
    receiver leaves no request thread behind."""

    daemon_threads = True
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], inbox: _Inbox, config: ReceiverConfig, health: "_Health"
    ) -> None:
        self.inbox = inbox
        self.health = health
        self.verifier = (
            SignatureVerifier(config.signing_secret.get_secret_value())
            if config.signing_secret is not None
            else None
        )
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a client that vanished is not news.
        logger.warning("HTTP request from %s failed", client_address[0] if client_address else "?")


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    # HTTP/1.0 (the default): one request per connection, so no idle keep-alive connection
    # holds a thread that stop() would have to wait for.
    timeout = REQUEST_TIMEOUT_SECONDS
    server_version = "toban-events"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        # The request line has no secret and no payload; at DEBUG, so Slack's traffic is quiet.
        logger.debug("HTTP %s: " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != HEALTH_PATH:
            self._reply(HTTPStatus.NOT_FOUND, "not found")
            return
        self._reply_json(HTTPStatus.OK, self.server.health())

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != EVENTS_PATH:
            self._reply(HTTPStatus.NOT_FOUND, "not found")
            return
        verifier = self.server.verifier
        if verifier is None:
            self._reply(HTTPStatus.NOT_FOUND, "the HTTP Events endpoint is off (no signing secret)")
            return
        body = self._read_body()
        if body is None:
            return
        timestamp = self.headers.get("X-Slack-Request-Timestamp")
        if not _signature_valid(verifier, body, timestamp, self.headers.get("X-Slack-Signature")):
            # No detail for the caller: it is not Slack, or not with this app's secret.
            self.server.inbox.count("refused")
            logger.warning(
                "Refused an HTTP event request from %s: missing, wrong or expired signature",
                self.client_address[0],
            )
            self._reply(HTTPStatus.UNAUTHORIZED, "")
            return
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            self._bad_request("the body is not JSON")
            return
        if not isinstance(envelope, dict):
            self._bad_request("the body is not a JSON object")
            return
        self._dispatch(envelope)

    def _dispatch(self, envelope: Mapping[str, Any]) -> None:
        kind = envelope.get("type")
        if kind == "url_verification":
            challenge = envelope.get("challenge")
            if not isinstance(challenge, str) or not challenge:
                self._bad_request("Slack url_verification: `challenge` is missing")
                return
            logger.info("Answered Slack's url_verification of the Request URL")
            self._reply_json(HTTPStatus.OK, {"challenge": challenge})
            return
        if kind == "app_rate_limited":
            # Slack pauses deliveries when an app gets more than 30,000 events an hour.
            logger.warning(
                "Slack reports app_rate_limited for team %s: events of this minute are dropped "
                "by Slack; the polling sync catches up",
                envelope.get("team_id"),
            )
            self._reply(HTTPStatus.OK, "")
            return
        try:
            event = parse_envelope(envelope)
        except EventEnvelopeError as error:
            self._bad_request(str(error))
            return
        retry = self.headers.get("X-Slack-Retry-Num")
        if retry:
            # Stored like the first delivery: the unique event_id makes it a counted no-op.
            logger.info(
                "Slack event %s: redelivery %s (%s)",
                event.event_id, retry, self.headers.get("X-Slack-Retry-Reason", "no reason"),
            )  # fmt: skip
        outcome = self.server.inbox.store(event, TRANSPORT_HTTP)
        if outcome is _Outcome.FAILED:
            # Not a 2xx: Slack retries (up to 3 times, with backoff).
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, "the inbox cannot be written right now")
            return
        self._reply(HTTPStatus.OK, "")

    def _read_body(self) -> bytes | None:
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self._reply(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
            return None
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            self._bad_request("Content-Length is not a number")
            return None
        if length > MAX_BODY_BYTES:
            self.server.inbox.count("refused")
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the body is too large")
            return None
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            body = b""
        if len(body) != length:
            self.server.inbox.count("refused")
            logger.warning("HTTP request from %s ended before its body", self.client_address[0])
            self.close_connection = True
            return None
        return body

    def _bad_request(self, reason: str) -> None:
        self.server.inbox.count("refused")
        logger.warning("Refused an HTTP event request (400): %s", reason)
        # A retry would not fix it: Slack is asked not to send it again.
        self._reply(HTTPStatus.BAD_REQUEST, reason, {"X-Slack-No-Retry": "1"})

    def _reply_json(self, status: HTTPStatus, body: Mapping[str, Any]) -> None:
        self._reply(status, json.dumps(body), content_type="application/json")

    def _reply(
        self,
        status: HTTPStatus,
        text: str,
        headers: Mapping[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        data = (text + "\n").encode() if text else b""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            # The client went away (Slack stops waiting after 3 s); the row, if any, is
            # committed and a redelivery will be counted.
            self.close_connection = True


def _signature_valid(
    verifier: SignatureVerifier, body: bytes, timestamp: str | None, signature: str | None
) -> bool:
    """slack-sdk's check: HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret, and
    a timestamp at most 5 minutes away (a replayed request is refused)."""
    try:
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, OverflowError):
        # A timestamp that is not a number, a body that is not UTF-8: not Slack's.
        return False


# --- the receiver -------------------------------------------------------------------------------


@dataclass
class _Health:
    receiver: "EventReceiver"
    started_at: float = field(default_factory=time.monotonic)

    def __call__(self) -> dict[str, Any]:
        counts = self.receiver.counts
        return {
            "status": "ok",
            "transports": self.receiver.config.transports,
            "socket_mode_connected": self.receiver.socket_mode_connected(),
            "uptime_seconds": round(time.monotonic() - self.started_at),
            "counts": vars(counts),
        }


class EventReceiver:
    """Receives Slack events through Socket Mode, the HTTP Events endpoint, or both, into the
    inbox. `start()` returns once listening (Socket Mode connected, or retrying in the
    background); `stop()` returns within a second or two with every thread and socket closed.

        with EventReceiver(engine, config) as receiver:
            ...  # events arrive in slack_event_inbox
    """

    def __init__(
        self,
        engine: Engine,
        config: ReceiverConfig,
        *,
        web_client: WebClient | None = None,
        ping_interval: float = SOCKET_MODE_PING_INTERVAL_SECONDS,
    ) -> None:
        """`web_client` reaches Slack's Web API for `apps.connections.open` (default: Slack;
        tests point it at a local server)."""
        self.config = config
        self._inbox = _Inbox(engine)
        self._web_client = web_client
        self._ping_interval = ping_interval
        self._socket_mode: _SocketMode | None = None
        self._http: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def counts(self) -> ReceiverCounts:
        return self._inbox.counts()

    @property
    def http_address(self) -> tuple[str, int] | None:
        """Where the HTTP listener is bound (the real port when the config asked for 0)."""
        if self._http is None:
            return None
        host, port = self._http.server_address[:2]
        return str(host), int(port)

    def socket_mode_connected(self) -> bool | None:
        """None when Socket Mode is off."""
        return self._socket_mode.connected() if self._socket_mode is not None else None

    def start(self) -> None:
        if not self.config.transports:
            raise ReceiverError(
                "no Slack event transport is configured: set TOBAN_SLACK_APP_TOKEN (Socket "
                "Mode) or TOBAN_SLACK_SIGNING_SECRET (HTTP Events endpoint)"
            )
        try:
            if self.config.http_listener or self.config.http_events:
                self._start_http()
            if self.config.app_token is not None:
                self._socket_mode = _SocketMode(
                    self.config.app_token.get_secret_value(),
                    self._inbox,
                    self._web_client,
                    self._ping_interval,
                )
                self._socket_mode.start()
        except BaseException:
            self._socket_mode = None  # it closed its own client
            self.stop()
            raise
        logger.debug("Slack event receiver started: %s", self.describe())

    def _start_http(self) -> None:
        address = (self.config.host, self.config.port)
        try:
            self._http = _HttpServer(address, self._inbox, self.config, _Health(self))
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise ReceiverError(
                f"cannot listen on {self.config.host}:{self.config.port} ({reason}); choose "
                "another with --host/--port or TOBAN_EVENTS_HOST/TOBAN_EVENTS_PORT"
            ) from None
        self._http_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="toban-events-http",
            daemon=True,
        )
        self._http_thread.start()

    def stop(self) -> None:
        """Stop both transports. Requests and envelopes in progress finish (their rows commit
        and are answered); nothing new is taken. Idempotent."""
        if self._socket_mode is not None:
            self._socket_mode.stop()
            self._socket_mode = None
        if self._http is not None:
            if self._http_thread is not None:
                self._http.shutdown()  # serve_forever returns within its poll interval
                self._http_thread.join()
            self._http.server_close()  # closes the socket, joins the request threads
            self._http = None
            self._http_thread = None
        logger.info("Slack event receiver stopped: %s", self.counts.line())

    def describe(self) -> str:
        """One line: which transports receive events, and where."""
        parts = []
        if self.config.socket_mode:
            parts.append("Socket Mode")
        address = self.http_address
        if address is not None:
            host, port = address
            base = f"http://{host}:{port}"
            if self.config.http_events:
                parts.append(f"HTTP Events endpoint {base}{EVENTS_PATH}")
            parts.append(f"health {base}{HEALTH_PATH}")
        elif self.config.http_events:
            parts.append("HTTP Events endpoint (not listening)")
        return ", ".join(parts) if parts else "nothing"
