"""The daily schedules: every active workspace's users and channels, and yesterday's messages
with the days it missed. The analyses follow the messages (`slack_analysis_automation`)."""

from datetime import timedelta

import dagster as dg

from toban_orchestration.automation.jobs import slack_messages_job, slack_workspace_snapshot_job
from toban_orchestration.automation.planning import active_slack_ids, days_to_sync
from toban_orchestration.automation.sensors import message_partition_key
from toban_orchestration.db.resources import AppDatabase
from toban_orchestration.settings import get_settings

_settings = get_settings()


@dg.schedule(
    job=slack_messages_job,
    cron_schedule=_settings.daily_schedule_cron,
    execution_timezone=_settings.schedule_timezone,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_slack_sync(
    context: dg.ScheduleEvaluationContext, app_database: AppDatabase
) -> list[dg.RunRequest]:
    """For each ACTIVE workspace: every day up to yesterday, within TOBAN_BACKFILL_DAYS, that is
    not completely synced (so a day missed during downtime is caught up), yesterday included."""
    scheduled = context.scheduled_execution_time
    assert scheduled is not None
    yesterday = scheduled.date() - timedelta(days=1)
    with app_database.engine().connect() as connection:
        active = active_slack_ids(connection)
        missing = days_to_sync(connection, active, yesterday, _settings.backfill_days)
    requests = []
    for slack_id in active:
        days = missing[slack_id]
        if yesterday not in days:
            days.append(yesterday)  # always refresh the last day: late edits and replies
        requests += [
            dg.RunRequest(
                run_key=f"daily:{slack_id}:{day}:{scheduled:%Y-%m-%d}",
                partition_key=message_partition_key(day.isoformat(), slack_id),
                # The tag the snapshot runs carry too: dagster.yaml runs one per workspace at a
                # time, so the day runs wait for a snapshot of the same tick to store channels.
                tags={"slack_workspace": slack_id},
            )
            for day in days
        ]
    return requests


@dg.schedule(
    job=slack_workspace_snapshot_job,
    cron_schedule=_settings.daily_schedule_cron,
    execution_timezone=_settings.schedule_timezone,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_slack_snapshot(
    context: dg.ScheduleEvaluationContext, app_database: AppDatabase
) -> list[dg.RunRequest]:
    """Channels created and people who joined since the last snapshot, for each ACTIVE
    workspace (the message sync reads only the channels it knows)."""
    scheduled = context.scheduled_execution_time
    assert scheduled is not None
    with app_database.engine().connect() as connection:
        active = active_slack_ids(connection)
    return [
        dg.RunRequest(
            run_key=f"snapshot:{slack_id}:{scheduled:%Y-%m-%d}",
            partition_key=slack_id,
            tags={"slack_workspace": slack_id},
        )
        for slack_id in active
    ]
