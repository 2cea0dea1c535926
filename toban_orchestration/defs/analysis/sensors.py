"""The sensors that start analyses: requested and scheduled SlackAnalysis rows, and each
window once the days it covers are synced.

Their interval is known when the definitions are built: `build_analysis_sensors` makes them
(defs/analysis/definitions.py passes the setting)."""

from datetime import UTC, datetime

import dagster as dg
from sqlalchemy.orm import Session

from toban_orchestration.analysis.requests import start_due_schedules
from toban_orchestration.analysis.store import pending_requests
from toban_orchestration.defs.analysis.assets import ANALYSIS_GROUP, slack_analysis_job
from toban_orchestration.defs.platform.resources import AppDatabase


def build_analysis_sensors(minimum_interval_seconds: int) -> list[dg.SensorDefinition]:
    """The request sensor every `minimum_interval_seconds`, the automation sensor (which
    evaluates every analysis partition) half as often."""
    request_sensor = dg.sensor(
        job=slack_analysis_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )(slack_analysis_request_sensor)
    automation_sensor = dg.AutomationConditionSensorDefinition(
        "slack_analysis_automation",
        target=dg.AssetSelection.groups(ANALYSIS_GROUP),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=2 * minimum_interval_seconds,
        description="Analyzes each daily, weekly and monthly window of a workspace once all its "
        "days are synced, and again when one of them is re-synced (see ANALYZE_WHEN_SYNCED).",
    )
    return [request_sensor, automation_sensor]


def slack_analysis_request_sensor(
    context: dg.SensorEvaluationContext, app_database: AppDatabase
) -> dg.SensorResult:
    """Runs requested analyses (pending rows) and due scheduled ones. The cursor is the newest
    requested row already handed over; scheduled ones advance `next_run_at` as they start."""
    after = datetime.fromisoformat(context.cursor) if context.cursor else None
    with Session(app_database.engine()) as session, session.begin():
        scheduled = start_due_schedules(session, datetime.now(UTC))
    with Session(app_database.engine()) as session:
        pending = pending_requests(session, after)
    requests = [
        dg.RunRequest(
            run_key=f"analysis:{analysis_id}",
            run_config={
                "ops": {"run_requested_analysis": {"config": {"analysis_id": str(analysis_id)}}}
            },
        )
        for analysis_id, _ in pending
    ]
    if scheduled:
        context.log.info(f"Started {len(scheduled)} scheduled analyses")
    return dg.SensorResult(
        run_requests=requests,
        cursor=pending[-1][1].isoformat() if pending else context.cursor,
    )
