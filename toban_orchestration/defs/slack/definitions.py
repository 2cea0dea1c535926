"""Slack's definitions: the synced tables and the event inbox, the jobs that fill them, the
schedules and sensors that start those jobs, and the Launchpad jobs that change a workspace's
channels and settings. The first day partition, the schedules' cron and the integration
sensor's interval come from the settings the root `definitions.py` passes."""

import dagster as dg

from toban_orchestration.defs.slack.admin_jobs import (
    slack_configure_sync_job,
    slack_select_channels_job,
)
from toban_orchestration.defs.slack.assets import (
    build_message_assets,
    slack_channels,
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
from toban_orchestration.defs.slack.schedules import build_daily_schedules
from toban_orchestration.defs.slack.sensors import build_slack_integration_sensor
from toban_orchestration.settings import Settings


def build_slack_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            slack_workspace,
            slack_users,
            slack_channels,
            build_message_assets(settings.partitions_start_date),
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
        sensors=[
            build_slack_integration_sensor(settings.sensor_interval_seconds),
            slack_events_sensor,
        ],
        schedules=build_daily_schedules(settings.daily_schedule_cron, settings.schedule_timezone),
    )
