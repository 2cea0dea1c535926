"""Slack Events API delivery for the fake server: Socket Mode and HTTP Request URLs.

Why a real transport: the product's receiver gets events through slack-sdk's
``SocketModeClient`` (a websocket it opens with ``apps.connections.open``) or as POSTs signed
the way Slack signs them. Only a server that really speaks both shows that the receiver
acknowledges in time, survives redeliveries (Slack delivers at least once) and refuses forged
or replayed requests.

What ``EventDelivery`` does, as Slack does (shared/STACK_NOTES.md, "Slack Events API"):

* Every envelope a ``FakeWorkspace`` records is delivered once, then again while it is not
  acknowledged: a Socket Mode envelope must be acked with its ``envelope_id`` within
  ``ack_timeout``; an HTTP POST must get a 2xx within ``ack_timeout``. A redelivery has the same
  ``event_id`` and ``retry_attempt`` (socket) or ``X-Slack-Retry-Num`` (HTTP) one higher; after
  ``max_retries`` retries the event is dropped and counted.
* Socket Mode: several connections at once, each envelope sent to one of them in turn; an
  envelope whose connection closes before its ack is sent again on another. Events recorded
  while no client is connected wait for one (an attempt is counted only when sent).
* Everything a test asserts on (envelopes recorded, acknowledged, dropped, each attempt) is
  kept under one lock, and ``stop`` ends every thread it started.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import secrets
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final, Literal
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve

from toban_orchestration.slack.sample import JSONDict

from .workspace import JSON_ENCODER

Transport = Literal["socket", "http"]
Outcome = Literal[
    "acknowledged", "timeout", "closed", "http_timeout", "http_error", "connection_failed"
]
"""What became of one delivery attempt. Socket Mode: ``acknowledged``, ``timeout`` (no ack in
time) or ``closed`` (its connection closed first). HTTP: ``acknowledged`` (a 2xx),
``http_timeout``, ``http_error`` (any other status) or ``connection_failed``; the last three
are also the ``X-Slack-Retry-Reason`` of the retry."""

DEFAULT_APP_TOKEN: Final = "xapp-1-AFAKEAPP-1-fake"
DEFAULT_SIGNING_SECRET: Final = "fake-signing-secret"
SLACK_USER_AGENT: Final = "Slackbot 1.0 (+https://api.slack.com/robots)"
_HTTP_WORKERS: Final = 4
"""Concurrent POSTs to a Request URL: Slack does not wait for one event before the next."""


def slack_signature(signing_secret: str, timestamp: str | int, body: bytes) -> str:
    """``X-Slack-Signature`` as Slack computes it: ``v0=`` and the hex HMAC-SHA256 of
    ``v0:{timestamp}:{body}`` keyed with the app's signing secret."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DeliveryAttempt:
    """One send of one event and what became of it."""

    event_id: str
    retry_attempt: int
    """0 for the first send, then 1, 2, ... (``X-Slack-Retry-Num`` over HTTP)."""
    transport: Transport
    outcome: Outcome
    envelope_id: str | None = None
    """Socket Mode's id for this send (each retry gets a new one)."""
    status: int | None = None
    """The HTTP status the Request URL answered (None when it did not)."""
    seconds: float = 0.0
    """From the send to the outcome."""


@dataclass(frozen=True)
class SignedPost:
    """A Request URL's answer to a signed POST."""

    status: int
    body: str
    headers: Mapping[str, str]
    """Names in lower case."""


def _is_open(connection: ServerConnection) -> bool:
    return connection.protocol.state is State.OPEN


@dataclass(eq=False)
class _SocketClient:
    connection: ServerConnection
    serial: int


@dataclass(eq=False)
class _Pending:
    """An event not yet acknowledged nor dropped."""

    envelope: JSONDict
    event_id: str
    due: float
    sends: int = 0
    retry_reason: str = ""
    in_flight: bool = False
    client: _SocketClient | None = None
    deadline: float = 0.0
    sent_at: float = 0.0
    envelope_ids: dict[str, int] = field(default_factory=dict)
    """Socket Mode envelope id of each send -> its retry_attempt (a late ack still counts)."""


def _http_post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> tuple[int, str, dict[str, str]]:
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port or 443, timeout=timeout
        )
    else:
        connection = http.client.HTTPConnection(
            parts.hostname or "", parts.port or 80, timeout=timeout
        )
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=dict(headers))
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return response.status, text, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def post_signed(
    url: str,
    payload: JSONDict | bytes,
    *,
    signing_secret: str,
    timestamp: int | None = None,
    tamper_signature: bool = False,
    signed: bool = True,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> SignedPost:
    """POST ``payload`` to a Request URL signed like Slack, or deliberately not.

    ``timestamp`` (default now) goes in ``X-Slack-Request-Timestamp`` and the signature: an
    old one (``int(time.time()) - 600``) tests the replay refusal. ``tamper_signature`` sends
    a signature with one hex digit changed; ``signed=False`` sends neither header.
    """
    body = payload if isinstance(payload, bytes) else JSON_ENCODER.encode(payload).encode()
    sent: dict[str, str] = {"Content-Type": "application/json", "User-Agent": SLACK_USER_AGENT}
    if signed:
        when = str(int(time.time()) if timestamp is None else timestamp)
        signature = slack_signature(signing_secret, when, body)
        if tamper_signature:
            signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        sent["X-Slack-Request-Timestamp"] = when
        sent["X-Slack-Signature"] = signature
    sent.update(headers or {})
    status, text, answer_headers = _http_post(url, body, sent, timeout)
    return SignedPost(status, text, answer_headers)


class EventDelivery:
    """Delivers recorded envelopes over one transport; see the module docstring.

    ``record`` is the listener a ``FakeWorkspace`` calls (with its lock held): it only queues.
    A dispatcher thread sends; Socket Mode connections each have a handler thread (the
    ``websockets`` sync server's); HTTP POSTs run on a small pool.
    """

    def __init__(
        self,
        *,
        app_id: str,
        app_token: str = DEFAULT_APP_TOKEN,
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        ack_timeout: float = 3.0,
        max_retries: int = 3,
        request_url: str | None = None,
        retry_delay: float = 0.0,
    ) -> None:
        if not app_token.startswith("xapp-"):
            raise ValueError("an app-level token starts with xapp-")
        if ack_timeout <= 0 or max_retries < 0 or retry_delay < 0:
            raise ValueError("need ack_timeout > 0, max_retries >= 0, retry_delay >= 0")
        if request_url is not None and urlsplit(request_url).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) Request URL: {request_url!r}")
        self.app_id = app_id
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.ack_timeout = ack_timeout
        self.max_retries = max_retries
        self.request_url = request_url
        self.retry_delay = retry_delay
        self.transport: Transport = "http" if request_url is not None else "socket"
        self.internal_errors: list[str] = []
        """Tracebacks of exceptions in delivery threads (a test should assert it is empty)."""
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self._by_envelope: dict[str, _Pending] = {}
        self._sent: list[JSONDict] = []
        self._acknowledged: list[str] = []
        self._dropped: list[str] = []
        self._attempts: list[DeliveryAttempt] = []
        self._clients: list[_SocketClient] = []
        self._tickets: set[str] = set()
        self._client_serial = itertools.count(1)
        self._next_client = 0
        self._late_acks = 0
        self._stopping = False
        self._started = False
        self._ws: Server | None = None
        self._threads: list[threading.Thread] = []
        self._posts: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.transport == "socket":
            self._ws = serve(
                self._serve_client,
                "127.0.0.1",
                0,
                process_request=self._check_ticket,
                compression=None,
                close_timeout=1.0,
            )
            self._threads.append(
                threading.Thread(
                    target=self._ws.serve_forever, name="fake-slack-socket-mode", daemon=True
                )
            )
        else:
            self._posts = ThreadPoolExecutor(
                max_workers=_HTTP_WORKERS, thread_name_prefix="fake-slack-events-http"
            )
        self._threads.append(
            threading.Thread(target=self._dispatch, name="fake-slack-events", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Close every websocket, stop the threads; events still pending stay pending."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        if self._ws is not None:
            self._ws.shutdown()  # closes the connections and waits for their handlers
        for thread in self._threads:
            thread.join(timeout=5)
        if self._posts is not None:
            self._posts.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ recording

    def record(self, envelope: JSONDict) -> None:
        """Queue a recorded envelope for delivery (the workspace's event listener)."""
        event_id = str(envelope.get("event_id", ""))
        with self._cond:
            if event_id in self._pending:
                return  # the same workspace subscribed twice
            self._sent.append(envelope)
            if self._stopping:
                return
            self._pending[event_id] = _Pending(envelope, event_id, due=time.monotonic())
            self._cond.notify_all()

    # ------------------------------------------------------------------ socket mode

    @property
    def socket_port(self) -> int:
        if self._ws is None:
            raise RuntimeError("Socket Mode is not running")
        return int(self._ws.socket.getsockname()[1])

    def open_connection_url(self) -> str:
        """A new ``wss``-like URL for ``apps.connections.open`` (here ``ws://``, loopback)."""
        if self.transport != "socket":
            raise RuntimeError("events go to a Request URL, not Socket Mode")
        ticket = str(uuid.uuid4())
        with self._cond:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.socket_port}/link/?ticket={ticket}&app_id={self.app_id}"

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        """Only URLs this server issued may connect, as only Slack's own tickets work."""
        url = urlsplit(request.path)
        ticket = parse_qs(url.query).get("ticket", [""])[0]
        with self._cond:
            known = ticket in self._tickets and not self._stopping
        if url.path.rstrip("/") != "/link" or not known:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid ticket\n")
        return None

    def _serve_client(self, connection: ServerConnection) -> None:
        client = _SocketClient(connection, next(self._client_serial))
        with self._cond:
            count = len(self._clients) + 1
        hello = {
            "type": "hello",
            "num_connections": count,
            "debug_info": {
                "host": f"applink-fake-{client.serial}",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }
        try:
            connection.send(JSON_ENCODER.encode(hello))
        except ConnectionClosed:
            return
        with self._cond:
            self._clients.append(client)
            self._cond.notify_all()
        try:
            for raw in connection:
                self._on_client_message(raw)
        except ConnectionClosed:
            pass
        except Exception:
            self.internal_errors.append(traceback.format_exc())
        finally:
            with self._cond:
                if client in self._clients:
                    self._clients.remove(client)
                now = time.monotonic()
                for item in list(self._pending.values()):
                    if item.in_flight and item.client is client:
                        self._failed(item, "closed", now)
                self._cond.notify_all()

    def _on_client_message(self, raw: str | bytes) -> None:
        """An acknowledgement is ``{"envelope_id": ...}`` (maybe with a ``payload``)."""
        try:
            message = json.loads(raw)
        except ValueError:
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not isinstance(envelope_id, str):
            return
        with self._cond:
            item = self._by_envelope.get(envelope_id)
            if item is None or item.event_id not in self._pending:
                self._late_acks += 1
                return
            self._attempts.append(
                DeliveryAttempt(
                    item.event_id,
                    item.envelope_ids[envelope_id],
                    "socket",
                    "acknowledged",
                    envelope_id=envelope_id,
                    seconds=time.monotonic() - item.sent_at,
                )
            )
            self._finish(item, acknowledged=True)
            self._cond.notify_all()

    def disconnect_clients(
        self, *, send_disconnect: bool = True, reason: str = "refresh_requested"
    ) -> int:
        """Close every websocket, first telling each to reconnect (``{"type": "disconnect"}``)
        as Slack does every few hours; returns how many were open. Unacknowledged envelopes
        are sent again on the next connection."""
        with self._cond:
            # No more envelopes for these: they go to the connections that replace them.
            clients = list(self._clients)
            self._clients.clear()
        for client in clients:
            if send_disconnect:
                notice = {
                    "type": "disconnect",
                    "reason": reason,
                    "debug_info": {"host": f"applink-fake-{client.serial}"},
                }
                try:
                    client.connection.send(JSON_ENCODER.encode(notice))
                except ConnectionClosed:
                    continue
            client.connection.close()
        return len(clients)

    def client_count(self) -> int:
        with self._cond:
            return len(self._clients)

    def wait_for_clients(self, count: int = 1, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._clients) >= count, timeout)

    # ------------------------------------------------------------------ delivery

    def _finish(self, item: _Pending, *, acknowledged: bool) -> None:
        """Acknowledged or dropped: no longer pending (call with the lock held)."""
        self._cond.notify_all()  # wait_until_delivered may be waiting for this
        del self._pending[item.event_id]
        for envelope_id in item.envelope_ids:
            self._by_envelope.pop(envelope_id, None)
        (self._acknowledged if acknowledged else self._dropped).append(item.event_id)

    def _failed(
        self,
        item: _Pending,
        outcome: Outcome,
        now: float,
        status: int | None = None,
        *,
        retry: bool = True,
    ) -> None:
        """Record a failed attempt (the item's latest send); schedule the retry, or drop the
        event after the last one (or at once without ``retry``)."""
        latest = max(item.envelope_ids, key=item.envelope_ids.__getitem__, default=None)
        self._attempts.append(
            DeliveryAttempt(
                item.event_id,
                item.sends - 1,
                self.transport,
                outcome,
                envelope_id=latest,
                status=status,
                seconds=now - item.sent_at,
            )
        )
        item.in_flight = False
        item.client = None
        if item.sends > self.max_retries or not retry:
            self._finish(item, acknowledged=False)
            return
        item.retry_reason = "timeout" if self.transport == "socket" else outcome
        item.due = now + self.retry_delay

    def _dispatch(self) -> None:
        try:
            while self._dispatch_once():
                pass
        except Exception:
            self.internal_errors.append(traceback.format_exc())

    def _dispatch_once(self) -> bool:
        """Wait until something can be sent, send it; False once stopping."""
        socket_mode = self.transport == "socket"
        sends: list[tuple[_Pending, _SocketClient | None, str | None, int, str]] = []
        with self._cond:
            while True:
                if self._stopping:
                    return False
                now = time.monotonic()
                wakes: list[float] = []
                for item in list(self._pending.values()):
                    if item.in_flight and socket_mode:
                        if now >= item.deadline:
                            self._failed(item, "timeout", now)
                        else:
                            wakes.append(item.deadline)
                ready = [i for i in self._pending.values() if not i.in_flight and i.due <= now]
                # A connection closing (its handler not yet done) gets no more envelopes.
                self._clients = [c for c in self._clients if _is_open(c.connection)]
                if ready and (self._clients or not socket_mode):
                    break
                wakes.extend(i.due for i in self._pending.values() if not i.in_flight)
                future = [when for when in wakes if when > now]
                self._cond.wait(min(future) - now if future else None)
            for item in ready:
                retry_attempt = item.sends
                item.sends += 1
                item.in_flight = True
                item.sent_at = now
                client: _SocketClient | None = None
                envelope_id: str | None = None
                if socket_mode:
                    client = self._clients[self._next_client % len(self._clients)]
                    self._next_client += 1
                    envelope_id = str(uuid.uuid4())
                    item.envelope_ids[envelope_id] = retry_attempt
                    self._by_envelope[envelope_id] = item
                    item.client = client
                    item.deadline = now + self.ack_timeout
                sends.append((item, client, envelope_id, retry_attempt, item.retry_reason))
        for item, client, envelope_id, retry_attempt, reason in sends:
            if client is not None and envelope_id is not None:
                self._send_socket(item, client, envelope_id, retry_attempt, reason)
            else:
                assert self._posts is not None
                self._posts.submit(self._post_event, item, retry_attempt, reason)
        return True

    def _send_socket(
        self,
        item: _Pending,
        client: _SocketClient,
        envelope_id: str,
        retry_attempt: int,
        reason: str,
    ) -> None:
        frame = {
            "envelope_id": envelope_id,
            "payload": item.envelope,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": reason,
        }
        try:
            client.connection.send(JSON_ENCODER.encode(frame))
        except ConnectionClosed:
            with self._cond:
                if client in self._clients:
                    self._clients.remove(client)
                # Unless the connection's handler already counted it as closed.
                if item.in_flight and item.client is client and item.event_id in self._pending:
                    self._failed(item, "closed", time.monotonic())
                    self._cond.notify_all()

    def _post_event(self, item: _Pending, retry_attempt: int, reason: str) -> None:
        """One POST to the Request URL, signed; a 2xx acknowledges."""
        try:
            assert self.request_url is not None
            body = JSON_ENCODER.encode(item.envelope).encode()
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": SLACK_USER_AGENT,
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": slack_signature(self.signing_secret, timestamp, body),
            }
            if retry_attempt > 0:
                headers["X-Slack-Retry-Num"] = str(retry_attempt)
                headers["X-Slack-Retry-Reason"] = reason
            status: int | None = None
            no_retry = False
            outcome: Outcome
            try:
                status, _, answer = _http_post(self.request_url, body, headers, self.ack_timeout)
                outcome = "acknowledged" if 200 <= status < 300 else "http_error"
                no_retry = answer.get("x-slack-no-retry") == "1"
            except TimeoutError:
                outcome = "http_timeout"
            except (OSError, http.client.HTTPException):
                outcome = "connection_failed"
        except Exception:
            self.internal_errors.append(traceback.format_exc())
            status, outcome, no_retry = None, "connection_failed", False
        with self._cond:
            if item.event_id not in self._pending:
                return
            now = time.monotonic()
            if outcome == "acknowledged":
                self._attempts.append(
                    DeliveryAttempt(
                        item.event_id,
                        retry_attempt,
                        "http",
                        outcome,
                        status=status,
                        seconds=now - item.sent_at,
                    )
                )
                self._finish(item, acknowledged=True)
            else:
                # X-Slack-No-Retry: 1 asks Slack not to send this event again.
                self._failed(item, outcome, now, status, retry=not no_retry)
            self._cond.notify_all()

    # ------------------------------------------------------------------ observability

    def sent(self) -> list[JSONDict]:
        with self._cond:
            return list(self._sent)

    def acknowledged(self) -> list[str]:
        with self._cond:
            return list(self._acknowledged)

    def dropped(self) -> list[str]:
        with self._cond:
            return list(self._dropped)

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def attempts(self) -> list[DeliveryAttempt]:
        with self._cond:
            return list(self._attempts)

    @property
    def late_acks(self) -> int:
        """Acks for envelopes no longer pending (already acked or dropped), ignored."""
        with self._cond:
            return self._late_acks

    def wait_until_delivered(self, timeout: float) -> bool:
        """Wait until no event is pending (each acknowledged or dropped)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)


def url_verification_body(token: str, challenge: str | None = None) -> JSONDict:
    """The body Slack POSTs when a Request URL is saved; the receiver must echo
    ``challenge``."""
    return {
        "token": token,
        "challenge": challenge or secrets.token_urlsafe(32),
        "type": "url_verification",
    }
