"""Maintenance's definitions: the token refresh sweep and the retention purge, each a job of ops
on a schedule."""

import dagster as dg

from toban_orchestration.defs.maintenance.jobs import (
    slack_retention_job,
    slack_retention_schedule,
    slack_token_refresh_job,
    slack_token_refresh_schedule,
)

defs = dg.Definitions(
    jobs=[slack_token_refresh_job, slack_retention_job],
    schedules=[slack_token_refresh_schedule, slack_retention_schedule],
)
