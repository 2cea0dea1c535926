"""How long one tick of the integration sensor (and one evaluation of the daily schedule) takes
over many Slack integrations: the first tick that sees all of them, a tick with nothing new, and
a tick where a few changed.

    uv run python -m benchmarks.sensor_tick --integrations 1000
"""

import argparse
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import dagster as dg
from sqlalchemy import Engine, insert, update

from benchmarks.common import fresh_database, machine
from toban_orchestration.db.engine import forget_app_engine
from toban_orchestration.db.enums import CredentialType, IntegrationStatus, IntegrationType
from toban_orchestration.db.models import (
    Integration,
    IntegrationCredential,
    SlackChannel,
    SlackSyncDay,
    SlackWorkspace,
    Team,
)
from toban_orchestration.definitions import defs
from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.settings import get_settings

T = TypeVar("T")


def seed(engine: Engine, count: int, channels: int, synced_days: int) -> list[uuid.UUID]:
    """`count` teams with one Slack integration each; half of them already have a workspace
    whose channels were synced for the last `synced_days` days."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    teams = [{"id": uuid.uuid4(), "name": f"Team {n}", "slug": f"team-{n}"} for n in range(count)]
    ids = [uuid.uuid4() for _ in teams]
    integrations = [
        {
            "id": ids[n],
            "name": f"Slack T{n:08d}",
            "service_type": IntegrationType.SLACK,
            "status": IntegrationStatus.ACTIVE,
            "owner_team_id": team["id"],
            "workspace_id": f"T{n:08d}",
        }
        for n, team in enumerate(teams)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Team), teams)
        connection.execute(insert(Integration), integrations)
        connection.execute(
            insert(IntegrationCredential),
            [
                {
                    "integration_id": i["id"],
                    "credential_type": CredentialType.BOT_TOKEN,
                    "encrypted_value": "gAAAA-benchmark",
                }
                for i in integrations
            ],
        )
        workspaces = [
            {"id": uuid.uuid4(), "team_id": t["id"], "slack_id": i["workspace_id"], "name": "W"}
            for t, i in zip(teams[::2], integrations[::2], strict=True)
        ]
        connection.execute(insert(SlackWorkspace), workspaces)
        channel_rows = [
            {
                "id": uuid.uuid4(),
                "workspace_id": w["id"],
                "slack_id": f"C{c}",
                "name": f"c{c}",
                "is_selected_for_analysis": True,
            }
            for w in workspaces
            for c in range(channels)
        ]
        connection.execute(insert(SlackChannel), channel_rows)
        days: list[date] = [yesterday - timedelta(days=d) for d in range(1, synced_days + 1)]
        connection.execute(
            insert(SlackSyncDay),
            [
                {"channel_id": c["id"], "day": d, "complete": True}
                for c in channel_rows
                for d in days
            ],
        )
    return ids


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=build_resources(get_settings())
    ) as context:
        result = defs.get_sensor_def("slack_integration_sensor")(context)
    assert isinstance(result, dg.SensorResult)
    return result


def schedule(instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.now(UTC),
        resources=build_resources(get_settings()),
    ) as context:
        requests = defs.get_schedule_def("daily_slack_sync")(context)
    assert isinstance(requests, list)
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--integrations", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--synced-days", type=int, default=20)
    args = parser.parse_args()
    # The daemon evaluates sensors with its instance already loaded: so does the benchmark.
    with fresh_database() as engine, dg.DagsterInstance.ephemeral() as instance:
        ids = seed(engine, args.integrations, args.channels, args.synced_days)
        os.environ["TOBAN_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
        # Required next to the app database; the sensor itself never opens it.
        os.environ["TOBAN_DAGSTER_STORAGE_URL"] = engine.url.set(
            database="postgres"
        ).render_as_string(hide_password=False)
        get_settings.cache_clear()
        forget_app_engine()
        # Dagster resolves the resources' EnvVars as a run or a tick does: the same engine.
        with dg.build_resources(build_resources(get_settings())) as resolved:
            app_database = resolved.app_database
            assert isinstance(app_database, AppDatabase)
            with app_database.engine().connect():  # open the pool before the clock starts
                pass
        first, first_s = timed(lambda: tick(instance, None))
        second, second_s = timed(lambda: tick(instance, first.cursor))
        changed = ids[:10]
        with engine.begin() as connection:
            connection.execute(
                update(Integration)
                .where(Integration.id.in_(changed[:5]))
                .values(status=IntegrationStatus.REVOKED)
            )
        third, third_s = timed(lambda: tick(instance, second.cursor))
        requests, schedule_s = timed(lambda: schedule(instance))
        print(f"machine: {machine()}; {args.integrations} Slack integrations")
        print(
            f"first tick (all new): {first_s * 1000:.0f} ms, "
            f"{len(first.run_requests or [])} run requests"
        )
        print(f"tick with nothing new: {second_s * 1000:.0f} ms, {len(second.run_requests or [])}")
        print(f"tick with 5 revoked: {third_s * 1000:.0f} ms, {len(third.run_requests or [])}")
        print(f"daily schedule evaluation: {schedule_s * 1000:.0f} ms, {len(requests)} runs")
        forget_app_engine()


if __name__ == "__main__":
    main()
