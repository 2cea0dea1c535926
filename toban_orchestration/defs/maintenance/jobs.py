"""Maintenance runs: the token refresh sweep and the retention purge, each a job on a schedule
(jobs of ops, not assets: they change credentials and delete rows, they produce nothing). The
schedules' crons are known when the definitions are built: `build_maintenance_schedules`."""

import dagster as dg

from toban_orchestration.defs.maintenance.dagster_history import forget_runs, purged_runs
from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack.resources import SlackCredentials
from toban_orchestration.privacy.retention import RetentionConfigError, purge_workspace
from toban_orchestration.slack import store as slack_store
from toban_orchestration.slack.token_refresh import refresh_expiring


@dg.op
def refresh_expiring_slack_tokens(
    context: dg.OpExecutionContext, app_database: AppDatabase, slack: SlackCredentials
) -> None:
    """Every ACTIVE workspace whose rotating token expires within
    TOBAN_TOKEN_REFRESH_MARGIN_MINUTES gets a new one; a refusal marks it EXPIRED."""
    cipher = slack.cipher()
    if cipher is None:
        context.log.info("TOBAN_ENCRYPTION_KEYS is not set: no stored token to refresh")
        return
    refreshed, failed = refresh_expiring(app_database.engine(), cipher)
    for error in failed:
        context.log.warning(str(error))
    context.log.info(f"Refreshed {len(refreshed)} Slack tokens; {len(failed)} failed")


@dg.op
def purge_expired_slack_data(context: dg.OpExecutionContext, app_database: AppDatabase) -> None:
    """Every workspace with a retention period loses what is older (see privacy/retention.py),
    and the Dagster runs of the analyses purged go with their report previews. A workspace whose
    period is invalid is skipped with a warning; the others go on."""
    engine = app_database.engine()
    with engine.connect() as connection:
        slack_ids = slack_store.all_workspace_slack_ids(connection)
    for slack_id in slack_ids:
        try:
            report = purge_workspace(engine, slack_id)
        except RetentionConfigError as error:
            context.log.warning(str(error))
            continue
        if report.cutoff is not None:
            runs = forget_runs(context.instance, purged_runs(context.instance, report))
            context.log.info(f"{report.line()}; {runs} Dagster analysis runs deleted")


@dg.job(description="Refresh rotating Slack tokens that expire soon.")
def slack_token_refresh_job() -> None:
    refresh_expiring_slack_tokens()


@dg.job(description="Purge Slack data older than each workspace's retention period.")
def slack_retention_job() -> None:
    purge_expired_slack_data()


def build_maintenance_schedules(
    token_refresh_cron: str, retention_cron: str, retention_timezone: str
) -> list[dg.ScheduleDefinition]:
    """The token refresh sweep (its cron in UTC: expiry times are) and the retention purge."""
    return [
        dg.ScheduleDefinition(
            name="slack_token_refresh_schedule",
            job=slack_token_refresh_job,
            cron_schedule=token_refresh_cron,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING,
        ),
        dg.ScheduleDefinition(
            name="slack_retention_schedule",
            job=slack_retention_job,
            cron_schedule=retention_cron,
            execution_timezone=retention_timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        ),
    ]
