"""Maintenance's definitions: the token refresh sweep and the retention purge, each a job of ops
on a schedule (their crons from the settings the root `definitions.py` passes)."""

import dagster as dg

from toban_orchestration.defs.maintenance.jobs import (
    build_maintenance_schedules,
    slack_retention_job,
    slack_token_refresh_job,
)
from toban_orchestration.settings import Settings


def build_maintenance_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        jobs=[slack_token_refresh_job, slack_retention_job],
        schedules=build_maintenance_schedules(
            token_refresh_cron=settings.token_refresh_cron,
            retention_cron=settings.retention_cron,
            retention_timezone=settings.schedule_timezone,
        ),
    )
