"""Asset jobs that sensors and schedules request runs of (partitioned like their assets)."""

import dagster as dg

slack_workspace_snapshot_job = dg.define_asset_job(
    "slack_workspace_snapshot_job",
    selection=["slack_workspace", "slack_users", "slack_channels"],
    description="Workspace, users and channels of one workspace.",
)
slack_messages_job = dg.define_asset_job(
    "slack_messages_job",
    selection=["slack_messages", "slack_reactions"],
    description="Messages, replies and reactions of one workspace-day.",
)
