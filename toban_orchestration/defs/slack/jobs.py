"""Asset jobs that sensors and schedules request runs of (partitioned like their assets)."""

from datetime import date

import dagster as dg

from toban_orchestration.defs.slack.assets import slack_messages_range_job

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


def message_range_request(
    slack_id: str, first: date, last: date, *, run_key: str, snapshot_first: bool = False
) -> dg.RunRequest:
    """A run of `slack_messages_range_job` over [first, last] of one workspace (with
    `snapshot_first`, the workspace, users and channels refreshed in the same run first). It
    carries the workspace tag: dagster.yaml runs one such run per workspace at a time, so it
    waits for a snapshot of the same workspace to store the channels it reads."""
    config: dict[str, object] = {
        "workspace": slack_id,
        "first": first.isoformat(),
        "last": last.isoformat(),
    }
    if snapshot_first:
        config["snapshot_first"] = True
    return dg.RunRequest(
        run_key=run_key,
        job_name=slack_messages_range_job.name,
        run_config={"ops": {"sync_slack_message_range": {"config": config}}},
        tags={"slack_workspace": slack_id, "slack_days": f"{first}..{last}"},
    )
