"""The one Dagster entry point (workspace.yaml loads `defs` from here): each domain's
definitions under `defs/`, merged, with the resources and the executor built from the settings.
"""

import dagster as dg

from toban_orchestration.defs.analysis import definitions as analysis_definitions
from toban_orchestration.defs.maintenance import definitions as maintenance_definitions
from toban_orchestration.defs.platform import definitions as platform_definitions
from toban_orchestration.defs.platform.executor import step_executor
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack import definitions as slack_definitions
from toban_orchestration.settings import get_settings

# The domains' modules are imported, not their `defs`: Dagster's code server (`dagster api grpc
# -m toban_orchestration.definitions`) refuses a module holding more than one Definitions.
defs = dg.Definitions.merge(
    platform_definitions.defs,
    slack_definitions.defs,
    analysis_definitions.defs,
    maintenance_definitions.defs,
    dg.Definitions(
        resources=build_resources(get_settings()),
        executor=step_executor(get_settings().dagster_executor),
    ),
)
