"""One entry point per synced asset, for either source of a workspace (the Web API or an export
archive). These are what the Dagster assets call; they own the sessions and turn a dead token
into a recorded status change."""

import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.access.store import upsert_channel_resources
from toban_orchestration.db.upsert import WriteCounts
from toban_orchestration.progress import Progress, duration
from toban_orchestration.security.tokens import TokenCipher
from toban_orchestration.slack import normalize
from toban_orchestration.slack.apply_events import reapply_since
from toban_orchestration.slack.client import ApiStats, SlackApi, SlackAuthError
from toban_orchestration.slack.export import ExportChannel, SlackExport, open_export
from toban_orchestration.slack.store import (
    DaySummary,
    SlackStore,
    WorkspaceCache,
    analyze_message_tables,
    channel_count,
    day_summaries,
    message_count_between,
    planned_message_rows,
    reaction_count_between,
    record_workspace_synced,
    relax_bulk_commit,
    remember_sync_setting,
    user_count,
    workspace_id_of,
)
from toban_orchestration.slack.sync import (
    ChannelRef,
    SyncOptions,
    SyncReport,
    channels_to_sync,
    day_start,
    expected_duration,
    name_lookup,
    read_ahead,
    record_channel_synced,
    sync_channels,
    sync_messages,
    sync_users,
    sync_workspace_info,
)
from toban_orchestration.slack.workspaces import (
    SOURCE_EXPORT,
    WorkspaceSource,
    api_for,
    load_workspace,
    record_auth_failure,
    register_export_workspace,
)
from toban_orchestration.slack.workspaces import (
    WorkspaceAuthError as WorkspaceAuthError,  # re-exported: callers catch it from here
)

# Day files are small; storing several together saves round trips.
EXPORT_BATCH_MESSAGES = 2000
# Messages an import inserts before it takes the planner's statistics (or as many as they
# counted already): enough to describe the archive, early enough to plan most of its writes.
EXPORT_ANALYZE_AFTER_MESSAGES = 20_000
# Pages of a channel read and normalized ahead of the one being written: enough to keep its
# writer busy, few enough that memory stays bounded (a page is a few MB).
EXPORT_PAGES_AHEAD = 3


@dataclass
class IngestResult:
    report: SyncReport = field(default_factory=SyncReport)
    stats: ApiStats = field(default_factory=ApiStats)
    row_count: int = 0
    reaction_row_count: int = 0

    def metadata(self) -> dict[str, int]:
        return {
            **self.report.metadata(),
            "channels_synced": self.report.channels_synced,
            "threads_fetched": self.report.threads_fetched,
            "api_calls": self.stats.total_calls,
            "api_retries": self.stats.total_retries,
            "dagster/row_count": self.row_count,
        }


@dataclass
class _Workspace:
    id: uuid.UUID
    slack_id: str
    integration_id: uuid.UUID | None
    options: SyncOptions
    source: str
    api: SlackApi | None = None
    export: SlackExport | None = None


@contextmanager
def _open(engine: Engine, cipher: TokenCipher | None, slack_id: str) -> Iterator[_Workspace]:
    with Session(engine) as session:
        source: WorkspaceSource = load_workspace(session, slack_id)
        workspace = _Workspace(
            id=source.workspace.id,
            slack_id=slack_id,
            integration_id=source.integration.id if source.integration else None,
            options=SyncOptions.of_workspace(source.workspace),
            source=source.source,
        )
        if source.source == SOURCE_EXPORT:
            export_path = source.export_path
        else:
            workspace.api = api_for(session, source, cipher or TokenCipher.from_settings())
    if workspace.source == SOURCE_EXPORT:
        with open_export(export_path) as export:
            workspace.export = export
            yield workspace
        return
    try:
        yield workspace
    except SlackAuthError as error:  # only the Web API source can raise it
        record_auth_failure(engine, slack_id, error)
        raise WorkspaceAuthError(
            f"Slack workspace {slack_id}: the token no longer works ({error.error}); the "
            "integration is marked and will not be scheduled until it is reconnected."
        ) from None
    finally:
        if workspace.api is not None:
            workspace.api.close()


def refresh_workspace(engine: Engine, cipher: TokenCipher | None, slack_id: str) -> IngestResult:
    result = IngestResult(row_count=1)
    with _open(engine, cipher, slack_id) as workspace:
        if workspace.api is not None:
            sync_workspace_info(workspace.api, engine, workspace.id)
            result.stats = workspace.api.stats
    return result


def refresh_users(engine: Engine, cipher: TokenCipher | None, slack_id: str) -> IngestResult:
    result = IngestResult()
    with _open(engine, cipher, slack_id) as workspace:
        if workspace.api is not None:
            result.report.users = sync_users(workspace.api, engine, workspace.id)
            result.stats = workspace.api.stats
        else:
            assert workspace.export is not None
            with engine.begin() as connection:
                result.report.users = SlackStore(connection, workspace.id).upsert_users(
                    normalize.user_row(raw) for raw in workspace.export.users()
                )
    with engine.connect() as connection:
        result.row_count = user_count(connection, workspace.id)
    return result


def refresh_channels(engine: Engine, cipher: TokenCipher | None, slack_id: str) -> IngestResult:
    result = IngestResult()
    with _open(engine, cipher, slack_id) as workspace:
        if workspace.api is not None:
            result.report.channels = sync_channels(
                workspace.api, engine, workspace.id, workspace.integration_id, workspace.options
            )
            result.stats = workspace.api.stats
        else:
            assert workspace.export is not None
            result.report.channels = _export_channels(engine, workspace, workspace.export)
    with engine.connect() as connection:
        result.row_count = channel_count(connection, workspace.id)
    return result


def sync_message_days(
    engine: Engine,
    cipher: TokenCipher | None,
    slack_id: str,
    first: date,
    last: date,
    *,
    progress: Callable[[str], None] | None = None,
    import_progress: Progress | None = None,
) -> IngestResult:
    """Messages, thread replies and reactions of days [first, last] of a workspace.
    `progress` hears, before the first call, what the sync will at least cost; an export's
    import shows its channel-days read on `import_progress`."""
    result = IngestResult()
    started = datetime.now(UTC)
    with _open(engine, cipher, slack_id) as workspace:
        if workspace.api is not None:
            if progress is not None:
                channels = channels_to_sync(engine, workspace.id, workspace.options)
                progress(
                    f"Slack {slack_id}: "
                    + expected_duration(len(channels), first, last, workspace.options)
                )
            result.report = sync_messages(
                workspace.api, engine, workspace.id, first, last, workspace.options,
                progress=progress,
            )  # fmt: skip
            result.stats = workspace.api.stats
            if workspace.api.limited_detected and not workspace.options.limited:
                # Slack's answers (a 429 asking for about a minute on history) show the 2025
                # limits: later syncs of this workspace pace for them from the first call.
                with engine.begin() as connection:
                    remember_sync_setting(connection, workspace.id, "limited", True)
                result.report.warnings.append(
                    f"Slack {slack_id} answers with the 2025 limits for non-Marketplace apps "
                    "(1 history or replies call a minute): its sync setting `limited` is now "
                    "on. Turn on the Events API to follow changes without these calls."
                )
            # Events applied while this sync read and wrote may have been overwritten with
            # what Slack showed before them: they are applied again (idempotent).
            result.report.events_reapplied = reapply_since(engine, slack_id, started)
        else:
            assert workspace.export is not None
            result.report = _export_messages(
                engine, workspace, workspace.export, first, last, import_progress
            )
    with engine.begin() as connection:
        record_workspace_synced(connection, workspace.id)
    start, end = day_start(first), day_start(last + timedelta(1))
    with engine.connect() as connection:
        result.row_count = message_count_between(connection, workspace.id, start, end)
    with engine.connect() as connection:
        result.reaction_row_count = reaction_count_between(connection, workspace.id, start, end)
    return result


# --- exports ------------------------------------------------------------------------------


def _export_channels(engine: Engine, workspace: _Workspace, export: SlackExport) -> WriteCounts:
    rows = [normalize.channel_row(channel.raw) for channel in export.channels()]
    if not workspace.options.include_direct_messages:
        rows = [row for row in rows if row["type"] in ("public", "private")]
    with engine.begin() as connection:
        counts = SlackStore(connection, workspace.id).upsert_channels(
            rows,
            select_public=workspace.options.select_public_channels,
            join_public=workspace.options.join_public_channels,
            from_export=True,  # an export holds the messages of every public channel
        )
        if workspace.integration_id is not None:
            upsert_channel_resources(connection, workspace.integration_id, rows)
    return counts


@dataclass
class _ExportPage:
    """Day files of one channel, read and normalized ahead of their write."""

    channel: ChannelRef
    top_level: list[normalize.Row]
    replies: list[normalize.Row]
    reactions: dict[str, list[tuple[str, str]]]
    bots: dict[str, normalize.Row]
    users: set[str]
    """Every author and reactor of the page."""


@dataclass
class _ExportChannelRead:
    """One channel's day files of the range, all read (its pages come before it)."""

    message_counts: dict[date, int]
    """Messages of each day file of the range; the range's other days had none."""
    seen: set[str]
    whole_span: tuple[date, date] | None
    """(first, last) day file when every file of the channel was read, else None."""


def _export_messages(
    engine: Engine,
    workspace: _Workspace,
    export: SlackExport,
    first: date,
    last: date,
    progress: Progress | None = None,
) -> SyncReport:
    """The channels are imported a few at a time (the workspace's `channel_concurrency`), the
    largest first so that none is left alone at the end; their reports are folded in channel
    order, so warnings read the same every run. A failure stops the channels not started yet
    and is raised once those in flight have finished."""
    report = SyncReport()
    names = name_lookup(engine, workspace.id)
    by_slack_id: dict[str, ExportChannel] = {c.raw["id"]: c for c in export.channels()}
    to_read: list[tuple[ChannelRef, ExportChannel]] = []
    for channel in channels_to_sync(engine, workspace.id, workspace.options, from_export=True):
        if channel.slack_id in by_slack_id:
            to_read.append((channel, by_slack_id[channel.slack_id]))
        else:
            report.warnings.append(f"#{channel.name}: not in the export; skipped")
    day_files = [len(export.days(of_export)) for _, of_export in to_read]
    steps = (progress or Progress(quiet=True)).steps(
        f"Messages: reading {len(to_read)} channels", sum(day_files), "channel-days"
    )
    with engine.connect() as connection:
        planned = planned_message_rows(connection)
    statistics = _FreshStatistics(engine, after=max(EXPORT_ANALYZE_AFTER_MESSAGES, planned))
    writers = workspace.options.channel_concurrency
    # One user cache per writer, shared by the channels it imports one after another (each
    # would otherwise load the workspace's 25,000 user ids again in a large archive), never by
    # two writers: a writer must not use a placeholder user another has not committed yet.
    # They start from the users stored (committed) now, read once.
    stored_users = WorkspaceCache()
    with engine.connect() as connection:
        SlackStore(connection, workspace.id, stored_users).user_ids(())
    caches: queue.SimpleQueue[WorkspaceCache] = queue.SimpleQueue()
    for _ in range(writers):
        caches.put(WorkspaceCache(dict(stored_users.user_ids), stored_users.erased))

    def one(channel: ChannelRef, export_channel: ExportChannel) -> SyncReport:
        cache = caches.get()  # never waits: at most `writers` channels run at once
        try:
            return _import_export_channel(
                engine,
                workspace.id,
                export,
                channel,
                export_channel,
                names,
                first,
                last,
                cache,
                statistics,
            )
        finally:
            caches.put(cache)

    largest_first = sorted(range(len(to_read)), key=lambda i: -day_files[i])
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="slack-export") as pool:
        futures = {i: pool.submit(one, *to_read[i]) for i in largest_first}
        position = {future: i for i, future in futures.items()}
        try:
            for future in as_completed(position):
                future.result()  # the first failure is raised at once
                steps.advance(day_files[position[future]])
        except BaseException:
            for future in futures.values():
                future.cancel()
            raise
    for i in range(len(to_read)):
        report.add(futures[i].result())
    return report


def _import_export_channel(
    engine: Engine,
    workspace_id: uuid.UUID,
    export: SlackExport,
    channel: ChannelRef,
    export_channel: ExportChannel,
    names: normalize.NameLookup,
    first: date,
    last: date,
    cache: WorkspaceCache,
    statistics: "_FreshStatistics",
) -> SyncReport:
    """One channel's day files of [first, last]. They are read, parsed and normalized in a
    background thread (`read_ahead`) while this one writes the pages before them: the Python
    work of one overlaps PostgreSQL's work on the other (the driver releases the GIL while it
    waits for the server)."""
    report = SyncReport()
    with engine.connect() as connection:
        # Messages stored before this import that its files no longer hold are deleted ones;
        # a channel with none has nothing to compare (every message of an archive's first
        # import), and the comparison reads every message of the channel.
        stored_before = SlackStore(connection, workspace_id, cache).has_messages(channel.id)
    read: _ExportChannelRead | None = None
    pages = _read_export_pages(export, channel, export_channel, names, first, last)
    for item in read_ahead(pages, depth=EXPORT_PAGES_AHEAD):
        if isinstance(item, _ExportChannelRead):
            read = item
            continue
        messages, reactions = _write_export_page(engine, workspace_id, item, cache)
        report.messages += messages
        report.reactions += reactions
        statistics.inserted(messages.inserted)
    assert read is not None, "the reader ends every channel with its summary"
    with engine.begin() as connection:
        relax_bulk_commit(connection)
        store = SlackStore(connection, workspace_id, cache)
        store.record_synced_range(channel.id, first, last, read.message_counts)
        if stored_before and read.whole_span is not None:
            # Day files follow the exporting workspace's time zone, not UTC, so a message can
            # sit in the file of the day before or after its UTC date. Deletions are therefore
            # only detected when the whole archive of the channel was read, over all of its time.
            oldest, newest = read.whole_span
            report.messages.deleted += store.mark_deleted(
                channel.id,
                read.seen,
                start=day_start(oldest - timedelta(1)),
                end=day_start(newest + timedelta(2)),
            )
    record_channel_synced(engine, channel.id, datetime.now(UTC))
    report.channels_synced += 1
    return report


def _read_export_pages(
    export: SlackExport,
    channel: ChannelRef,
    export_channel: ExportChannel,
    names: normalize.NameLookup,
    first: date,
    last: date,
) -> Iterator[_ExportPage | _ExportChannelRead]:
    """The channel's day files of [first, last] as normalized pages of about
    EXPORT_BATCH_MESSAGES messages (whole days), then its summary."""
    days = export.days(export_channel)
    message_counts: dict[date, int] = {}
    seen: set[str] = set()
    batch: list[dict[str, Any]] = []
    for day in days:
        if not first <= day <= last:
            continue
        messages = export.messages(export_channel, day)
        batch.extend(messages)
        message_counts[day] = len(messages)
        seen.update(raw["ts"] for raw in messages)  # checked to be strings by the reader
        if len(batch) >= EXPORT_BATCH_MESSAGES:
            yield _export_page(channel, batch, names)
            batch = []
    if batch:
        yield _export_page(channel, batch, names)
    whole = bool(days) and first <= days[0] and days[-1] <= last
    yield _ExportChannelRead(message_counts, seen, (days[0], days[-1]) if whole else None)


def _export_page(
    channel: ChannelRef, raw_messages: list[dict[str, Any]], names: normalize.NameLookup
) -> _ExportPage:
    """What `ChannelSync.store_page` makes of a page before writing it, less what only the Web
    API needs (completing reactions, holding back changed threads: an export has its replies
    in its files)."""
    pairs = [normalize.reaction_pairs(raw) for raw in raw_messages]
    rows = [
        normalize.message_row(raw, names, its_pairs)
        for raw, its_pairs in zip(raw_messages, pairs, strict=True)
    ]
    users = {row["author"] for row in rows if row["author"]}
    users.update(user for its_pairs in pairs for _, user in its_pairs)
    return _ExportPage(
        channel=channel,
        top_level=[row for row in rows if not row["is_thread_reply"]],
        replies=[row for row in rows if row["is_thread_reply"]],
        reactions={row["slack_ts"]: its_pairs for row, its_pairs in zip(rows, pairs, strict=True)},
        bots={
            str(raw["bot_id"]): normalize.bot_user_row(raw)
            for raw in raw_messages
            if not raw.get("user") and raw.get("bot_id")
        },
        users=users,
    )


def _write_export_page(
    engine: Engine, workspace_id: uuid.UUID, page: _ExportPage, cache: WorkspaceCache
) -> tuple[WriteCounts, WriteCounts]:
    """One page in one transaction; returns (message counts, reaction counts)."""
    message_counts, reaction_counts = WriteCounts(), WriteCounts()
    try:
        with engine.begin() as connection:
            relax_bulk_commit(connection)
            store = SlackStore(connection, workspace_id, cache)
            # Users Slack did not list get their placeholder rows here, all in one sorted
            # statement, before any message: two writers then never wait for each other's
            # placeholders in opposite orders (a deadlock).
            store.user_ids(page.users - (cache.erased or frozenset()), page.bots)
            # Top-level messages before replies: a reply whose parent is stored already is
            # inserted pointing at it, where one stored in the same statement as its parent is
            # written a second time to link it (1.9 s of the 15 s of database CPU an archive of
            # 200,000 messages took).
            for rows in (page.top_level, page.replies):
                if rows:
                    messages, reactions = store.upsert_messages(
                        page.channel.id, rows, page.reactions, page.bots
                    )
                    message_counts += messages
                    reaction_counts += reactions
    except BaseException:
        cache.user_ids.clear()  # it may hold placeholders of the rolled-back page
        raise
    return message_counts, reaction_counts


class _FreshStatistics:
    """Takes the planner's statistics (`analyze_message_tables`) once, when the writers of an
    import together have inserted `after` messages."""

    def __init__(self, engine: Engine, after: int) -> None:
        self._engine = engine
        self._after = after
        self._inserted = 0
        self._taken = False
        self._lock = threading.Lock()

    def inserted(self, count: int) -> None:
        with self._lock:
            self._inserted += count
            due = not self._taken and self._inserted >= self._after
            self._taken |= due
        if due:
            with self._engine.begin() as connection:
                analyze_message_tables(connection)


@dataclass
class ImportResult:
    slack_id: str
    users: IngestResult
    channels: IngestResult
    messages: IngestResult
    first_day: date | None
    last_day: date | None


def import_export_workspace(
    engine: Engine,
    path: Path,
    team_id: uuid.UUID,
    *,
    name: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Register a workspace from an export archive and ingest all of it, through the same
    normalization and tables as the Web API path. `progress` hears a line per phase, and the
    channel-days read while the messages are imported."""
    progress = progress or Progress(quiet=True)
    with open_export(path, name=name) as export:
        team = export.team_info()
        in_export = export.channels()
        days = [day for channel in in_export for day in export.days(channel)]
    first, last = (min(days), max(days)) if days else (None, None)
    progress.line(
        f"Export: {team['name']} ({team['id']}), {len(in_export)} channels, "
        f"{len(days):,} channel-days" + (f" from {first} to {last}" if first else "")
    )
    with Session(engine) as session, session.begin():
        register_export_workspace(
            session, team_id=team_id, slack_id=team["id"], name=team["name"], export_path=path
        )
    refresh_workspace(engine, None, team["id"])
    users = refresh_users(engine, None, team["id"])
    progress.line(f"Users: {users.row_count:,} ({users.report.users.inserted:,} new)")
    channels = refresh_channels(engine, None, team["id"])
    progress.line(f"Channels: {channels.row_count:,} ({channels.report.channels.inserted:,} new)")
    started = datetime.now(UTC)
    messages = (
        sync_message_days(engine, None, team["id"], first, last, import_progress=progress)
        if first and last
        else IngestResult()
    )
    report = messages.report
    progress.line(
        f"Messages: {report.channels_synced} channels, {report.messages.inserted:,} inserted, "
        f"{report.messages.updated:,} updated "
        f"({duration((datetime.now(UTC) - started).total_seconds())})"
    )
    return ImportResult(team["id"], users, channels, messages, first, last)


def summarize_days(
    engine: Engine, slack_id: str, first: date, last: date, since: datetime | None = None
) -> dict[date, DaySummary]:
    """Per-day figures of a synced range (rows written since `since`), for the metadata of
    each day partition."""
    with engine.connect() as connection:
        workspace_id = workspace_id_of(connection, slack_id)
        if workspace_id is None:
            return {}
        return day_summaries(connection, workspace_id, first, last, since)
