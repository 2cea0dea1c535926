"""Analysis windows in Dagster: daily, weekly (Monday to Monday, UTC) and monthly, each by
workspace, matching SlackAnalysis.schedule_frequency.

A window depends on the daily message partitions it covers, in the same workspace: the `date`
dimension maps by time window (a week reads its seven days) and the `workspace` dimension maps to
itself. Backfilling a week therefore waits for, and reads, exactly those days.
"""

import warnings

import dagster as dg

from toban_orchestration.db.enums import ScheduleFrequency
from toban_orchestration.defs.slack.partitions import (
    DATE_DIMENSION,
    WORKSPACE_DIMENSION,
    daily_partitions,
    workspace_partitions,
)
from toban_orchestration.settings import get_settings

_start = get_settings().partitions_start_date
WINDOW_PARTITIONS: dict[ScheduleFrequency, dg.TimeWindowPartitionsDefinition] = {
    ScheduleFrequency.DAILY: daily_partitions,
    ScheduleFrequency.WEEKLY: dg.WeeklyPartitionsDefinition(
        start_date=_start, timezone="UTC", day_offset=1
    ),
    ScheduleFrequency.MONTHLY: dg.MonthlyPartitionsDefinition(start_date=_start, timezone="UTC"),
}


def analysis_partitions(frequency: ScheduleFrequency) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {DATE_DIMENSION: WINDOW_PARTITIONS[frequency], WORKSPACE_DIMENSION: workspace_partitions}
    )


with warnings.catch_warnings():
    # Marked beta in Dagster 1.13; the documented way to map one multi-partition to another.
    warnings.simplefilter("ignore", dg.BetaWarning)
    days_of_window = dg.MultiPartitionMapping(
        {
            DATE_DIMENSION: dg.DimensionPartitionMapping(
                DATE_DIMENSION, dg.TimeWindowPartitionMapping()
            ),
            WORKSPACE_DIMENSION: dg.DimensionPartitionMapping(
                WORKSPACE_DIMENSION, dg.IdentityPartitionMapping()
            ),
        }
    )
