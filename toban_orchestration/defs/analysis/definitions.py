"""The analyses' definitions: a channel-report and a contribution asset per window length, the
ad hoc analysis job, the weekly trends of people, and the sensors that start them (their
interval from the settings the root `definitions.py` passes)."""

import dagster as dg

from toban_orchestration.defs.analysis.assets import analysis_assets, slack_analysis_job
from toban_orchestration.defs.analysis.sensors import build_analysis_sensors
from toban_orchestration.defs.analysis.trend_assets import slack_contributions_trends
from toban_orchestration.settings import Settings


def build_analysis_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*analysis_assets, slack_contributions_trends],
        jobs=[slack_analysis_job],
        sensors=build_analysis_sensors(settings.sensor_interval_seconds),
    )
