"""The Slack domain's SQL, all of it: the sync's bulk upserts on natural keys (counted), and the
reads and bookkeeping of sync, ingest, planning, health, workspaces and the event applier, each
on a connection or session whose transaction the caller owns.

Every write is idempotent: an upsert only touches a row when a column really changed (so
re-running a partition reports 0 updates and leaves `updated_at` alone), and deletions are
explicit and scoped to what was just read from Slack.
"""

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Numeric,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert
from sqlalchemy.orm import Session

from toban_orchestration.access import store as access_store
from toban_orchestration.db.enums import (
    IntegrationStatus,
)
from toban_orchestration.db.ids import time_ordered_uuids
from toban_orchestration.db.models import (
    SlackChannel,
    SlackEventInbox,
    SlackMessage,
    SlackReaction,
    SlackSyncDay,
    SlackUser,
    SlackWorkspace,
)
from toban_orchestration.db.upsert import WriteCounts, upsert
from toban_orchestration.slack.events import InboxEvent
from toban_orchestration.slack.normalize import Row, display_name

ERASED_KEY = "erased_users"
"""`slack_workspace.workspace_metadata` key of the Slack ids erased on request
(privacy/erasure.py): their profiles, messages and reactions are never stored again."""

user_table: Table = SlackUser.__table__  # type: ignore[assignment]
channel_table: Table = SlackChannel.__table__  # type: ignore[assignment]
message_table: Table = SlackMessage.__table__  # type: ignore[assignment]
reaction_table: Table = SlackReaction.__table__  # type: ignore[assignment]
sync_day_table: Table = SlackSyncDay.__table__  # type: ignore[assignment]


# Lists travel as one array parameter (`= ANY(:array)`), never as IN lists: the statement text
# stays the same whatever the length, so it is parsed once.
TEXT_ARRAY = ARRAY(Text())
UUID_ARRAY = ARRAY(UUID(as_uuid=True))

# Statements built once: compiling SQLAlchemy constructs per page would cost more than running
# them.
# Point lookups by timestamp, written so that their plan never depends on statistics: during a
# bulk sync the table grows faster than autovacuum analyzes it, and with stale statistics the
# planner read a whole channel for every page (20-30 ms a page at 50,000 messages a channel).
# A LATERAL subquery with LIMIT 1 is one probe of the (channel_id, slack_ts) unique index per
# timestamp; OFFSET 0 keeps a subquery from being merged into a join the planner could get wrong.
_BY_TS = (
    "FROM unnest(string_to_array(:{array}, ',')) AS wanted(ts) CROSS JOIN LATERAL ("
    "SELECT {columns} FROM slack_message WHERE channel_id = :in_channel "
    "AND slack_ts = wanted.ts LIMIT 1) AS m"
)
_STORED_BY_TS = text(
    "SELECT m.slack_ts, m.id, m.reply_count, m.latest_reply_ts "
    + _BY_TS.format(array="ts", columns="slack_ts, id, reply_count, latest_reply_ts")
)
# Replies point at their parent, whichever of the two arrived first.
_LINK_PARENTS = text(
    "WITH waiting AS MATERIALIZED ("
    " SELECT m.id, m.thread_ts "
    + _BY_TS.format(array="replies", columns="id, thread_ts, is_thread_reply, parent_id")
    + " WHERE m.is_thread_reply AND m.parent_id IS NULL"
    " UNION"
    " SELECT m.id, m.thread_ts FROM unnest(string_to_array(:parents, ',')) AS wanted(ts)"
    " CROSS JOIN LATERAL (SELECT id, thread_ts, channel_id, is_thread_reply, parent_id"
    " FROM slack_message WHERE thread_ts = wanted.ts OFFSET 0) AS m"
    " WHERE m.channel_id = :in_channel AND m.is_thread_reply AND m.parent_id IS NULL"
    ") UPDATE slack_message AS reply SET parent_id = parent.id"
    " FROM waiting CROSS JOIN LATERAL (SELECT id FROM slack_message"
    " WHERE channel_id = :in_channel AND slack_ts = waiting.thread_ts LIMIT 1) AS parent"
    " WHERE reply.id = waiting.id"
)
_STORED_REACTIONS = select(
    reaction_table.c.id,
    reaction_table.c.message_id,
    reaction_table.c.user_id,
    reaction_table.c.emoji_name,
).where(reaction_table.c.message_id == any_(bindparam("ids", type_=UUID_ARRAY)))
_DELETE_REACTIONS = reaction_table.delete().where(
    reaction_table.c.id == any_(bindparam("reaction_ids", type_=UUID_ARRAY))
)
_REACTION_KEY = ("message_id", "user_id", "emoji_name")
_SET_THREAD_STATES = text(
    "UPDATE slack_message m SET reply_count = v.reply_count, latest_reply_ts = v.latest "
    "FROM unnest(CAST(:ts AS varchar[]), CAST(:counts AS integer[]), CAST(:latest AS varchar[])) "
    "AS v(slack_ts, reply_count, latest) "
    "WHERE m.channel_id = :in_channel AND m.slack_ts = v.slack_ts"
)

# Days of a range as rows: those with a count from the arrays, the others with none.
_RECORD_SYNCED_RANGE = text(
    "INSERT INTO slack_sync_day (channel_id, day, message_count, api_calls, synced_at, "
    "threads_checked_at, complete) "
    "SELECT :in_channel, CAST(:first AS date) + n, coalesce(f.message_count, 0), 0, now(), "
    "now(), true FROM generate_series(0, :span) AS n "
    "LEFT JOIN unnest(CAST(:days AS date[]), CAST(:counts AS integer[])) "
    "AS f(day, message_count) ON f.day = CAST(:first AS date) + n "
    "ON CONFLICT (channel_id, day) DO UPDATE SET message_count = EXCLUDED.message_count, "
    "api_calls = EXCLUDED.api_calls, synced_at = EXCLUDED.synced_at, "
    "threads_checked_at = EXCLUDED.threads_checked_at, complete = EXCLUDED.complete"
)

# The columns a `message_changed` replaces: the content, not the thread or reaction state.
_EDITED_COLUMNS = (
    "text",
    "processed_text",
    "message_type",
    "subtype",
    "is_edited",
    "edited_ts",
    "has_attachments",
    "attachments",
    "files",
    "is_deleted",
)
_REFRESH_THREADS = text(
    "UPDATE slack_message AS p SET reply_count = s.replies, "
    "reply_users_count = s.repliers, latest_reply_ts = s.latest, "
    "is_thread_parent = (s.replies > 0 OR p.subtype IS NOT DISTINCT FROM 'tombstone'), "
    "thread_ts = CASE WHEN s.replies > 0 OR p.subtype IS NOT DISTINCT FROM 'tombstone' "
    "THEN p.slack_ts END "
    "FROM unnest(string_to_array(:parents, ',')) AS wanted(ts) CROSS JOIN LATERAL ("
    " SELECT count(*) AS replies, count(DISTINCT r.user_id) AS repliers,"
    " max(r.slack_ts) AS latest FROM slack_message AS r"
    " WHERE r.channel_id = :in_channel AND r.thread_ts = wanted.ts AND r.is_thread_reply"
    " AND NOT r.is_deleted) AS s "
    "WHERE p.channel_id = :in_channel AND p.slack_ts = wanted.ts AND NOT p.is_thread_reply"
)


def relax_bulk_commit(connection: Connection) -> None:
    """For the rest of this transaction of a bulk write: commit without waiting for its WAL to
    reach the disk (a crash loses the last commits, never one in the middle, and the writes are
    idempotent upserts that the next run repeats), and no JIT (a write's statements are point
    lookups; with statistics that lag a bulk load the planner's estimates crossed the JIT
    threshold and compiling took 20 ms a statement)."""
    connection.exec_driver_sql(
        "SELECT set_config('synchronous_commit', 'off', true), set_config('jit', 'off', true)"
    )


def planned_message_rows(connection: Connection) -> int:
    """How many rows the planner's statistics say slack_message holds (0 before its first
    ANALYZE)."""
    estimate = connection.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST('slack_message' AS regclass)")
    ).scalar_one()
    return max(int(estimate), 0)


def analyze_message_tables(connection: Connection) -> None:
    """Fresh planner statistics for the tables a bulk load fills. Until autovacuum gets to
    them (a minute or more), statistics taken when the tables were nearly empty make the
    planner scan all of a workspace's messages where it would look up one channel's: during an
    archive's import, 30 ms a channel for a check that takes 1 ms. PostgreSQL scales
    statistics to a table's current size, so taking them once the load is under way is
    enough. Someone other than the tables' owner gets a warning, not an error."""
    connection.exec_driver_sql("ANALYZE slack_message, slack_reaction, slack_sync_day")


@dataclass(frozen=True)
class StoredChannel:
    id: uuid.UUID
    name: str
    type: str
    is_selected_for_analysis: bool
    is_supported: bool


def joined_ts(timestamps: Iterable[str]) -> str:
    """Slack timestamps as one comma-separated parameter, split by `string_to_array` in the
    statement: psycopg encodes a list parameter element by element in Python (a tenth of a
    page's cost), a string in one go."""
    values = list(timestamps)
    joined = ",".join(values)
    if joined.count(",") != max(len(values) - 1, 0) or (values and not all(values)):
        raise ValueError(f"not a Slack timestamp list: {values[:3]!r}...")
    return joined


@dataclass
class WorkspaceCache:
    """What the pages of one sync share instead of reading it again for each page."""

    user_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    """Slack id -> slack_user.id. Only valid while the transactions that added to it commit:
    whoever shares it clears it when one fails."""
    erased: frozenset[str] | None = None


class SlackStore:
    """Writes of one workspace's sync, on one connection (the caller owns the transaction)."""

    def __init__(
        self,
        connection: Connection,
        workspace_id: uuid.UUID,
        cache: WorkspaceCache | None = None,
    ) -> None:
        self.connection = connection
        self.workspace_id = workspace_id
        self._cache = cache if cache is not None else WorkspaceCache()
        self._user_ids = self._cache.user_ids
        if self._cache.erased is None:
            # People erased on request (privacy/erasure.py) stay out: no profile, messages or
            # reactions of theirs is stored again.
            erased = connection.execute(
                select(SlackWorkspace.workspace_metadata[ERASED_KEY]).where(
                    SlackWorkspace.id == workspace_id
                )
            ).scalar()
            self._cache.erased = frozenset(erased or ())
        self._erased: frozenset[str] = self._cache.erased

    # --- users and channels ---------------------------------------------------------------

    def upsert_users(self, rows: Iterable[Row]) -> WriteCounts:
        rows = [
            {**row, "workspace_id": self.workspace_id}
            for row in rows
            if row["slack_id"] not in self._erased
        ]
        counts = upsert(self.connection, user_table, rows, ("workspace_id", "slack_id"))
        self._user_ids.clear()
        return counts

    def user_ids(
        self, slack_ids: Iterable[str], fallback: Mapping[str, Row] | None = None
    ) -> dict[str, uuid.UUID]:
        """UUIDs of these Slack users; unknown ids (people outside the workspace, bots, users
        deleted before the first sync) get a placeholder row so no message loses its author."""
        wanted = set(slack_ids)
        if not self._user_ids:
            self._user_ids.update(
                self.connection.execute(
                    select(user_table.c.slack_id, user_table.c.id).where(
                        user_table.c.workspace_id == self.workspace_id
                    )
                ).all()
            )
        missing = wanted - self._user_ids.keys()
        if missing:
            # Sorted: two channels synced at once insert shared placeholders in one order.
            placeholders = [
                {"is_bot": False, **(fallback or {}).get(slack_id, {}), "slack_id": slack_id}
                for slack_id in sorted(missing)
            ]
            statement = (
                insert(user_table)
                .values(
                    [{"workspace_id": self.workspace_id, **row} for row in _same_keys(placeholders)]
                )
                .on_conflict_do_nothing(index_elements=["workspace_id", "slack_id"])
            )
            self.connection.execute(statement)
            self._user_ids.update(
                self.connection.execute(
                    select(user_table.c.slack_id, user_table.c.id).where(
                        user_table.c.workspace_id == self.workspace_id,
                        user_table.c.slack_id.in_(missing),
                    )
                ).all()
            )
        return {slack_id: self._user_ids[slack_id] for slack_id in wanted}

    def upsert_channels(
        self, rows: Iterable[Row], *, select_public: bool, join_public: bool, from_export: bool
    ) -> WriteCounts:
        """Upsert channels; a new public channel starts selected for analysis when the workspace
        says so (`select_public`) and the app can read it: it is a member, or it may join
        (`join_public`) a channel that is not archived. An export holds every public channel's
        messages: there they all start selected. A selection made later is never overwritten
        (nor is a channel selected when the app joins it later). A channel Slack lists is
        supported again: one marked unsupported after `channel_not_found` (private, and the app
        was not in it) is read again once the app is invited back."""

        def readable(row: Row) -> bool:
            archived = bool(row.get("is_archived"))
            return from_export or bool(row.get("has_bot")) or (join_public and not archived)

        rows = [
            {
                **row,
                "workspace_id": self.workspace_id,
                "is_supported": True,
                "is_selected_for_analysis": select_public
                and row["type"] == "public"
                and readable(row),
            }
            for row in rows
        ]
        return upsert(
            self.connection,
            channel_table,
            rows,
            ("workspace_id", "slack_id"),
            insert_only=("is_selected_for_analysis",),
        )

    # --- messages ---------------------------------------------------------------------------

    def stored_threads(
        self, channel_id: uuid.UUID, parent_ts: Sequence[str]
    ) -> dict[str, tuple[int, str | None]]:
        """(reply_count, latest_reply_ts) as stored, for the parents given."""
        return {ts: (count, latest) for ts, _, count, latest in self._stored(channel_id, parent_ts)}

    def upsert_messages(
        self,
        channel_id: uuid.UUID,
        rows: Sequence[Row],
        reactions: Mapping[str, Sequence[tuple[str, str]]],
        bot_rows: Mapping[str, Row] | None = None,
    ) -> tuple[WriteCounts, WriteCounts]:
        """Upsert messages and make their reactions exactly `reactions[ts]`. The rows get their
        `user_id`, `channel_id` and `parent_id` here, in place.

        Returns (message counts, reaction counts).
        """
        if self._erased:
            rows = [row for row in rows if row["author"] not in self._erased]
            reactions = {
                ts: [pair for pair in pairs if pair[1] not in self._erased]
                for ts, pairs in reactions.items()
            }
        if not rows:
            return WriteCounts(), WriteCounts()
        referenced = {row["author"] for row in rows if row["author"]}
        referenced.update(user for pairs in reactions.values() for _, user in pairs)
        user_ids = self.user_ids(referenced, bot_rows)
        # Replies whose parent is already stored (in a Web API sync, all of them: history is
        # read before replies) are inserted pointing at it; setting parent_id afterwards would
        # write every reply twice.
        parent_ids = self._stored_ids(
            channel_id, {row["thread_ts"] for row in rows if row["is_thread_reply"]}
        )
        ids = time_ordered_uuids(len(rows))  # used by new rows only
        for row, new_id in zip(rows, ids, strict=True):  # in place: a copy cost more than COPY
            row["id"] = new_id
            row["user_id"] = user_ids.get(row["author"]) if row["author"] else None
            row["channel_id"] = channel_id
            row["parent_id"] = parent_ids.get(row["thread_ts"]) if row["is_thread_reply"] else None
        columns = [column for column in rows[0] if column != "author"]
        new_ts: list[str] = []
        written: dict[str, uuid.UUID] = {}
        message_counts = upsert(
            self.connection,
            message_table,
            rows,
            ("channel_id", "slack_ts"),
            inserted_keys=new_ts,
            written_ids=written,
            columns=columns,
            # A stored row keeps its id, and its link (`_link_parents` fills gaps).
            insert_only=("id", "parent_id"),
            extra_set_sql={
                "deleted_at": "CASE WHEN EXCLUDED.is_deleted "
                "THEN COALESCE(slack_message.deleted_at, now()) END"
            },
        )
        timestamps = [row["slack_ts"] for row in rows]
        inserted = set(new_ts)
        self._link_parents(
            channel_id,
            replies=[
                row["slack_ts"]
                for row in rows
                if row["is_thread_reply"]
                and not (row["slack_ts"] in inserted and row["thread_ts"] in parent_ids)
            ],
            # Only a message that starts a thread can have replies waiting for it.
            parents=[
                row["slack_ts"]
                for row in rows
                if not row["is_thread_reply"] and row["thread_ts"] == row["slack_ts"]
            ],
        )
        reaction_counts = self._replace_reactions(
            channel_id, timestamps, reactions, user_ids, inserted, written
        )
        return message_counts, reaction_counts

    def _stored_ids(self, channel_id: uuid.UUID, timestamps: Iterable[str]) -> dict[str, uuid.UUID]:
        return {ts: message_id for ts, message_id, _, _ in self._stored(channel_id, timestamps)}

    def _stored(
        self, channel_id: uuid.UUID, timestamps: Iterable[str]
    ) -> list[tuple[str, uuid.UUID, int, str | None]]:
        """(slack_ts, id, reply_count, latest_reply_ts) of the stored messages among these
        timestamps; no query when there are none."""
        wanted = joined_ts(timestamps)
        if not wanted:
            return []
        result = self.connection.execute(_STORED_BY_TS, {"in_channel": channel_id, "ts": wanted})
        return [(ts, message_id, count, latest) for ts, message_id, count, latest in result]

    def _link_parents(
        self, channel_id: uuid.UUID, *, replies: Sequence[str], parents: Sequence[str]
    ) -> None:
        """Point these replies, if still unlinked, and stored unlinked replies to these parents,
        at their parent."""
        if not replies and not parents:
            return
        self.connection.execute(
            _LINK_PARENTS,
            {
                "in_channel": channel_id,
                "replies": joined_ts(replies),
                "parents": joined_ts(parents),
            },
        )

    def _replace_reactions(
        self,
        channel_id: uuid.UUID,
        timestamps: Sequence[str],
        reactions: Mapping[str, Sequence[tuple[str, str]]],
        user_ids: Mapping[str, uuid.UUID],
        new_messages: set[str],
        message_ids: dict[str, uuid.UUID],
    ) -> WriteCounts:
        """Make the reactions of these messages exactly `reactions` (messages inserted just now
        have none stored yet, so only the others are compared)."""
        counts = WriteCounts()
        # The upsert returned the ids of the rows it wrote only.
        message_ids.update(
            self._stored_ids(channel_id, [ts for ts in timestamps if ts not in message_ids])
        )
        wanted = [
            (message_ids[ts], user_ids[user], emoji)
            for ts in timestamps
            for emoji, user in reactions.get(ts, ())
        ]
        # The difference is worked out here: a NOT IN over row values is slow in PostgreSQL.
        keep = set(wanted)
        existing = [message_ids[ts] for ts in timestamps if ts not in new_messages]
        stale = (
            [
                reaction_id
                for reaction_id, *pair in self.connection.execute(
                    _STORED_REACTIONS, {"ids": existing}
                )
                if tuple(pair) not in keep
            ]
            if existing
            else []
        )
        if stale:
            self.connection.execute(_DELETE_REACTIONS, {"reaction_ids": stale})
        counts.deleted = len(stale)
        counts.inserted = upsert(
            self.connection,
            reaction_table,
            [
                (*reaction, new_id)
                for reaction, new_id in zip(wanted, time_ordered_uuids(len(wanted)), strict=True)
            ],
            _REACTION_KEY,
            columns=(*_REACTION_KEY, "id"),
            insert_only=("id",),
        ).inserted
        return counts

    def has_messages(self, channel_id: uuid.UUID) -> bool:
        """Whether any message of the channel is stored."""
        return bool(
            self.connection.execute(
                select(
                    select(message_table.c.id)
                    .where(message_table.c.channel_id == channel_id)
                    .exists()
                )
            ).scalar()
        )

    def mark_deleted(
        self,
        channel_id: uuid.UUID,
        seen_ts: Iterable[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        threads: Sequence[str] | None = None,
    ) -> int:
        """Flag stored messages that Slack no longer returns, within what was just read in full:
        the top-level messages (and broadcasts) of [start, end), or the replies of `threads`."""
        conditions = [
            message_table.c.channel_id == channel_id,
            message_table.c.is_deleted.is_(False),
            # NOT IN over an unnested array: one parameter however many timestamps, and a
            # hashed lookup (`!= ALL` would compare every row with every element).
            message_table.c.slack_ts.not_in(
                select(
                    func.unnest(func.string_to_array(bindparam("seen", joined_ts(seen_ts)), ","))
                )
            ),
        ]
        if threads is not None:
            conditions += [
                message_table.c.thread_ts
                == any_(bindparam("threads", list(threads), type_=TEXT_ARRAY)),
                message_table.c.is_thread_reply,
            ]
        else:
            if start is None or end is None:
                raise ValueError("mark_deleted needs a thread or a time range")
            conditions += [
                message_table.c.message_datetime >= start,
                message_table.c.message_datetime < end,
                (message_table.c.is_thread_reply.is_(False))
                | (message_table.c.subtype == "thread_broadcast"),
            ]
        result = self.connection.execute(
            update(message_table)
            .where(and_(*conditions))
            .values(is_deleted=True, deleted_at=func.now())
        )
        return result.rowcount

    def set_thread_states(
        self, channel_id: uuid.UUID, states: Mapping[str, tuple[int, str | None]]
    ) -> None:
        """Record that these threads' replies are stored as of (reply_count, latest_reply)."""
        if not states:
            return
        self.connection.execute(
            _SET_THREAD_STATES,
            {
                "in_channel": channel_id,
                "ts": list(states),
                "counts": [count for count, _ in states.values()],
                "latest": [latest for _, latest in states.values()],
            },
        )

    def record_synced_days(
        self, channel_id: uuid.UUID, message_counts: Mapping[date, int], api_calls: int
    ) -> None:
        """Days read to their last page; their threads count as checked now. `api_calls` is
        booked on the first day."""
        if not message_counts:
            return
        first = min(message_counts)
        # The COPY upsert, not a multi-row INSERT: an import records every day of its range
        # (most of them empty), and compiling a SQLAlchemy INSERT of thousands of rows took two
        # thirds of an 8-year archive's import. COPY takes values, not SQL, so the transaction's
        # now() is read once. It differs from a stored day's, so a day read again is always
        # rewritten: its threads were just checked.
        now = self.connection.execute(select(func.now())).scalar_one()
        upsert(
            self.connection,
            sync_day_table,
            [
                (channel_id, day, count, api_calls if day == first else 0, now, now, True)
                for day, count in sorted(message_counts.items())
            ],
            ("channel_id", "day"),
            columns=(
                "channel_id",
                "day",
                "message_count",
                "api_calls",
                "synced_at",
                "threads_checked_at",
                "complete",
            ),
        )

    def record_synced_range(
        self, channel_id: uuid.UUID, first: date, last: date, message_counts: Mapping[date, int]
    ) -> None:
        """Every day of [first, last] read in full (an export's channel): the days in
        `message_counts` with their count, the others with none. Rewritten when recorded
        before, like `record_synced_days`: their threads were just checked.

        One statement that makes the days in PostgreSQL (generate_series): an archive's
        channel spans thousands of days and most have no file, and building, sending and
        decoding a row for each of them cost more than the database spends writing them."""
        if first > last:
            raise ValueError(f"record_synced_range: {first} is after {last}")
        stray = [day for day in message_counts if not first <= day <= last]
        if stray:
            raise ValueError(f"record_synced_range: {stray[0]} is outside {first}..{last}")
        days = sorted(message_counts)
        self.connection.execute(
            _RECORD_SYNCED_RANGE,
            {
                "in_channel": channel_id,
                "first": first,
                "span": (last - first).days,
                "days": days,
                "counts": [message_counts[day] for day in days],
            },
        )

    def stale_thread_days(
        self, channel_id: uuid.UUID, first: date, before: date, checked_before: datetime
    ) -> list[date]:
        """Completed days in [first, before) whose threads were last checked before
        `checked_before`: late replies to their messages may be missing."""
        rows = self.connection.execute(
            select(sync_day_table.c.day)
            .where(
                sync_day_table.c.channel_id == channel_id,
                sync_day_table.c.complete,
                sync_day_table.c.day >= first,
                sync_day_table.c.day < before,
                sync_day_table.c.threads_checked_at < checked_before,
            )
            .order_by(sync_day_table.c.day)
        )
        return list(rows.scalars())

    # --- changes followed from events (slack/apply_events.py) ----------------------------
    # Each of these leaves the rows a poll of the same messages would write, and is a no-op
    # when applied again: events are delivered at least once and race polls.

    def thread_parents_between(
        self, channel_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[str]:
        """Timestamps of the stored thread parents (tombstones included) posted in [start,
        end): the threads a reconciliation re-reads."""
        return list(
            self.connection.execute(
                select(message_table.c.slack_ts).where(
                    message_table.c.channel_id == channel_id,
                    message_table.c.message_datetime >= start,
                    message_table.c.message_datetime < end,
                    message_table.c.is_thread_reply.is_(False),
                    message_table.c.reply_count > 0,
                )
            ).scalars()
        )

    def channel_by_slack_id(self, slack_id: str) -> StoredChannel | None:
        row = self.connection.execute(
            select(
                channel_table.c.id,
                channel_table.c.name,
                channel_table.c.type,
                channel_table.c.is_selected_for_analysis,
                channel_table.c.is_supported,
            ).where(
                channel_table.c.workspace_id == self.workspace_id,
                channel_table.c.slack_id == slack_id,
            )
        ).one_or_none()
        return StoredChannel(*row) if row is not None else None

    def insert_new_messages(
        self,
        channel_id: uuid.UUID,
        rows: Sequence[Row],
        reactions: Mapping[str, Sequence[tuple[str, str]]],
        bot_rows: Mapping[str, Row] | None = None,
    ) -> WriteCounts:
        """Store messages that are not stored yet (one already stored is at least as new as a
        `message` event: a poll or an edit wrote it); their threads' counts follow."""
        stored = self._stored_ids(channel_id, [row["slack_ts"] for row in rows])
        new = [row for row in rows if row["slack_ts"] not in stored]
        counts, _ = self.upsert_messages(channel_id, new, reactions, bot_rows)
        self.refresh_threads(
            channel_id, {row["thread_ts"] for row in new if row["is_thread_reply"]}
        )
        return counts

    def apply_edit(
        self,
        channel_id: uuid.UUID,
        row: Row,
        reactions: Sequence[tuple[str, str]],
        bot_rows: Mapping[str, Row] | None = None,
    ) -> str:
        """A message as it is now (`message_changed`): its content replaces the stored one
        unless the stored one is newer (a later edit, or a deletion). Thread counts, the
        parent link and reactions are left to their own events. A message not stored yet is
        stored whole. Returns applied, stale or inserted."""
        if row["author"] in self._erased:
            return "stale"
        ts = row["slack_ts"]
        if ts not in self._stored_ids(channel_id, [ts]):
            self.upsert_messages(channel_id, [row], {ts: reactions}, bot_rows)
            if row["is_thread_reply"]:
                self.refresh_threads(channel_id, {row["thread_ts"]})
            return "inserted"
        author = row["author"]
        user_id = self.user_ids([author], bot_rows)[author] if author else None
        conditions = [message_table.c.channel_id == channel_id, message_table.c.slack_ts == ts]
        if not row["is_deleted"]:
            conditions.append(message_table.c.is_deleted.is_(False))
            edited = row["edited_ts"]
            stored_edit = message_table.c.edited_ts
            conditions.append(
                stored_edit.is_(None)
                if edited is None
                else stored_edit.is_(None)
                | (cast(stored_edit, Numeric) <= cast(literal(edited), Numeric))
            )
        values = {name: row[name] for name in _EDITED_COLUMNS} | {"user_id": user_id}
        if row["is_deleted"]:
            values["deleted_at"] = func.coalesce(message_table.c.deleted_at, func.now())
        result = self.connection.execute(
            update(message_table).where(*conditions).values(values).returning(message_table.c.id)
        )
        message_id = result.scalar_one_or_none()
        if message_id is None:
            return "stale"
        if row["is_deleted"]:  # a tombstone: Slack drops its reactions
            self.connection.execute(
                reaction_table.delete().where(reaction_table.c.message_id == message_id)
            )
            self._count_reactions(message_id)
        return "applied"

    def apply_deletion(self, channel_id: uuid.UUID, ts: str, tombstone: Row) -> str:
        """`message_deleted`: a thread parent that still has replies becomes `tombstone` (as
        Slack shows it), anything else is flagged deleted; a deleted reply's thread counts
        follow. Returns applied or missing."""
        found = self.connection.execute(
            select(message_table.c.is_thread_reply, message_table.c.thread_ts).where(
                message_table.c.channel_id == channel_id, message_table.c.slack_ts == ts
            )
        ).one_or_none()
        if found is None:
            return "missing"
        is_reply, thread_ts = found
        if not is_reply and self._live_replies(channel_id, ts) > 0:
            self.apply_edit(channel_id, tombstone, ())
            return "applied"
        self.connection.execute(
            update(message_table)
            .where(message_table.c.channel_id == channel_id, message_table.c.slack_ts == ts)
            .values(
                is_deleted=True,
                deleted_at=func.coalesce(message_table.c.deleted_at, func.now()),
            )
        )
        if is_reply and thread_ts:
            self.refresh_threads(channel_id, {thread_ts})
        return "applied"

    def _live_replies(self, channel_id: uuid.UUID, thread_ts: str) -> int:
        return int(
            self.connection.execute(
                select(func.count()).where(
                    message_table.c.channel_id == channel_id,
                    message_table.c.thread_ts == thread_ts,
                    message_table.c.is_thread_reply,
                    message_table.c.is_deleted.is_(False),
                )
            ).scalar_one()
        )

    def refresh_threads(self, channel_id: uuid.UUID, parents: Iterable[str]) -> None:
        """Recount the replies of these threads from what is stored: the counts Slack shows on
        the parent. A parent left with no replies is no thread any more (a tombstone stays
        one until Slack drops it)."""
        wanted = sorted(parents)
        if wanted:
            self.connection.execute(
                _REFRESH_THREADS, {"in_channel": channel_id, "parents": joined_ts(wanted)}
            )

    def apply_reaction(
        self, channel_id: uuid.UUID, ts: str, user: str, emoji: str, added: bool
    ) -> bool:
        """`reaction_added` / `reaction_removed`; False when the message is not stored (yet)."""
        if user in self._erased:
            return True
        ids = self._stored_ids(channel_id, [ts])
        if ts not in ids:
            return False
        message_id = ids[ts]
        user_id = self.user_ids([user])[user]
        if added:
            self.connection.execute(
                insert(reaction_table)
                .values(
                    id=time_ordered_uuids(1)[0],
                    message_id=message_id,
                    user_id=user_id,
                    emoji_name=emoji,
                )
                .on_conflict_do_nothing(index_elements=list(_REACTION_KEY))
            )
        else:
            self.connection.execute(
                reaction_table.delete().where(
                    reaction_table.c.message_id == message_id,
                    reaction_table.c.user_id == user_id,
                    reaction_table.c.emoji_name == emoji,
                )
            )
        self._count_reactions(message_id)
        return True

    def _count_reactions(self, message_id: uuid.UUID) -> None:
        counted = (
            select(func.count()).where(reaction_table.c.message_id == message_id).scalar_subquery()
        )
        self.connection.execute(
            update(message_table)
            .where(message_table.c.id == message_id)
            .values(reaction_count=counted)
        )

    def update_channel(self, slack_id: str, values: Mapping[str, Any]) -> int:
        """Change a stored channel's fields (rename, archive, ...); returns rows changed."""
        result = self.connection.execute(
            update(channel_table)
            .where(
                channel_table.c.workspace_id == self.workspace_id,
                channel_table.c.slack_id == slack_id,
            )
            .values(dict(values))
        )
        return result.rowcount

    def change_membership(self, slack_id: str, *, joined: bool, is_our_bot: bool) -> int:
        """Somebody joined or left a channel: our bot's membership decides whether the channel
        can be read; anybody else's changes the member count."""
        values: dict[str, Any]
        if is_our_bot:
            values = {"has_bot": joined}
            if joined:
                values["bot_joined_at"] = func.now()
        else:
            values = {
                "member_count": func.greatest(
                    func.coalesce(channel_table.c.member_count, 0) + (1 if joined else -1), 0
                )
            }
        return self.update_channel(slack_id, values)


def _same_keys(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A multi-row INSERT needs the same columns in every row."""
    keys = sorted({k for row in rows for k in row})
    return [{k: row.get(k) for k in keys} for row in rows]


# --- the sync's reads and bookkeeping (slack/sync.py, slack/ingest.py) ----------------------


def record_workspace_info(
    connection: Connection,
    workspace_id: uuid.UUID,
    *,
    name: str,
    domain: str | None,
    icon_url: str | None,
) -> None:
    """Slack's `team.info` answered with this token: the workspace's profile, and connected."""
    connection.execute(
        update(SlackWorkspace)
        .where(SlackWorkspace.id == workspace_id)
        .values(
            name=name,
            domain=domain,
            icon_url=icon_url,
            is_connected=True,
            connection_status="active",
            last_connected_at=datetime.now(UTC),
        )
    )


def record_workspace_synced(connection: Connection, workspace_id: uuid.UUID) -> None:
    """The workspace's last sync time: now."""
    connection.execute(
        update(SlackWorkspace)
        .where(SlackWorkspace.id == workspace_id)
        .values(last_sync_at=datetime.now(UTC))
    )


@dataclass(frozen=True)
class SelectedChannel:
    id: uuid.UUID
    slack_id: str
    name: str
    type: str
    readable: bool
    """False for an archived channel the app is not in (nobody can add the app to it)."""


def selected_channels(
    connection: Connection, workspace_id: uuid.UUID, channel_types: Sequence[str]
) -> list[SelectedChannel]:
    """The workspace's channels selected for analysis, supported, of these types, by name."""
    rows = connection.execute(
        select(
            SlackChannel.id,
            SlackChannel.slack_id,
            SlackChannel.name,
            SlackChannel.type,
            ~(SlackChannel.is_archived & ~SlackChannel.has_bot),
        )
        .where(
            SlackChannel.workspace_id == workspace_id,
            SlackChannel.is_selected_for_analysis,
            SlackChannel.is_supported,
            SlackChannel.type.in_(channel_types),
        )
        .order_by(SlackChannel.name)
    )
    return [SelectedChannel(*row[:4], readable=bool(row[4])) for row in rows]


def user_display_names(connection: Connection, workspace_id: uuid.UUID) -> dict[str, str]:
    """Slack user id -> the name a message shows for the user, of every stored user."""
    return {
        slack_id: display_name({"display_name": display, "real_name": real, "name": name})
        for slack_id, display, real, name in connection.execute(
            select(
                SlackUser.slack_id, SlackUser.display_name, SlackUser.real_name, SlackUser.name
            ).where(SlackUser.workspace_id == workspace_id)
        )
    }


def channel_names(connection: Connection, workspace_id: uuid.UUID) -> dict[str, str]:
    """Slack channel id -> channel name, of every stored channel of the workspace."""
    return dict(
        connection.execute(
            select(SlackChannel.slack_id, SlackChannel.name).where(
                SlackChannel.workspace_id == workspace_id
            )
        ).all()
    )


def set_channel_fields(connection: Connection, channel_id: uuid.UUID, **values: Any) -> None:
    """Change a stored channel's columns (SQL expressions allowed), by its row id."""
    connection.execute(update(SlackChannel).where(SlackChannel.id == channel_id).values(values))


def record_channel_synced(connection: Connection, channel_id: uuid.UUID, now: datetime) -> None:
    """The channel's last sync time and the span of messages stored for it."""
    stored = select(SlackMessage.slack_ts).where(SlackMessage.channel_id == channel_id)
    set_channel_fields(
        connection,
        channel_id,
        last_sync_at=now,
        oldest_synced_ts=select(func.min(stored.subquery().c.slack_ts)).scalar_subquery(),
        latest_synced_ts=select(func.max(stored.subquery().c.slack_ts)).scalar_subquery(),
    )


def is_channel_archived(connection: Connection, channel_id: uuid.UUID) -> bool:
    archived = connection.execute(
        select(SlackChannel.is_archived).where(SlackChannel.id == channel_id)
    ).scalar()
    return bool(archived)


def user_count(connection: Connection, workspace_id: uuid.UUID) -> int:
    """How many users of the workspace are stored."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(SlackUser)
            .where(SlackUser.workspace_id == workspace_id)
        ).scalar_one()
    )


def channel_count(connection: Connection, workspace_id: uuid.UUID) -> int:
    """How many channels of the workspace are stored."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(SlackChannel)
            .where(SlackChannel.workspace_id == workspace_id)
        ).scalar_one()
    )


def _message_ids_between(workspace_id: uuid.UUID, start: datetime, end: datetime) -> Any:
    """The ids of the workspace's messages sent in [start, end), as a subquery."""
    return (
        select(SlackMessage.id)
        .join(SlackChannel, SlackChannel.id == SlackMessage.channel_id)
        .where(
            SlackChannel.workspace_id == workspace_id,
            SlackMessage.message_datetime >= start,
            SlackMessage.message_datetime < end,
        )
        .subquery()
    )


def message_count_between(
    connection: Connection, workspace_id: uuid.UUID, start: datetime, end: datetime
) -> int:
    """How many stored messages of the workspace were sent in [start, end)."""
    in_range = _message_ids_between(workspace_id, start, end)
    return int(connection.execute(select(func.count()).select_from(in_range)).scalar_one())


def reaction_count_between(
    connection: Connection, workspace_id: uuid.UUID, start: datetime, end: datetime
) -> int:
    """How many stored reactions are on the workspace's messages sent in [start, end)."""
    in_range = _message_ids_between(workspace_id, start, end)
    return int(
        connection.execute(
            select(func.count())
            .select_from(SlackReaction)
            .join(in_range, in_range.c.id == SlackReaction.message_id)
        ).scalar_one()
    )


# --- day checks (slack/health.py) ------------------------------------------------------------

_DAY_MESSAGES = (
    "FROM slack_message m JOIN slack_channel c ON c.id = m.channel_id "
    "JOIN slack_workspace w ON w.id = c.workspace_id WHERE w.slack_id = :slack_id "
    "AND m.message_datetime >= :start AND m.message_datetime < :start + interval '1 day' "
)


def orphan_reply_count(connection: Connection, slack_id: str, start: datetime) -> int:
    """Replies of the workspace's day starting at `start` whose parent is not stored (and not
    deleted themselves)."""
    return int(
        connection.execute(
            text(
                "SELECT count(*) " + _DAY_MESSAGES + "AND m.is_thread_reply "
                "AND m.parent_id IS NULL AND NOT m.is_deleted"
            ),
            {"slack_id": slack_id, "start": start},
        ).scalar_one()
    )


def authorless_message_count(connection: Connection, slack_id: str, start: datetime) -> int:
    """Messages of the workspace's day starting at `start` with neither a user nor a bot,
    system notices and deleted messages aside."""
    return int(
        connection.execute(
            text(
                "SELECT count(*) " + _DAY_MESSAGES + "AND m.user_id IS NULL AND NOT m.is_deleted "
                "AND coalesce(m.subtype, '') NOT IN ('tombstone', 'file_comment', 'channel_join', "
                "'channel_leave', 'bot_add', 'bot_remove')"
            ),
            {"slack_id": slack_id, "start": start},
        ).scalar_one()
    )


def incomplete_channel_names(
    connection: Connection, slack_id: str, day: date
) -> list[tuple[str, str]]:
    """(name, slack id) of the workspace's selected, readable channels whose day is not
    recorded as read to its last page, by name."""
    rows = connection.execute(
        text(
            "SELECT c.name, c.slack_id FROM slack_channel c JOIN slack_workspace w "
            "ON w.id = c.workspace_id LEFT JOIN slack_sync_day d ON d.channel_id = c.id "
            "AND d.day = :day WHERE w.slack_id = :slack_id AND c.is_selected_for_analysis "
            "AND c.is_supported AND NOT (c.is_archived AND NOT c.has_bot) "
            "AND (d.complete IS NULL OR NOT d.complete) ORDER BY c.name, c.slack_id"
        ),
        {"slack_id": slack_id, "day": day},
    ).all()
    return [(name, channel_slack_id) for name, channel_slack_id in rows]


# --- integrations and sync planning (slack/planning.py) ----------------------------------------


def stored_slack_ids(connection: Connection, slack_ids: Iterable[str]) -> set[str]:
    """Those of these Slack ids whose workspace has a row (slack/planning.py creates the
    others' rows from their integrations, which access/store.py reads)."""
    wanted = list(set(slack_ids))
    if not wanted:  # nothing to ask: spare the round trip
        return set()
    return set(
        connection.execute(
            select(SlackWorkspace.slack_id).where(SlackWorkspace.slack_id.in_(wanted))
        ).scalars()
    )


def insert_new_workspaces(connection: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Workspace rows, in one statement; a Slack id already stored is left as it is."""
    connection.execute(
        insert(SlackWorkspace)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=[SlackWorkspace.slack_id])
    )


def reconnect_workspaces(connection: Connection, slack_ids: Iterable[str]) -> set[str]:
    """Mark connected again those of these workspaces that are disconnected (slack/planning.py
    passes the workspaces of ACTIVE integrations, read through access/store.py); returns their
    Slack ids."""
    wanted = list(set(slack_ids))
    if not wanted:  # nothing to ask: spare the round trip
        return set()
    reconnected = connection.execute(
        update(SlackWorkspace)
        .where(
            SlackWorkspace.is_connected.is_(False),
            SlackWorkspace.slack_id.in_(wanted),
        )
        .values(is_connected=True, connection_status="active", last_connected_at=func.now())
        .returning(SlackWorkspace.slack_id)
    ).scalars()
    return set(reconnected)


def workspace_metadata_by_slack_id(
    connection: Connection, slack_ids: Sequence[str]
) -> dict[str, dict[str, Any] | None]:
    """Slack id -> `workspace_metadata` of these stored workspaces."""
    return {
        slack_id: metadata
        for slack_id, metadata in connection.execute(
            select(SlackWorkspace.slack_id, SlackWorkspace.workspace_metadata).where(
                SlackWorkspace.slack_id.in_(slack_ids)
            )
        )
    }


# Channels a sync reads: selected and supported; an archived channel the app is not in can
# never be read, so it is not waited for.
_READABLE_SELECTED_CHANNEL = (
    SlackChannel.is_selected_for_analysis,
    SlackChannel.is_supported,
    ~(SlackChannel.is_archived & ~SlackChannel.has_bot),
)


def readable_channel_counts(
    connection: Connection, slack_ids: Sequence[str]
) -> list[tuple[str, str, int]]:
    """(workspace Slack id, channel type, count) of the selected, readable channels of these
    workspaces."""
    rows = connection.execute(
        select(SlackWorkspace.slack_id, SlackChannel.type, func.count(SlackChannel.id))
        .join(SlackChannel, SlackChannel.workspace_id == SlackWorkspace.id)
        .where(SlackWorkspace.slack_id.in_(slack_ids), *_READABLE_SELECTED_CHANNEL)
        .group_by(SlackWorkspace.slack_id, SlackChannel.type)
    )
    return [(slack_id, channel_type, count) for slack_id, channel_type, count in rows]


def complete_channel_day_counts(
    connection: Connection, slack_ids: Sequence[str], first: date, last: date
) -> list[tuple[str, date, str, int]]:
    """(workspace Slack id, day, channel type, count) of the selected, readable channels of
    these workspaces recorded as read completely on each day of [first, last]."""
    rows = connection.execute(
        select(SlackWorkspace.slack_id, SlackSyncDay.day, SlackChannel.type, func.count())
        .join(SlackChannel, SlackChannel.id == SlackSyncDay.channel_id)
        .join(SlackWorkspace, SlackWorkspace.id == SlackChannel.workspace_id)
        .where(
            SlackWorkspace.slack_id.in_(slack_ids),
            *_READABLE_SELECTED_CHANNEL,
            SlackSyncDay.complete,
            SlackSyncDay.day >= first,
            SlackSyncDay.day <= last,
        )
        .group_by(SlackWorkspace.slack_id, SlackSyncDay.day, SlackChannel.type)
    )
    return [(slack_id, day, channel_type, count) for slack_id, day, channel_type, count in rows]


# --- workspaces as integrations (slack/workspaces.py), through an ORM session -------------------


def stored_workspace(session: Session, slack_id: str) -> SlackWorkspace | None:
    """The workspace's row, or None when it is not stored."""
    return session.scalar(select(SlackWorkspace).where(SlackWorkspace.slack_id == slack_id))


def mark_workspace_disconnected(
    session: Session, workspace_id: uuid.UUID, connection_status: str
) -> None:
    """The workspace's token stopped working; `connection_status` says why (cut to 50)."""
    session.execute(
        update(SlackWorkspace)
        .where(SlackWorkspace.id == workspace_id)
        .values(is_connected=False, connection_status=connection_status[:50])
    )


# --- Events API inbox ------------------------------------------------------------------------

inbox_table: Table = SlackEventInbox.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class PendingEvent:
    id: uuid.UUID
    event_id: str
    event_type: str
    channel_slack_id: str | None
    event_time: datetime
    payload: dict[str, Any]
    attempts: int


def store_event_delivery(connection: Connection, event: InboxEvent, transport: str) -> bool:
    """Keep one delivery of an event; a redelivery (same `event_id`) only counts. Returns
    whether the event is new. The caller commits before it acknowledges Slack."""
    statement = insert(inbox_table).values(
        event_id=event.event_id,
        team_id=event.team_id,
        event_type=event.event_type,
        event_subtype=event.event_subtype,
        channel_slack_id=event.channel_slack_id,
        event_time=event.event_time,
        transport=transport,
        payload=event.payload,
    )
    upserted = statement.on_conflict_do_update(
        index_elements=["event_id"],
        set_={"deliveries": inbox_table.c.deliveries + 1},
    ).returning(text("xmax = 0"))  # true for a row this statement inserted
    return bool(connection.execute(upserted).scalar_one())


_PENDING_COLUMNS = (
    inbox_table.c.id,
    inbox_table.c.event_id,
    inbox_table.c.event_type,
    inbox_table.c.channel_slack_id,
    inbox_table.c.event_time,
    inbox_table.c.payload,
    inbox_table.c.attempts,
)


def teams_with_pending_events(connection: Connection) -> list[str]:
    return list(
        connection.execute(
            select(inbox_table.c.team_id).where(inbox_table.c.applied_at.is_(None)).distinct()
        ).scalars()
    )


def pending_events(connection: Connection, team_id: str, limit: int) -> list[PendingEvent]:
    """The workspace's unapplied events, in the order Slack says they happened (then arrival:
    ids are time-ordered)."""
    rows = connection.execute(
        select(*_PENDING_COLUMNS)
        .where(inbox_table.c.team_id == team_id, inbox_table.c.applied_at.is_(None))
        # event_time has whole seconds; Slack's event_ts orders the events of one second
        # (arrival does not: deliveries overtake each other).
        .order_by(
            inbox_table.c.event_time,
            cast(inbox_table.c.payload["event"]["event_ts"].astext, Numeric),
            inbox_table.c.id,
        )
        .limit(limit)
    )
    return [PendingEvent(*row) for row in rows]


def applied_events_since(
    connection: Connection, team_id: str, since: datetime
) -> list[PendingEvent]:
    """Message and reaction events of the workspace received at or after `since` and applied:
    what a poll that started reading then may have overwritten with an older state."""
    rows = connection.execute(
        select(*_PENDING_COLUMNS)
        .where(
            inbox_table.c.team_id == team_id,
            # Our clock, not Slack's event_time: what matters is whether the event was applied
            # while the poll ran, and the two clocks may disagree.
            inbox_table.c.received_at >= since,
            inbox_table.c.outcome == "applied",
            inbox_table.c.event_type.in_(("message", "reaction_added", "reaction_removed")),
        )
        .order_by(inbox_table.c.event_time, inbox_table.c.id)
    )
    return [PendingEvent(*row) for row in rows]


def finish_event(
    connection: Connection, event_id: uuid.UUID, outcome: str | None, detail: str | None
) -> None:
    """Record an application: `outcome` None leaves the event pending (it waits for its
    message) and only counts the attempt."""
    values: dict[str, Any] = {"attempts": inbox_table.c.attempts + 1, "detail": detail}
    if outcome is not None:
        values |= {"applied_at": func.now(), "outcome": outcome}
    connection.execute(update(inbox_table).where(inbox_table.c.id == event_id).values(values))


def inbox_status(connection: Connection, team_id: str | None = None) -> tuple[int, datetime | None]:
    """(pending events, when the oldest pending one was received)."""
    query = select(func.count(), func.min(inbox_table.c.received_at)).where(
        inbox_table.c.applied_at.is_(None)
    )
    if team_id is not None:
        query = query.where(inbox_table.c.team_id == team_id)
    count, oldest = connection.execute(query).one()
    return int(count), oldest


def prune_applied_events(connection: Connection, applied_before: datetime) -> int:
    result = connection.execute(
        inbox_table.delete().where(inbox_table.c.applied_at < applied_before)
    )
    return result.rowcount


def forget_user_events(connection: Connection, team_id: str, user_slack_id: str) -> int:
    """Delete every stored event of the workspace that names this user anywhere (author,
    reactor, mention, profile): erasure leaves nothing of theirs in the inbox. Events of others
    that mention them go too; reconciliation reads those messages again, redacted."""
    result = connection.execute(
        inbox_table.delete().where(
            inbox_table.c.team_id == team_id,
            func.strpos(cast(inbox_table.c.payload, Text), user_slack_id) > 0,
        )
    )
    return result.rowcount


@dataclass(frozen=True)
class DaySummary:
    """What one UTC day of a workspace holds, for the metadata of its partition."""

    messages: int = 0
    reactions: int = 0
    channels_synced: int = 0
    api_calls: int = 0
    messages_inserted: int = 0
    """Of the day's messages, those first stored since the sync began."""
    messages_updated: int = 0
    """Those stored before it and changed since."""


_DAY_SUMMARIES = text(
    "WITH days AS (SELECT generate_series(CAST(:first AS date), CAST(:last AS date), "
    "interval '1 day')::date AS day), "
    "msgs AS (SELECT (m.message_datetime AT TIME ZONE 'UTC')::date AS day, count(*) AS n, "
    " sum(m.reaction_count) AS r, count(*) FILTER (WHERE m.created_at >= :since) AS ins, "
    " count(*) FILTER (WHERE m.created_at < :since AND m.updated_at >= :since) AS upd "
    " FROM slack_message m JOIN slack_channel c ON c.id = m.channel_id "
    " WHERE c.workspace_id = :workspace AND m.message_datetime >= :start "
    " AND m.message_datetime < :end GROUP BY 1), "
    "synced AS (SELECT d.day, count(*) FILTER (WHERE d.complete) AS n, sum(d.api_calls) AS calls "
    " FROM slack_sync_day d JOIN slack_channel c ON c.id = d.channel_id "
    " WHERE c.workspace_id = :workspace AND d.day BETWEEN :first AND :last GROUP BY d.day) "
    "SELECT days.day, coalesce(msgs.n, 0), coalesce(msgs.r, 0), coalesce(synced.n, 0), "
    "coalesce(synced.calls, 0), coalesce(msgs.ins, 0), coalesce(msgs.upd, 0) "
    "FROM days LEFT JOIN msgs USING (day) LEFT JOIN synced USING (day)"
)


def day_summaries(
    connection: Connection,
    workspace_id: uuid.UUID,
    first: date,
    last: date,
    since: datetime | None = None,
) -> dict[date, DaySummary]:
    """Per UTC day of [first, last]: messages stored (deleted ones included, as a day run
    counts them) and their reactions, those inserted and updated since `since`, channels read
    to their last page, and the API calls booked on the day."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    rows = connection.execute(
        _DAY_SUMMARIES,
        {
            "workspace": workspace_id,
            "first": first,
            "last": last,
            "start": start,
            "end": end,
            "since": since or datetime.now(UTC),
        },
    )
    return {day: DaySummary(*(int(value) for value in figures)) for day, *figures in rows}


def workspace_id_of(connection: Connection, slack_id: str) -> uuid.UUID | None:
    return connection.execute(
        select(SlackWorkspace.id).where(SlackWorkspace.slack_id == slack_id)
    ).scalar_one_or_none()


def workspace_id_and_metadata(
    connection: Connection, slack_id: str
) -> tuple[uuid.UUID, dict[str, Any] | None] | None:
    """The workspace's row id and `workspace_metadata`, or None when it is not stored."""
    row = connection.execute(
        select(SlackWorkspace.id, SlackWorkspace.workspace_metadata).where(
            SlackWorkspace.slack_id == slack_id
        )
    ).one_or_none()
    return None if row is None else (row.id, row.workspace_metadata)


def remember_sync_setting(
    connection: Connection, workspace_id: uuid.UUID, name: str, value: Any
) -> None:
    """Set one of the workspace's sync settings (`workspace_metadata["sync"][name]`), keeping
    the others."""
    metadata = connection.execute(
        select(SlackWorkspace.workspace_metadata).where(SlackWorkspace.id == workspace_id)
    ).scalar_one()
    metadata = dict(metadata or {})
    metadata["sync"] = {**(metadata.get("sync") or {}), name: value}
    connection.execute(
        update(SlackWorkspace)
        .where(SlackWorkspace.id == workspace_id)
        .values(workspace_metadata=metadata)
    )


# --- administration: `toban slack channels/select/deselect/configure`, `toban status` ---------


@dataclass(frozen=True)
class AdminWorkspace:
    """A workspace as the administration commands show it, with its owner's integration."""

    id: uuid.UUID
    slack_id: str
    name: str
    team_id: uuid.UUID
    team_slug: str
    metadata: dict[str, Any]
    is_connected: bool
    connection_status: str | None
    last_sync_at: datetime | None
    integration_id: uuid.UUID | None
    integration_status: IntegrationStatus | None
    source: str | None
    """`integration_metadata["source"]`: api (a token) or export."""


def admin_workspaces(connection: Connection, slack_id: str | None = None) -> list[AdminWorkspace]:
    """Every workspace (or the one with this Slack id), ordered by Slack id, each with the
    integration of its owning team (None when the app created none).

    The workspace rows are read here; the team's slug and the integration through
    access/store.py, which owns those tables (issue 18). Three reads in the caller's
    transaction instead of one join: the joined rows cannot disappear in between (the team is
    a RESTRICT foreign key of the workspace, and an integration only adds its columns)."""
    query = select(
        SlackWorkspace.id,
        SlackWorkspace.slack_id,
        SlackWorkspace.name,
        SlackWorkspace.team_id,
        SlackWorkspace.workspace_metadata,
        SlackWorkspace.is_connected,
        SlackWorkspace.connection_status,
        SlackWorkspace.last_sync_at,
    ).order_by(SlackWorkspace.slack_id)
    if slack_id is not None:
        query = query.where(SlackWorkspace.slack_id == slack_id)
    rows = connection.execute(query).all()
    if not rows:
        return []
    slugs = access_store.team_slugs(connection, (row.team_id for row in rows))
    integrations = access_store.slack_integrations_by_owner(
        connection, (row.slack_id for row in rows)
    )
    workspaces = []
    for row in rows:
        if row.team_id not in slugs:
            continue  # the inner join on team this replaced dropped such a row
        integration = integrations.get((row.slack_id, row.team_id))
        workspaces.append(
            AdminWorkspace(
                id=row.id,
                slack_id=row.slack_id,
                name=row.name,
                team_id=row.team_id,
                team_slug=slugs[row.team_id],
                metadata=dict(row.workspace_metadata)
                if isinstance(row.workspace_metadata, dict)
                else {},
                is_connected=row.is_connected,
                connection_status=row.connection_status,
                last_sync_at=row.last_sync_at,
                integration_id=integration.id if integration else None,
                integration_status=integration.status if integration else None,
                source=integration.source if integration else None,
            )
        )
    return workspaces


@dataclass(frozen=True)
class AdminChannel:
    id: uuid.UUID
    slack_id: str
    name: str
    type: str
    is_archived: bool
    has_bot: bool
    is_selected: bool
    is_supported: bool
    last_synced_day: date | None
    """The newest UTC day read to its last page (`slack_sync_day.complete`)."""
    message_count: int | None
    """Stored messages, deleted ones aside (None when not counted)."""


def admin_channels(
    connection: Connection, workspace_id: uuid.UUID, *, count_messages: bool = True
) -> list[AdminChannel]:
    """The workspace's stored channels, by name, with their newest synced day and (when asked:
    it reads every message's index entry) their stored message count."""
    last_day = (
        select(func.max(sync_day_table.c.day))
        .where(sync_day_table.c.channel_id == channel_table.c.id, sync_day_table.c.complete)
        .scalar_subquery()
    )
    messages: Any = literal(None)
    if count_messages:
        messages = (
            select(func.count())
            .where(
                message_table.c.channel_id == channel_table.c.id,
                message_table.c.is_deleted.is_(False),
            )
            .scalar_subquery()
        )
    rows = connection.execute(
        select(
            channel_table.c.id,
            channel_table.c.slack_id,
            channel_table.c.name,
            channel_table.c.type,
            channel_table.c.is_archived,
            channel_table.c.has_bot,
            channel_table.c.is_selected_for_analysis,
            channel_table.c.is_supported,
            last_day,
            messages,
        )
        .where(channel_table.c.workspace_id == workspace_id)
        .order_by(channel_table.c.name, channel_table.c.slack_id)
    )
    return [
        AdminChannel(*row[:9], message_count=None if row[9] is None else int(row[9]))
        for row in rows
    ]


def set_channels_selected(
    connection: Connection, channel_ids: Sequence[uuid.UUID], selected: bool
) -> set[uuid.UUID]:
    """Select (or deselect) these channels; returns those whose selection changed. Stored
    messages stay either way."""
    if not channel_ids:
        return set()
    changed = connection.execute(
        update(channel_table)
        .where(
            channel_table.c.id == any_(bindparam("ids", type_=UUID_ARRAY)),
            channel_table.c.is_selected_for_analysis.is_not(selected),
        )
        .values(is_selected_for_analysis=selected)
        .returning(channel_table.c.id),
        {"ids": list(channel_ids)},
    ).scalars()
    return set(changed)


_MERGE_SYNC_SETTINGS = text(
    "UPDATE slack_workspace SET workspace_metadata = jsonb_set("
    " CASE WHEN jsonb_typeof(workspace_metadata) = 'object' THEN workspace_metadata"
    " ELSE '{}'::jsonb END, '{sync}',"
    " CASE WHEN jsonb_typeof(workspace_metadata -> 'sync') = 'object'"
    " THEN workspace_metadata -> 'sync' ELSE '{}'::jsonb END || :settings)"
    " WHERE id = :workspace"
).bindparams(bindparam("settings", type_=JSONB))


def merge_sync_settings(
    connection: Connection, workspace_id: uuid.UUID, settings: Mapping[str, Any]
) -> None:
    """Set these sync settings (`workspace_metadata["sync"]`) in one statement, keeping the
    others and the rest of the metadata."""
    connection.execute(
        _MERGE_SYNC_SETTINGS, {"workspace": workspace_id, "settings": dict(settings)}
    )


# --- workspace rows of registration, token refresh and key rotation (issue 18) ---------------


def connect_workspace(
    session: Session, *, team_id: uuid.UUID, slack_id: str, name: str
) -> SlackWorkspace:
    """The workspace's row (added when new), marked connected now, and flushed so it has an id
    and the integration registered beside it is written too."""
    workspace = stored_workspace(session, slack_id)
    if workspace is None:
        workspace = SlackWorkspace(team_id=team_id, slack_id=slack_id, name=name)
        session.add(workspace)
    workspace.is_connected = True
    workspace.connection_status = "active"
    workspace.last_connected_at = datetime.now(UTC)
    session.flush()
    return workspace


def store_workspace_token(
    session: Session,
    workspace: SlackWorkspace,
    *,
    access_token: str,
    refresh_token: str | None,
    expires_at: datetime | None,
    domain: str | None,
    sync_settings: Mapping[str, Any] | None,
) -> None:
    """The workspace's copy of its (encrypted) token, its domain and, when given, its sync
    settings; flushed."""
    workspace.access_token = access_token
    workspace.refresh_token = refresh_token
    workspace.token_expires_at = expires_at
    workspace.domain = domain
    if sync_settings is not None:
        workspace.workspace_metadata = {
            **(workspace.workspace_metadata or {}),
            "sync": dict(sync_settings),
        }
    session.flush()


def mirror_refreshed_token(
    session: Session,
    slack_id: str,
    *,
    access_token: str,
    refresh_token: str,
    expires_at: datetime,
) -> None:
    """A refreshed token copied onto the workspace's row, if the workspace is stored."""
    workspace = stored_workspace(session, slack_id)
    if workspace is not None:
        workspace.access_token = access_token
        workspace.refresh_token = refresh_token
        workspace.token_expires_at = expires_at


WORKSPACE_TABLE = "slack_workspace"
# The columns of slack_workspace that hold Fernet ciphertexts (key rotation).
WORKSPACE_SECRET_COLUMNS = ("access_token", "refresh_token")


def lock_workspace_secrets(session: Session, after: uuid.UUID | None, limit: int) -> Sequence[Any]:
    """The next `limit` workspaces by id after `after`: (id, *WORKSPACE_SECRET_COLUMNS),
    locked for this transaction only, so a refresh meanwhile waits instead of being
    overwritten with the old token."""
    table = SlackWorkspace.__table__
    query = select(table.c.id, *(table.c[c] for c in WORKSPACE_SECRET_COLUMNS))
    if after is not None:
        query = query.where(table.c.id > after)
    return session.execute(query.order_by(table.c.id).limit(limit).with_for_update()).all()


def write_workspace_secrets(
    session: Session, workspace_id: uuid.UUID, values: Mapping[str, str]
) -> None:
    """New ciphertexts for some of WORKSPACE_SECRET_COLUMNS of one workspace."""
    session.execute(
        update(SlackWorkspace).where(SlackWorkspace.id == workspace_id).values(dict(values))
    )


def slack_id_of_workspace(session: Session, workspace_id: uuid.UUID) -> str | None:
    return session.scalar(select(SlackWorkspace.slack_id).where(SlackWorkspace.id == workspace_id))


# --- erasure, retention and workspace deletion (privacy/) -------------------------------------
# Privacy decides what goes and opens the one transaction; these are its statements on the
# Slack tables, each on the caller's connection or session.


def all_workspace_slack_ids(connection: Connection) -> list[str]:
    """Every stored workspace's Slack id, in order."""
    return list(
        connection.execute(
            select(SlackWorkspace.slack_id).order_by(SlackWorkspace.slack_id)
        ).scalars()
    )


def lock_workspace(session: Session, slack_id: str) -> SlackWorkspace | None:
    """The workspace's row, locked until the transaction ends (one erasure at a time)."""
    return session.scalar(
        select(SlackWorkspace).where(SlackWorkspace.slack_id == slack_id).with_for_update()
    )


def workspace_user(
    session: Session, workspace_id: uuid.UUID, user_slack_id: str
) -> SlackUser | None:
    return session.scalar(
        select(SlackUser).where(
            SlackUser.workspace_id == workspace_id, SlackUser.slack_id == user_slack_id
        )
    )


def user_message_texts(
    connection: Connection, user_id: uuid.UUID
) -> list[tuple[str | None, str | None]]:
    """(text, processed_text) of each of the user's messages."""
    rows = connection.execute(
        select(SlackMessage.text, SlackMessage.processed_text).where(
            SlackMessage.user_id == user_id
        )
    )
    return [(t, p) for t, p in rows]


def _privacy_rowcount(connection: Connection, statement: Any) -> int:
    return int(connection.execute(statement).rowcount)


def delete_user_messages_and_reactions(
    connection: Connection, user_id: uuid.UUID
) -> dict[str, int]:
    """The user's messages, the reactions on them and the reactions they gave; other messages
    they reacted to get their reaction_count recounted. Returns what went, by kind."""
    own_messages = select(SlackMessage.id).where(SlackMessage.user_id == user_id)
    others_reacted = [
        m
        for (m,) in connection.execute(
            select(SlackReaction.message_id).where(
                SlackReaction.user_id == user_id, SlackReaction.message_id.not_in(own_messages)
            )
        )
    ]
    counts = {
        "reactions_on_their_messages": _privacy_rowcount(
            connection, delete(SlackReaction).where(SlackReaction.message_id.in_(own_messages))
        ),
        "reactions_given": _privacy_rowcount(
            connection, delete(SlackReaction).where(SlackReaction.user_id == user_id)
        ),
        "messages": _privacy_rowcount(
            connection, delete(SlackMessage).where(SlackMessage.user_id == user_id)
        ),
    }
    if others_reacted:
        # reaction_count mirrors the message's reaction rows; theirs are gone.
        remaining = (
            select(func.count())
            .where(SlackReaction.message_id == SlackMessage.id)
            .scalar_subquery()
        )
        connection.execute(
            update(SlackMessage)
            .where(SlackMessage.id.in_(others_reacted))
            .values(reaction_count=remaining)
        )
    return counts


def rewrite_mentions(
    connection: Connection,
    workspace_id: uuid.UUID,
    user_slack_id: str,
    rewrite: Callable[[str], str],
) -> int:
    """`processed_text` of the workspace's messages that @-mention the user, through `rewrite`
    (other people's messages render the person's name there); returns how many changed."""
    changed = 0
    channels = select(SlackChannel.id).where(SlackChannel.workspace_id == workspace_id)
    rows = connection.execute(
        select(SlackMessage.id, SlackMessage.processed_text).where(
            SlackMessage.channel_id.in_(channels),
            SlackMessage.text.contains(f"<@{user_slack_id}", autoescape=True),
        )
    ).all()
    for message_id, processed in rows:
        rewritten = rewrite(processed) if processed else processed
        if rewritten != processed:
            connection.execute(
                update(SlackMessage)
                .where(SlackMessage.id == message_id)
                .values(processed_text=rewritten)
            )
            changed += 1
    return changed


def delete_user(connection: Connection, user_id: uuid.UUID) -> None:
    connection.execute(delete(SlackUser).where(SlackUser.id == user_id))


def remember_erased_user(workspace: SlackWorkspace, user_slack_id: str) -> None:
    """The erased Slack id joins the workspace's ERASED_KEY list (later syncs skip it); written
    when the session flushes."""
    metadata = dict(workspace.workspace_metadata or {})
    erased = list(metadata.get(ERASED_KEY) or [])
    if user_slack_id not in erased:
        erased.append(user_slack_id)
    workspace.workspace_metadata = {**metadata, ERASED_KEY: erased}


def _privacy_count(connection: Connection, model: type[Any], condition: ColumnElement[bool]) -> int:
    return int(
        connection.execute(select(func.count()).select_from(model).where(condition)).scalar_one()
    )


def _messages_before(workspace_id: uuid.UUID, cutoff: datetime) -> Any:
    channels = select(SlackChannel.id).where(SlackChannel.workspace_id == workspace_id)
    return select(SlackMessage.id).where(
        SlackMessage.channel_id.in_(channels), SlackMessage.message_datetime < cutoff
    )


def counts_before(
    connection: Connection, workspace_id: uuid.UUID, cutoff: datetime
) -> dict[str, int]:
    """The workspace's messages older than `cutoff` and the reactions on them."""
    old_messages = _messages_before(workspace_id, cutoff)
    return {
        "messages": _privacy_count(connection, SlackMessage, SlackMessage.id.in_(old_messages)),
        "reactions": _privacy_count(
            connection, SlackReaction, SlackReaction.message_id.in_(old_messages)
        ),
    }


def delete_messages_before(
    connection: Connection, workspace_id: uuid.UUID, cutoff: datetime
) -> None:
    """The workspace's messages older than `cutoff`, their reactions first (explicit deletes
    rather than cascades, so the order is visible)."""
    old_messages = _messages_before(workspace_id, cutoff)
    connection.execute(delete(SlackReaction).where(SlackReaction.message_id.in_(old_messages)))
    connection.execute(delete(SlackMessage).where(SlackMessage.id.in_(old_messages)))


def workspace_row_counts(connection: Connection, workspace_id: uuid.UUID) -> dict[str, int]:
    """The workspace's channels, users, messages, reactions and sync days."""
    channels = select(SlackChannel.id).where(SlackChannel.workspace_id == workspace_id)
    return {
        "channels": _privacy_count(
            connection, SlackChannel, SlackChannel.workspace_id == workspace_id
        ),
        "users": _privacy_count(connection, SlackUser, SlackUser.workspace_id == workspace_id),
        "messages": _privacy_count(connection, SlackMessage, SlackMessage.channel_id.in_(channels)),
        "reactions": _privacy_count(
            connection,
            SlackReaction,
            SlackReaction.message_id.in_(
                select(SlackMessage.id).where(SlackMessage.channel_id.in_(channels))
            ),
        ),
        "sync_days": _privacy_count(
            connection, SlackSyncDay, SlackSyncDay.channel_id.in_(channels)
        ),
    }


def delete_workspace_messages(connection: Connection, workspace_id: uuid.UUID) -> None:
    """The workspace's reactions, then its messages: one statement per table, children first
    (a workspace of a million messages would otherwise be deleted row by row through the
    cascades' triggers)."""
    connection.execute(
        text(
            "DELETE FROM slack_reaction r USING slack_message m, slack_channel c "
            "WHERE r.message_id = m.id AND m.channel_id = c.id AND c.workspace_id = :w"
        ),
        {"w": workspace_id},
    )
    connection.execute(
        text(
            "DELETE FROM slack_message m USING slack_channel c "
            "WHERE m.channel_id = c.id AND c.workspace_id = :w"
        ),
        {"w": workspace_id},
    )


def delete_workspace_row(connection: Connection, workspace_id: uuid.UUID) -> None:
    """The workspace's row (its channels, users and sync days cascade)."""
    connection.execute(delete(SlackWorkspace).where(SlackWorkspace.id == workspace_id))
