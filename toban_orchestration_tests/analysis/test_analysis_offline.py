"""The offline analyzer on a workspace with known roles: exact counts, expected rankings,
deterministic scores, notable contributions that point at real messages, and namesakes told
apart as the reports tell them apart (also when the model's prompt must name nobody)."""

import re
import uuid

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from toban_orchestration.analysis.llm import ChannelAnalyst
from toban_orchestration.analysis.report import all_people, person_labels
from toban_orchestration.analysis.run import run_analysis, window_analysis
from toban_orchestration.analysis.store import report_inputs
from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackUser,
    SlackWorkspace,
)
from toban_orchestration.settings import Settings
from toban_orchestration_tests.fakes.llm_server import FakeLLMServer
from toban_orchestration_tests.llm_answers import good_answer
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
        assert (report.channel_summary or "").startswith("#platform, 2026-11-02 to 2026-11-08: ")
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


# --- namesakes ---------------------------------------------------------------------------------

NAMESAKES = {  # slack id -> (user name, display name, real name): four people called Ulla
    "UHELP": ("ulla.b", "Ulla", "Ulla Berg"),
    "UASK": ("ulla.n", "Ulla", "Ulla Nieminen"),
    "UCOORD": ("ulla.k", "Ulla", None),
    "UREACT": ("ulla.s", "Ulla", "Ulla Strom"),
}
# What the reports call them: a real name where it tells them apart, else the @handle.
LABELS = {
    "UHELP": "Ulla (Ulla Berg)",
    "UASK": "Ulla (Ulla Nieminen)",
    "UCOORD": "Ulla (@ulla.k)",
    "UREACT": "Ulla (Ulla Strom)",
}


def seed_namesakes(engine: Engine, *, pseudonymized: bool = False) -> uuid.UUID:
    """The roles workspace with everyone called Ulla, plus a fifth Ulla, also named Ulla Berg,
    who wrote nothing in the window: the labels come from the window's people, so she must not
    push the helper to her @handle. Returns the weekly analysis' id."""
    seed_roles_workspace(engine)
    with Session(engine) as session, session.begin():
        for slack_id, (name, display, real) in NAMESAKES.items():
            session.execute(
                update(SlackUser)
                .where(SlackUser.slack_id == slack_id)
                .values(name=name, display_name=display, real_name=real)
            )
        workspace = session.scalars(select(SlackWorkspace)).one()
        session.add(
            SlackUser(
                workspace_id=workspace.id,
                slack_id="UIDLE",
                name="ulla.idle",
                display_name="Ulla",
                real_name="Ulla Berg",
            )
        )
        if pseudonymized:
            workspace.workspace_metadata = {"privacy": {"pseudonymize_authors": True}}
    return window_analysis(engine, "TROLES", "weekly", START, END)


def _stored_texts(
    engine: Engine, analysis_id: uuid.UUID
) -> tuple[SlackChannelAnalysis, dict[tuple[str, bool], str]]:
    """The channel report, and each person's insight (per channel and overall)."""
    with Session(engine) as session:
        channel_report = session.scalars(select(SlackChannelAnalysis)).one()
        rows = session.execute(
            select(SlackUser.slack_id, SlackContribution.channel_id, SlackContribution.insights)
            .join(SlackUser, SlackUser.id == SlackContribution.user_id)
            .where(SlackContribution.analysis_id == analysis_id)
        ).all()
    return channel_report, {
        (slack_id, channel is None): insight or "" for slack_id, channel, insight in rows
    }


def test_namesakes_are_told_apart_as_the_reports_tell_them_apart(migrated_engine: Engine) -> None:
    analysis_id = seed_namesakes(migrated_engine)
    result = run_analysis(migrated_engine, analysis_id)
    channel_report, insights = _stored_texts(migrated_engine, analysis_id)
    summary = channel_report.channel_summary or ""
    assert summary.endswith(
        "the most active writers were Ulla (Ulla Berg) (10), Ulla (Ulla Nieminen) (5), "
        "Ulla (@ulla.k) (5)."
    ), summary
    contributors = channel_report.contributor_insights or ""
    for label in LABELS.values():
        assert f"{label}: total " in contributors, (label, contributors)
    assert not re.search(r"Ulla[:(] ?\d", contributors + summary)  # never a bare "Ulla (1)"
    highlights = channel_report.key_highlights or ""
    assert "thread started by Ulla (Ulla Nieminen):" in highlights  # the asker's questions
    assert "reactions: Ulla (Ulla Berg) - " in highlights  # the helper's answers
    for (slack_id, _), insight in insights.items():
        assert insight.startswith(f"{LABELS[slack_id]} wrote "), insight
    assert len(insights) == 8  # four people, per channel and overall
    assert {row["slack_id"]: row["name"] for row in result.leaderboard} == LABELS
    # The same names as the window's HTML report, the Dagster leaderboards and the trends.
    with migrated_engine.connect() as connection:
        inputs = report_inputs(connection, analysis_id)
    assert person_labels(all_people(inputs)) == LABELS


def test_a_pseudonymized_analysis_sends_no_label_to_the_model(migrated_engine: Engine) -> None:
    """The labels carry real names and handles: they name people in the stored text written
    without the model (here the overall insights and the reactor's, whom the model does not
    judge), and never reach the model, which sees aliases only."""
    analysis_id = seed_namesakes(migrated_engine, pseudonymized=True)
    with FakeLLMServer(api_key=None) as llm:
        llm.responder = good_answer
        analyst = ChannelAnalyst(Settings(llm_base_url=llm.base_url, llm_model="fake-model"))
        result = run_analysis(migrated_engine, analysis_id, analyst)
        assert not llm.errors
        sent = "\n".join(request.prompt_text for request in llm.chat_requests)
    assert result.failed_channels == []
    assert result.usage.calls >= 1
    assert "Person-" in sent
    assert not re.findall(r"(?i)ulla|berg|nieminen|strom|@ulla", sent)
    _, insights = _stored_texts(migrated_engine, analysis_id)
    assert insights[("UREACT", False)].startswith("Ulla (Ulla Strom) wrote 0 messages")
    for slack_id, label in LABELS.items():
        assert insights[(slack_id, True)].startswith(f"{label} wrote "), insights
