"""Applying the Events API inbox: each stored event, oldest first, through the Slack store.

Every event is applied in its own short transaction together with its inbox mark, so a crash
leaves it pending and it is applied again (each store write is idempotent). Events about
channels that are not synced (unselected, unsupported, DMs unless enabled) are dropped; a
reaction on a message not stored yet waits a few attempts for the message, then is dropped
(the reconciliation reads it). A poll that raced events (it read Slack before an event, wrote
after it) re-applies the events that happened since it started (`reapply_since`).
"""

import dataclasses
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from toban_orchestration.db.enums import ChannelType
from toban_orchestration.slack import normalize
from toban_orchestration.slack.client import SlackAuthError
from toban_orchestration.slack.events import Change, bot_user_of, change_of
from toban_orchestration.slack.store import (
    PendingEvent,
    SlackStore,
    StoredChannel,
    WorkspaceCache,
    applied_events_since,
    finish_event,
    pending_events,
    teams_with_pending_events,
    workspace_id_and_metadata,
)
from toban_orchestration.slack.sync import SyncOptions, name_lookup
from toban_orchestration.slack.workspaces import record_auth_failure

logger = logging.getLogger(__name__)

APPLIED = "applied"
DROPPED = "dropped"
FAILED = "failed"
MAX_ATTEMPTS = 5
"""Applications of one event before it is given up (failed, or dropped if it was waiting)."""
WAITS_FOR_MESSAGE = "message not stored yet"
RACE_MARGIN = timedelta(minutes=2)
"""Slack's event_time and our clock differ a little: a poll re-applies events from this much
before it started."""


@dataclass
class ApplyReport:
    applied: int = 0
    dropped: int = 0
    failed: int = 0
    waiting: int = 0
    message_days: set[date] = field(default_factory=set)
    """UTC days whose messages or reactions changed: their partitions are re-analyzed."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Why events were dropped or failed, counted."""

    def add(self, other: "ApplyReport") -> None:
        self.applied += other.applied
        self.dropped += other.dropped
        self.failed += other.failed
        self.waiting += other.waiting
        self.message_days |= other.message_days
        self.reasons += other.reasons


@dataclass
class _Workspace:
    id: uuid.UUID
    slack_id: str
    options: SyncOptions
    names: normalize.NameLookup
    cache: WorkspaceCache = field(default_factory=WorkspaceCache)


@dataclass(frozen=True)
class _Outcome:
    outcome: str | None
    """applied, dropped, or None: not yet (waits for its message)."""
    detail: str | None = None
    day: date | None = None


def _load_workspace(engine: Engine, team_id: str) -> _Workspace | None:
    with engine.connect() as connection:
        workspace = workspace_id_and_metadata(connection, team_id)
    if workspace is None:
        return None
    workspace_id, metadata = workspace
    options = SyncOptions.model_validate((metadata or {}).get("sync", {}))
    return _Workspace(workspace_id, team_id, options, name_lookup(engine, workspace_id))


def _synced(channel: StoredChannel | None, options: SyncOptions) -> str | None:
    """Why a channel's message events are not followed, or None when they are."""
    if channel is None:
        return "channel not known (not listed yet, or a DM with DMs off)"
    if not channel.is_selected_for_analysis:
        return "channel not selected"
    if not channel.is_supported:
        return "channel not supported"
    if channel.type == ChannelType.PRIVATE.value and not options.include_private_channels:
        return "private channels off"
    if channel.type in (ChannelType.IM.value, ChannelType.MPIM.value) and not (
        options.include_direct_messages
    ):
        return "direct messages off"
    return None


def _day(ts: str) -> date:
    return normalize.ts_to_datetime(ts).date()


def _apply_messages(
    store: SlackStore, workspace: _Workspace, channel_id: uuid.UUID, change: Change
) -> _Outcome:
    if change.new_messages:
        raws = change.new_messages
        all_pairs = [normalize.reaction_pairs(raw) for raw in raws]
        rows = [
            normalize.message_row(raw, workspace.names, pairs)
            for raw, pairs in zip(raws, all_pairs, strict=True)
        ]
        store.insert_new_messages(
            channel_id,
            rows,
            {row["slack_ts"]: pairs for row, pairs in zip(rows, all_pairs, strict=True)},
            _bots(raws),
        )
        return _Outcome(APPLIED, day=_day(rows[0]["slack_ts"]))
    if change.edited_message is not None:
        raw = change.edited_message
        pairs = normalize.reaction_pairs(raw)
        row = normalize.message_row(raw, workspace.names, pairs)
        result = store.apply_edit(channel_id, row, pairs, _bots([raw]))
        return _Outcome(APPLIED, None if result == "applied" else result, _day(row["slack_ts"]))
    if change.deleted_ts is not None:
        tombstone = normalize.message_row(
            normalize.tombstone(change.deleted_ts), workspace.names, []
        )
        result = store.apply_deletion(channel_id, change.deleted_ts, tombstone)
        return _Outcome(APPLIED, None if result == "applied" else result, _day(change.deleted_ts))
    assert change.reaction is not None
    ts, user, emoji, added = change.reaction
    if not user or not emoji:
        return _Outcome(DROPPED, "reaction without user or emoji")
    if not store.apply_reaction(channel_id, ts, user, emoji, added):
        return _Outcome(None, WAITS_FOR_MESSAGE)
    return _Outcome(APPLIED, day=_day(ts))


def _bots(raws: list[dict[str, Any]]) -> dict[str, normalize.Row]:
    return {
        str(raw["bot_id"]): normalize.bot_user_row(raw)
        for raw in raws
        if not raw.get("user") and raw.get("bot_id")
    }


def apply_event(connection: Connection, workspace: _Workspace, event: PendingEvent) -> _Outcome:
    """Write what one event changes (inside the caller's transaction)."""
    body = event.payload.get("event") or {}
    change = change_of(event.event_type, body)
    if change.ignored is not None:
        return _Outcome(DROPPED, change.ignored)
    store = SlackStore(connection, workspace.id, workspace.cache)
    if change.user is not None:
        store.upsert_users([normalize.user_row(change.user)])
        return _Outcome(APPLIED)
    if change.channel is not None:
        return _apply_channel(store, workspace, change.channel)
    if change.member is not None:
        channel_slack_id, user, joined = change.member
        ours = user is None or user == bot_user_of(event.payload)
        changed = store.change_membership(channel_slack_id, joined=joined, is_our_bot=ours)
        return _Outcome(APPLIED if changed else DROPPED, None if changed else "channel not known")
    if change.access_lost is not None:
        return _Outcome(DROPPED, "handled outside the transaction")  # see _apply_access
    channel_slack_id = event.channel_slack_id or ""
    channel = store.channel_by_slack_id(channel_slack_id)
    why_not = _synced(channel, workspace.options)
    if why_not is not None or channel is None:
        return _Outcome(DROPPED, why_not)
    return _apply_messages(store, workspace, channel.id, change)


def _apply_channel(store: SlackStore, workspace: _Workspace, change: dict[str, Any]) -> _Outcome:
    slack_id = change["slack_id"]
    if not slack_id:
        return _Outcome(DROPPED, "channel event without a channel id")
    created = change.get("created")
    if created is not None:
        if created["type"] not in (ChannelType.PUBLIC.value, ChannelType.PRIVATE.value):
            return _Outcome(DROPPED, "direct messages are not listed from events")
        store.upsert_channels(
            [created],
            select_public=workspace.options.select_public_channels,
            join_public=workspace.options.join_public_channels,
            from_export=False,
        )
        return _Outcome(APPLIED)
    values = {key: value for key, value in change.items() if key != "slack_id"}
    changed = store.update_channel(slack_id, values)
    return _Outcome(APPLIED if changed else DROPPED, None if changed else "channel not known")


def _apply_access(engine: Engine, workspace: _Workspace, event: PendingEvent) -> _Outcome:
    """`tokens_revoked` (of our bot) or `app_uninstalled`: the integration is marked, an
    IntegrationEvent written, and nothing is scheduled for it until it is reconnected."""
    body = event.payload.get("event") or {}
    if event.event_type == "tokens_revoked":
        bots = ((body.get("tokens") or {}).get("bot")) or []
        ours = bot_user_of(event.payload)
        if ours is not None and ours not in bots:
            return _Outcome(DROPPED, "tokens of other users revoked")
        error = "token_revoked"
    else:
        error = "app_uninstalled"
    record_auth_failure(engine, workspace.slack_id, SlackAuthError("events_api", error))
    return _Outcome(APPLIED)


def _apply_one(engine: Engine, workspace: _Workspace, event: PendingEvent) -> _Outcome:
    if event.event_type in ("tokens_revoked", "app_uninstalled"):
        outcome = _apply_access(engine, workspace, event)
        with engine.begin() as connection:
            finish_event(connection, event.id, outcome.outcome, outcome.detail)
        return outcome
    with engine.begin() as connection:
        outcome = apply_event(connection, workspace, event)
        final = outcome.outcome
        if final is None and event.attempts + 1 >= MAX_ATTEMPTS:
            final = DROPPED  # the message never came: reconciliation will read it
        finish_event(connection, event.id, final, outcome.detail)
    return outcome


def apply_pending(
    engine: Engine, team_id: str, *, limit: int = 2000, deadline: float | None = None
) -> ApplyReport:
    """Apply the workspace's pending events, oldest first, until none are left, `limit` were
    tried, or `time.monotonic()` passes `deadline`. A database that goes away stops the
    batch (the events stay pending); an event that fails otherwise is retried on the next
    batches and marked failed after MAX_ATTEMPTS."""
    report = ApplyReport()
    with engine.connect() as connection:
        events = pending_events(connection, team_id, limit)
    if not events:
        return report
    workspace = _load_workspace(engine, team_id)
    waiting: list[PendingEvent] = []
    for event in events:
        if deadline is not None and time.monotonic() > deadline:
            break
        if workspace is None:
            with engine.begin() as connection:
                finish_event(connection, event.id, DROPPED, "workspace not connected")
            report.dropped += 1
            report.reasons["workspace not connected"] += 1
            continue
        outcome = _attempt(engine, workspace, event)
        if outcome.detail == WAITS_FOR_MESSAGE:
            waiting.append(event)
        else:
            _count(report, outcome, event)
    # A reaction delivered before its message waited above; its message may have come later in
    # this batch (Slack does not deliver in order): once more, now.
    for event in waiting:
        if workspace is None or (deadline is not None and time.monotonic() > deadline):
            report.waiting += 1
            continue
        again = dataclasses.replace(event, attempts=event.attempts + 1)
        _count(report, _attempt(engine, workspace, again), again)
    return report


def _attempt(engine: Engine, workspace: _Workspace, event: PendingEvent) -> _Outcome:
    """Apply one event; a malformed one is recorded as failing (for good after MAX_ATTEMPTS),
    a database that went away is raised (the event stays pending)."""
    try:
        return _apply_one(engine, workspace, event)
    except (OperationalError, DBAPIError) as error:
        if error.connection_invalidated or isinstance(error, OperationalError):
            raise
        return _failed(engine, event, error)
    except (ValueError, KeyError, TypeError, ArithmeticError) as error:
        return _failed(engine, event, error)


def _failed(engine: Engine, event: PendingEvent, error: Exception) -> _Outcome:
    detail = f"{type(error).__name__}: {str(error)[:300]}"
    final = FAILED if event.attempts + 1 >= MAX_ATTEMPTS else None
    logger.warning(
        "Slack event %s (%s) could not be applied: %s", event.event_id, event.event_type, detail
    )
    with engine.begin() as connection:
        finish_event(connection, event.id, final, detail)
    return _Outcome(FAILED if final else None, detail)


def _count(report: ApplyReport, outcome: _Outcome, event: PendingEvent) -> None:
    if outcome.outcome == APPLIED:
        report.applied += 1
        if outcome.day is not None:
            report.message_days.add(outcome.day)
    elif outcome.outcome == DROPPED:
        report.dropped += 1
        report.reasons[outcome.detail or event.event_type] += 1
    elif outcome.outcome == FAILED:
        report.failed += 1
        report.reasons[outcome.detail or event.event_type] += 1
    else:
        report.waiting += 1


def apply_all_pending(
    engine: Engine, *, limit: int = 2000, budget_seconds: float = 30.0
) -> dict[str, ApplyReport]:
    """`apply_pending` for every workspace with pending events, within a time budget (a
    sensor tick has about a minute)."""
    deadline = time.monotonic() + budget_seconds
    with engine.connect() as connection:
        teams = teams_with_pending_events(connection)
    reports: dict[str, ApplyReport] = {}
    for team_id in teams:
        if time.monotonic() > deadline:
            break
        reports[team_id] = apply_pending(engine, team_id, limit=limit, deadline=deadline)
    return reports


def reapply_since(engine: Engine, team_id: str, since: datetime) -> int:
    """Apply again the events applied since `since` (less RACE_MARGIN): a poll that read
    Slack before them and wrote after them put the older state back. Returns how many."""
    with engine.connect() as connection:
        events = applied_events_since(connection, team_id, since - RACE_MARGIN)
    if not events:
        return 0
    workspace = _load_workspace(engine, team_id)
    if workspace is None:
        return 0
    for event in events:
        with engine.begin() as connection:
            apply_event(connection, workspace, event)
    return len(events)
