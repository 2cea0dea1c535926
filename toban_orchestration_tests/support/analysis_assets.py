"""The analysis assets the tests materialize by hand."""

from toban_orchestration.defs.analysis.assets import analysis_assets

WEEKLY = next(a for a in analysis_assets if a.node_def.name == "slack_analysis_weekly")
