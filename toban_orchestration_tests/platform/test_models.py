"""Row-level behaviour of the schema on a real PostgreSQL: constraints, keys, types, timestamps."""

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg.errors
import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from toban_orchestration.db import enums
from toban_orchestration.db.models import (
    Base,
    Integration,
    IntegrationCredential,
    IntegrationEvent,
    IntegrationShare,
    ResourceAccess,
    ServiceResource,
    SlackChannel,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackReaction,
    SlackSyncDay,
    SlackUser,
    SlackWorkspace,
    Team,
    TeamMember,
    slack_analysis_channels,
)
from toban_orchestration_tests.factories import WINDOW_END, WINDOW_START, Graph, build_graph


def _constraint_violated(session: Session, statement: Callable[[], object]) -> tuple[str, str]:
    """Run `statement`, expect PostgreSQL to refuse it; return (sqlstate, constraint name)."""

    def attempt() -> None:
        statement()
        session.flush()

    with pytest.raises(IntegrityError) as raised:
        attempt()
    session.rollback()
    original = raised.value.orig
    assert isinstance(original, psycopg.errors.IntegrityError)
    return original.sqlstate or "", original.diag.constraint_name or ""


DUPLICATES: dict[str, Callable[[Graph], Any]] = {
    "uq_team_slug": lambda g: Team(name="Copy", slug=g.team.slug),
    "uq_team_member_team_id_user_id": lambda g: TeamMember(
        team_id=g.team.id, user_id=g.member.user_id
    ),
    "uq_integration_owner_team_id_workspace_id_service_type": lambda g: Integration(
        name="Again",
        service_type=enums.IntegrationType.SLACK,
        owner_team_id=g.team.id,
        workspace_id=g.integration.workspace_id,
    ),
    "uq_integration_share_integration_id_team_id": lambda g: IntegrationShare(
        integration_id=g.integration.id, team_id=g.other_team.id
    ),
    "uq_service_resource_integration_id_resource_type_external_id": lambda g: ServiceResource(
        integration_id=g.integration.id,
        resource_type=enums.ResourceType.SLACK_CHANNEL,
        external_id=g.resource.external_id,
    ),
    "uq_resource_access_resource_id_team_id": lambda g: ResourceAccess(
        resource_id=g.resource.id, team_id=g.other_team.id
    ),
    "uq_slack_workspace_slack_id": lambda g: SlackWorkspace(
        team_id=g.other_team.id, slack_id=g.workspace.slack_id, name="Elsewhere"
    ),
    "uq_slack_channel_workspace_id_slack_id": lambda g: SlackChannel(
        workspace_id=g.workspace.id, slack_id=g.channel.slack_id, name="renamed"
    ),
    "uq_slack_user_workspace_id_slack_id": lambda g: SlackUser(
        workspace_id=g.workspace.id, slack_id=g.user.slack_id
    ),
    "uq_slack_message_channel_id_slack_ts": lambda g: SlackMessage(
        channel_id=g.channel.id,
        slack_ts=g.parent.slack_ts,
        message_datetime=g.parent.message_datetime,
    ),
    "uq_slack_reaction_message_id_user_id_emoji_name": lambda g: SlackReaction(
        message_id=g.reply.id, user_id=g.user.id, emoji_name="pray"
    ),
    "uq_slack_channel_analysis_analysis_id_channel_id": lambda g: SlackChannelAnalysis(
        analysis_id=g.analysis.id,
        channel_id=g.channel.id,
        start_date=WINDOW_START,
        end_date=WINDOW_END,
    ),
    "uq_slack_contribution_analysis_id_user_id_channel_id": lambda g: SlackContribution(
        analysis_id=g.analysis.id, user_id=g.other_user.id, channel_id=g.channel.id
    ),
    "uq_slack_sync_day_channel_id_day": lambda g: SlackSyncDay(
        channel_id=g.channel.id, day=g.sync_day.day
    ),
}


@pytest.mark.parametrize("constraint", sorted(DUPLICATES))
def test_unique_constraint_rejects_a_duplicate(db_session: Session, constraint: str) -> None:
    graph = build_graph(db_session)
    sqlstate, name = _constraint_violated(
        db_session, lambda: db_session.add(DUPLICATES[constraint](graph))
    )
    assert (sqlstate, name) == ("23505", constraint)


def test_same_reaction_emoji_from_another_user_is_accepted(db_session: Session) -> None:
    graph = build_graph(db_session)
    db_session.add(
        SlackReaction(message_id=graph.reply.id, user_id=graph.other_user.id, emoji_name="pray")
    )
    db_session.flush()
    count = db_session.scalar(
        select(func.count())
        .select_from(SlackReaction)
        .where(SlackReaction.message_id == graph.reply.id)
    )
    assert count == 2


def test_overall_contribution_is_unique_even_without_a_channel(db_session: Session) -> None:
    graph = build_graph(db_session)
    db_session.add(SlackContribution(analysis_id=graph.analysis.id, user_id=graph.user.id))
    db_session.flush()
    sqlstate, name = _constraint_violated(
        db_session,
        lambda: db_session.add(
            SlackContribution(analysis_id=graph.analysis.id, user_id=graph.user.id)
        ),
    )
    assert (sqlstate, name) == ("23505", "uq_slack_contribution_analysis_id_user_id_channel_id")


def test_an_analysis_links_a_channel_once(db_session: Session) -> None:
    graph = build_graph(db_session)
    sqlstate, name = _constraint_violated(
        db_session,
        lambda: db_session.execute(
            insert(slack_analysis_channels).values(
                analysis_id=graph.analysis.id, channel_id=graph.channel.id
            )
        ),
    )
    assert (sqlstate, name) == ("23505", "pk_slack_analysis_channels")


# The row of each table that the foreign key tests point somewhere that does not exist.
GRAPH_ROW_OF_TABLE = {
    "team_member": "member",
    "integration": "integration",
    "integration_credential": "credential",
    "service_resource": "resource",
    "integration_share": "share",
    "resource_access": "access",
    "integration_event": "event",
    "slack_workspace": "workspace",
    "slack_channel": "channel",
    "slack_user": "user",
    "slack_message": "reply",
    "slack_reaction": "reaction",
    "slack_analysis": "analysis",
    "slack_channel_analysis": "channel_analysis",
    "slack_contribution": "contribution",
    "slack_sync_day": "sync_day",
}
FOREIGN_KEYS = sorted(
    (table.name, next(iter(fk.columns)).name, fk.name)
    for table in Base.metadata.sorted_tables
    for fk in table.foreign_key_constraints
)


def test_every_foreign_key_is_covered() -> None:
    assert len(FOREIGN_KEYS) == 27
    assert {table for table, _, _ in FOREIGN_KEYS} <= {
        *GRAPH_ROW_OF_TABLE,
        "slack_analysis_channels",
    }


@pytest.mark.parametrize(("table_name", "column", "constraint"), FOREIGN_KEYS)
def test_foreign_key_rejects_a_missing_parent(
    db_session: Session, table_name: str, column: str, constraint: str
) -> None:
    graph = build_graph(db_session)
    table = Base.metadata.tables[table_name]
    if table_name == "slack_analysis_channels":
        row_filter = table.c.analysis_id == graph.analysis.id
    else:
        row_filter = table.c.id == getattr(graph, GRAPH_ROW_OF_TABLE[table_name]).id
    statement = update(table).where(row_filter).values({column: uuid.uuid4()})
    sqlstate, name = _constraint_violated(db_session, lambda: db_session.execute(statement))
    assert (sqlstate, name) == ("23503", constraint)


def test_deleting_a_team_that_owns_an_integration_is_refused(db_session: Session) -> None:
    graph = build_graph(db_session)
    db_session.commit()
    sqlstate, name = _constraint_violated(
        db_session, lambda: db_session.execute(delete(Team).where(Team.id == graph.team.id))
    )
    # restrict_violation, or foreign_key_violation when reached through a cascade
    assert sqlstate in {"23001", "23503"}
    assert name in {"fk_integration_owner_team_id_team", "fk_slack_workspace_team_id_team"}
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(Team)) == 2


def test_deleting_a_channel_removes_its_messages_reactions_and_reports(db_session: Session) -> None:
    graph = build_graph(db_session)
    db_session.execute(delete(SlackChannel).where(SlackChannel.id == graph.channel.id))
    for model in (
        SlackMessage,
        SlackReaction,
        SlackChannelAnalysis,
        SlackContribution,
        SlackSyncDay,
    ):
        assert db_session.scalar(select(func.count()).select_from(model)) == 0, model
    assert db_session.scalar(select(func.count()).select_from(slack_analysis_channels)) == 0
    assert db_session.scalar(select(func.count()).select_from(SlackUser)) == 2


def test_deleting_a_user_keeps_messages_but_removes_their_reactions(db_session: Session) -> None:
    graph = build_graph(db_session)
    db_session.execute(delete(SlackUser).where(SlackUser.id == graph.user.id))
    db_session.expire_all()
    parent = db_session.get_one(SlackMessage, graph.parent.id)
    assert parent.user_id is None
    assert db_session.scalar(select(func.count()).select_from(SlackReaction)) == 0
    reply = db_session.get_one(SlackMessage, graph.reply.id)
    assert reply.user_id == graph.other_user.id


def test_deleting_a_thread_parent_keeps_its_replies(db_session: Session) -> None:
    graph = build_graph(db_session)
    db_session.execute(delete(SlackMessage).where(SlackMessage.id == graph.parent.id))
    db_session.expire_all()
    reply = db_session.get_one(SlackMessage, graph.reply.id)
    assert reply.parent_id is None
    assert reply.thread_ts == graph.parent.slack_ts


def test_deleting_an_integration_keeps_its_audit_trail(db_session: Session) -> None:
    graph = build_graph(db_session)
    db_session.execute(delete(SlackWorkspace))
    db_session.execute(delete(Integration).where(Integration.id == graph.integration.id))
    db_session.expire_all()
    event = db_session.get_one(IntegrationEvent, graph.event.id)
    assert event.integration_id is None
    assert event.details == {"source": "test"}
    for model in (IntegrationCredential, ServiceResource, IntegrationShare, ResourceAccess):
        assert db_session.scalar(select(func.count()).select_from(model)) == 0, model


def test_jsonb_round_trips_nested_unicode_values(db_session: Session) -> None:
    graph = build_graph(db_session)
    profile = {
        "status_emoji": ":palm_tree:",
        "fields": [{"label": "Pronouns", "value": "they/them"}, None],
        "nested": {"ratio": 0.25, "count": 3, "flag": False, "text": '日本語 ✓ "quoted"'},
    }
    graph.user.profile_data = profile
    graph.reply.attachments = [{"fallback": "x", "fields": []}]
    db_session.commit()
    db_session.expire_all()
    assert db_session.get_one(SlackUser, graph.user.id).profile_data == profile
    stored = db_session.execute(
        text("SELECT profile_data -> 'nested' ->> 'text' FROM slack_user WHERE id = :id"),
        {"id": graph.user.id},
    ).scalar_one()
    assert stored == '日本語 ✓ "quoted"'
    assert db_session.get_one(SlackMessage, graph.reply.id).attachments == [
        {"fallback": "x", "fields": []}
    ]


def test_uuid_keys_round_trip_from_the_model_and_from_the_server(db_session: Session) -> None:
    chosen = uuid.uuid4()
    db_session.add(Team(id=chosen, name="Chosen", slug="chosen"))
    server_made = db_session.execute(
        insert(Team).values(name="Server", slug="server").returning(Team.id)
    ).scalar_one()
    model_made = Team(name="Model", slug="model")
    db_session.add(model_made)
    db_session.commit()
    assert isinstance(server_made, uuid.UUID)
    assert server_made.version == 4
    ids = set(db_session.scalars(select(Team.id)))
    assert ids == {chosen, server_made, model_made.id}
    assert db_session.get_one(Team, chosen).slug == "chosen"


def test_updated_at_moves_on_update_and_only_on_a_real_change(db_session: Session) -> None:
    team = Team(name="Before", slug="before")
    db_session.add(team)
    db_session.commit()
    created_at, first_updated_at = team.created_at, team.updated_at
    assert created_at.tzinfo is not None
    assert first_updated_at == created_at

    time.sleep(0.01)
    team.name = "After"
    db_session.commit()
    db_session.refresh(team)
    assert team.updated_at > first_updated_at
    assert team.created_at == created_at

    # A plain SQL update that writes the same values (as an idempotent re-sync does) leaves it.
    second_updated_at = team.updated_at
    time.sleep(0.01)
    db_session.execute(update(Team).where(Team.id == team.id).values(name="After"))
    db_session.commit()
    db_session.refresh(team)
    assert team.updated_at == second_updated_at

    time.sleep(0.01)
    db_session.execute(
        text("UPDATE team SET description = 'plain SQL' WHERE id = :id"), {"id": team.id}
    )
    db_session.commit()
    db_session.refresh(team)
    assert team.updated_at > second_updated_at


def test_timestamps_are_timezone_aware(db_session: Session) -> None:
    graph = build_graph(db_session)
    naive_in_tokyo = datetime(2026, 1, 1, 9, 0, tzinfo=UTC) + timedelta(hours=9)
    graph.parent.message_datetime = naive_in_tokyo.astimezone(datetime.now().astimezone().tzinfo)
    db_session.commit()
    db_session.expire_all()
    stored = db_session.get_one(SlackMessage, graph.parent.id).message_datetime
    assert stored.tzinfo is not None
    assert stored == naive_in_tokyo


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE slack_channel SET type = 'dm'", "ck_slack_channel_type"),
        ("UPDATE slack_analysis SET status = 'done'", "ck_slack_analysis_status"),
        (
            "UPDATE slack_analysis SET schedule_frequency = 'hourly'",
            "ck_slack_analysis_schedule_frequency",
        ),
        ("UPDATE slack_channel_analysis SET status = 'ok'", "ck_slack_channel_analysis_status"),
    ],
)
def test_check_constraints_reject_unknown_vocabulary(
    db_session: Session, statement: str, constraint: str
) -> None:
    build_graph(db_session)
    sqlstate, name = _constraint_violated(db_session, lambda: db_session.execute(text(statement)))
    assert (sqlstate, name) == ("23514", constraint)


def test_enum_columns_reject_unknown_labels(db_session: Session) -> None:
    build_graph(db_session)
    with pytest.raises(DataError) as raised:
        db_session.execute(text("UPDATE integration SET status = 'PAUSED'"))
    assert isinstance(getattr(raised.value, "orig", None), psycopg.errors.InvalidTextRepresentation)
    db_session.rollback()
    labels = (
        db_session.execute(text("SELECT unnest(enum_range(NULL::integration_status))::text"))
        .scalars()
        .all()
    )
    assert labels == [status.name for status in enums.IntegrationStatus]
