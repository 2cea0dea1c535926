"""The shape of the Dagster graph (asset keys with their group, partitioning and upstreams,
checks, jobs, schedules, sensors, resources) against a checked-in snapshot, so that a move or
a refactoring that drops or renames a definition fails here, and a deliberate change shows up
in review as a diff of snapshots/definitions.json.

Regenerate it after a deliberate change: TOBAN_UPDATE_SNAPSHOTS=1 pytest -k definitions_snapshot
"""

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from toban_orchestration.definitions import build_defs
from toban_orchestration.settings import Settings

SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "definitions.json"
UPDATE_VARIABLE = "TOBAN_UPDATE_SNAPSHOTS"


def _partitions(definition: dg.PartitionsDefinition | None) -> str | None:
    """The kind of partitioning, e.g. `MultiPartitionsDefinition(date=Daily..., workspace=...)`."""
    if definition is None:
        return None
    if isinstance(definition, dg.MultiPartitionsDefinition):
        dimensions = ", ".join(
            f"{dimension.name}={type(dimension.partitions_def).__name__}"
            for dimension in definition.partitions_defs
        )
        return f"{type(definition).__name__}({dimensions})"
    return type(definition).__name__


def describe(definitions: dg.Definitions) -> dict[str, Any]:
    repository = definitions.get_repository_def()
    graph = repository.asset_graph
    assets = {
        key.to_user_string(): {
            "group": graph.get(key).group_name,
            "partitions": _partitions(graph.get(key).partitions_def),
            "upstream": sorted(parent.to_user_string() for parent in graph.get(key).parent_keys),
        }
        for key in sorted(graph.get_all_asset_keys(), key=lambda key: key.to_user_string())
    }
    checks = sorted(
        f"{check.asset_key.to_user_string()}:{check.name}" for check in graph.asset_check_keys
    )
    jobs = sorted(name for name in repository.job_names if not name.startswith("__"))
    schedules = {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
        }
        for schedule in sorted(repository.schedule_defs, key=lambda s: s.name)
    }
    sensors = {
        sensor.name: {
            "interval_seconds": sensor.minimum_interval_seconds,
            "jobs": sorted(t.job_name for t in sensor.targets if not t.job_name.startswith("__"))
            if sensor.has_jobs
            else [],
        }
        for sensor in sorted(repository.sensor_defs, key=lambda s: s.name)
    }
    resources = {
        key: sorted(type(resource).model_fields)
        for key, resource in sorted((definitions.resources or {}).items())
        if isinstance(resource, dg.ConfigurableResource)
    }
    return {
        "assets": assets,
        "asset_checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
        "resources": resources,
    }


def test_the_definitions_match_the_checked_in_snapshot() -> None:
    # The snapshot holds the default crons, time zones and intervals: the definitions are built
    # with those, whatever the test environment sets (build_defs is what `defs` is made by).
    defaults = {
        name: Settings.model_fields[name].default
        for name in (
            "daily_schedule_cron",
            "schedule_timezone",
            "token_refresh_cron",
            "retention_cron",
            "sensor_interval_seconds",
        )
    }
    current = describe(build_defs(Settings(**defaults)))
    rendered = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get(UPDATE_VARIABLE) == "1":
        SNAPSHOT.write_text(rendered)
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing; create it with {UPDATE_VARIABLE}=1"
    expected = json.loads(SNAPSHOT.read_text())
    for section in current:
        assert current[section] == expected.get(section), (
            f"The Dagster definitions' {section} differ from {SNAPSHOT.name}. If the change is "
            f"deliberate, regenerate it with {UPDATE_VARIABLE}=1 (docs/development.md) and "
            "review the diff."
        )
    assert set(expected) == set(current), f"{SNAPSHOT.name} has other sections than expected"
