"""The offline analyzer on a workspace with known roles: exact counts, expected rankings,
deterministic scores, notable contributions that point at real messages."""

import uuid

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from toban_orchestration.analysis.run import run_analysis, window_analysis
from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackUser,
)
from toban_orchestration_tests.support.roles_workspace import (
    END,
    START,
    seed_roles_workspace,
)


@pytest.fixture
def analyzed(migrated_engine: Engine) -> tuple[Engine, uuid.UUID]:
    seed_roles_workspace(migrated_engine)
    analysis_id = window_analysis(migrated_engine, "TROLES", "weekly", START, END)
    run_analysis(migrated_engine, analysis_id)
    return migrated_engine, analysis_id


def _overall(engine: Engine, analysis_id: uuid.UUID) -> dict[str, SlackContribution]:
    with Session(engine) as session:
        rows = session.execute(
            select(SlackUser.name, SlackContribution)
            .join(SlackUser, SlackUser.id == SlackContribution.user_id)
            .where(
                SlackContribution.analysis_id == analysis_id, SlackContribution.channel_id.is_(None)
            )
        ).all()
        return {str(name): contribution for name, contribution in rows}


def test_roles_rank_on_their_dimensions(analyzed: tuple[Engine, uuid.UUID]) -> None:
    engine, analysis_id = analyzed
    people = _overall(engine, analysis_id)
    assert set(people) == {"helper", "asker", "coordinator", "reactor"}  # bots left out

    def best(dimension: str) -> str:
        return max(people, key=lambda name: getattr(people[name], dimension))

    assert best("problem_solving_score") == "helper"
    assert best("team_coordination_score") == "coordinator"
    assert best("knowledge_sharing_score") == "helper"
    assert people["reactor"].reaction_given_count == 15
    assert people["reactor"].message_count == 0  # a channel_join is not a contribution
    assert (people["reactor"].engagement_score or 0) > 0
    assert people["asker"].problem_solving_score == 0
    ranked = sorted(people, key=lambda name: -(people[name].total_score or 0))
    assert ranked[0] == "helper"
    assert ranked[-1] == "reactor"


def test_counts_are_exact_against_the_database(analyzed: tuple[Engine, uuid.UUID]) -> None:
    engine, analysis_id = analyzed
    with Session(engine) as session:
        report = session.scalars(select(SlackChannelAnalysis)).one()
        assert (report.message_count, report.participant_count) == (20, 4)
        assert (report.thread_count, report.reaction_count) == (5, 25)
        helper = session.execute(
            select(SlackContribution)
            .join(SlackUser, SlackUser.id == SlackContribution.user_id)
            .where(SlackUser.name == "helper", SlackContribution.channel_id.isnot(None))
        ).scalar_one()
        assert (helper.message_count, helper.thread_reply_count) == (10, 10)
        assert (helper.reaction_given_count, helper.reaction_received_count) == (5, 10)
        stored_ids = {str(i) for i in session.scalars(select(SlackMessage.id))}
        notable = helper.notable_contributions or []
        assert notable
        assert all(item["message_id"] in stored_ids and item["reason"] for item in notable)
        analysis = session.get_one(SlackAnalysis, analysis_id)
        assert (analysis.status, analysis.progress) == ("completed", 100.0)
        assert analysis.completion_time is not None
        assert analysis.llm_model == "toban-offline-analyzer/v1"
        assert report.model_used == "toban-offline-analyzer/v1"
        assert "#platform" in (report.channel_summary or "")
        assert "reactions" in (report.key_highlights or "")


def test_rerunning_gives_identical_scores_and_no_duplicates(
    analyzed: tuple[Engine, uuid.UUID],
) -> None:
    engine, analysis_id = analyzed

    def snapshot() -> list[tuple[object, ...]]:
        with engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    text(
                        "SELECT user_id, channel_id, problem_solving_score, "
                        "knowledge_sharing_score, team_coordination_score, engagement_score, "
                        "total_score, message_count, "
                        "notable_contributions FROM slack_contribution ORDER BY user_id, channel_id"
                    )
                )
            ]

    before = snapshot()
    again = window_analysis(engine, "TROLES", "weekly", START, END)
    assert again == analysis_id
    run_analysis(engine, analysis_id)
    assert snapshot() == before
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SlackChannelAnalysis)) == 1
        assert session.scalar(select(func.count()).select_from(SlackAnalysis)) == 1
