"""The analyses' definitions: a channel-report and a contribution asset per window length, the
ad hoc analysis job, the weekly trends of people, and the sensors that start them (the first
window and the sensors' interval from the settings the root `definitions.py` passes)."""

import dagster as dg

from toban_orchestration.defs.analysis.assets import build_window_assets, slack_analysis_job
from toban_orchestration.defs.analysis.sensors import build_analysis_sensors
from toban_orchestration.defs.analysis.trend_assets import build_trends_asset
from toban_orchestration.settings import Settings


def build_analysis_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            *build_window_assets(settings.partitions_start_date),
            build_trends_asset(settings.partitions_start_date),
        ],
        jobs=[slack_analysis_job],
        sensors=build_analysis_sensors(settings.sensor_interval_seconds),
    )
