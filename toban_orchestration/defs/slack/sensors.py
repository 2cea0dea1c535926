"""The sensor that turns Slack integrations in the app database into synced workspaces.

Its interval is known when the definitions are built, so `build_slack_integration_sensor` makes
the sensor from the function below (defs/slack/definitions.py passes the setting)."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack.assets import slack_messages_range_job
from toban_orchestration.defs.slack.jobs import (
    message_range_request,
    slack_workspace_snapshot_job,
)
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.defs.slack.resources import SlackSyncSettings
from toban_orchestration.slack.planning import (
    changes,
    contiguous_ranges,
    days_to_sync,
    ensure_workspaces,
    slack_integrations,
)


def message_partition_key(day: str, slack_id: str) -> str:
    return str(dg.MultiPartitionKey({"date": day, "workspace": slack_id}))


def build_slack_integration_sensor(minimum_interval_seconds: int) -> dg.SensorDefinition:
    return dg.sensor(
        jobs=[slack_workspace_snapshot_job, slack_messages_range_job],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(slack_integration_sensor)


def slack_integration_sensor(
    context: dg.SensorEvaluationContext, app_database: AppDatabase, slack_sync: SlackSyncSettings
) -> dg.SensorResult:
    """A new (or reconnected) ACTIVE Slack integration becomes a workspace partition and gets
    its users, channels and the last TOBAN_BACKFILL_DAYS days of messages; one that stops
    being ACTIVE is no longer scheduled (its data stays). The cursor (integration -> status)
    makes a second evaluation request nothing twice."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    with app_database.engine().begin() as connection:
        found = changes(slack_integrations(connection), cursor)
        ensure_workspaces(connection, [state.integration_id for state in found.connected])
        days = days_to_sync(
            connection,
            [s.slack_id for s in found.connected],
            yesterday,
            slack_sync.backfill_days_to(yesterday),  # no day before the first day partition
        )
    run_requests: list[dg.RunRequest] = []
    for state in found.connected:
        # One range run per stretch of missing days (a new workspace: one run for the whole
        # backfill window), not one run per day: each channel's history is read once. The
        # first of them refreshes the workspace, users and channels before its messages: one
        # run to launch, not a snapshot run and then a range run.
        ranges = contiguous_ranges(days[state.slack_id])
        if not ranges:
            run_requests.append(
                dg.RunRequest(
                    run_key=f"snapshot:{state.integration_id}:{context.cursor or ''}",
                    job_name=slack_workspace_snapshot_job.name,
                    partition_key=state.slack_id,
                    tags={"slack_workspace": state.slack_id},
                )
            )
        run_requests += [
            message_range_request(
                state.slack_id,
                first,
                last,
                run_key=f"messages:{state.slack_id}:{first}:{last}:{context.cursor or ''}",
                snapshot_first=n == 0,
            )
            for n, (first, last) in enumerate(ranges)
        ]
    for state in found.stopped:
        context.log.info(f"Slack workspace {state.slack_id} is {state.status.value}: not scheduled")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[
            workspace_partitions.build_add_request([s.slack_id for s in found.connected])
        ]
        if found.connected
        else [],
        cursor=json.dumps(found.cursor, sort_keys=True),
    )
