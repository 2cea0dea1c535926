"""The one Dagster entry point: every domain's assets, checks and resources."""

import dagster as dg

from toban_orchestration.defs.analysis.assets import analysis_assets, slack_analysis_job
from toban_orchestration.defs.maintenance.jobs import (
    slack_retention_job,
    slack_retention_schedule,
    slack_token_refresh_job,
    slack_token_refresh_schedule,
)
from toban_orchestration.defs.platform.assets import app_database_schema, schema_matches_models
from toban_orchestration.defs.platform.executor import step_executor
from toban_orchestration.defs.platform.resources import AppDatabase
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
from toban_orchestration.defs.slack.resources import SlackCredentials
from toban_orchestration.defs.slack.schedules import daily_slack_snapshot, daily_slack_sync
from toban_orchestration.defs.slack.sensors import (
    slack_analysis_automation,
    slack_analysis_request_sensor,
    slack_integration_sensor,
)
from toban_orchestration.settings import get_settings

defs = dg.Definitions(
    assets=[
        app_database_schema,
        slack_workspace,
        slack_users,
        slack_channels,
        slack_messages_and_reactions,
        slack_event_inbox,
        *analysis_assets,
    ],
    jobs=[
        slack_analysis_job,
        slack_workspace_snapshot_job,
        slack_messages_job,
        slack_messages_range_job,
        slack_token_refresh_job,
        slack_retention_job,
        slack_select_channels_job,
        slack_configure_sync_job,
    ],
    sensors=[
        slack_integration_sensor,
        slack_analysis_request_sensor,
        slack_analysis_automation,
        slack_events_sensor,
    ],
    schedules=[
        daily_slack_sync,
        daily_slack_snapshot,
        slack_token_refresh_schedule,
        slack_retention_schedule,
    ],
    asset_checks=[schema_matches_models, slack_event_inbox_lag],
    resources={"app_database": AppDatabase(), "slack": SlackCredentials()},
    executor=step_executor(get_settings().dagster_executor),
)
