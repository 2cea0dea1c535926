"""What the sensor and the schedule should run, from the app database: pure decisions on rows,
so they are tested without Dagster and stay fast over thousands of integrations."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from toban_orchestration.db.enums import IntegrationStatus, IntegrationType
from toban_orchestration.db.models import (
    Integration,
    IntegrationCredential,
    SlackChannel,
    SlackSyncDay,
    SlackWorkspace,
)


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
    rows = connection.execute(
        select(Integration.id, Integration.workspace_id, Integration.status)
        .where(
            Integration.service_type == IntegrationType.SLACK,
            Integration.workspace_id.isnot(None),
        )
        .order_by(Integration.id)
    )
    return [IntegrationState(i, str(w), s) for i, w, s in rows]


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


def ensure_workspace(session: Session, integration_id: uuid.UUID) -> None:
    """An integration the app created without a workspace row gets one, linked by Slack id and
    carrying the integration's newest token (already encrypted)."""
    integration = session.get_one(Integration, integration_id)
    workspace = session.scalar(
        select(SlackWorkspace).where(SlackWorkspace.slack_id == integration.workspace_id)
    )
    if workspace is not None:
        return
    token = session.scalar(
        select(IntegrationCredential.encrypted_value)
        .where(IntegrationCredential.integration_id == integration_id)
        .order_by(IntegrationCredential.created_at.desc())
        .limit(1)
    )
    session.add(
        SlackWorkspace(
            team_id=integration.owner_team_id,
            slack_id=integration.workspace_id or "",
            name=integration.name,
            access_token=token,
        )
    )


def days_to_sync(
    connection: Connection, slack_id: str, last: date, backfill_days: int
) -> list[date]:
    """The days from `last - backfill_days + 1` to `last` not yet synced completely for every
    selected channel: a reconnected workspace resumes where it stopped."""
    first = last - timedelta(days=backfill_days - 1)
    channels = connection.execute(
        select(func.count())
        .select_from(SlackChannel)
        .join(SlackWorkspace, SlackWorkspace.id == SlackChannel.workspace_id)
        .where(
            SlackWorkspace.slack_id == slack_id,
            SlackChannel.is_selected_for_analysis,
            SlackChannel.is_supported,
        )
    ).scalar_one()
    complete = (
        set(
            connection.execute(
                select(SlackSyncDay.day)
                .join(SlackChannel, SlackChannel.id == SlackSyncDay.channel_id)
                .join(SlackWorkspace, SlackWorkspace.id == SlackChannel.workspace_id)
                .where(
                    SlackWorkspace.slack_id == slack_id,
                    SlackChannel.is_selected_for_analysis,
                    SlackSyncDay.complete,
                    SlackSyncDay.day >= first,
                    SlackSyncDay.day <= last,
                )
                .group_by(SlackSyncDay.day)
                .having(func.count() >= channels)
            ).scalars()
        )
        if channels
        else set()
    )
    return [
        first + timedelta(days=n)
        for n in range(backfill_days)
        if first + timedelta(days=n) not in complete
    ]
