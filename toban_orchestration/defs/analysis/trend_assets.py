"""People over time as an asset: `slack_contributions_trends`, one partition per week and
workspace like the weekly contributions it follows, showing each person's weekly scores over the
last TOBAN_TREND_WEEKS weeks, who moved most this week, and their trend charts.

It stores nothing: a materialization reads the stored contribution rows (analysis/store.py) and
puts what a team lead needs in its metadata. A table would duplicate `slack_contribution`, would
go stale when a week is re-analyzed, and would be one more copy of people's scores for erasure
and retention to find (docs/analyses.md, "Trends").
"""

from datetime import timedelta
from typing import Any

import dagster as dg

from toban_orchestration.analysis.store import team_weeks, workspace_and_owner
from toban_orchestration.analysis.trends import (
    Trends,
    chart_markdown,
    movers_markdown,
    summarize,
    trend_chart_png,
    trend_weeks,
    trends_of,
    validate_weeks,
    weekly_totals_markdown,
)
from toban_orchestration.db.enums import ScheduleFrequency
from toban_orchestration.defs.analysis.assets import ANALYSIS_GROUP
from toban_orchestration.defs.analysis.partitions import analysis_partitions
from toban_orchestration.defs.analysis.resources import AnalysisSettings
from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack.partitions import WORKSPACE_DIMENSION

TRENDS_ASSET = "slack_contributions_trends"
WEEKLY_CONTRIBUTIONS = f"slack_contributions_{ScheduleFrequency.WEEKLY.value}"
CHART_PEOPLE = 9  # three rows of three panels: readable at a glance, and about 100 kB

# Like the analyses' own condition: a week's trends are made once its scores exist, and again
# whenever that week is re-analyzed. The other weeks a trend shows are not dependencies: a week
# older than the backfill window is never analyzed, and would otherwise hold the trends of every
# week after it back for good.
FOLLOWS_THE_WEEK = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated())
    .since_last_handled()
    .with_label("newly missing or the week re-scored")
)
# Dagster's first evaluation of a condition sees nothing "newly" missing or updated: a daemon that
# starts after the scores were made (the UI after `toban demo`, or this asset deployed where weeks
# are already analyzed) would never make their trends. It makes the recent ones then; older weeks
# get theirs when they are analyzed again.
CATCH_UP = timedelta(weeks=4)
MISSING_AT_FIRST_EVALUATION = (
    dg.AutomationCondition.initial_evaluation()
    & dg.AutomationCondition.missing()
    & dg.AutomationCondition.in_latest_time_window(lookback_delta=CATCH_UP)
).with_label("missing at the first evaluation, in the last 4 weeks")
FOLLOW_WEEKLY_SCORES = (
    (FOLLOWS_THE_WEEK | MISSING_AT_FIRST_EVALUATION)
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after the week's contribution scores")


def build_trends_asset(partitions_start_date: str) -> dg.AssetsDefinition:
    """The trends of each week from `partitions_start_date` and workspace."""
    return dg.asset(
        name=TRENDS_ASSET,
        group_name=ANALYSIS_GROUP,
        partitions_def=analysis_partitions(ScheduleFrequency.WEEKLY, partitions_start_date),
        deps=[WEEKLY_CONTRIBUTIONS],
        automation_condition=FOLLOW_WEEKLY_SCORES,
        description="Each person's weekly total and four dimension scores over the last "
        "TOBAN_TREND_WEEKS weeks (12 by default) up to this partition's week: who moved most "
        "since last week (with the channels they contributed in), a trend chart per top mover "
        "and everyone's weekly totals. It shows what the workspace's own team may read; nothing "
        "is stored besides this metadata.",
    )(slack_contributions_trends)


def slack_contributions_trends(
    context: dg.AssetExecutionContext, app_database: AppDatabase, analysis: AnalysisSettings
) -> dg.MaterializeResult[None]:
    keys = context.partition_key.keys_by_dimension
    week = context.partition_time_window.start.date()  # the date dimension's week
    weeks = validate_weeks(analysis.trend_weeks)
    with app_database.engine().connect() as connection:
        workspace_id, owner_team_id = workspace_and_owner(connection, keys[WORKSPACE_DIMENSION])
        # The pipeline's analyses are the owning team's (access/store.analysis_team), so its
        # trends are that team's view too.
        view = team_weeks(connection, owner_team_id, workspace_id, trend_weeks(week, weeks))
    trends = trends_of(view)
    summary = summarize(trends)
    context.log.info(
        f"Trends of {summary.people} people over {weeks} weeks ({summary.weeks_analyzed} "
        f"analyzed): {summary.rising} rose and {summary.falling} fell since last week"
    )
    return dg.MaterializeResult(metadata=trend_metadata(trends))


def trend_metadata(trends: Trends) -> dict[str, Any]:
    summary = summarize(trends)
    shown = trends.chart_people(CHART_PEOPLE)
    chart = (
        chart_markdown(
            trend_chart_png(trends, shown),
            "Weekly scores of the people who moved most"
            if trends.comparable
            else "Weekly scores of this week's top contributors",
        )
        if shown
        else "Nobody to chart: no one contributed in these weeks."
    )
    metadata: dict[str, Any] = {
        "dagster/row_count": summary.people,
        "weeks": f"{trends.weeks[0].isoformat()} to {trends.this_week.isoformat()}",
        "weeks_analyzed": summary.weeks_analyzed,
        "people": summary.people,
        "rising": summary.rising,
        "falling": summary.falling,
        "moved_most_this_week": dg.MetadataValue.md(movers_markdown(trends)),
        "trend_chart": dg.MetadataValue.md(chart),
        "weekly_totals": dg.MetadataValue.md(weekly_totals_markdown(trends)),
    }
    if summary.notes:
        metadata["notes"] = dg.MetadataValue.md("\n\n".join(summary.notes))
    return metadata
