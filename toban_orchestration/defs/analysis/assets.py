"""Channel analyses and contribution scores as assets, one pair per window length, downstream
of the synced messages and reactions; and a job for an ad hoc SlackAnalysis row."""

import uuid
from dataclasses import dataclass
from typing import Any

import dagster as dg
from sqlalchemy import Engine

from toban_orchestration.analysis import charts, report
from toban_orchestration.analysis.health import analysis_health
from toban_orchestration.analysis.report_files import ReportPathError, write_report
from toban_orchestration.analysis.run import AnalysisResult, run_analysis, window_analysis
from toban_orchestration.analysis.store import ReportInputs, report_inputs
from toban_orchestration.db.enums import ScheduleFrequency
from toban_orchestration.defs.analysis.partitions import analysis_partitions, days_of_window
from toban_orchestration.defs.analysis.resources import AnalysisSettings
from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack.partitions import DATE_DIMENSION, WORKSPACE_DIMENSION

ANALYSIS_GROUP = "analysis"
# Analysis steps share one pool (limit in dagster.yaml) so that LLM requests stay bounded.
LLM_POOL = "llm"

# Dagster's `eager()` minus its "latest time window only" clause: a window is analyzed as soon as
# every day it covers is synced, so the 30 days a new workspace backfills get their daily, weekly
# and monthly reports too, and a window is re-analyzed when one of its days is re-synced.
ANALYZE_WHEN_SYNCED = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated())
    .since_last_handled()
    .with_label("newly missing or any day re-synced")
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("analyze when synced")


# What a window that is never made waits for: the automation above says nothing, so the UI's
# description and `toban status` do.
_UNITS = {ScheduleFrequency.WEEKLY: "week", ScheduleFrequency.MONTHLY: "month"}
WAITS = {
    frequency: f" Made once every day of the {unit} is synced: a {unit} that begins before the "
    "backfill window (TOBAN_BACKFILL_DAYS) waits for its earlier days, which nothing syncs by "
    "itself; `toban status` lists them, with the `toban backfill` that completes it."
    for frequency, unit in _UNITS.items()
}


@dataclass(frozen=True)
class WindowMetadata:
    analysis: dict[str, Any]
    """The channel analyses' materialization (or the ad hoc job's output)."""
    contributions: dict[str, Any]


def window_metadata(
    engine: Engine, result: AnalysisResult, analysis: AnalysisSettings
) -> WindowMetadata:
    """What the UI shows of a run: its counts and costs, and what people look at: a preview of
    the busiest channels, the leaderboard with names that tell namesakes apart, the charts, and
    where the window's HTML report is (written when its inputs changed)."""
    with engine.connect() as connection:
        inputs = report_inputs(connection, result.analysis_id)
    labels = report.person_labels(report.all_people(inputs))
    pictures = charts.window_charts(
        report.leaderboard(inputs), inputs.days, inputs.channels, labels
    )
    leaderboard = dg.MetadataValue.md(result.leaderboard_markdown(labels=labels))
    materialized = {
        "workspace": report.workspace_label(inputs.workspace),
        "analysis_id": str(result.analysis_id),
        "channels_analyzed": result.channels,
        "messages_analyzed": result.messages,
        "participants": result.participants,
        "llm_calls": result.usage.calls,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "cache_hits": result.usage.cache_hits,
        "estimated_cost_usd": analysis.estimated_cost(result.usage),
        "failed_channels": len(result.failed_channels),
        "excluded_channels": len(result.excluded_channels),
        "report_preview": dg.MetadataValue.md(
            report.preview_markdown(inputs) if inputs.channels else "No channel analyzed."
        ),
        "leaderboard": leaderboard,
        "charts": dg.MetadataValue.md(charts.charts_markdown(pictures)),
        **_report_file_metadata(analysis, inputs, pictures),
    }
    contributors = {
        title: png for title, png in pictures.items() if title == charts.CONTRIBUTORS_TITLE
    }
    contributions = {
        "dagster/row_count": result.participants,
        "workspace": materialized["workspace"],
        "leaderboard": leaderboard,
        "charts": dg.MetadataValue.md(charts.charts_markdown(contributors)),
    }
    return WindowMetadata(materialized, contributions)


def _report_file_metadata(
    analysis: AnalysisSettings, inputs: ReportInputs, pictures: dict[str, bytes]
) -> dict[str, Any]:
    try:
        written = write_report(analysis.report_path, inputs, pictures)
    except (OSError, ReportPathError) as error:
        # The analysis' rows are stored: a report that cannot be written is said, not fatal.
        return {"report": dg.MetadataValue.text(f"not written: {error}")}
    return {
        "report": dg.MetadataValue.path(str(written.path)),
        "report_url": dg.MetadataValue.url(written.path.as_uri()),
        "report_rewritten": written.written,
    }


def build_window_assets(partitions_start_date: str) -> list[dg.AssetsDefinition]:
    """The channel analyses and contributions of every window length, from the first day."""
    return [build_analysis_assets(f, partitions_start_date) for f in ScheduleFrequency]


def build_analysis_assets(
    frequency: ScheduleFrequency, partitions_start_date: str
) -> dg.AssetsDefinition:
    partitions = analysis_partitions(frequency, partitions_start_date)
    window_definition = partitions.get_partitions_def_for_dimension(DATE_DIMENSION)
    assert isinstance(window_definition, dg.TimeWindowPartitionsDefinition)

    @dg.multi_asset(
        name=f"slack_analysis_{frequency.value}",
        specs=[
            dg.AssetSpec(
                f"slack_channel_analyses_{frequency.value}",
                group_name=ANALYSIS_GROUP,
                kinds={"postgres"},
                description=f"A {frequency.value} report per analyzed channel."
                + WAITS.get(frequency, ""),
                deps=[
                    dg.AssetDep("slack_messages", partition_mapping=days_of_window),
                    dg.AssetDep("slack_reactions", partition_mapping=days_of_window),
                ],
                automation_condition=ANALYZE_WHEN_SYNCED,
            ),
            dg.AssetSpec(
                f"slack_contributions_{frequency.value}",
                group_name=ANALYSIS_GROUP,
                kinds={"postgres"},
                description=f"{frequency.value.capitalize()} contribution scores per person.",
                deps=[f"slack_channel_analyses_{frequency.value}"],
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "counts_match_messages",
                asset=f"slack_channel_analyses_{frequency.value}",
                description="Each channel report counts the messages its window holds now, and "
                "its contribution rows add up to the same count.",
            )
        ],
        partitions_def=partitions,
        pool=LLM_POOL,
    )
    def _analysis(
        context: dg.AssetExecutionContext, app_database: AppDatabase, analysis: AnalysisSettings
    ) -> Any:
        keys = context.partition_key.keys_by_dimension
        window = window_definition.time_window_for_partition_key(keys[DATE_DIMENSION])
        engine = app_database.engine()
        analysis_id = window_analysis(
            engine, keys[WORKSPACE_DIMENSION], frequency.value, window.start, window.end
        )
        result = run_analysis(engine, analysis_id)
        metadata = window_metadata(engine, result, analysis)
        yield dg.MaterializeResult(
            asset_key=f"slack_channel_analyses_{frequency.value}", metadata=metadata.analysis
        )
        yield dg.MaterializeResult(
            asset_key=f"slack_contributions_{frequency.value}", metadata=metadata.contributions
        )
        health = analysis_health(engine, analysis_id)
        yield dg.AssetCheckResult(
            asset_key=f"slack_channel_analyses_{frequency.value}",
            check_name="counts_match_messages",
            passed=not (health.stale or health.inconsistent),
            # A stale count means the window changed during the run: worth a re-run, not an alarm.
            severity=dg.AssetCheckSeverity.ERROR
            if health.inconsistent
            else dg.AssetCheckSeverity.WARN,
            metadata={
                "stale_channels": len(health.stale),
                "inconsistent_channels": len(health.inconsistent),
                "mismatches": dg.MetadataValue.md(health.describe() or "none"),
            },
        )

    return _analysis


class AnalysisRequest(dg.Config):
    analysis_id: str
    """The SlackAnalysis row to run (its window, channels and parameters)."""


@dg.op
def run_requested_analysis(
    config: AnalysisRequest, app_database: AppDatabase, analysis: AnalysisSettings
) -> dg.Output[str]:
    """Status and progress of the row move as it runs; the result is in its tables."""
    engine = app_database.engine()
    result = run_analysis(engine, uuid.UUID(config.analysis_id))
    if result.denied is not None:
        # The row says why too; a retry cannot change who may read what.
        raise dg.Failure(
            description=f"Analysis {config.analysis_id} was not run: {result.denied}",
            allow_retries=False,
        )
    return dg.Output(
        config.analysis_id, metadata=window_metadata(engine, result, analysis).analysis
    )


@dg.job(description="Run an ad hoc SlackAnalysis (custom range and channels) by its id.")
def slack_analysis_job() -> None:
    run_requested_analysis()
