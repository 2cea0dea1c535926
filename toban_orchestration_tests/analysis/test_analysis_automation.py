"""Analyses follow the synced days (Dagster's automation conditions, evaluated through its test
API on the project's PostgreSQL-backed instance), and their count check catches reports that
disagree with the messages."""

from datetime import timedelta

import dagster as dg
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from toban_orchestration.analysis.health import analysis_health
from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannel,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackUser,
)
from toban_orchestration.definitions import defs
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.settings import get_settings
from toban_orchestration_tests.support.partitioned_assets import WEEKLY
from toban_orchestration_tests.support.roles_workspace import START, seed_roles_workspace

WORKSPACE = "TROLES"
WEEK = [(START + timedelta(days=n)).date().isoformat() for n in range(7)]


def _synced(instance: dg.DagsterInstance, day: str) -> None:
    for asset in ("slack_messages", "slack_reactions"):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=asset,
                partition=str(dg.MultiPartitionKey({"date": day, "workspace": WORKSPACE})),
            )
        )


def _requested(result: dg.EvaluateAutomationConditionsResult) -> dict[str, set[str]]:
    return {
        key.to_user_string(): {str(k) for k in result.get_requested_partitions(key)}
        for key in (
            dg.AssetKey(f"slack_channel_analyses_{frequency}")
            for frequency in ("daily", "weekly", "monthly")
        )
    }


def test_windows_are_analyzed_once_their_days_are_synced_and_again_after_a_resync(
    project_instance: dg.DagsterInstance,
) -> None:
    project_instance.add_dynamic_partitions(workspace_partitions.name or "", [WORKSPACE])
    analyses = dg.AssetSelection.groups("analysis")
    first = dg.evaluate_automation_conditions(
        defs=defs, instance=project_instance, asset_selection=analyses
    )
    assert first.total_requested == 0  # nothing is synced yet

    for day in WEEK[:6]:
        _synced(project_instance, day)
    partial = dg.evaluate_automation_conditions(
        defs=defs, instance=project_instance, asset_selection=analyses, cursor=first.cursor
    )
    requested = _requested(partial)
    # Each synced day gets its daily report; the week waits for its seventh day; the month for
    # the days of November that were never synced.
    assert requested["slack_channel_analyses_daily"] == {f"{d}|{WORKSPACE}" for d in WEEK[:6]}
    assert requested["slack_channel_analyses_weekly"] == set()
    assert requested["slack_channel_analyses_monthly"] == set()

    _synced(project_instance, WEEK[6])
    complete = dg.evaluate_automation_conditions(
        defs=defs, instance=project_instance, asset_selection=analyses, cursor=partial.cursor
    )
    requested = _requested(complete)
    assert requested["slack_channel_analyses_daily"] == {f"{WEEK[6]}|{WORKSPACE}"}
    assert requested["slack_channel_analyses_weekly"] == {f"{WEEK[0]}|{WORKSPACE}"}

    quiet = dg.evaluate_automation_conditions(
        defs=defs, instance=project_instance, asset_selection=analyses, cursor=complete.cursor
    )
    assert quiet.total_requested == 0  # evaluating again requests nothing twice

    _synced(project_instance, WEEK[3])  # a late edit re-synced one day
    resynced = dg.evaluate_automation_conditions(
        defs=defs, instance=project_instance, asset_selection=analyses, cursor=quiet.cursor
    )
    requested = _requested(resynced)
    assert requested["slack_channel_analyses_daily"] == {f"{WEEK[3]}|{WORKSPACE}"}
    assert requested["slack_channel_analyses_weekly"] == {f"{WEEK[0]}|{WORKSPACE}"}


def test_the_count_check_passes_then_flags_a_stale_and_an_inconsistent_report(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    seed_roles_workspace(migrated_engine)
    project_instance.add_dynamic_partitions(workspace_partitions.name or "", [WORKSPACE])
    result = dg.materialize(
        [WEEKLY],
        partition_key=dg.MultiPartitionKey({"date": WEEK[0], "workspace": WORKSPACE}),
        resources=build_resources(get_settings()),
        instance=project_instance,
    )
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("counts_match_messages", True)]

    with Session(migrated_engine) as session, session.begin():
        analysis_id = session.scalars(select(SlackAnalysis.id)).one()
        assert analysis_health(migrated_engine, analysis_id).stale == []
        channel_id = session.scalars(select(SlackChannel.id)).one()
        helper_id = session.scalars(select(SlackUser.id).where(SlackUser.slack_id == "UHELP")).one()
        session.add(  # a message synced after the report was written
            SlackMessage(
                channel_id=channel_id,
                user_id=helper_id,
                slack_ts=f"{int((START + timedelta(days=2)).timestamp())}.999999",
                message_datetime=START + timedelta(days=2),
                text="late answer",
                processed_text="late answer",
            )
        )
    stale = analysis_health(migrated_engine, analysis_id)
    assert [(m.channel, m.expected - m.stored) for m in stale.stale] == [("platform", 1)]
    assert stale.inconsistent == []

    with migrated_engine.begin() as connection:
        connection.execute(
            update(SlackContribution)
            .where(
                SlackContribution.analysis_id == analysis_id,
                SlackContribution.user_id == helper_id,
                SlackContribution.channel_id == channel_id,
            )
            .values(message_count=SlackContribution.message_count + 5)
        )
    broken = analysis_health(migrated_engine, analysis_id)
    assert [(m.channel, m.expected - m.stored) for m in broken.inconsistent] == [("platform", 5)]
    assert "contributions sum to" in broken.describe()

    rerun = dg.materialize(  # re-analyzing brings the report back in line
        [WEEKLY],
        partition_key=dg.MultiPartitionKey({"date": WEEK[0], "workspace": WORKSPACE}),
        resources=build_resources(get_settings()),
        instance=project_instance,
    )
    assert all(c.passed for c in rerun.get_asset_check_evaluations())
    healed = analysis_health(migrated_engine, analysis_id)
    assert (healed.stale, healed.inconsistent) == ([], [])
    with Session(migrated_engine) as session:
        total = session.scalar(
            select(func.sum(SlackContribution.message_count)).where(
                SlackContribution.analysis_id == analysis_id,
                SlackContribution.channel_id == channel_id,
            )
        )
        reported = session.scalar(
            select(SlackChannelAnalysis.message_count).where(
                SlackChannelAnalysis.analysis_id == analysis_id
            )
        )
        assert total == reported == stale.stale[0].expected
