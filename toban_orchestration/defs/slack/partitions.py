"""How Slack data is sliced in Dagster.

Users and channels are snapshots of a workspace, not time series: they are partitioned by
workspace only, so the UI can refresh one workspace. Messages (with their thread replies and
reactions) are partitioned by UTC day and workspace, keys like `2026-11-24|T0123ABCD`.
"""

import warnings

import dagster as dg

from toban_orchestration.settings import get_settings

WORKSPACE_DIMENSION = "workspace"
DATE_DIMENSION = "date"

workspace_partitions = dg.DynamicPartitionsDefinition(name="slack_workspace")
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=get_settings().partitions_start_date, timezone="UTC"
)
message_partitions = dg.MultiPartitionsDefinition(
    {DATE_DIMENSION: daily_partitions, WORKSPACE_DIMENSION: workspace_partitions}
)
# A message partition depends on its own workspace's users and channels. The mapping is marked
# beta in Dagster 1.13; it is the documented way to map a multi-partition to one dimension.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    workspace_of_message_partition = dg.MultiToSingleDimensionPartitionMapping(
        partition_dimension_name=WORKSPACE_DIMENSION
    )
