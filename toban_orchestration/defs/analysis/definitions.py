"""The analyses' definitions: a channel-report and a contribution asset per window length, the
ad hoc analysis job, the weekly trends of people, and the sensors that start them."""

import dagster as dg

from toban_orchestration.defs.analysis.assets import analysis_assets, slack_analysis_job
from toban_orchestration.defs.analysis.sensors import (
    slack_analysis_automation,
    slack_analysis_request_sensor,
)
from toban_orchestration.defs.analysis.trend_assets import slack_contributions_trends

defs = dg.Definitions(
    assets=[*analysis_assets, slack_contributions_trends],
    jobs=[slack_analysis_job],
    sensors=[slack_analysis_request_sensor, slack_analysis_automation],
)
