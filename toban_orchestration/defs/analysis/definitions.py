"""The analyses' definitions: a channel-report and a contribution asset per window length, the
ad hoc analysis job, and the sensors that start them."""

import dagster as dg

from toban_orchestration.defs.analysis.assets import analysis_assets, slack_analysis_job
from toban_orchestration.defs.analysis.sensors import (
    slack_analysis_automation,
    slack_analysis_request_sensor,
)

defs = dg.Definitions(
    assets=analysis_assets,
    jobs=[slack_analysis_job],
    sensors=[slack_analysis_request_sensor, slack_analysis_automation],
)
