"""Dagster's own copy of analysis content: each analysis materialization carries a markdown
preview of a channel report and a leaderboard with people's names in its metadata, in Dagster's
event log. Dagster's SQL event storage cannot wipe single partitions, so erasure and workspace
deletion delete the runs that wrote them (the run and all its events). The analyses themselves
can be materialized again; the deleted runs only leave the asset's history.

Runs are found by their partition tags (`dagster/partition/workspace`, `dagster/partition`, the
sensor's `slack_workspace`) and, for `slack_analysis_job` runs, by the analysis id in their
config.
"""

from collections.abc import Iterable
from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import Engine

from toban_orchestration.analysis import store as analysis_store
from toban_orchestration.privacy.retention import PurgeReport

ANALYSIS_JOB = "slack_analysis_job"
ANALYSIS_ASSET_PREFIXES = ("slack_channel_analyses_", "slack_contributions_")
WORKSPACE_TAGS = ("dagster/partition/workspace", "dagster/partition", "slack_workspace")


def _writes_analyses(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether the run materialized an analysis asset (run.asset_selection is empty for runs
    of ad hoc selections, so the event log says)."""
    if run.job_name == ANALYSIS_JOB:
        return True
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    return any(
        record.asset_key is not None
        and record.asset_key.to_user_string().startswith(ANALYSIS_ASSET_PREFIXES)
        for record in records
    )


def _analysis_id(run: dg.DagsterRun) -> str | None:
    config = run.run_config or {}
    ops = config.get("ops") if isinstance(config, dict) else None
    for op_config in (ops or {}).values():
        if isinstance(op_config, dict):
            value = (op_config.get("config") or {}).get("analysis_id")
            if value:
                return str(value)
    return None


def workspace_runs(
    instance: dg.DagsterInstance,
    slack_id: str,
    analysis_ids: Iterable[str] = (),
    *,
    analyses_only: bool,
) -> list[str]:
    """Ids of the runs about this workspace (only those that wrote analyses, if asked)."""
    found: dict[str, dg.DagsterRun] = {}
    for tag in WORKSPACE_TAGS:
        for run in instance.get_runs(dg.RunsFilter(tags={tag: slack_id})):
            found[run.run_id] = run
    wanted = {str(a) for a in analysis_ids}
    if wanted:
        for run in instance.get_runs(dg.RunsFilter(job_name=ANALYSIS_JOB)):
            if _analysis_id(run) in wanted:
                found[run.run_id] = run
    return sorted(
        run_id
        for run_id, run in found.items()
        if not analyses_only or _writes_analyses(instance, run)
    )


def purged_runs(instance: dg.DagsterInstance, report: PurgeReport) -> list[str]:
    """The analysis runs whose windows the purge removed: a window partition that starts before
    the cutoff, or an ad hoc run of a purged analysis."""
    if report.cutoff is None or report.dry_run:
        return []
    purged = set(report.analysis_ids)
    runs = []
    for run_id in workspace_runs(instance, report.slack_id, purged, analyses_only=True):
        run = instance.get_run_by_id(run_id)
        if run is None:
            continue
        day = run.tags.get("dagster/partition/date")
        starts = datetime.fromisoformat(day).replace(tzinfo=UTC) if day else None
        if _analysis_id(run) in purged or (starts is not None and starts < report.cutoff):
            runs.append(run_id)
    return runs


def forget_runs(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> int:
    """Delete the runs and their event logs; returns how many were deleted."""
    count = 0
    for run_id in run_ids:
        instance.delete_run(run_id)
        count += 1
    return count


def analysis_ids(engine: Engine, slack_id: str) -> list[str]:
    """The workspace's analyses (to find their ad hoc runs; read before a deletion)."""
    with engine.connect() as connection:
        return analysis_store.workspace_analysis_ids(connection, slack_id)
