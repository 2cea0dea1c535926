"""The Slack sync of one workspace: users, channels, and the messages (with thread replies and
reactions) of a range of UTC days per channel.

Reads come from a `SlackApi`; writes go through `SlackStore`, one short transaction per page, so
a run that fails half-way keeps what it stored (upserts make the re-run idempotent). A day is
recorded as complete, and messages missing from Slack are flagged deleted, only after its last
page was read.
"""

import contextlib
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from toban_orchestration.access.store import upsert_channel_resources
from toban_orchestration.db.enums import ChannelType
from toban_orchestration.db.models import SlackWorkspace
from toban_orchestration.db.upsert import WriteCounts
from toban_orchestration.progress import duration
from toban_orchestration.slack import normalize
from toban_orchestration.slack.client import SlackApi, SlackChannelError, SlackError
from toban_orchestration.slack.store import (
    SlackStore,
    WorkspaceCache,
    channel_names,
    is_channel_archived,
    record_workspace_info,
    relax_bulk_commit,
    selected_channels,
    set_channel_fields,
    user_display_names,
)
from toban_orchestration.slack.store import record_channel_synced as store_channel_synced

logger = logging.getLogger(__name__)


REPLY_BATCH_MESSAGES = 500
# How often a long sync says how far it is (a Dagster run's log, `toban backfill --wait`).
PROGRESS_INTERVAL_SECONDS = 10.0
T = TypeVar("T")
ThreadState = tuple[int, str | None]
"""(reply_count, latest_reply ts) of a thread parent."""
# Threads whose replies are fetched before they are stored (bounds memory).
THREADS_IN_FLIGHT = 64


class SyncOptions(BaseModel):
    """A workspace's sync settings (`slack_workspace.workspace_metadata["sync"]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    select_public_channels: bool = True
    """New public channels the app can read (a member, or `join_public_channels` on and not
    archived; an export's: all) start selected for analysis, and so are synced."""
    include_private_channels: bool = True
    """Sync private channels the app is a member of (when selected)."""
    include_direct_messages: bool = False
    """DMs and group DMs are never listed or synced unless this is on."""
    join_public_channels: bool = False
    """Join a selected public channel on `not_in_channel` instead of skipping it."""
    thread_lookback_days: int = Field(default=30, ge=0, le=365)
    """How far back a day's sync looks for late replies to older threads."""
    thread_recheck_hours: float = Field(default=6.0, ge=0)
    """Threads of a day checked more recently than this are not re-read."""
    thread_reconcile_days: int = Field(default=7, ge=0, le=365)
    """Reconciliation: every thread whose parent is in the last this-many days before a synced
    day is re-read whole (one conversations.replies call per thread, once a run), so reply
    edits, reply deletions and reactions on replies reach the database even without events.
    Threads older than this (up to `thread_lookback_days`) are re-read only when their reply
    count or latest reply changed."""
    page_size: int = Field(default=200, ge=1, le=999)
    fetch_concurrency: int = Field(default=4, ge=1, le=16)
    """Threads whose replies are read at the same time, per channel."""
    channel_concurrency: int = Field(default=3, ge=1, le=8)
    """Channels synced at the same time: while one waits for Slack or PostgreSQL, another
    parses or writes. Requests still go through the workspace's one paced client."""
    pacing: bool = True
    limited: bool = False
    """Slack's 2025 limits for commercially distributed non-Marketplace apps."""
    retry_backoff_seconds: float = Field(default=0.5, gt=0, le=30)
    """Retries of 5xx answers and dropped connections wait this times 2^n, plus jitter."""

    @classmethod
    def of_workspace(cls, workspace: SlackWorkspace) -> "SyncOptions":
        return cls.model_validate((workspace.workspace_metadata or {}).get("sync", {}))


@dataclass(frozen=True)
class ChannelRef:
    id: uuid.UUID
    slack_id: str
    name: str
    type: str


@dataclass
class SyncReport:
    users: WriteCounts = field(default_factory=WriteCounts)
    channels: WriteCounts = field(default_factory=WriteCounts)
    messages: WriteCounts = field(default_factory=WriteCounts)
    reactions: WriteCounts = field(default_factory=WriteCounts)
    channels_synced: int = 0
    threads_fetched: int = 0
    events_reapplied: int = 0
    """Slack events applied again after the sync (they raced it)."""
    warnings: list[str] = field(default_factory=list)
    channel_errors: dict[str, str] = field(default_factory=dict)
    """The channels skipped in this run for their own error: "#name (slack id)" -> the error,
    what it means and what to do (each is also one of `warnings`)."""

    def add(self, other: "SyncReport") -> None:
        """Fold in the report of one channel (each channel's sync keeps its own)."""
        for name in ("users", "channels", "messages", "reactions"):
            counts: WriteCounts = getattr(self, name)
            counts += getattr(other, name)
        self.channels_synced += other.channels_synced
        self.threads_fetched += other.threads_fetched
        self.warnings += other.warnings
        self.channel_errors |= other.channel_errors

    def metadata(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name in ("users", "channels", "messages", "reactions"):
            counts: WriteCounts = getattr(self, name)
            if counts.inserted or counts.updated or counts.deleted or name == "messages":
                out |= {
                    f"{name}_inserted": counts.inserted,
                    f"{name}_updated": counts.updated,
                    f"{name}_deleted": counts.deleted,
                }
        return out


def read_ahead(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Fetch the next pages in a background thread while the caller stores this one."""
    buffer: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                buffer.put((True, page))
            buffer.put((False, None))
        except BaseException as error:
            buffer.put((False, error))

    producer = threading.Thread(target=produce, daemon=True, name="slack-read-ahead")
    producer.start()
    try:
        while True:
            more, item = buffer.get()
            if not more:
                if isinstance(item, BaseException):
                    raise item
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while producer.is_alive():  # let a blocked producer finish its put
            with contextlib.suppress(queue.Empty):
                buffer.get(timeout=0.05)
        producer.join()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


# --- workspace, users, channels --------------------------------------------------------------


def sync_workspace_info(api: SlackApi, engine: Engine, workspace_id: uuid.UUID) -> None:
    team = api.call("team.info")["team"]
    icon = (team.get("icon") or {}).get("image_132") or (team.get("icon") or {}).get("image_68")
    with engine.begin() as connection:
        record_workspace_info(
            connection,
            workspace_id,
            name=normalize.clean_text(team.get("name")) or team["id"],
            domain=team.get("domain"),
            icon_url=icon,
        )


def sync_users(api: SlackApi, engine: Engine, workspace_id: uuid.UUID) -> WriteCounts:
    counts = WriteCounts()
    for page in api.paginate("users.list", "members"):
        with engine.begin() as connection:
            counts += SlackStore(connection, workspace_id).upsert_users(
                normalize.user_row(raw) for raw in page
            )
    return counts


def conversation_types(options: SyncOptions) -> str:
    types = ["public_channel"]
    if options.include_private_channels:
        types.append("private_channel")
    if options.include_direct_messages:
        types += ["im", "mpim"]
    return ",".join(types)


def sync_channels(
    api: SlackApi,
    engine: Engine,
    workspace_id: uuid.UUID,
    integration_id: uuid.UUID | None,
    options: SyncOptions,
) -> WriteCounts:
    counts = WriteCounts()
    for page in api.paginate("conversations.list", "channels", types=conversation_types(options)):
        rows = [normalize.channel_row(raw) for raw in page]
        if not options.include_direct_messages:
            # Never store a DM, whatever the server answered.
            rows = [r for r in rows if r["type"] in (ChannelType.PUBLIC, ChannelType.PRIVATE)]
        with engine.begin() as connection:
            counts += SlackStore(connection, workspace_id).upsert_channels(
                rows,
                select_public=options.select_public_channels,
                join_public=options.join_public_channels,
                from_export=False,
            )
            if integration_id is not None:
                upsert_channel_resources(connection, integration_id, rows)
    return counts


def allowed_channel_types(options: SyncOptions) -> list[str]:
    """The `slack_channel.type`s a sync reads under these settings (selected or not)."""
    allowed = [ChannelType.PUBLIC.value]
    if options.include_private_channels:
        allowed.append(ChannelType.PRIVATE.value)
    if options.include_direct_messages:
        allowed += [ChannelType.IM.value, ChannelType.MPIM.value]
    return allowed


def _selected_channels(
    engine: Engine, workspace_id: uuid.UUID, options: SyncOptions
) -> list[tuple[ChannelRef, bool]]:
    """Selected, supported channels of the allowed types, with whether they can be read at
    all (an archived channel the app is not in cannot: nobody can add the app to it)."""
    allowed = allowed_channel_types(options)
    with engine.connect() as connection:
        selected = selected_channels(connection, workspace_id, allowed)
    return [(ChannelRef(c.id, c.slack_id, c.name, c.type), c.readable) for c in selected]


def channels_to_sync(
    engine: Engine, workspace_id: uuid.UUID, options: SyncOptions, *, from_export: bool = False
) -> list[ChannelRef]:
    """The channels a sync reads: selected, supported, allowed, and readable through the Web
    API (an export holds the archived channels the app was never in too)."""
    return [
        ref
        for ref, readable in _selected_channels(engine, workspace_id, options)
        if readable or from_export
    ]


def name_lookup(engine: Engine, workspace_id: uuid.UUID) -> normalize.NameLookup:
    with engine.connect() as connection:
        users = user_display_names(connection, workspace_id)
        channels = channel_names(connection, workspace_id)
    return normalize.NameLookup(users=users, channels=channels)


# --- messages ----------------------------------------------------------------------------


class ChannelSync:
    """The messages of one channel over a range of days (`api` None: an export, read by the
    caller, whose reactions cannot be completed)."""

    def __init__(
        self,
        api: SlackApi | None,
        engine: Engine,
        workspace_id: uuid.UUID,
        channel: ChannelRef,
        names: normalize.NameLookup,
        report: SyncReport,
        fetch_concurrency: int = 1,
    ) -> None:
        self.api = api
        self.engine = engine
        self.workspace_id = workspace_id
        self.channel = channel
        self.names = names
        self.report = report
        self.fetch_concurrency = fetch_concurrency
        self.cache = WorkspaceCache()

    def store_page(self, raw_messages: Sequence[dict[str, Any]]) -> dict[str, ThreadState]:
        """Store one page; return the parents whose thread changed since it was stored, with
        their new (reply_count, latest_reply).

        Such a parent keeps its stored thread state until its replies are stored
        (`fetch_threads`), so that a run that stops in between fetches them next time."""
        for raw in raw_messages:
            if self.api is not None and normalize.reactions_incomplete(raw):
                full = self.api.call(
                    "reactions.get", channel=self.channel.slack_id, timestamp=raw["ts"], full=True
                )
                raw["reactions"] = (full.get("message") or {}).get("reactions") or []
        pairs = [normalize.reaction_pairs(raw) for raw in raw_messages]
        rows = [
            normalize.message_row(raw, self.names, its_pairs)
            for raw, its_pairs in zip(raw_messages, pairs, strict=True)
        ]
        reactions = {row["slack_ts"]: its_pairs for row, its_pairs in zip(rows, pairs, strict=True)}
        bots = {
            str(raw["bot_id"]): normalize.bot_user_row(raw)
            for raw in raw_messages
            if not raw.get("user") and raw.get("bot_id")
        }
        parents = [row for row in rows if row["is_thread_parent"] and row["reply_count"] > 0]
        changed: dict[str, ThreadState] = {}
        try:
            message_counts, reaction_counts = self._write_page(
                rows, reactions, bots, parents, changed
            )
        except BaseException:
            self.cache.user_ids.clear()  # it may hold placeholders of the rolled-back page
            raise
        self.report.messages += message_counts
        self.report.reactions += reaction_counts
        return changed

    def _write_page(
        self,
        rows: list[normalize.Row],
        reactions: dict[str, list[tuple[str, str]]],
        bots: dict[str, normalize.Row],
        parents: list[normalize.Row],
        changed: dict[str, ThreadState],
    ) -> tuple[WriteCounts, WriteCounts]:
        with self.engine.begin() as connection:
            # Pages are idempotent upserts of point lookups: no fsync wait, no JIT (its reasons).
            relax_bulk_commit(connection)
            store = SlackStore(connection, self.workspace_id, self.cache)
            stored = store.stored_threads(self.channel.id, [row["slack_ts"] for row in parents])
            for row in parents:
                new = (row["reply_count"], row["latest_reply_ts"])
                old = stored.get(row["slack_ts"], (0, None))
                if old != new and self.api is not None:  # an export has its replies in the files
                    changed[row["slack_ts"]] = new
                    row["reply_count"], row["latest_reply_ts"] = old
            return store.upsert_messages(self.channel.id, rows, reactions, bots)

    @property
    def web_api(self) -> SlackApi:
        assert self.api is not None, "reading from Slack needs a client"
        return self.api

    def read_history(self, first: date, last: date) -> tuple[set[str], dict[str, ThreadState]]:
        """Every top-level message (and broadcast) of [first, last]; returns (seen ts, threads
        to fetch)."""
        oldest, _ = normalize.day_bounds(first)
        _, latest = normalize.day_bounds(last)
        seen: set[str] = set()
        threads: dict[str, ThreadState] = {}
        pages = self.web_api.paginate(
            "conversations.history",
            "messages",
            channel=self.channel.slack_id,
            oldest=oldest,
            latest=latest,
            inclusive=True,
        )
        for page in read_ahead(pages):
            seen.update(str(raw["ts"]) for raw in page)
            threads |= self.store_page(page)
        return seen, threads

    def _replies(self, parent_ts: str) -> list[dict[str, Any]] | None:
        """All replies of one thread (every page), or None when the thread is gone."""
        replies: list[dict[str, Any]] = []
        try:
            for page in self.web_api.paginate(
                "conversations.replies", "messages", channel=self.channel.slack_id, ts=parent_ts
            ):
                replies += [raw for raw in page if str(raw["ts"]) != parent_ts]
        except SlackError as error:
            if error.error != "thread_not_found":
                raise
            return None  # the parent was deleted between the history read and now
        return replies

    def fetch_threads(self, threads: Mapping[str, ThreadState]) -> None:
        """Replies of these threads, read by a few threads at once (most threads are a couple of
        messages, so the calls are short and latency dominates; the client's pacing still
        spaces them) and stored in batches spanning several threads. A thread Slack no longer
        has (its parent and replies deleted) loses its stored replies."""
        parents = list(threads)
        seen: set[str] = set()
        fetched: list[str] = []
        gone: list[str] = []
        batch: list[dict[str, Any]] = []
        with ThreadPoolExecutor(max_workers=self.fetch_concurrency) as pool:
            for start in range(0, len(parents), THREADS_IN_FLIGHT):
                chunk = parents[start : start + THREADS_IN_FLIGHT]
                for parent_ts, replies in zip(chunk, pool.map(self._replies, chunk), strict=True):
                    if replies is None:
                        gone.append(parent_ts)
                        continue
                    fetched.append(parent_ts)
                    seen.update(str(raw["ts"]) for raw in replies)
                    batch += replies
                    if len(batch) >= REPLY_BATCH_MESSAGES:
                        self.store_page(batch)
                        batch = []
        if batch:
            self.store_page(batch)
        self.report.threads_fetched += len(fetched)
        if fetched or gone:
            with self.engine.begin() as connection:
                store = SlackStore(connection, self.workspace_id, self.cache)
                self.report.messages.deleted += store.mark_deleted(
                    self.channel.id, seen, threads=fetched + gone
                )
                store.set_thread_states(self.channel.id, {ts: threads[ts] for ts in fetched})
                store.refresh_threads(self.channel.id, gone)

    def sync_days(
        self, first: date, last: date, *, reread_threads_from: date | None = None
    ) -> None:
        """Days [first, last]: history read to its last page, changed threads re-read, and
        (reconciliation) every thread whose parent is on or after `reread_threads_from`, each
        thread at most once."""
        calls_before = self.web_api.stats.total_calls
        stored_parents: set[str] = set()
        if reread_threads_from is not None:
            # Read before the history: a parent whose replies all disappeared is written as
            # no thread by the history page, and its stored replies must still be checked.
            with self.engine.connect() as connection:
                stored_parents = set(
                    SlackStore(connection, self.workspace_id, self.cache).thread_parents_between(
                        self.channel.id,
                        day_start(max(first, reread_threads_from)),
                        day_start(last + timedelta(1)),
                    )
                )
        seen, threads = self.read_history(first, last)
        if reread_threads_from is not None:
            window_start = day_start(max(first, reread_threads_from))
            in_window = stored_parents | {
                ts for ts in seen if normalize.ts_to_datetime(ts) >= window_start
            }
            unchanged = sorted(in_window - threads.keys())
            with self.engine.connect() as connection:
                stored = SlackStore(connection, self.workspace_id, self.cache).stored_threads(
                    self.channel.id, unchanged
                )
            # Threads as stored now (the history page wrote Slack's state for those that did
            # not change); only messages that are or were threads cost a call.
            threads = {
                **{ts: state for ts, state in stored.items() if ts in stored_parents or state[0]},
                **threads,
            }
        self.fetch_threads(threads)
        with self.engine.begin() as connection:
            store = SlackStore(connection, self.workspace_id, self.cache)
            self.report.messages.deleted += store.mark_deleted(
                self.channel.id, seen, start=day_start(first), end=day_start(last + timedelta(1))
            )
            per_day = dict.fromkeys(_days(first, last), 0) | normalize.messages_per_day(seen)
            store.record_synced_days(
                self.channel.id, per_day, self.web_api.stats.total_calls - calls_before
            )

    def recheck_threads(self, first: date, options: SyncOptions, now: datetime) -> None:
        """Re-read the completed days before `first` whose threads may have changed: threads
        of the last `thread_reconcile_days` whole, older ones (to `thread_lookback_days`)
        when their reply count or latest reply changed."""
        lookback = max(options.thread_lookback_days, options.thread_reconcile_days)
        if lookback == 0:
            return
        with self.engine.connect() as connection:
            stale = SlackStore(connection, self.workspace_id, self.cache).stale_thread_days(
                self.channel.id,
                first - timedelta(lookback),
                first,
                now - timedelta(hours=options.thread_recheck_hours),
            )
        if stale:
            # One range read covers every stale day; it also refreshes edits, reactions and
            # deletions of those days, which come at no extra cost.
            self.sync_days(
                stale[0],
                first - timedelta(1),
                reread_threads_from=first - timedelta(options.thread_reconcile_days)
                if options.thread_reconcile_days
                else None,
            )


def sync_messages(
    api: SlackApi,
    engine: Engine,
    workspace_id: uuid.UUID,
    first: date,
    last: date,
    options: SyncOptions,
    *,
    channels: Iterable[ChannelRef] | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> SyncReport:
    """Sync days [first, last] of every selected channel (or of `channels`), a few channels at
    a time. A channel's own refusal (`SlackChannelError`: archived, not a member, a missing
    scope...) skips that channel, named in the report's `channel_errors` and `warnings`, and the
    others go on. Any other failure (a dead token, Slack down after retries) stops the channels
    not started yet and is raised once those in flight have finished. `progress` hears how many
    channels are done, and about how long the rest will take, every
    `PROGRESS_INTERVAL_SECONDS`."""
    report = SyncReport()
    now = now or datetime.now(UTC)
    names = name_lookup(engine, workspace_id)
    if channels is not None:
        todo = list(channels)
    else:
        selected = _selected_channels(engine, workspace_id, options)
        todo = [ref for ref, readable in selected if readable]
        for ref, readable in selected:
            if not readable:  # named without a call: Slack would refuse it (is_archived)
                label = f"#{ref.name} ({ref.slack_id})"
                reason = f"is_archived; {CHANNEL_REFUSALS['is_archived'][0]}"
                report.channel_errors[label] = reason
                report.warnings.append(f"{label}: {reason}")

    def one(channel: ChannelRef) -> SyncReport:
        channel_report = SyncReport()
        sync = ChannelSync(
            api, engine, workspace_id, channel, names, channel_report, options.fetch_concurrency
        )
        try:
            try:
                sync.sync_days(first, last)
            except SlackChannelError as error:
                if not (
                    error.error == "not_in_channel"
                    and options.join_public_channels
                    and channel.type == ChannelType.PUBLIC
                ):
                    raise
                api.call("conversations.join", channel=channel.slack_id)
                _set_channel(engine, channel.id, has_bot=True, bot_joined_at=now)
                sync.sync_days(first, last)
            sync.recheck_threads(first, options, now)
        except SlackChannelError as error:  # from the join too (is_archived, missing_scope)
            label, reason = _skip(engine, channel, error)
            channel_report.channel_errors[label] = reason
            channel_report.warnings.append(f"{label}: {reason}")
            return channel_report
        record_channel_synced(engine, channel.id, now)
        channel_report.channels_synced += 1
        return channel_report

    with ThreadPoolExecutor(
        max_workers=options.channel_concurrency, thread_name_prefix="slack-channel"
    ) as pool:
        futures = [pool.submit(one, channel) for channel in todo]
        started = said = time.monotonic()
        try:
            for done, future in enumerate(futures, 1):  # in channel order: warnings read the
                report.add(future.result())  # same every run
                due = time.monotonic() - said >= PROGRESS_INTERVAL_SECONDS
                if progress is not None and due and done < len(futures):
                    said = time.monotonic()
                    progress(channels_done(done, len(futures), said - started))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return report


# What `channels_done` says, recognized in a run's log by `toban backfill --wait`.
CHANNELS_DONE = re.compile(r"^[\d,]+ of [\d,]+ channels read\b")


def channels_done(done: int, total: int, elapsed: float) -> str:
    """'120 of 500 channels read, about 4 min left' (the channels' pace so far)."""
    left = elapsed / done * (total - done) if done else None
    return f"{done:,} of {total:,} channels read" + (
        f", about {duration(left)} left" if left is not None else ""
    )


def record_channel_synced(engine: Engine, channel_id: uuid.UUID, now: datetime) -> None:
    """The channel's last sync time and the span of messages stored for it."""
    with engine.begin() as connection:
        store_channel_synced(connection, channel_id, now)


def _set_channel(engine: Engine, channel_id: uuid.UUID, **values: Any) -> None:
    with engine.begin() as connection:
        set_channel_fields(connection, channel_id, **values)


_UNSUPPORTED = "marked unsupported: it is no longer synced"
_DENIED = "skipped (ask a workspace admin to give the app access, or deselect the channel)"
# A channel's refusal by Slack error: what it means and what to do, and what it tells about the
# channel (stored: the next runs and the day_read_to_last_page check go by it).
CHANNEL_REFUSALS: dict[str, tuple[str, dict[str, bool]]] = {
    "not_in_channel": (
        "the app is not in the channel; skipped (invite the app to it, or turn on "
        "join_public_channels for a public channel)",
        {"has_bot": False},
    ),
    "is_archived": (
        "the app cannot join an archived channel; skipped (unarchive it and invite the app, or "
        "deselect it)",
        {"is_archived": True, "has_bot": False},  # a join refused: the app is not in it
    ),
    "channel_not_found": (
        f"Slack does not know the channel (deleted, or private without the app); {_UNSUPPORTED}",
        {"is_supported": False},
    ),
    "method_not_supported_for_channel_type": (
        f"Slack does not let an app read or join this kind of channel; {_UNSUPPORTED}",
        {"is_supported": False},
    ),
    "missing_scope": (
        "the app lacks a permission this channel needs; skipped (add the scope to the Slack app "
        "and reinstall it, or deselect the channel)",
        {},
    ),
    "access_denied": ("Slack denied the app access to this channel; " + _DENIED, {}),
    "no_permission": ("Slack denied the app access to this channel; " + _DENIED, {}),
    "ekm_access_denied": ("the channel is locked by Enterprise Key Management; " + _DENIED, {}),
    "channel_is_limited_access": ("the channel has limited access; " + _DENIED, {}),
}


def _skip(engine: Engine, channel: ChannelRef, error: SlackChannelError) -> tuple[str, str]:
    """Store what a channel's refusal tells about it; returns the channel's label
    ("#name (slack id)") and the reason to show: Slack's error, what it means, what to do."""
    known = error.error
    if known == "not_in_channel" and _is_archived(engine, channel.id):
        known = "is_archived"  # nobody can invite the app to an archived channel
    meaning, learnt = CHANNEL_REFUSALS.get(known, (f"Slack refused {error.method}; skipped", {}))
    if learnt:
        _set_channel(engine, channel.id, **learnt)
    detail = f" ({error.detail})" if error.detail else ""
    return f"#{channel.name} ({channel.slack_id})", f"{error.error}{detail}; {meaning}"


def _is_archived(engine: Engine, channel_id: uuid.UUID) -> bool:
    with engine.connect() as connection:
        return is_channel_archived(connection, channel_id)


def expected_duration(channels: int, first: date, last: date, options: SyncOptions) -> str:
    """What a sync of these days will at least cost under Slack's limits, said before it starts:
    one history call per channel for the range (more for busy channels, one page per
    `page_size` messages) plus one replies call per thread, none of which is known yet."""
    days = (last - first).days + 1
    if options.limited:
        per_minute, why = 1.0, "Slack's 2025 limit for non-Marketplace apps: 1 a minute"
    elif options.pacing:
        per_minute, why = 50.0, "Tier 3: about 50 a minute"
    else:
        return f"{channels} channels over {days} days; pacing is off"
    minutes = channels / per_minute
    return (
        f"{channels} channels over {days} days: at least {channels} history calls "
        f"({why}), so at least {minutes:.1f} min, plus one replies call per thread"
    )
