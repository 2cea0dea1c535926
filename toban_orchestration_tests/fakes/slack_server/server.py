"""A local Slack Web API server over ``FakeWorkspace``s, for tests that use the real slack-sdk.

Why a real HTTP server instead of mocks: the production code talks to Slack through
``slack_sdk.WebClient``; only a server exercises what the SDK really sends (the sync client sends
every method as a form-encoded POST, whatever ``http_verb`` its method declares), its retry
handlers (429 with ``Retry-After``, 5xx, dropped connections) and its error mapping.

The server behaves like Slack as described in shared/STACK_NOTES.md: HTTP 200 with
``ok: false`` for Slack errors, cursor pagination that may return short pages while more remain,
a page-size cap like the 2025 limits for non-Marketplace apps, and fault injection per method.
Rate limiting is off unless asked for, so tests never sleep by accident.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import collections
import json
import math
import ssl
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, cast
from urllib.parse import parse_qsl, urlsplit

from toban_orchestration.slack.sample import (
    THREAD_BROADCAST,
    Channel,
    JSONDict,
    Message,
    WorkspaceError,
    int_to_ts,
    ts_to_int,
)

from ..http_base import LocalHTTPServer, LocalRequestHandler
from .events import (
    DEFAULT_APP_TOKEN,
    DEFAULT_SIGNING_SECRET,
    DeliveryAttempt,
    EventDelivery,
    SignedPost,
    post_signed,
    url_verification_body,
)
from .workspace import JSON_ENCODER, FakeWorkspace

DEFAULT_TOKEN: Final = "xoxb-fake-token"

HISTORY_METHODS: Final = frozenset({"conversations.history", "conversations.replies"})
"""The methods Slack's 2025 limits cap at 15 items a page for non-Marketplace apps."""

FaultKind = Literal["ratelimited", "http_error", "slack_error", "drop", "slow"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, served instead of (or, for ``slow``, before) the answer."""

    kind: FaultKind
    status: int = 200
    error: str = ""
    retry_after: int = 1
    seconds: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Fault:
        """HTTP 429 with ``Retry-After`` and body ``{"ok": false, "error": "ratelimited"}``."""
        return cls("ratelimited", status=429, error="ratelimited", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """An HTTP 5xx (500 and 503 are what ``ServerErrorRetryHandler`` retries)."""
        return cls("http_error", status=status, error="internal_error")

    @classmethod
    def slack_error(cls, error: str) -> Fault:
        """HTTP 200 with ``ok: false`` and this error name (``internal_error``, ...)."""
        return cls("slack_error", status=200, error=error)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without answering (slack-sdk sees ``RemoteDisconnected``)."""
        return cls("drop")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally after ``seconds``, to exercise client timeouts."""
        return cls("slow", seconds=seconds)

    @classmethod
    def parse(cls, spec: Fault | str) -> Fault:
        """Shorthands: ``"ratelimited"``, ``"500"``/``"server_error"``, ``"503"``, ``"drop"``,
        ``"slow"`` (1 s); any other string is a Slack error name."""
        if isinstance(spec, Fault):
            return spec
        shorthands: dict[str, Callable[[], Fault]] = {
            "ratelimited": cls.rate_limited,
            "rate_limited": cls.rate_limited,
            "429": cls.rate_limited,
            "server_error": cls.server_error,
            "500": cls.server_error,
            "503": lambda: cls.server_error(503),
            "drop": cls.drop,
            "slow": lambda: cls.slow(1.0),
        }
        factory = shorthands.get(spec)
        return factory() if factory is not None else cls.slack_error(spec)


@dataclass(frozen=True)
class CallRecord:
    """One request as the server saw it, for assertions on what a client sent."""

    method: str
    http_verb: str
    content_type: str
    params: Mapping[str, str]
    status: int
    error: str | None
    fault: FaultKind | None
    rate_limited: bool = False


class _EncodedMessages(list[str]):
    """Messages already encoded (``FakeWorkspace.message_json``), written into the answer as
    they are."""


def _encode_answer(body: JSONDict) -> str:
    messages = body.get("messages")
    if not isinstance(messages, _EncodedMessages):
        return JSON_ENCODER.encode(body)
    # Only "ok" precedes "messages", so the first such text is the top-level key.
    head, found, tail = JSON_ENCODER.encode({**body, "messages": []}).partition('"messages":[]')
    assert found, "the answer lost its messages key"
    return f'{head}"messages":[{",".join(messages)}]{tail}'


@dataclass
class _Answer:
    status: int = 200
    body: JSONDict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


class SlackError(Exception):
    """Raised by method handlers: the server answers HTTP 200 ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _TokenState:
    workspace: FakeWorkspace
    revoked: bool = False
    inactive: bool = False
    expired: bool = False


@dataclass
class _RotationClient:
    """A Slack app's OAuth client, for token rotation (``oauth.v2.access``)."""

    client_id: str
    client_secret: str
    expires_in: int
    expire_rotated: bool
    refresh_tokens: dict[str, tuple[FakeWorkspace, str | None]] = field(default_factory=dict)
    """Live refresh token -> (workspace, the access token it last issued)."""


@dataclass(frozen=True)
class _Request:
    method: str
    params: Mapping[str, str]
    workspace: FakeWorkspace
    token: str


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def _encode_cursor(kind: str, value: int) -> str:
    """Opaque like Slack's (base64 of ``next_ts:...``), but decodable here."""
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def _decode_cursor(cursor: str | None, kind: str) -> int | None:
    if not cursor:
        return None
    try:
        prefix, _, value = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None


def page_count(items: int, limit: int, *, short_pages: bool = False) -> int:
    """How many pages a client needs for ``items`` at page size ``limit`` (at least one).

    With ``short_pages`` the server answers half a page while more than a page remains: the
    same rule ``_page_length`` applies, so ``minimum_calls`` stays exact.
    """
    if items <= limit:
        return 1
    step = _short_step(limit) if short_pages else limit
    return math.ceil((items - limit) / step) + 1


def _short_step(limit: int) -> int:
    return max(1, (limit + 1) // 2)


def minimum_calls(
    workspace: FakeWorkspace,
    *,
    page_size: int = 200,
    list_page_size: int | None = None,
    max_page_size: int | None = None,
    capped_methods: Iterable[str] = HISTORY_METHODS,
    short_pages: bool = False,
    repeat_thread_parent: bool = False,
    join_channels: bool = True,
    include_archived: bool = True,
) -> dict[str, int]:
    """The fewest API calls a perfect full sync of ``workspace`` needs, per method and total.

    A perfect sync lists users and all conversation types once, joins the public channels it
    is not in (``join_channels``), pages through each readable channel's history, pages through
    ``conversations.replies`` for each thread with replies, and calls ``reactions.get`` once per
    message with a reaction whose ``count`` exceeds its listed users. ``page_size`` is the
    ``limit`` it sends for messages, ``list_page_size`` (default ``page_size``) for users and
    conversations; the other arguments mirror the server's settings.
    """
    capped = frozenset(capped_methods)
    list_limit = list_page_size or page_size

    def effective(method: str, limit: int, maximum: int) -> int:
        limit = min(limit, maximum)
        if max_page_size is not None and method in capped:
            limit = min(limit, max_page_size)
        return limit

    history_limit = effective("conversations.history", page_size, 999)
    replies_limit = effective("conversations.replies", page_size, 1000)
    users_limit = effective("users.list", list_limit, 1000)
    channels_limit = effective("conversations.list", list_limit, 999)
    result = dict.fromkeys(
        (
            "users.list",
            "conversations.list",
            "conversations.join",
            "conversations.history",
            "conversations.replies",
            "reactions.get",
        ),
        0,
    )
    with workspace.lock:
        result["users.list"] = page_count(
            len(workspace.users), users_limit, short_pages=short_pages
        )
        listed = [c for c in workspace.channels if include_archived or not c.is_archived]
        result["conversations.list"] = page_count(
            len(listed), channels_limit, short_pages=short_pages
        )
        for channel in listed:
            if not channel.is_member:
                if not (join_channels and channel.kind == "public" and not channel.is_archived):
                    continue
                result["conversations.join"] += 1
            result["conversations.history"] += page_count(
                len(channel.history), history_limit, short_pages=short_pages
            )
            for parent in channel.thread_parents():
                replies = len(parent.replies or ())
                if repeat_thread_parent:
                    pages = page_count(replies, max(1, replies_limit - 1), short_pages=short_pages)
                else:
                    pages = page_count(1 + replies, replies_limit, short_pages=short_pages)
                result["conversations.replies"] += pages
            result["reactions.get"] += sum(
                1 for m in channel.by_ts.values() if m.has_incomplete_reactions
            )
    result["total"] = sum(result.values())
    return result


class FakeSlackServer(LocalHTTPServer[CallRecord]):
    """A Slack Web API on ``127.0.0.1:<free port>``, serving workspaces chosen by token.

    Use it as a context manager; point ``WebClient(token=..., base_url=server.base_url)`` at it.

    ``short_pages``: answer half a page while more remain (clients that stop on a short page
    miss data). ``max_page_size``: cap pages of ``capped_methods`` whatever ``limit`` says
    (15 is Slack's 2025 limit for non-Marketplace apps). ``repeat_thread_parent``: put the
    parent first on every ``conversations.replies`` page, not only the first (clients must
    de-duplicate). ``rate_limits``: calls per ``rate_limit_window`` seconds allowed per method
    and token, beyond which the server answers 429 with ``Retry-After``. ``idle_timeout``:
    seconds after which an idle keep-alive connection is closed, as Slack's front ends do.
    ``tls``: serve HTTPS with this server context (``base_url`` then starts with https).
    """

    thread_name: ClassVar[str] = "fake-slack-server"
    base_path: ClassVar[str] = "/api/"  # the trailing slash matters to slack-sdk

    def __init__(
        self,
        workspace: FakeWorkspace | None = None,
        token: str = DEFAULT_TOKEN,
        *,
        short_pages: bool = False,
        max_page_size: int | None = None,
        capped_methods: Iterable[str] = HISTORY_METHODS,
        repeat_thread_parent: bool = False,
        rate_limits: Mapping[str, int] | None = None,
        rate_limit_window: float = 60.0,
        log_params: bool = True,
        idle_timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(_Handler, tls=tls)
        self.short_pages = short_pages
        self.idle_timeout = idle_timeout
        self.max_page_size = max_page_size
        self.capped_methods = frozenset(capped_methods)
        self.repeat_thread_parent = repeat_thread_parent
        self.rate_limits: dict[str, int] = dict(rate_limits or {})
        self.rate_limit_window = rate_limit_window
        self.log_params = log_params
        self._tokens: dict[str, _TokenState] = {}
        self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(
            collections.deque
        )
        self._calls: collections.Counter[str] = collections.Counter()
        self._faults_served: collections.Counter[str] = collections.Counter()
        self._recent: dict[tuple[str, str], collections.deque[float]] = {}
        self._rate_limited = 0
        self._rotation: _RotationClient | None = None
        self._rotations = 0
        self.internal_errors: list[str] = []
        """Tracebacks of exceptions in the server itself (a test should assert it is empty)."""
        self._events: EventDelivery | None = None
        self._events_live = False
        self._event_workspaces: list[FakeWorkspace] = []
        self._verification_token = ""
        self._handlers: dict[str, Callable[[_Request], JSONDict]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "team.info": self._team_info,
            "users.list": self._users_list,
            "users.info": self._users_info,
            "conversations.list": self._conversations_list,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.join": self._conversations_join,
            "reactions.get": self._reactions_get,
        }
        if workspace is not None:
            self.add_workspace(workspace, token)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Stop serving (see ``LocalHTTPServer.stop``). Event delivery stops too (its records
        stay readable); ``enable_events`` again after a restart."""
        self._stop_events()
        super().stop()

    # ------------------------------------------------------------------ configuration

    def add_workspace(self, workspace: FakeWorkspace, token: str = DEFAULT_TOKEN) -> None:
        """Serve ``workspace`` to requests bearing ``token`` (a workspace may have several)."""
        with self._lock:
            self._tokens[token] = _TokenState(workspace)
        if self._events_live and self._events is not None:
            self._subscribe(workspace, self._events)

    def revoke_token(self, token: str) -> None:
        """From now on this token gets ``token_revoked``."""
        with self._lock:
            self._tokens[token].revoked = True

    def deactivate_token(self, token: str) -> None:
        """From now on this token gets ``account_inactive``."""
        with self._lock:
            self._tokens[token].inactive = True

    def expire_token(self, token: str) -> None:
        """From now on this token gets ``token_expired``."""
        with self._lock:
            self._tokens[token].expired = True

    def enable_token_rotation(
        self,
        refresh_token: str,
        *,
        access_token: str | None = None,
        workspace: FakeWorkspace | None = None,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        expires_in: int = 43_200,
        expire_rotated: bool = True,
    ) -> None:
        """Serve ``oauth.v2.access`` with ``grant_type=refresh_token`` for ``refresh_token``.

        Each refresh issues a new access token and a new refresh token; the refresh token used
        stops working, and with ``expire_rotated`` so does the access token it replaces
        (``token_expired``), so a test proves the client switched to the new one. Fail a
        refresh with ``inject("oauth.v2.access", "invalid_refresh_token")``.
        """
        with self._lock:
            if workspace is None:
                if access_token is None:
                    raise ValueError("give the workspace or its current access token")
                workspace = self._tokens[access_token].workspace
            if self._rotation is None or self._rotation.client_id != client_id:
                self._rotation = _RotationClient(
                    client_id, client_secret, expires_in, expire_rotated
                )
            self._rotation.refresh_tokens[refresh_token] = (workspace, access_token)

    @property
    def token_rotations(self) -> int:
        """Successful ``oauth.v2.access`` refreshes so far."""
        with self._lock:
            return self._rotations

    def inject(self, method: str, fault: Fault | str, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` calls of ``method`` (``"*"``: any method).

        Faults of a method are consumed in the order they were injected; a method's own queue
        goes before the ``"*"`` queue.
        """
        parsed = Fault.parse(fault)
        with self._lock:
            self._faults[method].extend([parsed] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self, method: str | None = None) -> int:
        with self._lock:
            if method is not None:
                return len(self._faults.get(method, ()))
            return sum(len(queue) for queue in self._faults.values())

    # ------------------------------------------------------------------ observability

    @property
    def calls(self) -> collections.Counter[str]:
        """Requests per method so far, faults and rate-limited answers included (a copy)."""
        with self._lock:
            return collections.Counter(self._calls)

    @property
    def call_log(self) -> list[CallRecord]:
        return self.request_log

    @property
    def faults_served(self) -> int:
        with self._lock:
            return sum(self._faults_served.values())

    @property
    def faults_served_by_method(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self._faults_served)

    @property
    def rate_limited_calls(self) -> int:
        """429 answers produced by ``rate_limits`` (not by injected faults)."""
        with self._lock:
            return self._rate_limited

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()
            self._faults_served.clear()
            self._request_log.clear()
            self._rate_limited = 0

    def minimum_calls(
        self,
        page_size: int = 200,
        *,
        token: str | None = None,
        list_page_size: int | None = None,
        join_channels: bool = True,
        include_archived: bool = True,
    ) -> dict[str, int]:
        """``minimum_calls`` for the workspace behind ``token`` (default: the first one added),
        with this server's page cap, short pages and thread-parent settings."""
        with self._lock:
            if not self._tokens:
                raise RuntimeError("no workspace added")
            state = self._tokens[token] if token is not None else next(iter(self._tokens.values()))
        return minimum_calls(
            state.workspace,
            page_size=page_size,
            list_page_size=list_page_size,
            max_page_size=self.max_page_size,
            capped_methods=self.capped_methods,
            short_pages=self.short_pages,
            repeat_thread_parent=self.repeat_thread_parent,
            join_channels=join_channels,
            include_archived=include_archived,
        )

    # ------------------------------------------------------------------ Events API

    def enable_events(
        self,
        *,
        app_token: str = DEFAULT_APP_TOKEN,
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        ack_timeout: float = 3.0,
        max_retries: int = 3,
        request_url: str | None = None,
        retry_delay: float = 0.0,
        app_id: str | None = None,
        verification_token: str | None = None,
    ) -> None:
        """Deliver the Events API envelopes that the served workspaces record from now on.

        Without ``request_url``: Socket Mode. ``apps.connections.open`` with ``app_token``
        answers a ``ws://`` URL on a websocket server started here (slack-sdk's
        ``SocketModeClient`` connects to it). With ``request_url``: each envelope is POSTed
        there, signed with ``signing_secret``. Either way an envelope is redelivered while it
        is not acknowledged within ``ack_timeout`` seconds, at most ``max_retries`` times, each
        retry ``retry_delay`` seconds after the failure (Slack waits up to minutes).

        Sets ``events_enabled`` on every served workspace (and on those added later);
        ``app_id`` and ``verification_token``, when given, become theirs too, so that every
        envelope names one app. Calling it again replaces the previous delivery.
        """
        self._stop_events()
        workspaces = self._served_workspaces()
        if app_id is not None or verification_token is not None:
            for workspace in workspaces:
                with workspace.lock:
                    workspace.api_app_id = app_id or workspace.api_app_id
                    workspace.verification_token = (
                        verification_token or workspace.verification_token
                    )
        first = workspaces[0] if workspaces else None
        self._verification_token = verification_token or (
            first.verification_token if first is not None else "fake-verification-token"
        )
        events = EventDelivery(
            app_id=app_id or (first.api_app_id if first is not None else "AFAKEAPP"),
            app_token=app_token,
            signing_secret=signing_secret,
            ack_timeout=ack_timeout,
            max_retries=max_retries,
            request_url=request_url,
            retry_delay=retry_delay,
        )
        events.internal_errors = self.internal_errors
        events.start()
        self._events = events
        self._events_live = True
        for workspace in workspaces:
            self._subscribe(workspace, events)

    def _served_workspaces(self) -> list[FakeWorkspace]:
        with self._lock:
            states = list(self._tokens.values())
        return list({id(state.workspace): state.workspace for state in states}.values())

    def _subscribe(self, workspace: FakeWorkspace, events: EventDelivery) -> None:
        if any(known is workspace for known in self._event_workspaces):
            return
        with workspace.lock:
            workspace.events_enabled = True
            workspace.add_event_listener(events.record)
        self._event_workspaces.append(workspace)

    def _stop_events(self) -> None:
        if self._events is None or not self._events_live:
            return
        self._events_live = False
        for workspace in self._event_workspaces:
            workspace.remove_event_listener(self._events.record)
        self._event_workspaces.clear()
        self._events.stop()

    def _app_token_answer(self, method: str, token: str) -> _Answer:
        """``apps.connections.open`` takes the app-level token (``xapp-...``), which no other
        method accepts; a bot token gets ``not_allowed_token_type``, as from Slack."""
        with self._lock:
            bot_token = token in self._tokens
        events = self._events if self._events_live else None
        if bot_token:
            return _Answer(body={"ok": False, "error": "not_allowed_token_type"})
        if events is None or token != events.app_token or events.transport != "socket":
            return _Answer(body={"ok": False, "error": "invalid_auth"})
        if method != "apps.connections.open":
            return _Answer(body={"ok": False, "error": "not_allowed_token_type"})
        return _Answer(body={"ok": True, "url": events.open_connection_url()})

    @property
    def event_delivery(self) -> EventDelivery:
        """The delivery that ``enable_events`` started (for its settings and ports)."""
        if self._events is None:
            raise RuntimeError("events are not enabled: call enable_events()")
        return self._events

    def events_sent(self) -> list[JSONDict]:
        """Every envelope recorded since ``enable_events``, in order (copies)."""
        if self._events is None:
            return []
        return [json.loads(JSON_ENCODER.encode(envelope)) for envelope in self._events.sent()]

    def events_acknowledged(self) -> list[str]:
        """Event ids acknowledged (socket ack, or a 2xx from the Request URL), in order."""
        return [] if self._events is None else self._events.acknowledged()

    def pending_events(self) -> int:
        """Events neither acknowledged nor dropped yet."""
        return 0 if self._events is None else self._events.pending()

    def events_dropped(self) -> list[str]:
        """Event ids given up after ``max_retries`` retries."""
        return [] if self._events is None else self._events.dropped()

    def delivery_attempts(self) -> list[DeliveryAttempt]:
        """Every send so far with its outcome, in the order the outcomes were known."""
        return [] if self._events is None else self._events.attempts()

    def wait_until_events_delivered(self, timeout: float = 10.0) -> bool:
        """Wait until no event is pending; False if some still are after ``timeout``."""
        return True if self._events is None else self._events.wait_until_delivered(timeout)

    def wait_for_socket_clients(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``count`` Socket Mode connections are open (past their ``hello``)."""
        return self.event_delivery.wait_for_clients(count, timeout)

    @property
    def socket_clients(self) -> int:
        """Socket Mode connections open now."""
        return 0 if self._events is None else self._events.client_count()

    def disconnect_socket_clients(
        self, *, send_disconnect: bool = True, reason: str = "refresh_requested"
    ) -> int:
        """Close every Socket Mode connection, by default after a ``disconnect`` message as
        Slack sends before it refreshes a connection; returns how many there were."""
        return self.event_delivery.disconnect_clients(
            send_disconnect=send_disconnect, reason=reason
        )

    def post_signed(
        self,
        url: str | None,
        payload: JSONDict | bytes,
        *,
        timestamp: int | None = None,
        tamper_signature: bool = False,
        signed: bool = True,
        signing_secret: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> SignedPost:
        """POST ``payload`` to ``url`` (default: the Request URL) signed as Slack signs, or
        with an old ``timestamp``, a tampered signature or none, to test a receiver's refusals.
        The signing secret is ``enable_events``'s unless given."""
        secret = signing_secret or (
            self._events.signing_secret if self._events is not None else DEFAULT_SIGNING_SECRET
        )
        target = url or (self._events.request_url if self._events is not None else None)
        if not target:
            raise ValueError("no url given and no Request URL configured")
        return post_signed(
            target,
            payload,
            signing_secret=secret,
            timestamp=timestamp,
            tamper_signature=tamper_signature,
            signed=signed,
            headers=headers,
            timeout=timeout,
        )

    def send_url_verification(
        self,
        url: str | None = None,
        *,
        challenge: str | None = None,
        timestamp: int | None = None,
        tamper_signature: bool = False,
    ) -> str:
        """POST Slack's signed ``url_verification`` (``{"token", "challenge", "type"}``) as
        when a Request URL is saved; returns the answer's body (a receiver echoes the
        challenge). ``post_signed`` gives the status and headers too."""
        body = url_verification_body(self._verification_token or "fake-verification", challenge)
        answer = self.post_signed(url, body, timestamp=timestamp, tamper_signature=tamper_signature)
        return answer.body

    # ------------------------------------------------------------------ dispatch

    def _next_fault(self, method: str) -> Fault | None:
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                self._faults_served[method] += 1
                return queue.popleft()
        return None

    def _rate_limit(self, token: str, method: str) -> int | None:
        """Seconds to wait if this call exceeds the method's rate limit, else None (records it)."""
        limit = self.rate_limits.get(method)
        if limit is None:
            return None
        now = time.monotonic()
        recent = self._recent.setdefault((token, method), collections.deque())
        while recent and now - recent[0] >= self.rate_limit_window:
            recent.popleft()
        if len(recent) >= limit:
            return max(1, math.ceil(self.rate_limit_window - (now - recent[0])))
        recent.append(now)
        return None

    def _handle(
        self, method: str, verb: str, content_type: str, params: dict[str, str], auth: str
    ) -> _Answer:
        with self._lock:
            self._calls[method] += 1
            fault = self._next_fault(method)
        answer = self._answer(method, params, auth, fault)
        body = answer.body or {}
        record = CallRecord(
            method=method,
            http_verb=verb,
            content_type=content_type,
            params=params if self.log_params else {},
            status=answer.status,
            error=None if answer.drop or body.get("ok") else str(body.get("error")),
            fault=fault.kind if fault is not None else None,
            rate_limited=answer.status == 429 and fault is None,
        )
        with self._lock:
            self._request_log.append(record)
            if record.rate_limited:
                self._rate_limited += 1
        return answer

    def _answer(
        self, method: str, params: dict[str, str], auth: str, fault: Fault | None
    ) -> _Answer:
        if fault is not None:
            if fault.kind == "drop":
                return _Answer(drop=True)
            if fault.kind == "slow":
                if self._stopping.wait(fault.seconds):
                    return _Answer(drop=True)
            elif fault.kind == "ratelimited":
                return _Answer(
                    429,
                    {"ok": False, "error": "ratelimited"},
                    {"Retry-After": str(fault.retry_after)},
                )
            else:
                return _Answer(fault.status, {"ok": False, "error": fault.error})
        if method == "oauth.v2.access":  # client credentials, not a token
            return self._oauth_v2_access(params, auth)
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        token = token or params.get("token", "")
        if not token:
            return _Answer(body={"ok": False, "error": "not_authed"})
        if method == "apps.connections.open" or token.startswith("xapp-"):
            return self._app_token_answer(method, token)
        with self._lock:
            state = self._tokens.get(token)
            if state is None:
                return _Answer(body={"ok": False, "error": "invalid_auth"})
            if state.revoked or state.workspace.token_revoked:
                return _Answer(body={"ok": False, "error": "token_revoked"})
            if state.inactive or state.workspace.account_inactive:
                return _Answer(body={"ok": False, "error": "account_inactive"})
            if state.expired:
                return _Answer(body={"ok": False, "error": "token_expired"})
            wait = self._rate_limit(token, method)
        if wait is not None:
            return _Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
        handler = self._handlers.get(method)
        if handler is None:
            return _Answer(body={"ok": False, "error": "unknown_method"})
        request = _Request(method, params, state.workspace, token)
        try:
            with state.workspace.lock:
                body = handler(request)
        except SlackError as error:
            return _Answer(body={"ok": False, "error": error.error, **error.extra})
        except WorkspaceError as error:
            return _Answer(body={"ok": False, "error": error.error})
        return _Answer(body={"ok": True, **body})

    def _oauth_v2_access(self, params: Mapping[str, str], auth: str) -> _Answer:
        """Token rotation as Slack does it: Basic auth (or form fields) with the app's client
        id and secret, ``grant_type=refresh_token`` and a live refresh token."""
        client_id, client_secret = params.get("client_id", ""), params.get("client_secret", "")
        if auth.startswith("Basic "):
            try:
                decoded = base64.b64decode(auth.removeprefix("Basic ").strip()).decode()
            except (binascii.Error, UnicodeDecodeError):
                return _Answer(body={"ok": False, "error": "invalid_client_id"})
            client_id, _, client_secret = decoded.partition(":")
        with self._lock:
            rotation = self._rotation
            if rotation is None or client_id != rotation.client_id:
                return _Answer(body={"ok": False, "error": "invalid_client_id"})
            if client_secret != rotation.client_secret:
                return _Answer(body={"ok": False, "error": "bad_client_secret"})
            if params.get("grant_type") != "refresh_token":
                return _Answer(body={"ok": False, "error": "invalid_grant_type"})
            live = rotation.refresh_tokens.pop(params.get("refresh_token", ""), None)
            if live is None:
                return _Answer(body={"ok": False, "error": "invalid_refresh_token"})
            workspace, previous = live
            self._rotations += 1
            serial = self._rotations
            access = f"xoxe.xoxb-1-rotated-{serial}-{workspace.team_id}"
            refresh = f"xoxe-1-refresh-{serial}-{workspace.team_id}"
            self._tokens[access] = _TokenState(workspace)
            if rotation.expire_rotated and previous is not None and previous in self._tokens:
                self._tokens[previous].expired = True
            rotation.refresh_tokens[refresh] = (workspace, access)
            bot = workspace.user(workspace.bot_user_id)
        return _Answer(
            body={
                "ok": True,
                "app_id": "AFAKEAPP",
                "access_token": access,
                "token_type": "bot",
                "scope": "channels:history,channels:read,users:read,reactions:read,team:read",
                "bot_user_id": bot.id,
                "team": {"id": workspace.team_id, "name": workspace.team_name},
                "enterprise": None,
                "is_enterprise_install": False,
                "expires_in": rotation.expires_in,
                "refresh_token": refresh,
            }
        )

    # ------------------------------------------------------------------ helpers

    def _limit(self, request: _Request, default: int, maximum: int) -> int:
        """The page size: the ``limit`` asked for (0 or absent: ``default``), capped."""
        raw = request.params.get("limit", "").strip()
        try:
            limit = int(raw) if raw else 0
        except ValueError:
            raise SlackError("invalid_limit") from None
        if limit < 0:
            raise SlackError("invalid_limit")
        limit = min(limit or default, maximum)
        if self.max_page_size is not None and request.method in self.capped_methods:
            limit = min(limit, self.max_page_size)
        return max(1, limit)

    def _page_length(self, available: int, limit: int) -> int:
        if available <= limit:
            return available
        return _short_step(limit) if self.short_pages else limit

    @staticmethod
    def _ts_param(request: _Request, name: str, error: str) -> int | None:
        raw = request.params.get(name, "").strip()
        if not raw:
            return None
        try:
            return ts_to_int(raw)
        except ValueError:
            raise SlackError(error) from None

    @staticmethod
    def _channel(request: _Request, *, readable: bool) -> Channel:
        """The ``channel`` param's conversation; a private one we are not in does not exist."""
        channel_id = request.params.get("channel", "").strip()
        if not channel_id:
            raise SlackError("channel_not_found")
        channel = request.workspace.channel(channel_id)
        if not channel.is_member:
            if channel.is_private:
                raise SlackError("channel_not_found")
            if readable:
                raise SlackError("not_in_channel")
        return channel

    def refuse_channel(self, channel_id: str, error: str, **extra: Any) -> None:
        """From now on every call about ``channel_id`` (history, replies, info, members, join,
        reactions.get) answers ``{"ok": false, "error": error, **extra}``, as Slack does for a
        channel it refuses (``missing_scope`` with ``needed=...``, say)."""

        def refusing(handler: Callable[[_Request], JSONDict]) -> Callable[[_Request], JSONDict]:
            def answer(request: _Request) -> JSONDict:
                if request.params.get("channel", "").strip() == channel_id:
                    raise SlackError(error, **extra)
                return handler(request)

            return answer

        for method in ("history", "replies", "info", "members", "join"):
            self._handlers[f"conversations.{method}"] = refusing(
                self._handlers[f"conversations.{method}"]
            )
        self._handlers["reactions.get"] = refusing(self._handlers["reactions.get"])

    @staticmethod
    def _metadata(next_cursor: str) -> JSONDict:
        return {"response_metadata": {"next_cursor": next_cursor}}

    # ------------------------------------------------------------------ methods

    def _api_test(self, request: _Request) -> JSONDict:
        return {"args": dict(request.params)}

    def _auth_test(self, request: _Request) -> JSONDict:
        workspace = request.workspace
        bot = workspace.user(workspace.bot_user_id)
        return {
            "url": f"https://{workspace.domain}.slack.com/",
            "team": workspace.team_name,
            "user": bot.name,
            "team_id": workspace.team_id,
            "user_id": bot.id,
            "bot_id": bot.bot_id,
            "is_enterprise_install": False,
        }

    def _team_info(self, request: _Request) -> JSONDict:
        workspace = request.workspace
        return {
            "team": {
                "id": workspace.team_id,
                "name": workspace.team_name,
                "url": f"https://{workspace.domain}.slack.com/",
                "domain": workspace.domain,
                "email_domain": "example.com",
                "icon": {
                    "image_34": "https://avatars.example.com/team_34.png",
                    "image_68": "https://avatars.example.com/team_68.png",
                    "image_default": True,
                },
                "avatar_base_url": "https://avatars.example.com/",
                "is_verified": False,
            }
        }

    def _offset_page(
        self, request: _Request, items: list[Any], default: int, maximum: int
    ) -> tuple[list[Any], str]:
        """A page of a list addressed by position (users, conversations, members)."""
        limit = self._limit(request, default, maximum)
        start = _decode_cursor(request.params.get("cursor"), "offset") or 0
        length = self._page_length(max(0, len(items) - start), limit)
        end = start + length
        return items[start:end], _encode_cursor("offset", end) if end < len(items) else ""

    def _users_list(self, request: _Request) -> JSONDict:
        workspace = request.workspace
        # Slack: no limit means everyone at once (it recommends paginating).
        users, cursor = self._offset_page(
            request, workspace.users, default=len(workspace.users) or 1, maximum=1000
        )
        return {
            "members": [workspace.render_user(user) for user in users],
            "cache_ts": int(time.time()),
            **self._metadata(cursor),
        }

    def _users_info(self, request: _Request) -> JSONDict:
        workspace = request.workspace
        return {"user": workspace.render_user(workspace.user(request.params.get("user", "")))}

    def _conversations_list(self, request: _Request) -> JSONDict:
        raw_limit = request.params.get("limit", "").strip()
        if raw_limit.isdigit() and int(raw_limit) >= 1000:
            raise SlackError("invalid_limit")
        types = {t.strip() for t in request.params.get("types", "public_channel").split(",")}
        types.discard("")
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            raise SlackError("invalid_types")
        exclude_archived = _flag(request.params.get("exclude_archived"))
        selected = [
            channel
            for channel in request.workspace.channels
            if channel.slack_type in types
            and not (exclude_archived and channel.is_archived)
            # A bot sees the private conversations it is in, never the others.
            and (channel.is_member or not channel.is_private)
        ]
        page, cursor = self._offset_page(request, selected, default=100, maximum=999)
        return {
            "channels": [request.workspace.render_channel(channel) for channel in page],
            **self._metadata(cursor),
        }

    def _conversations_info(self, request: _Request) -> JSONDict:
        channel = self._channel(request, readable=False)
        return {"channel": request.workspace.render_channel(channel)}

    def _conversations_members(self, request: _Request) -> JSONDict:
        channel = self._channel(request, readable=False)
        members, cursor = self._offset_page(request, channel.members, default=100, maximum=1000)
        return {"members": list(members), **self._metadata(cursor)}

    def _conversations_join(self, request: _Request) -> JSONDict:
        channel_id = request.params.get("channel", "").strip()
        channel = request.workspace.channel(channel_id)
        joined = request.workspace.join(channel.id)
        result: JSONDict = {"channel": request.workspace.render_channel(channel)}
        if not joined:
            result["warning"] = "already_in_channel"
            result["response_metadata"] = {"warnings": ["already_in_channel"]}
        return result

    def _conversations_history(self, request: _Request) -> JSONDict:
        """Newest first, top-level messages and broadcast replies, in (oldest, latest)."""
        channel = self._channel(request, readable=True)
        limit = self._limit(request, default=100, maximum=999)
        oldest = self._ts_param(request, "oldest", "invalid_ts_oldest")
        latest = self._ts_param(request, "latest", "invalid_ts_latest")
        inclusive = _flag(request.params.get("inclusive"))
        stamps = channel.history_ts
        low = 0
        if oldest is not None:
            low = (bisect.bisect_left if inclusive else bisect.bisect_right)(stamps, oldest)
        high = len(stamps)
        if latest is not None:
            high = (bisect.bisect_right if inclusive else bisect.bisect_left)(stamps, latest)
        before = _decode_cursor(request.params.get("cursor"), "next_ts")
        if before is not None:
            high = min(high, bisect.bisect_right(stamps, before))
        start = high - self._page_length(max(0, high - low), limit)
        encoded = request.workspace.message_json
        history = channel.history
        messages = _EncodedMessages(
            [encoded(channel, history[i]) for i in range(high - 1, start - 1, -1)]
        )
        has_more = start > low
        return {
            "messages": messages,
            "has_more": has_more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            **self._metadata(_encode_cursor("next_ts", stamps[start - 1]) if has_more else ""),
        }

    def _conversations_replies(self, request: _Request) -> JSONDict:
        """The parent first, then its replies oldest first, in (oldest, latest)."""
        channel = self._channel(request, readable=True)
        raw_ts = request.params.get("ts", "").strip()
        if not raw_ts:
            raise SlackError("invalid_arguments")
        try:
            key = ts_to_int(raw_ts)
        except ValueError:
            raise SlackError("thread_not_found") from None
        found: Message | None = channel.by_ts.get(key)
        if found is None:
            raise SlackError("thread_not_found")
        parent = found.parent or found
        replies = parent.replies or []
        stamps = [reply.ts for reply in replies]
        limit = self._limit(request, default=1000, maximum=1000)
        oldest = self._ts_param(request, "oldest", "invalid_ts_oldest")
        latest = self._ts_param(request, "latest", "invalid_ts_latest")
        inclusive = _flag(request.params.get("inclusive"))
        low = 0
        if oldest is not None:
            low = (bisect.bisect_left if inclusive else bisect.bisect_right)(stamps, oldest)
        high = len(stamps)
        if latest is not None:
            high = (bisect.bisect_right if inclusive else bisect.bisect_left)(stamps, latest)
        after = _decode_cursor(request.params.get("cursor"), "next_ts")
        first_page = after is None
        if after is not None:
            low = max(low, bisect.bisect_left(stamps, after))
        remaining = max(0, high - low)
        if self.repeat_thread_parent:
            with_parent = True
            taken = self._page_length(remaining, max(1, limit - 1))
        elif first_page:
            with_parent = True
            taken = self._page_length(1 + remaining, limit) - 1
        else:
            with_parent = False
            taken = self._page_length(remaining, limit)
        encoded = request.workspace.message_json
        messages = _EncodedMessages([encoded(channel, parent)] if with_parent else [])
        messages.extend(encoded(channel, replies[i]) for i in range(low, low + taken))
        has_more = low + taken < high
        cursor = _encode_cursor("next_ts", stamps[low + taken]) if has_more else ""
        return {"messages": messages, "has_more": has_more, **self._metadata(cursor)}

    def _reactions_get(self, request: _Request) -> JSONDict:
        channel = self._channel(request, readable=False)
        raw_ts = request.params.get("timestamp", "").strip()
        if not raw_ts:
            raise SlackError("no_item_specified")
        try:
            message = request.workspace.find(channel.id, ts_to_int(raw_ts))
        except ValueError:
            raise SlackError("bad_timestamp") from None
        rendered = request.workspace.render_message(
            channel, message, full_reactions=_flag(request.params.get("full"))
        )
        rendered["permalink"] = (
            f"https://{request.workspace.domain}.slack.com/archives/{channel.id}/"
            f"p{int_to_ts(message.ts).replace('.', '')}"
        )
        if message.subtype == THREAD_BROADCAST or message.parent is not None:
            rendered["permalink"] += f"?thread_ts={int_to_ts((message.parent or message).ts)}"
        return {"type": "message", "channel": channel.id, "message": rendered}


def _params_from_body(content_type: str, body: bytes) -> dict[str, str]:
    """Form and JSON bodies as slack-sdk sends them; JSON values become strings like a form's."""
    if not body:
        return {}
    if content_type == "application/json":
        decoded = json.loads(body.decode("utf-8"))
        if not isinstance(decoded, dict):
            raise SlackError("invalid_json")
        return {str(key): _json_param(value) for key, value in decoded.items()}
    if content_type in ("application/x-www-form-urlencoded", ""):
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    raise SlackError("invalid_form_data")


def _json_param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_json_param(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return "" if value is None else str(value)


class _Handler(LocalRequestHandler):
    """Turns HTTP requests into ``FakeSlackServer._handle`` calls and writes the answers."""

    server_version = "FakeSlack/1.0"
    # A large answer goes out in several segments; on a keep-alive connection Nagle's algorithm
    # would hold the last one until the client's delayed ACK (about 40 ms an answer).
    disable_nagle_algorithm = True

    @property
    def app(self) -> FakeSlackServer:
        return cast(FakeSlackServer, self.local_server)

    def setup(self) -> None:
        super().setup()
        if self.app.idle_timeout is not None:
            self.connection.settimeout(self.app.idle_timeout)  # handle() then closes on timeout

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    # The Date header of the answers, formatted once a second rather than once an answer
    # (``email.utils.formatdate`` was a few percent of the server's CPU). A tuple so that a
    # reader sees a matching pair; threads racing at a new second both format it, harmlessly.
    _date: tuple[int, str] = (-1, "")

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        second, text = _Handler._date
        if second != now:
            text = super().date_time_string(now)
            _Handler._date = (now, text)
        return text

    def _serve(self, verb: str) -> None:
        app = self.app
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not url.path.startswith("/api/"):
            self._write(_Answer(404, {"ok": False, "error": "unknown_method"}))
            return
        method = url.path.removeprefix("/api/").strip("/")
        try:
            params = dict(parse_qsl(url.query, keep_blank_values=True)) if url.query else {}
            params.update(_params_from_body(content_type, body))
        except SlackError as error:
            self._write(_Answer(body={"ok": False, "error": error.error}))
            return
        except (ValueError, UnicodeDecodeError):
            self._write(_Answer(body={"ok": False, "error": "invalid_form_data"}))
            return
        try:
            answer = app._handle(
                method, verb, content_type, params, self.headers.get("Authorization") or ""
            )
        except Exception:
            app.internal_errors.append(traceback.format_exc())
            answer = _Answer(500, {"ok": False, "error": "fatal_error"})
        self._write(answer)

    def _write(self, answer: _Answer) -> None:
        if answer.drop:
            self.close_connection = True
            return
        payload = _encode_answer(answer.body or {}).encode()
        # The head and body go out in one write (``send_response``, ``send_header`` and
        # ``end_headers`` make it two), a system call less an answer; it holds what those send.
        if self.request_version != "HTTP/0.9":  # which has neither status line nor headers
            phrase = self.responses[answer.status][0] if answer.status in self.responses else ""
            lines = [
                f"{self.protocol_version} {answer.status} {phrase}",
                f"Server: {self.version_string()}",
                f"Date: {self.date_time_string()}",
                "Content-Type: application/json; charset=utf-8",
                f"Content-Length: {len(payload)}",
                f"X-Slack-Req-Id: fake-{id(answer):x}",
                *(f"{name}: {value}" for name, value in answer.headers.items()),
                "\r\n",
            ]
            payload = "\r\n".join(lines).encode("latin-1") + payload
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout during a slow answer)
