"""Analyses the app asks for: pending SlackAnalysis rows (a range and channels) and scheduled
ones (`is_scheduled`, `schedule_frequency`, `next_run_at`)."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from toban_orchestration.access.store import analysis_team, readable_channels
from toban_orchestration.analysis import store
from toban_orchestration.db.enums import AnalysisStatus, ScheduleFrequency
from toban_orchestration.db.models import SlackAnalysis


def last_window(frequency: ScheduleFrequency, due: datetime) -> tuple[datetime, datetime]:
    """The complete window before `due` (UTC): yesterday, the last 7 days, the last month."""
    end = datetime(due.year, due.month, due.day, tzinfo=UTC)
    if frequency is ScheduleFrequency.DAILY:
        return end - timedelta(days=1), end
    if frequency is ScheduleFrequency.WEEKLY:
        return end - timedelta(days=7), end
    month_end = end.replace(day=1)
    previous = (month_end - timedelta(days=1)).replace(day=1)
    return previous, month_end


def advance(frequency: ScheduleFrequency, due: datetime) -> datetime:
    if frequency is ScheduleFrequency.DAILY:
        return due + timedelta(days=1)
    if frequency is ScheduleFrequency.WEEKLY:
        return due + timedelta(days=7)
    month = due.month % 12 + 1
    return due.replace(year=due.year + (due.month == 12), month=month)


def _selected_readable(session: Session, run: SlackAnalysis) -> list[uuid.UUID]:
    """The workspace's selected channels that the run's team may read now. A schedule without
    channels of its own means "what we can see", so channels out of reach are not even linked;
    the run checks again when it starts (README, "Who may see what")."""
    selected = store.selected_channel_ids(session, run.workspace_id)
    team = analysis_team(session, run)
    if team.team_id is None:
        return list(selected)  # the run fails with the reason when it starts
    readable = readable_channels(session, team.team_id, run.workspace_id)
    return [c for c in selected if c in readable]


def start_due_schedules(session: Session, now: datetime) -> list[uuid.UUID]:
    """For each scheduled analysis that is due: a new analysis row for its last window (with the
    schedule's channels, or the workspace's selected ones), and `next_run_at` moved on. Done in
    the caller's transaction, so a tick never starts one twice."""
    due = store.due_schedules_locked(session, now)
    started: list[uuid.UUID] = []
    for schedule in due:
        frequency = ScheduleFrequency(schedule.schedule_frequency or ScheduleFrequency.WEEKLY)
        assert schedule.next_run_at is not None
        start, end = last_window(frequency, schedule.next_run_at)
        run = SlackAnalysis(
            workspace_id=schedule.workspace_id,
            created_by_user_id=schedule.created_by_user_id,
            name=f"{schedule.name} {start:%Y-%m-%d}",
            description=schedule.description,
            start_date=start,
            end_date=end,
            parameters={**(schedule.parameters or {}), "schedule_id": str(schedule.id)},
            analysis_type=frequency.value,
            status=AnalysisStatus.PENDING.value,
        )
        store.add_analysis(session, run)
        channels = store.linked_channel_ids(session, schedule.id) or _selected_readable(
            session, run
        )
        store.link_channels(session, run.id, channels)
        next_run = schedule.next_run_at
        while next_run <= now:  # after downtime, skip to the next future slot
            next_run = advance(frequency, next_run)
        schedule.next_run_at = next_run
        started.append(run.id)
    return started
