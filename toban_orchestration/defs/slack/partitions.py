"""How Slack data is sliced in Dagster.

Users and channels are snapshots of a workspace, not time series: they are partitioned by
workspace only, so the UI can refresh one workspace. Messages (with their thread replies and
reactions) are partitioned by UTC day and workspace, keys like `2026-11-24|T0123ABCD`.

The days begin on TOBAN_PARTITIONS_START_DATE, known when the definitions are built: the day
partitions are made by functions of that date, which the root `definitions.py` passes down.
"""

import warnings

import dagster as dg

WORKSPACE_DIMENSION = "workspace"
DATE_DIMENSION = "date"

workspace_partitions = dg.DynamicPartitionsDefinition(name="slack_workspace")


def daily_partitions(start_date: str) -> dg.DailyPartitionsDefinition:
    """UTC days from `start_date` (YYYY-MM-DD)."""
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC")


def message_partitions(start_date: str) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {DATE_DIMENSION: daily_partitions(start_date), WORKSPACE_DIMENSION: workspace_partitions}
    )


# A message partition depends on its own workspace's users and channels. The mapping is marked
# beta in Dagster 1.13; it is the documented way to map a multi-partition to one dimension.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    workspace_of_message_partition = dg.MultiToSingleDimensionPartitionMapping(
        partition_dimension_name=WORKSPACE_DIMENSION
    )
