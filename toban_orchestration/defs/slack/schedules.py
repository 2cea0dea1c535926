"""The daily schedules: every active workspace's users and channels, and yesterday's messages
with the days it missed. The analyses follow the messages (`slack_analysis_automation`).

Their cron and time zone are known when the definitions are built: `build_daily_schedules`
makes the schedules from the functions below (defs/slack/definitions.py passes the settings)."""

from datetime import timedelta

import dagster as dg

from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack.assets import slack_messages_range_job
from toban_orchestration.defs.slack.jobs import message_range_request, slack_workspace_snapshot_job
from toban_orchestration.defs.slack.resources import SlackSyncSettings
from toban_orchestration.slack.planning import (
    active_slack_ids,
    contiguous_ranges,
    days_to_sync,
)


def build_daily_schedules(cron_schedule: str, timezone: str) -> list[dg.ScheduleDefinition]:
    """`daily_slack_sync` and `daily_slack_snapshot`, both on `cron_schedule` in `timezone`."""
    return [
        dg.schedule(
            job=job,
            cron_schedule=cron_schedule,
            execution_timezone=timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )(evaluation)
        for job, evaluation in (
            (slack_messages_range_job, daily_slack_sync),
            (slack_workspace_snapshot_job, daily_slack_snapshot),
        )
    ]


def daily_slack_sync(
    context: dg.ScheduleEvaluationContext, app_database: AppDatabase, slack_sync: SlackSyncSettings
) -> list[dg.RunRequest]:
    """For each ACTIVE workspace: every day up to yesterday, within TOBAN_BACKFILL_DAYS, that is
    not completely synced (so a day missed during downtime is caught up), yesterday included."""
    scheduled = context.scheduled_execution_time
    assert scheduled is not None
    yesterday = scheduled.date() - timedelta(days=1)
    with app_database.engine().connect() as connection:
        active = active_slack_ids(connection)
        missing = days_to_sync(
            connection, active, yesterday, slack_sync.backfill_days_to(yesterday)
        )
    requests = []
    for slack_id in active:
        # Always yesterday (late edits and replies; its recheck reconciles the days before),
        # and the days missed during downtime: the fewest range runs cover them all.
        days = {*missing[slack_id], yesterday}
        requests += [
            message_range_request(
                slack_id,
                first,
                last,
                run_key=f"daily:{slack_id}:{first}:{last}:{scheduled:%Y-%m-%d}",
            )
            for first, last in contiguous_ranges(days)
        ]
    return requests


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
