"""The partitioned assets the tests materialize by hand, built as the root definitions build
them: from the first day partition of the settings (conftest pins TOBAN_PARTITIONS_START_DATE,
which a run of the tests may set)."""

from toban_orchestration.defs.analysis.assets import build_window_assets
from toban_orchestration.defs.analysis.trend_assets import build_trends_asset
from toban_orchestration.defs.slack.assets import build_message_assets
from toban_orchestration.settings import get_settings

PARTITIONS_START = get_settings().partitions_start_date
MESSAGES = build_message_assets(PARTITIONS_START)
"""`slack_messages` and `slack_reactions` (the node `slack_messages_and_reactions`)."""
ANALYSIS_ASSETS = build_window_assets(PARTITIONS_START)
WEEKLY = next(a for a in ANALYSIS_ASSETS if a.node_def.name == "slack_analysis_weekly")
TRENDS = build_trends_asset(PARTITIONS_START)
