"""The access domain's one persistence seam (issue 18): the access rules (`rules.py`) applied to
the database (which integrations and channels a team may read now, which team an analysis is
for, and whether its requester may ask for it), and every read and write of the tables that say
who holds what: team, team_member, integration, integration_credential, integration_event,
integration_share, service_resource and resource_access.

Why here, and why `access` sits below `slack` in the import layers (beside `security`, which is
the crypto only): a Slack workspace is registered as an integration (slack/workspaces.py), its
tokens are refreshed and re-encrypted (slack/token_refresh.py, slack/key_rotation.py), analyses
check who may read them and privacy deletes resources and audits what it did. All of them reach
these tables, so their one owner must be below all of them; `access` needs nothing but `db`.

Integration status does not matter here: it decides what is synced, not who may read what was
stored. Everything is evaluated when asked (an analysis asks when it runs), so a share revoked
or a grant deleted after a request takes effect on the next run.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from toban_orchestration.access.rules import (
    REQUESTING_LEVELS,
    REQUIRED_ROLE,
    Action,
    ChannelDecision,
    IntegrationLevel,
    Reason,
    ShareFacts,
    channel_decision,
    combine,
    integration_level,
    role_may,
    strongest,
)
from toban_orchestration.db.enums import (
    AccessLevel,
    CredentialType,
    IntegrationEventType,
    IntegrationStatus,
    IntegrationType,
    ResourceType,
    TeamMemberRole,
)
from toban_orchestration.db.models import (
    Integration,
    IntegrationCredential,
    IntegrationEvent,
    IntegrationShare,
    ResourceAccess,
    ServiceResource,
    SlackAnalysis,
    SlackChannel,
    SlackWorkspace,
    Team,
    TeamMember,
)
from toban_orchestration.db.upsert import WriteCounts, upsert

TEAM_PARAMETER = "team_id"
REQUESTER_PARAMETER = "requested_by"
SCHEDULE_PARAMETER = "schedule_id"
NOT_ALLOWED = Reason.ANALYSIS_NOT_ALLOWED


@dataclass(frozen=True)
class IntegrationAccess:
    integration_id: uuid.UUID
    name: str
    service_type: IntegrationType
    workspace_id: str | None
    """The external workspace id (a Slack team id for Slack)."""
    level: IntegrationLevel


def team_integrations(
    session: Session, team_id: uuid.UUID, at: datetime | None = None
) -> list[IntegrationAccess]:
    """Every integration the team owns or holds an active share of, with the level."""
    at = at or datetime.now(UTC)
    owned = session.scalars(select(Integration).where(Integration.owner_team_id == team_id))
    levels: dict[uuid.UUID, tuple[Integration, IntegrationLevel]] = {
        i.id: (i, IntegrationLevel.OWNER) for i in owned
    }
    shares = session.execute(
        select(Integration, IntegrationShare)
        .join(IntegrationShare, IntegrationShare.integration_id == Integration.id)
        .where(IntegrationShare.team_id == team_id)
    )
    for integration, share in shares:
        if integration.id in levels:
            continue
        level = integration_level(is_owner=False, shares=[_facts(share)], at=at)
        if level is not None:
            levels[integration.id] = (integration, level)
    return [
        IntegrationAccess(i.id, i.name, i.service_type, i.workspace_id, level)
        for i, level in sorted(levels.values(), key=lambda item: (item[0].name, str(item[0].id)))
    ]


def _facts(share: IntegrationShare) -> ShareFacts:
    return ShareFacts(share.share_level, share.status, share.revoked_at)


@dataclass(frozen=True)
class ChannelAccess:
    channel_id: uuid.UUID
    slack_id: str
    name: str
    type: str
    decision: ChannelDecision


@dataclass(frozen=True)
class WorkspaceAccess:
    """One team's view of one Slack workspace at one moment."""

    team_id: uuid.UUID
    workspace_id: uuid.UUID
    level: IntegrationLevel | None
    """The strongest way the team holds the workspace (None: it does not)."""
    had_share: bool
    """The team holds a share that is no longer active."""
    channels: dict[uuid.UUID, ChannelAccess] = field(default_factory=dict)

    @property
    def readable(self) -> set[uuid.UUID]:
        return {c for c, access in self.channels.items() if access.decision.readable}

    @property
    def may_request(self) -> bool:
        return self.level in REQUESTING_LEVELS


def workspace_access(
    session: Session, team_id: uuid.UUID, workspace_id: uuid.UUID, at: datetime | None = None
) -> WorkspaceAccess:
    """Which channels of the workspace the team may read at `at` (default: now), and why not
    for the others."""
    at = at or datetime.now(UTC)
    workspace = session.get_one(SlackWorkspace, workspace_id)
    integrations = session.scalars(
        select(Integration).where(
            Integration.service_type == IntegrationType.SLACK,
            Integration.workspace_id == workspace.slack_id,
        )
    ).all()
    ids = [i.id for i in integrations]
    shares: dict[uuid.UUID, list[ShareFacts]] = defaultdict(list)
    grants: dict[tuple[uuid.UUID, str], AccessLevel] = {}
    if ids:
        for share in session.scalars(
            select(IntegrationShare).where(
                IntegrationShare.integration_id.in_(ids), IntegrationShare.team_id == team_id
            )
        ):
            shares[share.integration_id].append(_facts(share))
        for integration_id, external_id, grant in session.execute(
            select(
                ServiceResource.integration_id,
                ServiceResource.external_id,
                ResourceAccess.access_level,
            )
            .join(ResourceAccess, ResourceAccess.resource_id == ServiceResource.id)
            .where(
                ServiceResource.integration_id.in_(ids),
                ServiceResource.resource_type == ResourceType.SLACK_CHANNEL,
                ResourceAccess.team_id == team_id,
            )
        ):
            grants[(integration_id, external_id)] = grant
    # The workspace's own team holds its data even when no integration row names it (a
    # workspace registered before integrations existed, or seeded directly).
    holdings: list[tuple[uuid.UUID | None, IntegrationLevel | None, bool]] = []
    if workspace.team_id == team_id:
        holdings.append((None, IntegrationLevel.OWNER, False))
    for integration in integrations:
        level = integration_level(
            is_owner=integration.owner_team_id == team_id, shares=shares[integration.id], at=at
        )
        holdings.append((integration.id, level, bool(shares[integration.id]) and level is None))
    sync = (workspace.workspace_metadata or {}).get("sync") or {}
    direct_enabled = bool(sync.get("include_direct_messages", False))
    had_share = any(had for _, _, had in holdings)
    access = WorkspaceAccess(
        team_id, workspace_id, strongest(level for _, level, _ in holdings), had_share
    )
    channels = session.execute(
        select(SlackChannel.id, SlackChannel.slack_id, SlackChannel.name, SlackChannel.type)
        .where(SlackChannel.workspace_id == workspace_id)
        .order_by(SlackChannel.name)
    )
    for channel_id, slack_id, name, channel_type in channels:
        decisions = [
            channel_decision(
                level,
                channel_type,
                grants.get((integration_id, slack_id)) if integration_id else None,
                direct_messages_enabled=direct_enabled,
                had_share=had,
            )
            for integration_id, level, had in holdings
        ] or [channel_decision(None, channel_type, None)]
        access.channels[channel_id] = ChannelAccess(
            channel_id, slack_id, name, channel_type, combine(decisions)
        )
    return access


def readable_channels(
    session: Session, team_id: uuid.UUID, workspace_id: uuid.UUID, at: datetime | None = None
) -> set[uuid.UUID]:
    """SlackChannel ids of the workspace the team may read at `at` (default: now)."""
    return workspace_access(session, team_id, workspace_id, at).readable


def team_role(session: Session, team_id: uuid.UUID, user_id: str) -> TeamMemberRole | None:
    """The user's role in the team, None if not a member."""
    return session.scalar(
        select(TeamMember.role).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
    )


# --- analyses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalysisTeam:
    """The team an analysis is for, who asked for it, and how that was decided."""

    team_id: uuid.UUID | None
    source: str
    """`parameters.team_id`, `requester's team` or `workspace owner`."""
    requester: str | None = None
    role: TeamMemberRole | None = None
    error: str | None = None


def requester_of(analysis: SlackAnalysis) -> str | None:
    """The person who asked: `parameters.requested_by` (the app's user id, which TeamMember
    keys on) or else `created_by_user_id`. None for the pipeline's own analyses."""
    requested_by = (analysis.parameters or {}).get(REQUESTER_PARAMETER)
    if requested_by:
        return str(requested_by)
    return str(analysis.created_by_user_id) if analysis.created_by_user_id else None


def analysis_team(session: Session, analysis: SlackAnalysis) -> AnalysisTeam:
    """`parameters.team_id` if set; else the requester's team (the workspace's own team if the
    requester belongs to it, else their only team that holds the workspace); else, with no
    requester, the workspace's own team."""
    workspace = session.get_one(SlackWorkspace, analysis.workspace_id)
    requester = requester_of(analysis)
    raw_team = (analysis.parameters or {}).get(TEAM_PARAMETER)
    if raw_team:
        try:
            team_id = uuid.UUID(str(raw_team))
        except ValueError:
            return AnalysisTeam(
                None, "parameters.team_id", requester, error=f"parameters.team_id "
                f"{str(raw_team)[:64]!r} is not a team id (a UUID)"
            )  # fmt: skip
        if session.get(Team, team_id) is None:
            return AnalysisTeam(
                None, "parameters.team_id", requester,
                error=f"parameters.team_id {team_id} names no team",
            )  # fmt: skip
        role = team_role(session, team_id, requester) if requester else None
        return AnalysisTeam(team_id, "parameters.team_id", requester, role)
    if requester is None:
        return AnalysisTeam(workspace.team_id, "workspace owner")
    memberships = {
        team_id: role
        for team_id, role in session.execute(
            select(TeamMember.team_id, TeamMember.role).where(TeamMember.user_id == requester)
        )
    }
    if not memberships:
        return AnalysisTeam(
            None, "requester's team", requester,
            error=f"the requester {requester} is not a member of any team",
        )  # fmt: skip
    if workspace.team_id in memberships:
        team_id = workspace.team_id
    elif len(memberships) == 1:
        team_id = next(iter(memberships))
    else:
        holding = [
            t for t in memberships if workspace_access(session, t, workspace.id).level is not None
        ]
        if len(holding) != 1:
            return AnalysisTeam(
                None, "requester's team", requester,
                error=f"the requester {requester} is a member of {len(memberships)} teams and "
                f"{len(holding)} of them hold workspace {workspace.slack_id}: set "
                "parameters.team_id to say which team the analysis is for",
            )  # fmt: skip
        team_id = holding[0]
    return AnalysisTeam(team_id, "requester's team", requester, memberships[team_id])


@dataclass(frozen=True)
class AnalysisAccess:
    """What one analysis may cover when it runs: its team, the channels to analyze (requested
    and readable), the requested channels left out and why, or why it may not run at all."""

    team: AnalysisTeam
    channels: list[uuid.UUID]
    excluded: list[dict[str, str]]
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "team_id": str(self.team.team_id) if self.team.team_id else None,
            "team_from": self.team.source,
            "requested_by": self.team.requester,
            "excluded_channels": self.excluded,
        }


def analysis_access(
    session: Session,
    analysis: SlackAnalysis,
    requested: Iterable[uuid.UUID],
    at: datetime | None = None,
) -> AnalysisAccess:
    """The access check an analysis runs through before it reads any message."""
    requested = list(requested)
    team = analysis_team(session, analysis)
    if team.team_id is None:
        return AnalysisAccess(team, [], _excluded(session, requested, NOT_ALLOWED), team.error)
    slug = session.scalar(select(Team.slug).where(Team.id == team.team_id))
    if team.requester is not None:
        action = (
            Action.SCHEDULE
            if (analysis.parameters or {}).get(SCHEDULE_PARAMETER)
            else Action.REQUEST
        )
        if not role_may(team.role, action):
            who = f"a {team.role.value}" if team.role else "not a member"
            denied = (
                f"the requester {team.requester} is {who} of team {slug} and may not "
                f"{action.value}: that needs {REQUIRED_ROLE[action].value} or above"
            )
            return AnalysisAccess(team, [], _excluded(session, requested, NOT_ALLOWED), denied)
    access = workspace_access(session, team.team_id, analysis.workspace_id, at)
    workspace = session.get_one(SlackWorkspace, analysis.workspace_id)
    channels: list[uuid.UUID] = []
    excluded: list[dict[str, str]] = []
    for channel_id in requested:
        channel = access.channels.get(channel_id)
        if channel is not None and channel.decision.readable:
            channels.append(channel_id)
        elif channel is not None:
            excluded.append(
                {
                    "channel_id": str(channel_id),
                    "name": channel.name,
                    "reason": str(channel.decision.reason),
                }
            )
        else:
            excluded.extend(_excluded(session, [channel_id], Reason.OTHER_WORKSPACE))
    error: str | None = None
    if access.level is None:
        error = (
            f"team {slug}'s share of Slack workspace {workspace.slack_id} was revoked"
            if access.had_share
            else f"team {slug} has no access to Slack workspace {workspace.slack_id}"
        )
    elif not access.may_request:
        error = (
            f"team {slug} holds a READ_ONLY share of Slack workspace {workspace.slack_id}: it "
            "may see analyses but not request them"
        )
    elif requested and not channels:
        error = (
            f"team {slug} may read none of the {len(requested)} requested channels of Slack "
            f"workspace {workspace.slack_id}"
        )
    if error:
        return AnalysisAccess(team, [], excluded + _excluded(session, channels, NOT_ALLOWED), error)
    return AnalysisAccess(team, channels, excluded)


def _excluded(session: Session, channel_ids: list[uuid.UUID], reason: str) -> list[dict[str, str]]:
    if not channel_ids:
        return []
    names = {
        channel_id: name
        for channel_id, name in session.execute(
            select(SlackChannel.id, SlackChannel.name).where(SlackChannel.id.in_(channel_ids))
        )
    }
    return [{"channel_id": str(c), "name": names.get(c, ""), "reason": reason} for c in channel_ids]


# --- teams by slug (the handle commands and the demo use; was db/teams.py) ---


def team_for_slug(session: Session, slug: str, name: str | None = None) -> uuid.UUID:
    """The team with this slug, created on first use (named `name`, or the slug)."""
    team = session.scalar(select(Team).where(Team.slug == slug))
    if team is None:
        team = Team(name=name or slug, slug=slug)
        session.add(team)
        session.flush()
    return team.id


# --- integrations and their audit events (slack/workspaces.py, token refresh, privacy) ---


def integration_by_id(session: Session, integration_id: uuid.UUID) -> Integration:
    """The integration (it must exist)."""
    return session.get_one(Integration, integration_id)


def first_slack_integration(session: Session, slack_id: str) -> Integration | None:
    """The oldest Slack integration of the workspace, whichever team owns it (the one audit
    events and key rotation hang on), or None."""
    return session.scalar(
        select(Integration)
        .where(
            Integration.service_type == IntegrationType.SLACK,
            Integration.workspace_id == slack_id,
        )
        .order_by(Integration.created_at)
        .limit(1)
    )


def add_slack_integration(
    session: Session, *, name: str, team_id: uuid.UUID, slack_id: str, actor: str
) -> Integration:
    """A new Slack integration of the team, added to the session (written at its next flush)."""
    integration = Integration(
        name=name,
        service_type=IntegrationType.SLACK,
        owner_team_id=team_id,
        workspace_id=slack_id,
        created_by_user_id=actor,
    )
    session.add(integration)
    return integration


def set_integration_status(
    integration: Integration, status: IntegrationStatus
) -> IntegrationStatus:
    """Sets the status (written when the session flushes); returns the previous one."""
    previous = integration.status
    integration.status = status
    return previous


def merge_integration_metadata(integration: Integration, metadata: Mapping[str, Any]) -> None:
    integration.integration_metadata = {**(integration.integration_metadata or {}), **metadata}


def record_integration_event(
    session: Session,
    *,
    integration_id: uuid.UUID | None,
    event_type: IntegrationEventType,
    actor: str,
    team_id: uuid.UUID | None,
    details: dict[str, Any],
) -> None:
    """One audit event (ids, counts and states, never content or secrets)."""
    session.add(
        IntegrationEvent(
            integration_id=integration_id,
            event_type=event_type,
            actor_user_id=actor,
            affected_team_id=team_id,
            details=details,
        )
    )


def integration_owner(session: Session, integration_id: uuid.UUID) -> uuid.UUID | None:
    """The team owning the integration."""
    return session.scalar(select(Integration.owner_team_id).where(Integration.id == integration_id))


# --- credentials (slack/workspaces.py, token refresh, key rotation, privacy) ---

CREDENTIAL_TABLE = "integration_credential"
# The columns of integration_credential that hold Fernet ciphertexts (key rotation).
CREDENTIAL_SECRET_COLUMNS = ("encrypted_value", "refresh_token")


def add_credential(
    session: Session,
    *,
    integration_id: uuid.UUID,
    credential_type: CredentialType,
    encrypted_value: str,
    refresh_token: str | None,
    expires_at: datetime | None,
) -> None:
    """A new (encrypted) credential, added to the session; the newest one is the one used."""
    session.add(
        IntegrationCredential(
            integration_id=integration_id,
            credential_type=credential_type,
            encrypted_value=encrypted_value,
            refresh_token=refresh_token,
            expires_at=expires_at,
        )
    )


def lock_newest_credential(
    session: Session, integration_id: uuid.UUID, credential_types: Sequence[CredentialType]
) -> IntegrationCredential | None:
    """The integration's newest credential of these types, locked until the transaction ends
    (two refreshes of one workspace never spend the same refresh token), or None."""
    return session.scalar(
        select(IntegrationCredential)
        .where(
            IntegrationCredential.integration_id == integration_id,
            IntegrationCredential.credential_type.in_(credential_types),
        )
        .order_by(IntegrationCredential.created_at.desc(), IntegrationCredential.id)
        .limit(1)
        .with_for_update()
    )


def store_refreshed_credential(
    credential: IntegrationCredential,
    *,
    encrypted_value: str,
    refresh_token: str,
    expires_at: datetime,
) -> None:
    """The new (encrypted) tokens of a locked credential, written when the session flushes."""
    credential.encrypted_value = encrypted_value
    credential.refresh_token = refresh_token
    credential.expires_at = expires_at


def active_slack_integrations_expiring(session: Session, before: datetime) -> list[uuid.UUID]:
    """ACTIVE Slack integrations with a rotating credential that expires before `before`."""
    return list(
        session.scalars(
            select(IntegrationCredential.integration_id)
            .join(Integration, Integration.id == IntegrationCredential.integration_id)
            .where(
                Integration.service_type == IntegrationType.SLACK,
                Integration.status == IntegrationStatus.ACTIVE,
                IntegrationCredential.refresh_token.isnot(None),
                IntegrationCredential.expires_at <= before,
            )
            .distinct()
        ).all()
    )


def lock_credential_secrets(
    session: Session, after: uuid.UUID | None, limit: int
) -> Sequence[Row[Any]]:
    """The next `limit` credentials by id after `after`: (id, *CREDENTIAL_SECRET_COLUMNS),
    locked for this transaction only, so a refresh meanwhile waits instead of being
    overwritten with the old token."""
    table = IntegrationCredential.__table__
    query = select(table.c.id, *(table.c[c] for c in CREDENTIAL_SECRET_COLUMNS))
    if after is not None:
        query = query.where(table.c.id > after)
    return session.execute(query.order_by(table.c.id).limit(limit).with_for_update()).all()


def write_credential_secrets(
    session: Session, credential_id: uuid.UUID, values: Mapping[str, str]
) -> None:
    """New ciphertexts for some of CREDENTIAL_SECRET_COLUMNS of one credential."""
    session.execute(
        update(IntegrationCredential)
        .where(IntegrationCredential.id == credential_id)
        .values(dict(values))
    )


def integration_of_credential(session: Session, credential_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalar(
        select(IntegrationCredential.integration_id).where(
            IntegrationCredential.id == credential_id
        )
    )


def credential_count(connection: Connection, integration_id: uuid.UUID) -> int:
    return int(
        connection.execute(
            select(func.count())
            .select_from(IntegrationCredential)
            .where(IntegrationCredential.integration_id == integration_id)
        ).scalar_one()
    )


def delete_credentials(connection: Connection, integration_id: uuid.UUID) -> None:
    connection.execute(
        delete(IntegrationCredential).where(IntegrationCredential.integration_id == integration_id)
    )


# --- Slack resources of an integration (privacy: erasure and workspace deletion) ---

SLACK_RESOURCE_TYPES = (ResourceType.SLACK_CHANNEL, ResourceType.SLACK_USER)


def slack_resource_count(connection: Connection, integration_id: uuid.UUID) -> int:
    """The integration's SLACK_CHANNEL and SLACK_USER resources."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(ServiceResource)
            .where(
                ServiceResource.integration_id == integration_id,
                ServiceResource.resource_type.in_(SLACK_RESOURCE_TYPES),
            )
        ).scalar_one()
    )


def delete_slack_resources(connection: Connection, integration_id: uuid.UUID) -> None:
    """The integration's SLACK_CHANNEL and SLACK_USER resources."""
    connection.execute(
        delete(ServiceResource).where(
            ServiceResource.integration_id == integration_id,
            ServiceResource.resource_type.in_(SLACK_RESOURCE_TYPES),
        )
    )


def delete_slack_user_resource(
    connection: Connection, integration_id: uuid.UUID, user_slack_id: str
) -> int:
    """One Slack user's SLACK_USER resource; returns how many rows went (0 or 1)."""
    return int(
        connection.execute(
            delete(ServiceResource).where(
                ServiceResource.integration_id == integration_id,
                ServiceResource.resource_type == ResourceType.SLACK_USER,
                ServiceResource.external_id == user_slack_id,
            )
        ).rowcount
    )


# --- the access tables as the Slack domain reads and writes them (issue 18) ---
# Moved here from slack/store.py so that only this store issues SQL against integration,
# integration_credential, integration_event, service_resource and team. Each function takes
# the caller's connection or session, so the one transaction that covered the Slack side's
# statements before still covers these.


def slack_integration_statuses(
    connection: Connection,
) -> list[tuple[uuid.UUID, str, IntegrationStatus]]:
    """(integration id, workspace Slack id, status) of every Slack integration linked to a
    workspace, by integration id (slack/planning.py: what the sensor and schedules run)."""
    rows = connection.execute(
        select(Integration.id, Integration.workspace_id, Integration.status)
        .where(
            Integration.service_type == IntegrationType.SLACK,
            Integration.workspace_id.isnot(None),
        )
        .order_by(Integration.id)
    )
    return [(integration_id, str(slack_id), status) for integration_id, slack_id, status in rows]


def integrations_with_newest_token(
    connection: Connection, integration_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str, str, str | None, uuid.UUID]]:
    """(owner team id, workspace Slack id, name, newest encrypted token, integration id) of
    these integrations that name a workspace, by Slack id and then oldest first.

    slack/planning.py keeps those whose workspace has no row yet (it asks slack/store.py which
    are stored); the insert that follows ignores a workspace stored meanwhile, as it did when
    this was one statement with a NOT EXISTS on slack_workspace."""
    newest_token = (
        select(IntegrationCredential.encrypted_value)
        .where(IntegrationCredential.integration_id == Integration.id)
        .order_by(IntegrationCredential.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = connection.execute(
        select(
            Integration.owner_team_id,
            Integration.workspace_id,
            Integration.name,
            newest_token,
            Integration.id,
        )
        .where(Integration.id.in_(integration_ids), Integration.workspace_id.isnot(None))
        .order_by(Integration.workspace_id, Integration.created_at)
    ).all()
    return [
        (team, slack_id, name, token, integration)
        for team, slack_id, name, token, integration in rows
    ]


def active_integration_slack_ids(
    connection: Connection, integration_ids: Sequence[uuid.UUID]
) -> set[str]:
    """The workspace Slack ids of these integrations that are ACTIVE (slack/planning.py
    reconnects their workspaces)."""
    return {
        str(slack_id)
        for slack_id in connection.execute(
            select(Integration.workspace_id).where(
                Integration.id.in_(integration_ids),
                Integration.status == IntegrationStatus.ACTIVE,
                Integration.workspace_id.isnot(None),
            )
        ).scalars()
    }


def integration_owners(
    connection: Connection, integration_ids: Sequence[uuid.UUID], slack_ids: Iterable[str]
) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """(integration id, owner team id, workspace Slack id) of these integrations that belong to
    these workspaces."""
    rows = connection.execute(
        select(Integration.id, Integration.owner_team_id, Integration.workspace_id).where(
            Integration.id.in_(integration_ids), Integration.workspace_id.in_(list(slack_ids))
        )
    ).all()
    return [(integration_id, team_id, str(slack_id)) for integration_id, team_id, slack_id in rows]


def insert_integration_events(
    connection: Connection, events: Sequence[Mapping[str, object]]
) -> None:
    """IntegrationEvent rows, in one statement."""
    connection.execute(insert(IntegrationEvent).values(list(events)))


def insert_integration_event(
    connection: Connection,
    *,
    integration_id: uuid.UUID | None,
    event_type: IntegrationEventType,
    actor: str,
    team_id: uuid.UUID | None,
    details: Mapping[str, Any],
) -> None:
    """One audit event on a connection (record_integration_event is its ORM twin): the
    administration commands' trail of a change made by a person."""
    connection.execute(
        insert(IntegrationEvent).values(
            integration_id=integration_id,
            event_type=event_type,
            actor_user_id=actor,
            affected_team_id=team_id,
            details=dict(details),
        )
    )


def upsert_channel_resources(
    connection: Connection, integration_id: uuid.UUID, channels: Sequence[Mapping[str, Any]]
) -> WriteCounts:
    """Slack channels (the sync's normalized channel rows) as the integration's
    ServiceResource rows (type SLACK_CHANNEL), with their last sync time now."""
    table: Table = ServiceResource.__table__  # type: ignore[assignment]
    rows = [
        {
            "integration_id": integration_id,
            "resource_type": ResourceType.SLACK_CHANNEL,
            "external_id": channel["slack_id"],
            "name": channel["name"],
            "resource_metadata": {
                "type": channel["type"],
                "is_archived": channel["is_archived"],
                "member_count": channel["member_count"],
            },
        }
        for channel in channels
    ]
    counts = upsert(connection, table, rows, ("integration_id", "resource_type", "external_id"))
    if rows:
        connection.execute(
            update(table)
            .where(
                table.c.integration_id == integration_id,
                table.c.resource_type == ResourceType.SLACK_CHANNEL,
                table.c.external_id.in_([row["external_id"] for row in rows]),
            )
            .values(last_synced_at=func.now())
        )
    return counts


def team_slack_integration(
    session: Session, team_id: uuid.UUID, slack_id: str, *, first_only: bool = False
) -> Integration | None:
    """The team's Slack integration of the workspace, or None (`first_only`: read one row)."""
    statement = select(Integration).where(
        Integration.service_type == IntegrationType.SLACK,
        Integration.workspace_id == slack_id,
        Integration.owner_team_id == team_id,
    )
    return session.scalar(statement.limit(1) if first_only else statement)


def newest_token_ciphertext(
    session: Session, integration_id: uuid.UUID, credential_types: Sequence[CredentialType]
) -> str | None:
    """The encrypted value of the integration's newest credential of these types, or None."""
    return session.scalar(
        select(IntegrationCredential.encrypted_value)
        .where(
            IntegrationCredential.integration_id == integration_id,
            IntegrationCredential.credential_type.in_(credential_types),
        )
        .order_by(IntegrationCredential.created_at.desc(), IntegrationCredential.id)
        .limit(1)
    )


def newest_credential_expiry(session: Session, integration_id: uuid.UUID) -> datetime | None:
    """When the integration's newest credential expires (None: it does not, or none)."""
    return session.scalar(
        select(IntegrationCredential.expires_at)
        .where(IntegrationCredential.integration_id == integration_id)
        .order_by(IntegrationCredential.created_at.desc(), IntegrationCredential.id)
        .limit(1)
    )


@dataclass(frozen=True)
class OwnerIntegration:
    """A workspace's integration owned by the workspace's own team, as `toban status` and the
    administration commands show it."""

    id: uuid.UUID
    status: IntegrationStatus
    source: str | None
    """`integration_metadata["source"]`: api (a token) or export."""


def team_slugs(connection: Connection, team_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Team id -> slug of these teams."""
    return {
        team_id: slug
        for team_id, slug in connection.execute(
            select(Team.id, Team.slug).where(Team.id.in_(list(set(team_ids))))
        )
    }


def slack_integrations_by_owner(
    connection: Connection, slack_ids: Iterable[str]
) -> dict[tuple[str, uuid.UUID], OwnerIntegration]:
    """(workspace Slack id, owner team id) -> the Slack integration, for these workspaces. One
    per key: integration is unique on (owner_team_id, workspace_id, service_type)."""
    rows = connection.execute(
        select(
            Integration.workspace_id,
            Integration.owner_team_id,
            Integration.id,
            Integration.status,
            Integration.integration_metadata["source"].astext,
        ).where(
            Integration.service_type == IntegrationType.SLACK,
            Integration.workspace_id.in_(list(set(slack_ids))),
        )
    )
    return {
        (str(slack_id), team_id): OwnerIntegration(integration_id, status, source)
        for slack_id, team_id, integration_id, status, source in rows
    }
