"""Analyses in Dagster: a weekly window per workspace as partitions, and the ad hoc job."""

import uuid
from datetime import timedelta
from typing import Any

import dagster as dg
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannelAnalysis,
    SlackWorkspace,
    Team,
    slack_analysis_channels,
)
from toban_orchestration.defs.analysis.assets import slack_analysis_job
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.settings import get_settings
from toban_orchestration_tests.support.partitioned_assets import WEEKLY
from toban_orchestration_tests.support.roles_workspace import START, seed_roles_workspace


def test_a_weekly_partition_materializes_reports_and_a_leaderboard(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    seed_roles_workspace(migrated_engine)
    project_instance.add_dynamic_partitions(workspace_partitions.name or "", ["TROLES"])
    key = dg.MultiPartitionKey({"date": START.date().isoformat(), "workspace": "TROLES"})
    result = dg.materialize(
        [WEEKLY],
        partition_key=key,
        resources=build_resources(get_settings()),
        instance=project_instance,
    )
    assert result.success
    by_key = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("slack_analysis_weekly")
    }
    report = by_key["slack_channel_analyses_weekly"]
    assert report["channels_analyzed"].value == 1
    assert report["llm_calls"].value == 0
    leaderboard = str(report["leaderboard"].value)
    assert leaderboard.index("helper") < leaderboard.index("reactor")
    assert "#platform" in str(report["report_preview"].value)
    assert by_key["slack_contributions_weekly"]["dagster/row_count"].value == 4


def _two_day_request(
    engine: Engine, channel_id: uuid.UUID, parameters: dict[str, Any] | None = None
) -> uuid.UUID:
    """A pending SlackAnalysis of the first two days of #platform, as the app creates one."""
    with Session(engine) as session, session.begin():
        workspace = session.query(SlackWorkspace).one()
        analysis = SlackAnalysis(
            workspace_id=workspace.id,
            name="First two days",
            start_date=START,
            end_date=START + timedelta(days=2),
            status="pending",
            parameters=parameters,
        )
        session.add(analysis)
        session.flush()
        session.execute(
            insert(slack_analysis_channels).values(analysis_id=analysis.id, channel_id=channel_id)
        )
        return analysis.id


def _run_job(analysis_id: uuid.UUID) -> dg.ExecuteInProcessResult:
    return slack_analysis_job.execute_in_process(
        run_config={
            "ops": {"run_requested_analysis": {"config": {"analysis_id": str(analysis_id)}}}
        },
        resources=build_resources(get_settings()),
        raise_on_error=False,
    )


def test_the_job_runs_an_ad_hoc_analysis_by_id(
    app_environment: dict[str, str], migrated_engine: Engine
) -> None:
    channel_id = seed_roles_workspace(migrated_engine)
    analysis_id = _two_day_request(migrated_engine, channel_id)
    result = _run_job(analysis_id)
    assert result.success
    with Session(migrated_engine) as session:
        analysis = session.get_one(SlackAnalysis, analysis_id)
        assert (analysis.status, analysis.progress) == ("completed", 100.0)
        report = session.query(SlackChannelAnalysis).filter_by(analysis_id=analysis_id).one()
        assert report.message_count == 8  # two of the five days
    assert isinstance(analysis_id, uuid.UUID)


def test_the_job_fails_when_the_analysis_team_may_not_read_the_workspace(
    app_environment: dict[str, str],
    migrated_engine: Engine,
) -> None:
    channel_id = seed_roles_workspace(migrated_engine)
    with Session(migrated_engine) as session, session.begin():
        outsider = Team(name="Outsiders", slug="outsiders")
        session.add(outsider)
        session.flush()
        outsider_id = outsider.id
    analysis_id = _two_day_request(migrated_engine, channel_id, {"team_id": str(outsider_id)})
    result = _run_job(analysis_id)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "was not run" in str(failure.step_failure_data.error)
    with Session(migrated_engine) as session:
        stored = session.get_one(SlackAnalysis, analysis_id)
        assert stored.status == "failed"
        assert (stored.error_message or "").startswith("Not analyzed:")
        assert session.query(SlackChannelAnalysis).count() == 0
