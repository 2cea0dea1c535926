"""What the sensor and the schedule should run, from the app database: pure decisions on rows,
so they are tested without Dagster and stay fast over thousands of integrations."""

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Connection

from toban_orchestration.access.store import (
    active_integration_slack_ids,
    insert_integration_events,
    integration_owners,
    integrations_with_newest_token,
    slack_integration_statuses,
)
from toban_orchestration.db.enums import IntegrationEventType, IntegrationStatus
from toban_orchestration.slack.store import (
    complete_channel_day_counts,
    insert_new_workspaces,
    readable_channel_counts,
    reconnect_workspaces,
    stored_slack_ids,
    workspace_metadata_by_slack_id,
)
from toban_orchestration.slack.sync import SyncOptions, allowed_channel_types


@dataclass(frozen=True)
class IntegrationState:
    integration_id: uuid.UUID
    slack_id: str
    status: IntegrationStatus


@dataclass(frozen=True)
class Changes:
    connected: list[IntegrationState]
    """New, or back to ACTIVE after a stop: to sync."""
    stopped: list[IntegrationState]
    """No longer ACTIVE: no longer scheduled; its data stays."""
    cursor: dict[str, str]


def slack_integrations(connection: Connection) -> list[IntegrationState]:
    return [IntegrationState(*row) for row in slack_integration_statuses(connection)]


def active_slack_ids(connection: Connection) -> list[str]:
    """The workspaces the schedules keep in sync: those of ACTIVE Slack integrations."""
    return [
        state.slack_id
        for state in slack_integrations(connection)
        if state.status == IntegrationStatus.ACTIVE
    ]


def changes(states: Iterable[IntegrationState], cursor: dict[str, str]) -> Changes:
    """Compare the integrations with what the cursor says was seen (id -> status)."""
    connected: list[IntegrationState] = []
    stopped: list[IntegrationState] = []
    new_cursor: dict[str, str] = {}
    for state in states:
        key = str(state.integration_id)
        before = cursor.get(key)
        now = state.status.value
        new_cursor[key] = now
        if now == IntegrationStatus.ACTIVE.value and before != now:
            connected.append(state)
        elif now != IntegrationStatus.ACTIVE.value and before == IntegrationStatus.ACTIVE.value:
            stopped.append(state)
    return Changes(connected, stopped, new_cursor)


def ensure_workspaces(connection: Connection, integration_ids: list[uuid.UUID]) -> int:
    """Integrations the app created without a workspace row get one, linked by Slack id and
    carrying the integration's newest token (already encrypted); workspaces marked disconnected
    (a dead token) are connected again. Each leaves an IntegrationEvent (CONNECTED,
    RECONNECTED). Returns how many were made."""
    if not integration_ids:
        return 0
    _reconnect(connection, integration_ids)
    # The integrations (access/store.py) whose workspace has no row yet (slack/store.py).
    candidates = integrations_with_newest_token(connection, integration_ids)
    stored = stored_slack_ids(connection, [slack_id for _, slack_id, _, _, _ in candidates])
    missing = [candidate for candidate in candidates if candidate[1] not in stored]
    rows: dict[str, dict[str, object]] = {}
    events: dict[str, dict[str, object]] = {}
    for team_id, slack_id, name, token, integration_id in missing:
        # Two teams may hold integrations of one workspace: the first one connected owns it.
        rows.setdefault(
            slack_id,
            {"team_id": team_id, "slack_id": slack_id, "name": name, "access_token": token},
        )
        events.setdefault(slack_id, _event(integration_id, team_id, slack_id, "CONNECTED"))
    if rows:
        insert_new_workspaces(connection, list(rows.values()))
        insert_integration_events(connection, list(events.values()))
    return len(rows)


def _event(
    integration_id: uuid.UUID, team_id: uuid.UUID, slack_id: str, event_type: str
) -> dict[str, object]:
    return {
        "integration_id": integration_id,
        "event_type": IntegrationEventType(event_type),
        "actor_user_id": "toban-pipeline",
        "affected_team_id": team_id,
        "details": {"workspace": slack_id, "by": "slack_integration_sensor"},
    }


def _reconnect(connection: Connection, integration_ids: list[uuid.UUID]) -> None:
    """An integration that is ACTIVE again (the app reconnected it) gets its workspace back."""
    slack_ids = reconnect_workspaces(
        connection, active_integration_slack_ids(connection, integration_ids)
    )
    if not slack_ids:
        return
    owners = integration_owners(connection, integration_ids, slack_ids)
    insert_integration_events(
        connection, [_event(i, team, slack_id, "RECONNECTED") for i, team, slack_id in owners]
    )


def days_to_sync(
    connection: Connection, slack_ids: list[str], last: date, backfill_days: int
) -> dict[str, list[date]]:
    """Per workspace, the days from `last - backfill_days + 1` to `last` not yet synced
    completely for every channel a sync reads (selected, supported, of a type the workspace's
    settings include, and readable): a reconnected workspace resumes where it stopped. Three
    queries whatever the number of workspaces."""
    first = last - timedelta(days=backfill_days - 1)
    window = [first + timedelta(days=n) for n in range(backfill_days)]
    allowed = {
        slack_id: set(
            allowed_channel_types(SyncOptions.model_validate((metadata or {}).get("sync", {})))
        )
        for slack_id, metadata in workspace_metadata_by_slack_id(connection, slack_ids).items()
    }
    channels: dict[str, int] = defaultdict(int)
    for slack_id, channel_type, count in readable_channel_counts(connection, slack_ids):
        if channel_type in allowed.get(slack_id, ()):
            channels[slack_id] += count
    synced: dict[tuple[str, date], int] = defaultdict(int)
    for slack_id, day, channel_type, count in complete_channel_day_counts(
        connection, slack_ids, first, last
    ):
        if channel_type in allowed.get(slack_id, ()):
            synced[slack_id, day] += count
    return {
        slack_id: [day for day in window if not synced[slack_id, day] >= channels[slack_id] > 0]
        for slack_id in slack_ids
    }


def contiguous_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Days as the fewest runs of consecutive days, (first, last) inclusive, oldest first:
    one range run reads a channel's history once for all of them."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges
