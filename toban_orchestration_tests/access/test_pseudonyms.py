"""Pseudonymized authors: the rewriting itself, and a whole analysis through the real openai
client in which the model never sees a name while the stored results name the right people."""

import json
import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from toban_orchestration.analysis.pseudonyms import (
    ALIAS_PATTERN,
    Person,
    Pseudonyms,
    enabled,
    workspace_key,
)
from toban_orchestration.analysis.run import run_analysis, window_analysis
from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackUser,
    SlackWorkspace,
)
from toban_orchestration_tests.fakes.llm_server import FakeLLMServer, ParsedRequest
from toban_orchestration_tests.llm_answers import good_answer, merging_answer
from toban_orchestration_tests.support.llm_analyst import API_KEY, analyst_for
from toban_orchestration_tests.support.roles_workspace import END, START, seed_roles_workspace

ALICE = Person("U0ALICE01", "alice.m", ("alice.m", "Alice Martin", "alice"))
BOB = Person("U0BOB0001", "Bob Stone", ("Bob Stone", "bob"))
AL = Person("U0AL00001", "al", ("al",))
KEY = workspace_key(uuid.UUID(int=1))


def test_names_mentions_and_ids_become_aliases() -> None:
    names = Pseudonyms(KEY, [ALICE, BOB, AL])
    text = (
        "<@U0ALICE01> thanks Alice, and @Bob Stone said alice.m knows; ping @U0BOB0001 and "
        "<@U0OUTSIDE1|someone>, ask @al, Martin agrees with BOB."
    )
    out = names.text(text)
    for leaked in ("Alice", "alice", "Bob", "BOB", "Stone", "Martin", "U0ALICE01", "U0BOB0001",
                   "U0OUTSIDE1", "@al,"):  # fmt: skip
        assert leaked not in out, (leaked, out)
    alice, bob, al = (names.alias(p.slack_id) for p in (ALICE, BOB, AL))
    assert out == (
        f"@{alice} thanks {alice}, and @{bob} said {alice} knows; ping @{bob} and "
        f"@{names.alias('U0OUTSIDE1')}, ask @{al}, {alice} agrees with {bob}."
    )
    # Words that merely contain a name, and a short name without "@", stay as written.
    assert names.text("alignment of the global bobsled, al dente") == (
        "alignment of the global bobsled, al dente"
    )


def test_a_first_name_two_people_share_names_nobody() -> None:
    alex_a = Person("U0ALEX001", "Alex Doe", ("Alex Doe",))
    alex_b = Person("U0ALEX002", "Alex Roe", ("Alex Roe",))
    names = Pseudonyms(KEY, [alex_a, alex_b])
    assert names.text("Alex said so") == "someone said so"
    assert names.text("Alex Roe said so") == f"{names.alias('U0ALEX002')} said so"


def test_aliases_are_stable_per_workspace_and_keyed() -> None:
    first = Pseudonyms(KEY, [ALICE, BOB])
    again = Pseudonyms(KEY, [BOB, ALICE, AL])
    other = Pseudonyms(workspace_key(uuid.UUID(int=2)), [ALICE, BOB])
    assert first.alias(ALICE.slack_id) == again.alias(ALICE.slack_id)
    assert first.alias(ALICE.slack_id) != other.alias(ALICE.slack_id)
    assert re.fullmatch(r"Person-[A-Z2-7]{5}", first.alias(ALICE.slack_id))
    assert ALIAS_PATTERN.fullmatch(first.alias(ALICE.slack_id))


def test_aliases_stay_unique_in_a_large_workspace() -> None:
    people = [Person(f"U{n:08d}", f"user{n}", (f"user{n}",)) for n in range(3000)]
    names = Pseudonyms(KEY, people)
    aliases = {names.alias(p.slack_id) for p in people}
    assert len(aliases) == 3000
    assert all(names.by_alias[names.alias(p.slack_id)] == p for p in people)


def test_aliases_map_back_and_invented_ones_are_found() -> None:
    names = Pseudonyms(KEY, [ALICE, BOB])
    alice = names.alias(ALICE.slack_id)
    assert names.restore(f"{alice} helped @{alice}") == "alice.m helped @alice.m"
    assert names.unknown(f"{alice} and Person-ZZZZZ and Person-7") == [
        "Person-ZZZZZ",
        "Person-7",
    ]


def test_the_setting_comes_from_the_workspace_or_the_analysis() -> None:
    on = {"privacy": {"pseudonymize_authors": True}}
    assert enabled(None, on)
    assert enabled({"pseudonymize_authors": False}, on)  # an analysis cannot switch it off
    assert enabled({"pseudonymize_authors": True}, None)
    assert not enabled({}, {"privacy": {}})


# --- a whole analysis ----------------------------------------------------------------------

PEOPLE = {  # slack id -> (user name, display name, real name)
    "UHELP": ("helper", "helena", "Helena Parker"),
    "UASK": ("asker", "oskar", "Oskar Lindqvist"),
    "UCOORD": ("coordinator", "corinne", "Corinne Bailey"),
    "UREACT": ("reactor", "rafael", "Rafael Ortega"),
}
WORDS = {w.lower() for names in PEOPLE.values() for n in names for w in n.split()} | set(PEOPLE)


@pytest.fixture
def private_workspace(migrated_engine: Engine) -> tuple[Engine, uuid.UUID]:
    """The roles workspace with full names, one message naming people in free text, and
    pseudonymization switched on for the workspace."""
    channel_id = seed_roles_workspace(migrated_engine)
    with Session(migrated_engine) as session, session.begin():
        for slack_id, (name, display, real) in PEOPLE.items():
            session.execute(
                update(SlackUser)
                .where(SlackUser.slack_id == slack_id)
                .values(name=name, display_name=display, real_name=real)
            )
        first = session.scalars(
            select(SlackMessage)
            .where(SlackMessage.channel_id == channel_id, SlackMessage.is_thread_reply)
            .order_by(SlackMessage.slack_ts)
        ).first()
        assert first is not None
        first.processed_text = (
            "Thanks Oskar Lindqvist! Helena here: ask @corinne or Rafael, <@UREACT> knows."
        )
        session.execute(
            update(SlackWorkspace).values(
                workspace_metadata={"privacy": {"pseudonymize_authors": True}}
            )
        )
    return migrated_engine, window_analysis(migrated_engine, "TROLES", "weekly", START, END)


def inventing_once() -> Callable[[ParsedRequest], str]:
    calls = iter(range(1_000_000))

    def respond(request: ParsedRequest) -> str:
        answer = json.loads(good_answer(request))
        if next(calls) == 0:
            answer["summary"] = "Person-ZZZZZ did everything."  # an alias that is nobody
        else:
            legend = dict(re.findall(r"^(u\d+) = (.+)$", request.prompt_text, re.MULTILINE))
            answer["summary"] = "Most answers came from " + ", ".join(sorted(legend.values()))
        return json.dumps(answer)

    return respond


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=API_KEY) as server:
        server.responder = inventing_once()
        yield server
        assert not server.errors


def test_the_model_sees_aliases_only_and_results_name_the_right_people(
    private_workspace: tuple[Engine, uuid.UUID], llm: FakeLLMServer
) -> None:
    engine, analysis_id = private_workspace
    result = run_analysis(engine, analysis_id, analyst_for(llm))
    assert result.usage.calls == 2  # the invented alias was rejected and asked again
    assert result.failed_channels == []
    sent = "\n".join(r.prompt_text for r in llm.chat_requests)
    found = {w for w in re.findall(r"[A-Za-z]+", sent.lower()) if w in WORDS}
    assert found == set(), found
    assert not any(slack_id in sent for slack_id in PEOPLE)
    assert "Person-" in sent
    with Session(engine) as session:
        report = session.scalars(select(SlackChannelAnalysis)).one()
        rows = session.execute(
            select(SlackContribution, SlackUser.slack_id)
            .join(SlackUser, SlackUser.id == SlackContribution.user_id)
            .where(SlackContribution.channel_id.isnot(None))
        ).all()
        authors = dict(
            session.execute(
                select(SlackMessage.id, SlackUser.slack_id).join(
                    SlackUser, SlackUser.id == SlackMessage.user_id
                )
            ).all()
        )
        summary = session.get_one(SlackAnalysis, analysis_id).result_summary or {}
    assert summary["pseudonymized"] is True
    # Stored text names people again, mapped from their aliases.
    prefix = "Most answers came from "
    assert (report.channel_summary or "").startswith(prefix)
    named = (report.channel_summary or "").removeprefix(prefix).split(", ")
    assert sorted(named) == ["corinne", "helena", "oskar"]  # the reactor wrote nothing
    assert "Person-" not in (report.channel_summary or "")
    # The raw answer keeps what the model said: aliases, no names.
    raw = json.dumps(report.raw_response).lower()
    # ("The helper answered." is the fake model's own fixed sentence, not a name it was given.)
    assert not {w for w in re.findall(r"[a-z]+", raw) if w in WORDS - {"helper"}}
    judged = {slack_id: c for c, slack_id in rows}
    assert set(judged) >= {"UHELP", "UASK", "UCOORD"}
    for slack_id, contribution in judged.items():
        display = PEOPLE[slack_id][1]
        if contribution.message_count:
            assert contribution.insights == f"{display} did well"
            notable = contribution.notable_contributions or []
            assert notable
            assert {authors[uuid.UUID(n["message_id"])] for n in notable} == {slack_id}


def naming_merging_answer(request: ParsedRequest) -> str:
    """`merging_answer`, with each chunk's insights naming its authors by the legend's names
    (aliases), so the final answer carries aliases through the combine call."""
    answer = json.loads(merging_answer(request))
    if "partial analyses" not in request.prompt_text:
        legend = dict(re.findall(r"^(u\d+) = (.+)$", request.prompt_text, re.MULTILINE))
        for contributor in answer["contributors"]:
            contributor["insight"] = f"{legend[contributor['author']]} helped"
    return json.dumps(answer)


def test_a_long_window_in_chunks_stays_pseudonymized_through_the_combine_call(
    private_workspace: tuple[Engine, uuid.UUID], llm: FakeLLMServer
) -> None:
    engine, analysis_id = private_workspace
    llm.responder = naming_merging_answer
    result = run_analysis(engine, analysis_id, analyst_for(llm, llm_context_tokens=120))
    assert result.failed_channels == []
    combine = [r for r in llm.chat_requests if "partial analyses" in r.prompt_text]
    assert len(combine) == 1
    assert len(llm.chat_requests) >= 4  # several chunks, then the combine call
    sent = "\n".join(r.prompt_text for r in llm.chat_requests).lower()
    # The combine call gets back the fake model's fixed "The helper answered.": not a name.
    assert not {w for w in re.findall(r"[a-z]+", sent) if w in WORDS - {"helper"}}
    assert "person-" in combine[0].prompt_text.lower()
    with Session(engine) as session:
        insights = dict(
            session.execute(
                select(SlackUser.slack_id, SlackContribution.insights)
                .join(SlackUser, SlackUser.id == SlackContribution.user_id)
                .where(SlackContribution.channel_id.isnot(None))
            ).all()
        )
    assert insights["UHELP"] == "helena helped"
    assert insights["UASK"] == "oskar helped"
