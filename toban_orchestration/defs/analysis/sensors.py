"""The sensors that start analyses: requested and scheduled SlackAnalysis rows, and each
window once the days it covers are synced."""

from datetime import UTC, datetime

import dagster as dg
from sqlalchemy.orm import Session

from toban_orchestration.analysis.requests import start_due_schedules
from toban_orchestration.analysis.store import pending_requests
from toban_orchestration.defs.analysis.assets import ANALYSIS_GROUP, slack_analysis_job
from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.settings import get_settings


@dg.sensor(
    job=slack_analysis_job,
    minimum_interval_seconds=get_settings().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
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


slack_analysis_automation = dg.AutomationConditionSensorDefinition(
    "slack_analysis_automation",
    target=dg.AssetSelection.groups(ANALYSIS_GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=2 * get_settings().sensor_interval_seconds,
    description="Analyzes each daily, weekly and monthly window of a workspace once all its days "
    "are synced, and again when one of them is re-synced (see ANALYZE_WHEN_SYNCED).",
)
