"""Slack Web API I/O: one slack-sdk WebClient per workspace, with slack-sdk's own retry handlers
(429 honouring Retry-After, 500/503, dropped connections), request pacing per method tier,
cursor pagination that reads every page, and counters for the run's metadata."""

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

# Slack's published tiers (requests per minute) for the methods we call.
METHOD_TIERS: dict[str, int] = {
    "users.list": 2,
    "conversations.list": 2,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.info": 3,
    "conversations.join": 3,
    "team.info": 3,
    "reactions.get": 3,
    "auth.test": 4,
}
TIER_REQUESTS_PER_MINUTE = {2: 20, 3: 50, 4: 100}
# Since 2025, commercially distributed non-Marketplace apps get 1 request a minute and 15 items
# a page on these two methods.
LIMITED_METHODS = {"conversations.history", "conversations.replies"}
LIMITED_PAGE_SIZE = 15
# slack-sdk logs whole response bodies (raw Slack text) at DEBUG whenever its logger's own level
# allows it; this one never goes below INFO, whatever the root logger is set to.
_SDK_LOGGER = logging.getLogger("toban.slack.sdk")
_SDK_LOGGER.setLevel(logging.INFO)


class SlackError(RuntimeError):
    """A Slack call failed for good (after retries). Never carries the token."""

    def __init__(self, method: str, error: str, detail: str = "") -> None:
        self.method = method
        self.error = error
        self.detail = detail
        super().__init__(f"Slack {method} failed: {error}{f' ({detail})' if detail else ''}")


class SlackAuthError(SlackError):
    """The token no longer works (invalid_auth, token_revoked, account_inactive, ...)."""


class SlackRefusedError(SlackError):
    """Slack refuses the app something about the whole workspace that only a change on Slack's
    side fixes (a scope the app was installed without, a permission an admin withholds):
    retrying the run cannot help, so Dagster does not."""

    def __init__(self, method: str, error: str, detail: str = "") -> None:
        super().__init__(method, error, detail)
        advice = (
            "reinstall the Slack app with that scope (docs/slack.md lists them)"
            if error == "missing_scope"
            else "a workspace admin must allow it; retrying will not help"
        )
        self.args = (f"{self.args[0]}: {advice}",)


class SlackChannelError(SlackError):
    """A channel-level refusal (not_in_channel, channel_not_found, ...): that channel is skipped,
    the others are synced."""


CHANNEL_METHODS = frozenset(
    {
        "conversations.history",
        "conversations.replies",
        "conversations.join",
        "conversations.info",
        "reactions.get",
    }
)
"""Methods about one channel (their `channel` argument): a refusal concerns that channel only."""
# What a Slack error means, by its name: the class raised and the methods where it means that
# (None: every method). An auth error (an uninstalled app's token gets one too) fails the run
# and marks the integration (Dagster does not retry it). A channel error from a method about
# one channel skips that channel; from a workspace-wide method (users.list, conversations.list)
# a refusal (WORKSPACE_REFUSALS) fails the run without retries, and anything else is a plain
# SlackError, like any error not listed here (ratelimited or a 5xx after slack-sdk's retries,
# internal_error, ...): the run fails and Dagster retries it.
ERROR_CLASSES: dict[str, tuple[type[SlackError], frozenset[str] | None]] = {
    "invalid_auth": (SlackAuthError, None),
    "not_authed": (SlackAuthError, None),
    "token_revoked": (SlackAuthError, None),
    "token_expired": (SlackAuthError, None),
    "account_inactive": (SlackAuthError, None),
    "not_in_channel": (SlackChannelError, CHANNEL_METHODS),
    "channel_not_found": (SlackChannelError, CHANNEL_METHODS),
    "method_not_supported_for_channel_type": (SlackChannelError, CHANNEL_METHODS),
    "is_archived": (SlackChannelError, CHANNEL_METHODS),
    "missing_scope": (SlackChannelError, CHANNEL_METHODS),
    "access_denied": (SlackChannelError, CHANNEL_METHODS),
    "no_permission": (SlackChannelError, CHANNEL_METHODS),
    "ekm_access_denied": (SlackChannelError, CHANNEL_METHODS),
    "channel_is_limited_access": (SlackChannelError, CHANNEL_METHODS),
}
WORKSPACE_REFUSALS = frozenset(
    {"missing_scope", "no_permission", "access_denied", "not_allowed_token_type"}
)
"""Errors that, from a workspace-wide method, raise SlackRefusedError (not retried)."""


@dataclass
class ApiStats:
    calls: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    """Retries by cause: rate_limited, server_error, connection_error."""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())


_RETRY_COUNT_LOCK = threading.Lock()


class _CountingRetryHandler(RetryHandler):
    """Delegates to one of slack-sdk's handlers and counts the retries it grants."""

    def __init__(
        self,
        inner: RetryHandler,
        stats: ApiStats,
        cause: str,
        on_retry_after: Callable[[str, float], None] | None = None,
        pace: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(max_retry_count=inner.max_retry_count)
        self._inner = inner
        self._stats = stats
        self._cause = cause
        self._on_retry_after = on_retry_after
        self._pace = pace

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        # `_can_retry` is the hook slack-sdk's RetryHandler leaves to subclasses; the inner
        # handler is asked through its public `can_retry` (the same attempt limit as ours).
        return self._inner.can_retry(state=state, request=request, response=response, error=error)

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        with _RETRY_COUNT_LOCK:
            self._stats.retries[self._cause] += 1
        method = request.url.rsplit("/", 1)[-1]
        if self._on_retry_after is not None and response is not None:
            wait = _retry_after(response)
            if wait is not None:
                self._on_retry_after(method, wait)
        self._inner.prepare_for_next_attempt(
            state=state, request=request, response=response, error=error
        )
        if self._pace is not None:
            # The retry is a call like any other: it takes the method's next paced turn.
            # Sent as soon as Retry-After ran out, it would land in the turns the other
            # threads took meanwhile, earn its own 429, and push theirs into one too.
            self._pace(method)


@dataclass(frozen=True)
class ClientOptions:
    base_url: str | None = None
    """slack-sdk's base URL with its trailing slash; None means https://slack.com/api/."""
    page_size: int = 200
    pacing: bool = True
    """Space requests by Slack's tier limits; off for local servers and benchmarks."""
    limited: bool = False
    """Slack's 2025 limits for non-Marketplace apps (15 a page, 1 a minute on history/replies)."""
    max_retries: int = 5
    retry_backoff_seconds: float = 0.5
    """Waits between retries of server and connection errors: this times 2^n, plus jitter."""
    timeout_seconds: int = 30


class _ProportionalJitter(Jitter):
    """Up to the interval again: slack-sdk's own jitter adds up to a whole second to every
    wait, whatever the backoff factor."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random())  # noqa: S311 (timing, not secrets)


def _retry_after(response: HttpResponse) -> float | None:
    values = response.headers.get("retry-after") or response.headers.get("Retry-After") or []
    value = values[0] if isinstance(values, list) and values else values
    try:
        return float(str(value)) if value else None
    except ValueError:
        return None


# A 429 on history/replies asking to wait this long is Slack's 2025 limit for non-Marketplace
# apps (1 call a minute), not a burst: the rest of the sync is paced for it.
LIMITED_RETRY_AFTER_SECONDS = 20.0


class _Pacer:
    """Minimum spacing between calls of one method, shared by the threads of one client."""

    def __init__(self, options: ClientOptions) -> None:
        self._options = options
        self._next_allowed: dict[str, float] = {}
        self._lock = threading.Lock()
        self.limited_detected = False
        """Slack answered a history or replies call with the 2025 limits' long Retry-After."""

    def retry_after(self, method: str, seconds: float) -> None:
        """Slack said to wait: no thread of this client calls the method before then (one
        429 is enough; the others would each earn their own)."""
        with self._lock:
            self._next_allowed[method] = max(
                self._next_allowed.get(method, 0.0), time.monotonic() + seconds
            )
            if method in LIMITED_METHODS and seconds >= LIMITED_RETRY_AFTER_SECONDS:
                self.limited_detected = True

    def interval(self, method: str) -> float:
        if (self._options.limited or self.limited_detected) and method in LIMITED_METHODS:
            return 60.0
        if not self._options.pacing:
            return 0.0
        tier = METHOD_TIERS.get(method, 3)
        return 60.0 / TIER_REQUESTS_PER_MINUTE[tier]

    def wait(self, method: str) -> None:
        interval = self.interval(method)
        if interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_allowed.get(method, now))
            self._next_allowed[method] = start + interval
        if start > now:
            time.sleep(start - now)


class SlackApi:
    """What the sync needs from Slack, page by page, through slack-sdk's own `WebClient` (which
    opens and closes a connection for each call). A context manager, as callers use it."""

    def __init__(self, token: str, options: ClientOptions | None = None) -> None:
        self.options = options or ClientOptions()
        self.stats = ApiStats()
        self._pacer = _Pacer(self.options)
        retries = self.options.max_retries
        backoff = BackoffRetryIntervalCalculator(
            backoff_factor=self.options.retry_backoff_seconds, jitter=_ProportionalJitter()
        )
        handlers: list[RetryHandler] = [
            _CountingRetryHandler(
                RateLimitErrorRetryHandler(max_retry_count=retries),  # waits Retry-After
                self.stats,
                "rate_limited",
                on_retry_after=self._pacer.retry_after,
                pace=self._pacer.wait,
            ),
            _CountingRetryHandler(
                ServerErrorRetryHandler(max_retry_count=retries, interval_calculator=backoff),
                self.stats,
                "server_error",
            ),
            _CountingRetryHandler(
                ConnectionErrorRetryHandler(max_retry_count=retries, interval_calculator=backoff),
                self.stats,
                "connection_error",
            ),
        ]
        kwargs: dict[str, Any] = {}
        if self.options.base_url:
            kwargs["base_url"] = self.options.base_url
        self._client = WebClient(
            token=token,
            timeout=self.options.timeout_seconds,
            retry_handlers=handlers,
            logger=_SDK_LOGGER,
            **kwargs,
        )
        self._stats_lock = threading.Lock()  # calls may come from several threads

    def close(self) -> None:
        """Nothing to release: slack-sdk's WebClient closes each call's connection."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def limited_detected(self) -> bool:
        """Slack's answers showed the 2025 limits for non-Marketplace apps on this token."""
        return self._pacer.limited_detected

    @property
    def page_size(self) -> int:
        return (
            min(self.options.page_size, LIMITED_PAGE_SIZE)
            if self.options.limited
            else (self.options.page_size)
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._pacer.wait(method)
        with self._stats_lock:
            self.stats.calls[method] += 1
        verb = "POST" if method == "conversations.join" else "GET"
        try:
            response = self._client.api_call(
                method, http_verb=verb, params=params if verb == "GET" else None,
                data=params if verb == "POST" else None,
            )  # fmt: skip
        except SlackApiError as error:
            raise _slack_error(method, error.response.status_code, error.response.data) from None
        data = response.data
        assert isinstance(data, dict)
        return data

    def paginate(
        self, method: str, items_key: str, **params: Any
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page until `next_cursor` is empty: a short page does not mean the end."""
        cursor = ""
        while True:
            page_params = {**params, "limit": self.page_size}
            if cursor:
                page_params["cursor"] = cursor
            data = self.call(method, **page_params)
            items = data.get(items_key) or []
            yield list(items)
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return


def _slack_error(method: str, status: int, body: object) -> SlackError:
    error = body.get("error", "") if isinstance(body, Mapping) else ""
    if not error:
        return SlackError(method, f"http_{status}", "no answer after retries")
    needed = body.get("needed") if isinstance(body, Mapping) else None
    detail = f"needs {needed}" if error == "missing_scope" and isinstance(needed, str) else ""
    kind, methods = ERROR_CLASSES.get(error, (SlackError, None))
    if methods is not None and method not in methods:
        kind = SlackRefusedError if error in WORKSPACE_REFUSALS else SlackError
    elif kind is SlackError and error in WORKSPACE_REFUSALS:
        kind = SlackRefusedError
    return kind(method, error, detail)
