"""The one Dagster entry point (workspace.yaml loads `defs` from here): each domain's
definitions under `defs/`, merged, with the resources and the executor.

The settings are read here, once, and passed down; no module under `defs/` reads them:
- what a definition is built with (a schedule's cron and time zone, a sensor's interval, the
  executor) is an argument of its domain's `build_<domain>_defs(settings)`, which hands the
  values to small factories (`build_daily_schedules`, `build_analysis_sensors`, ...);
- what a run reads while it runs (the database, keys, backfill days, event lag and retention,
  the report folder, trend weeks, LLM pricing) is a field of a resource, built by
  `build_resources(settings)`: the UI shows it, and a test passes its own values.
`build_defs(settings)` does both, so a test builds the whole graph from a `Settings` of its own
in-process, without environment variables or a new interpreter.
"""

import dagster as dg

from toban_orchestration.defs.analysis.definitions import build_analysis_defs
from toban_orchestration.defs.maintenance.definitions import build_maintenance_defs
from toban_orchestration.defs.platform import definitions as platform_definitions
from toban_orchestration.defs.platform.executor import step_executor
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.definitions import build_slack_defs
from toban_orchestration.settings import Settings, get_settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        platform_definitions.defs,
        build_slack_defs(settings),
        build_analysis_defs(settings),
        build_maintenance_defs(settings),
        dg.Definitions(
            resources=build_resources(settings),
            executor=step_executor(settings.dagster_executor),
        ),
    )


# Only this module holds a Definitions object at import time: Dagster's code server (`dagster
# api grpc -m toban_orchestration.definitions`) refuses a module holding more than one.
defs = build_defs(get_settings())
