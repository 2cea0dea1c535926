"""Valid rows for every table, linked together, for tests that need a populated schema."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from toban_orchestration.db import enums
from toban_orchestration.db.models import (
    Integration,
    IntegrationCredential,
    IntegrationEvent,
    IntegrationShare,
    ResourceAccess,
    ServiceResource,
    SlackAnalysis,
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

WINDOW_START = datetime(2026, 11, 1, tzinfo=UTC)
FAKE_CIPHERTEXT = "gAAAA-not-a-real-ciphertext"
"""Stored as the token of `add_slack_integration`'s credential: copied, never decrypted."""
WINDOW_END = datetime(2026, 11, 8, tzinfo=UTC)


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Graph:
    team: Team
    other_team: Team
    member: TeamMember
    integration: Integration
    credential: IntegrationCredential
    resource: ServiceResource
    share: IntegrationShare
    access: ResourceAccess
    event: IntegrationEvent
    workspace: SlackWorkspace
    channel: SlackChannel
    user: SlackUser
    other_user: SlackUser
    parent: SlackMessage
    reply: SlackMessage
    reaction: SlackReaction
    analysis: SlackAnalysis
    channel_analysis: SlackChannelAnalysis
    contribution: SlackContribution
    sync_day: SlackSyncDay


def add_slack_integration(
    session: Session, slack_id: str, *, team_name: str, team_slug: str
) -> tuple[Team, Integration]:
    """A team owning a connected Slack integration with a (fake) encrypted bot token, flushed:
    what the sensor and the schedules look for."""
    team = Team(name=team_name, slug=team_slug)
    session.add(team)
    session.flush()
    integration = Integration(
        name=f"Slack {slack_id}",
        service_type=enums.IntegrationType.SLACK,
        owner_team_id=team.id,
        workspace_id=slack_id,
    )
    session.add(integration)
    session.flush()
    session.add(
        IntegrationCredential(
            integration_id=integration.id,
            credential_type=enums.CredentialType.BOT_TOKEN,
            encrypted_value=FAKE_CIPHERTEXT,
        )
    )
    session.flush()
    return team, integration


def build_graph(session: Session) -> Graph:
    """One row in every table (two teams, two users, a thread), flushed and linked."""
    team = Team(name="Platform", slug=f"platform-{_suffix()}")
    other_team = Team(name="Research", slug=f"research-{_suffix()}")
    session.add_all([team, other_team])
    session.flush()
    member = TeamMember(team_id=team.id, user_id="auth0|alice", role=enums.TeamMemberRole.OWNER)
    integration = Integration(
        name="Acme Slack",
        service_type=enums.IntegrationType.SLACK,
        owner_team_id=team.id,
        workspace_id=f"T{_suffix().upper()}",
    )
    session.add_all([member, integration])
    session.flush()
    credential = IntegrationCredential(
        integration_id=integration.id,
        credential_type=enums.CredentialType.BOT_TOKEN,
        encrypted_value="gAAAA-not-a-real-token",
        scopes=["channels:history", "users:read"],
    )
    resource = ServiceResource(
        integration_id=integration.id,
        resource_type=enums.ResourceType.SLACK_CHANNEL,
        external_id="C0001",
        name="general",
    )
    share = IntegrationShare(
        integration_id=integration.id,
        team_id=other_team.id,
        share_level=enums.ShareLevel.LIMITED_ACCESS,
    )
    workspace = SlackWorkspace(
        team_id=team.id, slack_id=integration.workspace_id or "", name="Acme"
    )
    session.add_all([credential, resource, share, workspace])
    session.flush()
    access = ResourceAccess(
        resource_id=resource.id, team_id=other_team.id, access_level=enums.AccessLevel.READ
    )
    event = IntegrationEvent(
        integration_id=integration.id,
        event_type=enums.IntegrationEventType.CREATED,
        actor_user_id="auth0|alice",
        affected_team_id=team.id,
        details={"source": "test"},
    )
    channel = SlackChannel(workspace_id=workspace.id, slack_id="C0001", name="general")
    user = SlackUser(workspace_id=workspace.id, slack_id="U0001", name="alice")
    other_user = SlackUser(workspace_id=workspace.id, slack_id="U0002", name="bob")
    session.add_all([access, event, channel, user, other_user])
    session.flush()
    parent = SlackMessage(
        channel_id=channel.id,
        user_id=user.id,
        slack_ts="1762000000.000100",
        text="Who knows how to rotate the token?",
        thread_ts="1762000000.000100",
        is_thread_parent=True,
        reply_count=1,
        message_datetime=datetime(2025, 11, 1, 12, 26, 40, tzinfo=UTC),
    )
    session.add(parent)
    session.flush()
    reply = SlackMessage(
        channel_id=channel.id,
        user_id=other_user.id,
        parent_id=parent.id,
        slack_ts="1762000060.000200",
        text="Use `toban` key rotation.",
        thread_ts=parent.slack_ts,
        is_thread_reply=True,
        message_datetime=datetime(2025, 11, 1, 12, 27, 40, tzinfo=UTC),
    )
    analysis = SlackAnalysis(
        workspace_id=workspace.id, name="Week 45", start_date=WINDOW_START, end_date=WINDOW_END
    )
    session.add_all([reply, analysis])
    session.flush()
    reaction = SlackReaction(message_id=reply.id, user_id=user.id, emoji_name="pray")
    session.execute(
        insert(slack_analysis_channels).values(analysis_id=analysis.id, channel_id=channel.id)
    )
    channel_analysis = SlackChannelAnalysis(
        analysis_id=analysis.id,
        channel_id=channel.id,
        start_date=WINDOW_START,
        end_date=WINDOW_END,
    )
    contribution = SlackContribution(
        analysis_id=analysis.id, user_id=other_user.id, channel_id=channel.id
    )
    sync_day = SlackSyncDay(channel_id=channel.id, day=parent.message_datetime.date())
    session.add_all([reaction, channel_analysis, contribution, sync_day])
    session.flush()
    return Graph(
        team=team,
        other_team=other_team,
        member=member,
        integration=integration,
        credential=credential,
        resource=resource,
        share=share,
        access=access,
        event=event,
        workspace=workspace,
        channel=channel,
        user=user,
        other_user=other_user,
        parent=parent,
        reply=reply,
        reaction=reaction,
        analysis=analysis,
        channel_analysis=channel_analysis,
        contribution=contribution,
        sync_day=sync_day,
    )
