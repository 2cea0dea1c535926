"""A person's right to erasure against the real database: their rows go, analysis text that names
or quotes them is redacted (offline reports and a model's answer), others' data stays, and a
later sync does not bring them back."""

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.orm import Session

from toban_orchestration.analysis.pseudonyms import load_pseudonyms
from toban_orchestration.analysis.run import run_analysis, window_analysis
from toban_orchestration.db.enums import IntegrationEventType
from toban_orchestration.db.models import (
    IntegrationEvent,
    SlackAnalysis,
    SlackContribution,
    SlackMessage,
    SlackReaction,
    SlackUser,
    SlackWorkspace,
    slack_analysis_channels,
)
from toban_orchestration.defs.analysis.assets import slack_analysis_job
from toban_orchestration.defs.maintenance.dagster_history import (
    analysis_ids,
    forget_runs,
    workspace_runs,
)
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.privacy.erasure import ErasureError, erase_user
from toban_orchestration.settings import get_settings
from toban_orchestration.slack.store import SlackStore
from toban_orchestration.slack.sync import ChannelRef, ChannelSync, SyncReport, name_lookup
from toban_orchestration_tests.fakes.llm_server import FakeLLMServer
from toban_orchestration_tests.helpers import report_pages
from toban_orchestration_tests.llm_answers import good_answer
from toban_orchestration_tests.support.llm_analyst import API_KEY, analyst_for
from toban_orchestration_tests.support.partitioned_assets import WEEKLY
from toban_orchestration_tests.support.roles_workspace import (
    END,
    START,
    USERS,
    role_messages,
    seed_roles_workspace,
)

# What identifies the helper in derived text: their handle and their messages' words.
HELPER_TRACES = re.compile(r"(?<![\w@])helper\b|@helper|toban keys generate|restart the workers")

DERIVED_TEXT_SQL = """
SELECT concat_ws(' ', channel_summary, topic_analysis, contributor_insights, key_highlights,
                 raw_response::text) FROM slack_channel_analysis
UNION ALL
SELECT concat_ws(' ', insights, notable_contributions::text, insights_data::text)
FROM slack_contribution
UNION ALL
SELECT result_summary::text FROM slack_analysis WHERE result_summary IS NOT NULL
UNION ALL
SELECT processed_text FROM slack_message WHERE processed_text IS NOT NULL
"""


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=API_KEY) as server:
        server.responder = good_answer
        yield server
        assert not server.errors


def _analyzed(engine: Engine, llm: FakeLLMServer) -> uuid.UUID:
    """#platform analyzed twice: a week offline (reports quote messages) and a day by the model
    with pseudonymized authors (its raw answer keeps the aliases, the report has the names)."""
    channel_id = seed_roles_workspace(engine)
    run_analysis(engine, window_analysis(engine, "TROLES", "weekly", START, END))
    with engine.begin() as connection:
        connection.execute(
            update(SlackWorkspace).values(
                workspace_metadata={"privacy": {"pseudonymize_authors": True}}
            )
        )
    day = window_analysis(engine, "TROLES", "daily", START, START.replace(day=START.day + 1))
    run_analysis(engine, day, analyst_for(llm))
    assert llm.requests, "the model was asked"
    return channel_id


def _derived_text(engine: Engine) -> str:
    with engine.connect() as connection:
        return "\n".join(t for t in connection.execute(text(DERIVED_TEXT_SQL)).scalars() if t)


def _derived_traces(engine: Engine) -> list[str]:
    return [m.group(0) for m in HELPER_TRACES.finditer(_derived_text(engine))]


def _rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(model)).scalar_one()
            for name, model in (
                ("messages", SlackMessage),
                ("reactions", SlackReaction),
                ("contributions", SlackContribution),
                ("users", SlackUser),
            )
        }


def _helper_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM slack_user WHERE slack_id = 'UHELP') + "
                    "(SELECT count(*) FROM slack_message m JOIN slack_user u ON u.id = m.user_id "
                    " WHERE u.slack_id = 'UHELP')"
                )
            ).scalar_one()
        )


def test_erasing_a_person_removes_their_rows_and_redacts_what_quotes_them(
    migrated_engine: Engine, llm: FakeLLMServer, report_directory: Path
) -> None:
    channel_id = _analyzed(migrated_engine, llm)
    # The workspace's report pages quote them: they go, to be written again without them.
    report_pages(report_directory, "TROLES", "weekly-2026-11-02.html", "daily-2026-11-03.html")
    report_pages(report_directory, "TOTHER", "weekly-2026-11-02.html")
    with migrated_engine.connect() as connection:
        workspace_id = connection.execute(select(SlackWorkspace.id)).scalar_one()
        alias = load_pseudonyms(connection, workspace_id).alias("UHELP")
    before = _rows(migrated_engine)
    traces = _derived_traces(migrated_engine)
    assert alias in _derived_text(migrated_engine)  # in the model's raw answer
    # The reports did name and quote the helper, so the redaction below has work to do.
    assert "helper" in traces
    assert "toban keys generate" in traces
    assert "@helper" in traces  # the coordinator's mentions

    report = erase_user(migrated_engine, "TROLES", "UHELP", actor="cli:dpo")
    assert report.counts["messages"] == 10  # two answers a day for five days
    assert report.counts["reactions_given"] == 5  # a +1 on each of the coordinator's posts
    assert report.counts["reactions_on_their_messages"] == 10  # two on each first answer
    assert report.counts["contributions"] == 4  # per channel and overall, in two analyses
    assert report.counts["channel_reports_redacted"] == 2
    assert report.counts["mentions_redacted"] == 5
    assert report.counts["report_files"] == 2
    assert not (report_directory / "TROLES").exists()
    assert (report_directory / "TOTHER" / "weekly-2026-11-02.html").exists()
    after = _rows(migrated_engine)
    assert after == {
        "messages": before["messages"] - 10,
        "reactions": before["reactions"] - 15,
        "contributions": before["contributions"] - 4,
        "users": before["users"] - 1,
    }
    assert _derived_traces(migrated_engine) == []
    assert alias not in _derived_text(migrated_engine)
    assert _helper_rows(migrated_engine) == 0

    with Session(migrated_engine) as session:
        # Other people's rows and reactions stay, with reaction counts that match the rows.
        asker = session.scalars(select(SlackUser).where(SlackUser.slack_id == "UASK")).one()
        assert session.scalar(select(func.count()).where(SlackContribution.user_id == asker.id))
        mismatched = session.scalar(
            text(
                "SELECT count(*) FROM slack_message m WHERE m.reaction_count <> "
                "(SELECT count(*) FROM slack_reaction r WHERE r.message_id = m.id)"
            )
        )
        assert mismatched == 0
        workspace = session.scalars(select(SlackWorkspace)).one()
        assert (workspace.workspace_metadata or {})["erased_users"] == ["UHELP"]
        assert (workspace.workspace_metadata or {})["privacy"]  # the rest of it kept
        (event,) = session.scalars(
            select(IntegrationEvent).where(
                IntegrationEvent.event_type == IntegrationEventType.DATA_ERASED
            )
        ).all()
    assert event.actor_user_id == "cli:dpo"
    assert event.details is not None
    assert event.details["scope"] == "user"
    assert event.details["messages"] == 10
    assert not HELPER_TRACES.search(str(event.details))

    # A later sync of the same Slack data stores neither their profile nor their messages.
    with migrated_engine.begin() as connection:
        store = SlackStore(connection, workspace.id)
        store.upsert_users(
            {"slack_id": k, "name": v, "is_bot": k == "UBOT"} for k, v in USERS.items()
        )
    ChannelSync(
        None,
        migrated_engine,
        workspace.id,
        ChannelRef(channel_id, "CPLAT", "platform", "public"),
        name_lookup(migrated_engine, workspace.id),  # as a sync builds it: from the stored users
        SyncReport(),
    ).store_page(role_messages())
    assert _helper_rows(migrated_engine) == 0
    assert _rows(migrated_engine)["messages"] == after["messages"]

    # The analysis runs again without them.
    run_analysis(migrated_engine, window_analysis(migrated_engine, "TROLES", "weekly", START, END))
    assert _derived_traces(migrated_engine) == []


def test_erasing_an_unknown_person_names_what_is_missing(migrated_engine: Engine) -> None:
    seed_roles_workspace(migrated_engine)
    with pytest.raises(ErasureError, match="TROLES has no user UNOBODY"):
        erase_user(migrated_engine, "TROLES", "UNOBODY")
    with pytest.raises(ErasureError, match="No Slack workspace TNONE"):
        erase_user(migrated_engine, "TNONE", "UHELP")


def test_the_dagster_runs_that_hold_their_name_are_forgotten(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    channel_id = seed_roles_workspace(migrated_engine)
    project_instance.add_dynamic_partitions(workspace_partitions.name or "", ["TROLES"])
    key = dg.MultiPartitionKey({"date": START.date().isoformat(), "workspace": "TROLES"})
    weekly = WEEKLY
    assert dg.materialize(
        [weekly],
        partition_key=key,
        resources=build_resources(get_settings()),
        instance=project_instance,
    ).success
    with Session(migrated_engine) as session, session.begin():
        ad_hoc = SlackAnalysis(
            workspace_id=session.scalars(select(SlackWorkspace.id)).one(),
            name="ad hoc",
            start_date=START,
            end_date=END,
        )
        session.add(ad_hoc)
        session.flush()
        session.execute(
            insert(slack_analysis_channels).values(analysis_id=ad_hoc.id, channel_id=channel_id)
        )
        ad_hoc_id = str(ad_hoc.id)
    assert slack_analysis_job.execute_in_process(
        run_config={"ops": {"run_requested_analysis": {"config": {"analysis_id": ad_hoc_id}}}},
        resources=build_resources(get_settings()),
        instance=project_instance,
    ).success

    def logged() -> str:
        return "\n".join(
            str(entry)
            for run in project_instance.get_runs()
            for entry in project_instance.all_logs(run.run_id)
        )

    assert "helper" in logged()  # the leaderboard in the materialization metadata
    runs = workspace_runs(
        project_instance, "TROLES", analysis_ids(migrated_engine, "TROLES"), analyses_only=True
    )
    assert len(runs) == 2
    erase_user(migrated_engine, "TROLES", "UHELP")
    assert forget_runs(project_instance, runs) == 2
    assert project_instance.get_runs() == []
    assert not HELPER_TRACES.search(logged())
