"""Slack's definitions: the synced tables and the event inbox, the jobs that fill them, the
schedules and sensors that start those jobs, and the Launchpad jobs that change a workspace's
channels and settings."""

import dagster as dg

from toban_orchestration.defs.slack.admin_jobs import (
    slack_configure_sync_job,
    slack_select_channels_job,
)
from toban_orchestration.defs.slack.assets import (
    slack_channels,
    slack_messages_and_reactions,
    slack_messages_range_job,
    slack_users,
    slack_workspace,
)
from toban_orchestration.defs.slack.events import (
    slack_event_inbox,
    slack_event_inbox_lag,
    slack_events_sensor,
)
from toban_orchestration.defs.slack.jobs import slack_messages_job, slack_workspace_snapshot_job
from toban_orchestration.defs.slack.schedules import daily_slack_snapshot, daily_slack_sync
from toban_orchestration.defs.slack.sensors import slack_integration_sensor

defs = dg.Definitions(
    assets=[
        slack_workspace,
        slack_users,
        slack_channels,
        slack_messages_and_reactions,
        slack_event_inbox,
    ],
    asset_checks=[slack_event_inbox_lag],
    jobs=[
        slack_workspace_snapshot_job,
        slack_messages_job,
        slack_messages_range_job,
        slack_select_channels_job,
        slack_configure_sync_job,
    ],
    sensors=[slack_integration_sensor, slack_events_sensor],
    schedules=[daily_slack_sync, daily_slack_snapshot],
)
