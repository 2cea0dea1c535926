"""Analyses cover exactly what their team may read when they run: three teams sharing one
workspace (FULL_ACCESS, LIMITED_ACCESS with per-channel grants, READ_ONLY), a grant removed
between the request and the run, a share revoked between two runs, roles that may not ask.
The model is reached with the real openai client; what it was sent is read back from the local
server's request log."""

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

from toban_orchestration.analysis.prompt import SUMMARY_CHARS
from toban_orchestration.analysis.requests import start_due_schedules
from toban_orchestration.analysis.run import AnalysisResult, run_analysis, window_analysis
from toban_orchestration.db.models import (
    IntegrationShare,
    ResourceAccess,
    SlackAnalysis,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackUser,
    slack_analysis_channels,
)
from toban_orchestration_tests.fakes.llm_server import FakeLLMServer, ParsedRequest
from toban_orchestration_tests.llm_answers import good_answer
from toban_orchestration_tests.support.llm_analyst import API_KEY, analyst_for
from toban_orchestration_tests.support.shared_teams import (
    CHANNELS,
    END,
    START,
    USERS,
    Shared,
    marker,
    seed_shared,
)

PUBLIC_READERS = ["general", "eng", "random"]


def echoing_answer(request: ParsedRequest) -> str:
    """A valid answer whose summary repeats the transcript: if a message reached the model, it
    reaches the stored report too, so the report shows what the model was shown."""
    answer = json.loads(good_answer(request))
    transcript = request.prompt_text.rsplit("<transcript>", 1)[-1]
    answer["summary"] = " ".join(transcript.split())[:SUMMARY_CHARS]
    return json.dumps(answer)


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=API_KEY) as server:
        server.responder = echoing_answer
        yield server
        assert not server.errors


@pytest.fixture
def shared(db_session: Session) -> Shared:
    engine = db_session.get_bind()
    assert isinstance(engine, Engine)
    return seed_shared(engine)


def request(shared: Shared, team: str, by: str, **parameters: Any) -> uuid.UUID:
    """What the app does when someone asks: a pending row over every channel of the
    workspace (DMs included), for the team."""
    with Session(shared.engine) as session, session.begin():
        analysis = SlackAnalysis(
            workspace_id=shared.workspace_id,
            name=f"{team} asks",
            start_date=START,
            end_date=END,
            parameters={"team_id": str(shared.teams[team]), "requested_by": by, **parameters},
        )
        session.add(analysis)
        session.flush()
        session.execute(
            insert(slack_analysis_channels),
            [{"analysis_id": analysis.id, "channel_id": c} for c in shared.channels.values()],
        )
        return analysis.id


def channel_ids(shared: Shared, names: list[str]) -> set[uuid.UUID]:
    return {shared.channels[name] for name in names}


def stored_text(engine: Engine, analysis_id: uuid.UUID) -> str:
    """Everything an analysis stored, as text."""
    with Session(engine) as session:
        analysis = session.get_one(SlackAnalysis, analysis_id)
        reports = session.scalars(
            select(SlackChannelAnalysis).where(SlackChannelAnalysis.analysis_id == analysis_id)
        ).all()
        contributions = session.scalars(
            select(SlackContribution).where(SlackContribution.analysis_id == analysis_id)
        ).all()
        parts: list[Any] = [analysis.result_summary, analysis.error_message]
        for report in reports:
            parts += [
                report.channel_summary,
                report.topic_analysis,
                report.contributor_insights,
                report.key_highlights,
                report.raw_response,
            ]
        for contribution in contributions:
            parts += [
                contribution.insights,
                contribution.notable_contributions,
                contribution.insights_data,
            ]
    return json.dumps(parts, default=str)


def assert_covers_exactly(
    shared: Shared, analysis_id: uuid.UUID, readable: list[str], prompts: str
) -> None:
    engine = shared.engine
    expected = channel_ids(shared, readable)
    unreadable = [name for name in CHANNELS if name not in readable]
    with Session(engine) as session:
        analysis = session.get_one(SlackAnalysis, analysis_id)
        assert (analysis.status, analysis.error_message) == ("completed", None)
        reported = set(
            session.scalars(
                select(SlackChannelAnalysis.channel_id).where(
                    SlackChannelAnalysis.analysis_id == analysis_id
                )
            )
        )
        contributions = session.execute(
            select(SlackContribution, SlackUser.slack_id)
            .join(SlackUser, SlackUser.id == SlackContribution.user_id)
            .where(SlackContribution.analysis_id == analysis_id)
        ).all()
        cited = {
            n["message_id"]
            for contribution, _ in contributions
            for n in contribution.notable_contributions or []
        }
        cited_channels = set(
            session.scalars(
                select(SlackMessage.channel_id).where(
                    SlackMessage.id.in_([uuid.UUID(c) for c in cited])
                )
            )
        )
    assert reported == expected
    assert {c.channel_id for c, _ in contributions if c.channel_id} == expected
    assert cited
    assert cited_channels <= expected
    # Overall counts add up the readable channels only.
    overall = {slack_id: c.message_count for c, slack_id in contributions if c.channel_id is None}
    wanted: Counter[str] = Counter()
    for name in readable:
        wanted.update(CHANNELS[name][2])
    assert overall == dict(wanted)
    # Neither the model nor the stored report saw a word of the other channels.
    text = stored_text(engine, analysis_id)
    for name in readable:
        assert marker(name) in prompts
        assert marker(name) in text
    for name in unreadable:
        assert marker(name) not in prompts, name
        assert marker(name) not in text, name


def excluded(engine: Engine, analysis_id: uuid.UUID) -> dict[str, str]:
    with Session(engine) as session:
        summary = session.get_one(SlackAnalysis, analysis_id).result_summary or {}
    return {e["name"]: e["reason"] for e in summary["excluded_channels"]}


def run_with(shared: Shared, llm: FakeLLMServer, analysis_id: uuid.UUID) -> tuple[str, int]:
    """Run one analysis; returns the text of the requests it sent the model, and how many."""
    before = len(llm.chat_requests)
    run_analysis(shared.engine, analysis_id, analyst_for(llm))
    sent = llm.chat_requests[before:]
    return "\n".join(r.prompt_text for r in sent), len(sent)


def test_each_team_analysis_covers_exactly_the_channels_it_may_read(
    shared: Shared, llm: FakeLLMServer
) -> None:
    owner = request(shared, "A", "member-A")
    full = request(shared, "B", "member-B")
    limited = request(shared, "C", "member-C")
    read_only = request(shared, "D", "admin-D")
    # Between the request and the run, C loses its grant on #secret.
    with Session(shared.engine) as session, session.begin():
        session.execute(
            delete(ResourceAccess).where(
                ResourceAccess.team_id == shared.teams["C"],
                ResourceAccess.resource_id == shared.resources["secret"],
            )
        )

    prompts, calls = run_with(shared, llm, owner)
    assert calls == 4
    assert_covers_exactly(shared, owner, ["general", "eng", "random", "secret"], prompts)
    assert excluded(shared.engine, owner) == {"ann-ben": "direct_messages_disabled"}

    prompts, calls = run_with(shared, llm, full)
    assert calls == 3
    assert_covers_exactly(shared, full, PUBLIC_READERS, prompts)
    assert excluded(shared.engine, full) == {
        "ann-ben": "direct_messages_not_shared",
        "secret": "private_channel_not_granted",
    }

    prompts, calls = run_with(shared, llm, limited)
    assert calls == 1
    assert_covers_exactly(shared, limited, ["eng"], prompts)
    assert excluded(shared.engine, limited) == {
        "ann-ben": "direct_messages_not_shared",
        "general": "not_granted",
        "random": "not_granted",
        "secret": "not_granted",  # granted when asked, no longer when run
    }

    prompts, calls = run_with(shared, llm, read_only)
    assert calls == 0
    with Session(shared.engine) as session:
        analysis = session.get_one(SlackAnalysis, read_only)
        assert analysis.status == "failed"
        assert analysis.error_message == (
            "Not analyzed: team team-d holds a READ_ONLY share of Slack workspace TSHARE: it "
            "may see analyses but not request them"
        )
        assert not session.scalars(
            select(SlackChannelAnalysis).where(SlackChannelAnalysis.analysis_id == read_only)
        ).all()
    assert set(excluded(shared.engine, read_only).values()) == {
        "analysis_not_allowed",
        "direct_messages_not_shared",
    }


def test_a_share_revoked_between_two_runs_takes_back_what_it_gave(shared: Shared) -> None:
    analysis_id = request(shared, "B", "member-B")
    first = run_analysis(shared.engine, analysis_id)
    assert first.channels == 3
    with Session(shared.engine) as session, session.begin():
        share = session.scalars(
            select(IntegrationShare).where(IntegrationShare.team_id == shared.teams["B"])
        ).one()
        share.status = "revoked"
        share.revoked_at = datetime.now(UTC)
    again = run_analysis(shared.engine, analysis_id)
    assert (again.channels, again.denied) == (
        0,
        "team team-b's share of Slack workspace TSHARE was revoked",
    )
    with Session(shared.engine) as session:
        analysis = session.get_one(SlackAnalysis, analysis_id)
        assert analysis.status == "failed"
        for table in (SlackChannelAnalysis, SlackContribution):
            rows = session.scalars(select(table).where(table.analysis_id == analysis_id)).all()
            assert rows == [], table.__tablename__
    assert set(excluded(shared.engine, analysis_id).values()) == {"share_revoked"}
    assert all(marker(name) not in stored_text(shared.engine, analysis_id) for name in CHANNELS)


def test_a_narrower_rerun_drops_the_rows_of_channels_no_longer_readable(shared: Shared) -> None:
    analysis_id = request(shared, "C", "member-C")
    assert run_analysis(shared.engine, analysis_id).channels == 2  # #eng and #secret
    with Session(shared.engine) as session, session.begin():
        session.execute(
            delete(ResourceAccess).where(
                ResourceAccess.team_id == shared.teams["C"],
                ResourceAccess.resource_id == shared.resources["eng"],
            )
        )
    assert run_analysis(shared.engine, analysis_id).channels == 1
    with Session(shared.engine) as session:
        channels = set(
            session.scalars(
                select(SlackContribution.channel_id).where(
                    SlackContribution.analysis_id == analysis_id
                )
            )
        )
        overall = dict(
            session.execute(
                select(SlackUser.slack_id, SlackContribution.message_count)
                .join(SlackUser, SlackUser.id == SlackContribution.user_id)
                .where(
                    SlackContribution.analysis_id == analysis_id,
                    SlackContribution.channel_id.is_(None),
                )
            ).all()
        )
    assert channels == {shared.channels["secret"], None}
    assert overall == CHANNELS["secret"][2]


def _status(engine: Engine, analysis_id: uuid.UUID) -> tuple[str, str | None]:
    with Session(engine) as session:
        analysis = session.get_one(SlackAnalysis, analysis_id)
        return analysis.status, analysis.error_message


def test_requesters_whose_role_may_not_ask_get_a_failed_analysis(shared: Shared) -> None:
    viewer = request(shared, "B", "viewer-B")
    stranger = request(shared, "B", "member-C")
    scheduled_by_member = request(shared, "B", "member-B", schedule_id=str(uuid.uuid4()))
    scheduled_by_admin = request(shared, "B", "admin-B", schedule_id=str(uuid.uuid4()))
    results: dict[str, AnalysisResult] = {
        name: run_analysis(shared.engine, analysis_id)
        for name, analysis_id in [
            ("viewer", viewer),
            ("stranger", stranger),
            ("member", scheduled_by_member),
            ("admin", scheduled_by_admin),
        ]
    }
    assert _status(shared.engine, viewer) == (
        "failed",
        "Not analyzed: the requester viewer-B is a VIEWER of team team-b and may not request "
        "analyses: that needs MEMBER or above",
    )
    assert _status(shared.engine, stranger) == (
        "failed",
        "Not analyzed: the requester member-C is not a member of team team-b and may not "
        "request analyses: that needs MEMBER or above",
    )
    assert _status(shared.engine, scheduled_by_member) == (
        "failed",
        "Not analyzed: the requester member-B is a MEMBER of team team-b and may not schedule "
        "analyses: that needs ADMIN or above",
    )
    assert _status(shared.engine, scheduled_by_admin) == ("completed", None)
    assert [r.channels for r in results.values()] == [0, 0, 0, 3]


def test_a_team_schedule_without_channels_links_only_what_the_team_reads(shared: Shared) -> None:
    now = datetime.now(UTC)
    with Session(shared.engine) as session, session.begin():
        session.add(
            SlackAnalysis(
                workspace_id=shared.workspace_id,
                name="C weekly",
                start_date=START,
                end_date=END,
                is_scheduled=True,
                schedule_frequency="weekly",
                next_run_at=now - timedelta(minutes=1),
                parameters={"team_id": str(shared.teams["C"]), "requested_by": "admin-C"},
            )
        )
    with Session(shared.engine) as session, session.begin():
        (run_id,) = start_due_schedules(session, now)
        linked = set(
            session.scalars(
                select(slack_analysis_channels.c.channel_id).where(
                    slack_analysis_channels.c.analysis_id == run_id
                )
            )
        )
    # Selected are the public channels; of those C reads #eng only (#secret is not selected).
    assert linked == {shared.channels["eng"]}
    run_analysis(shared.engine, run_id)
    assert _status(shared.engine, run_id) == ("completed", None)
    assert excluded(shared.engine, run_id) == {}


def test_the_owners_window_analyses_still_cover_every_selected_channel(shared: Shared) -> None:
    analysis_id = window_analysis(shared.engine, "TSHARE", "weekly", START, END)
    result = run_analysis(shared.engine, analysis_id)
    assert (result.channels, result.excluded_channels, result.denied) == (3, [], None)
    with Session(shared.engine) as session:
        summary = session.get_one(SlackAnalysis, analysis_id).result_summary or {}
    assert (summary["team_from"], summary["team_id"]) == ("workspace owner", str(shared.teams["A"]))
    assert result.participants == len(USERS)
