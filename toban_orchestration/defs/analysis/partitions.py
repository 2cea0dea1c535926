"""Analysis windows in Dagster: daily, weekly (Monday to Monday, UTC) and monthly, each by
workspace, matching SlackAnalysis.schedule_frequency.

A window depends on the daily message partitions it covers, in the same workspace: the `date`
dimension maps by time window (a week reads its seven days) and the `workspace` dimension maps to
itself. Backfilling a week therefore waits for, and reads, exactly those days.

Every window begins on TOBAN_PARTITIONS_START_DATE, which the root `definitions.py` passes
down when it builds the definitions.
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


def window_partitions(
    frequency: ScheduleFrequency, start_date: str
) -> dg.TimeWindowPartitionsDefinition:
    """The windows of `frequency` from `start_date` (YYYY-MM-DD): UTC days, weeks from Monday,
    months."""
    if frequency == ScheduleFrequency.DAILY:
        return daily_partitions(start_date)
    if frequency == ScheduleFrequency.WEEKLY:
        return dg.WeeklyPartitionsDefinition(start_date=start_date, timezone="UTC", day_offset=1)
    return dg.MonthlyPartitionsDefinition(start_date=start_date, timezone="UTC")


def analysis_partitions(
    frequency: ScheduleFrequency, start_date: str
) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            DATE_DIMENSION: window_partitions(frequency, start_date),
            WORKSPACE_DIMENSION: workspace_partitions,
        }
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
