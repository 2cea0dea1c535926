"""Toban end to end, as a user runs it: `dagster dev` with its daemon on a real PostgreSQL, two
Slack workspaces connected with tokens (the local Slack server), the integration sensor's syncs,
the analyses that follow them, and a backfill launched with `toban backfill` through the
webserver's GraphQL API."""

import time
from datetime import timedelta

from sqlalchemy import Engine, func, select, text

from toban_orchestration.analysis.health import analysis_health
from toban_orchestration.backfill import graphql, wait_for_run
from toban_orchestration.db.enums import AnalysisStatus
from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannel,
    SlackMessage,
    SlackWorkspace,
)
from toban_orchestration_tests.e2e_support import E2EStack, completed_analyses, e2e_stack
from toban_orchestration_tests.helpers import run_toban
from toban_orchestration_tests.support.web_api_sync import assert_matches_ground_truth

__all__ = ["e2e_stack"]  # the shared session fixture

# The daemon looks at backfills every 30 s; the analysis automation is evaluated every 60 s.
BACKFILL_TIMEOUT_SECONDS = 420
ANALYSES_TIMEOUT_SECONDS = 420
# The analysis automation may re-analyze a re-synced day meanwhile: it reuses the day's
# slack_analysis row, so that count holds too; its reports are replaced, so they are not counted.
COUNTED_TABLES = (
    "slack_user",
    "slack_channel",
    "slack_message",
    "slack_reaction",
    "slack_sync_day",
    "slack_analysis",
)
MATERIALIZED_QUERY = """
query Materialized {
  assetOrError(assetKey: {path: ["slack_messages"]}) {
    ... on Asset { assetMaterializations(limit: 1000) { partition } }
  }
}
"""
RUN_MATERIALIZED_QUERY = """
query RunMaterialized {
  assetOrError(assetKey: {path: ["slack_messages"]}) {
    ... on Asset { assetMaterializations(limit: 1000) { partition runId } }
  }
}
"""


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in COUNTED_TABLES
        }


def _synced_channels(engine: Engine, slack_id: str) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(SlackChannel.slack_id)
                .join(SlackWorkspace, SlackWorkspace.id == SlackChannel.workspace_id)
                .where(
                    SlackWorkspace.slack_id == slack_id,
                    SlackChannel.is_selected_for_analysis,
                    SlackChannel.is_supported,
                )
            ).scalars()
        )


def _assert_synced(stack: E2EStack) -> None:
    """Both workspaces' messages and reactions are the Slack server's, row for row."""
    engine = stack.app_engine
    for slack_id, connected in stack.workspaces.items():
        channels = _synced_channels(engine, slack_id)
        assert len(channels) >= 3, channels  # public and private channels
        assert_matches_ground_truth(connected, channels)
        with engine.connect() as connection:
            stored = connection.execute(
                select(func.count())
                .select_from(SlackMessage)
                .join(SlackChannel, SlackChannel.id == SlackMessage.channel_id)
                .join(SlackWorkspace, SlackWorkspace.id == SlackChannel.workspace_id)
                .where(SlackWorkspace.slack_id == slack_id)
            ).scalar_one()
        readable = [c for c in channels if connected.workspace.channel(c).is_member]
        assert stored == sum(connected.workspace.message_count(c) for c in readable) > 0


def _assert_analyzed(stack: E2EStack) -> None:
    """Each synced day of each workspace has one completed daily analysis whose reports count
    exactly the messages stored for their channel and day."""
    engine = stack.app_engine
    for slack_id in stack.workspaces:
        with engine.connect() as connection:
            analyses = connection.execute(
                select(SlackAnalysis.id, SlackAnalysis.start_date, SlackAnalysis.status)
                .join(SlackWorkspace, SlackWorkspace.id == SlackAnalysis.workspace_id)
                .where(SlackWorkspace.slack_id == slack_id, SlackAnalysis.analysis_type == "daily")
            ).all()
        assert sorted(a.start_date.date() for a in analyses) == stack.days
        for analysis in analyses:
            assert analysis.status == AnalysisStatus.COMPLETED.value
            health = analysis_health(engine, analysis.id)
            assert not health.stale, health.describe()
            assert not health.inconsistent, health.describe()
        with engine.connect() as connection:
            reports = connection.execute(
                text(
                    "SELECT count(*) FROM slack_channel_analysis WHERE analysis_id = ANY(:ids) "
                    "AND message_count > 0"
                ),
                {"ids": [a.id for a in analyses]},
            ).scalar_one()
        assert reports > 0


def test_connected_workspaces_are_synced_analyzed_and_a_backfill_changes_nothing(
    e2e_stack: E2EStack,
) -> None:
    stack = e2e_stack
    engine = stack.app_engine
    # One range run per workspace covers its whole backfill window (one history read per
    # channel), and each of its days is reported as a materialized partition.
    ranges = {
        r.tags["slack_workspace"]: r.tags["slack_days"]
        for r in stack.runs
        if r.job_name == "slack_messages_range_job"
    }
    assert ranges == {
        slack_id: f"{stack.days[0]}..{stack.days[-1]}" for slack_id in stack.workspaces
    }
    asset = graphql(stack.url, MATERIALIZED_QUERY, {}, timeout=30)["assetOrError"]
    assert {m["partition"] for m in asset["assetMaterializations"]} >= {
        f"{day}|{slack_id}" for day in stack.days for slack_id in stack.workspaces
    }
    _assert_synced(stack)

    # slack_analysis_automation (evaluated once a minute) analyzes each day once it is synced.
    began = time.monotonic()
    expected = len(stack.workspaces) * len(stack.days)
    stack.dagster.wait_until_settled(
        lambda runs: completed_analyses(engine, "daily") == expected,
        ANALYSES_TIMEOUT_SECONDS,
        "the daily analyses of the synced days",
    )
    print(
        f"\ndagster dev answered after {stack.started_in_seconds:.0f} s, the sensor's syncs "
        f"finished after {stack.synced_in_seconds:.0f} s, the analyses "
        f"{time.monotonic() - began:.0f} s later"
    )
    _assert_analyzed(stack)
    before = _counts(engine)

    slack_id = sorted(stack.workspaces)[0]
    first, last = stack.days[0], stack.days[-1]
    began = time.monotonic()
    # --wait follows the run to its end: exit 0 only once it succeeded, its last line saying so.
    launched = run_toban(
        "backfill",
        "--workspace", slack_id,
        "--start", first.isoformat(),
        "--end", last.isoformat(),
        "--url", stack.url,
        "--wait",
        env={},
        timeout=BACKFILL_TIMEOUT_SECONDS,
    )  # fmt: skip
    print(f"toban backfill --wait, after {time.monotonic() - began:.0f} s:\n{launched.stderr}")
    assert launched.returncode == 0, launched.stderr
    run_id = launched.stdout.strip()
    assert f"{stack.url}/runs/{run_id}" in launched.stderr
    days = (last - first).days + 1
    assert launched.stderr.strip().splitlines()[-1].startswith("SUCCESS after ")
    assert f"{days} of {days} days synced and reported" in launched.stderr
    assert "dagster" not in launched.stderr.lower().replace(stack.url, "")  # no event logs
    assert wait_for_run(stack.url, run_id, 1) == "SUCCESS"
    # One run for the whole range, which reported every day of it as its partition.
    asset = graphql(stack.url, RUN_MATERIALIZED_QUERY, {}, timeout=30)["assetOrError"]
    keys = {f"{first + timedelta(days=n)}|{slack_id}" for n in range((last - first).days + 1)}
    assert {m["partition"] for m in asset["assetMaterializations"] if m["runId"] == run_id} == keys
    # Re-reading the days from Slack changed no row, and stays equal to Slack's.
    assert _counts(engine) == before
    _assert_synced(stack)


def test_a_backfill_of_an_unknown_workspace_or_of_days_dagster_lacks_is_refused(
    e2e_stack: E2EStack,
) -> None:
    known = sorted(e2e_stack.workspaces)
    unknown = run_toban(
        "backfill", "--workspace", "TNOSUCH01", "--start", "2026-01-01", "--end", "2026-01-02",
        "--url", e2e_stack.url, env={},
    )  # fmt: skip
    assert unknown.returncode == 1
    assert "Slack workspace TNOSUCH01 is not a partition" in unknown.stderr
    assert ", ".join(known) in unknown.stderr
    assert "Traceback" not in unknown.stderr

    too_early = run_toban(
        "backfill", "--workspace", known[0], "--start", "2019-12-30", "--end", "2020-01-01",
        "--url", e2e_stack.url, env={},
    )  # fmt: skip
    assert too_early.returncode == 1
    assert f"no partition for 2019-12-30|{known[0]}, 2019-12-31|{known[0]}" in too_early.stderr
    assert "Traceback" not in too_early.stderr
