"""Workspace TSHARE shared between teams at every access level, with a marker word per channel,
so a test sees which channels a team's reads and analyses reached."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.access.store import (
    workspace_access,
)
from toban_orchestration.db.enums import (
    AccessLevel,
    IntegrationType,
    ResourceType,
    ShareLevel,
    TeamMemberRole,
)
from toban_orchestration.db.models import (
    Integration,
    IntegrationShare,
    ResourceAccess,
    ServiceResource,
    SlackWorkspace,
    Team,
    TeamMember,
)
from toban_orchestration.slack.normalize import NameLookup
from toban_orchestration.slack.store import SlackStore
from toban_orchestration.slack.sync import ChannelRef, ChannelSync, SyncReport

NOW = datetime(2026, 11, 20, tzinfo=UTC)
START = datetime(2026, 11, 2, tzinfo=UTC)
END = START + timedelta(days=7)
USERS = {"UANN": "ann", "UBEN": "ben", "UCAT": "cat", "UDAN": "dan"}
CHANNELS = {  # name -> (slack id, type, {author: messages})
    "general": ("CGEN", "public", {"UANN": 3, "UBEN": 2}),
    "eng": ("CENG", "public", {"UBEN": 2, "UCAT": 2}),
    "random": ("CRND", "public", {"UDAN": 2}),
    "secret": ("GSEC", "private", {"UANN": 1, "UDAN": 3}),
    "ann-ben": ("DANNBEN", "im", {"UANN": 1, "UBEN": 1}),
}


def marker(channel: str) -> str:
    """A word only the messages of this channel contain."""
    return f"zq{channel.replace('-', '')}qz"


@dataclass
class Shared:
    """Workspace TSHARE of team A, shared with B (FULL_ACCESS), C (LIMITED_ACCESS, grants on
    #eng and #secret), D (READ_ONLY, a grant on #secret), E (a revoked FULL_ACCESS share that
    left a grant behind); F has a grant and no share."""

    engine: Engine
    workspace_id: uuid.UUID
    integration_id: uuid.UUID
    teams: dict[str, uuid.UUID]
    channels: dict[str, uuid.UUID]
    resources: dict[str, uuid.UUID]

    def grant(self, team: str, channel: str, level: AccessLevel) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(
                ResourceAccess(
                    resource_id=self.resources[channel],
                    team_id=self.teams[team],
                    access_level=level,
                )
            )


def _messages(channel: str, authors: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    minute = 60
    for author, count in authors.items():
        for n in range(count):
            minute += 7
            ts = f"{int((START + timedelta(minutes=minute)).timestamp())}.000100"
            out.append(
                {"ts": ts, "user": author, "text": f"{marker(channel)} note {n} by <@{author}>"}
            )
    return out


def seed_shared(engine: Engine, *, direct_messages: bool = False) -> Shared:
    with Session(engine) as session, session.begin():
        teams = {name: Team(name=f"Team {name}", slug=f"team-{name.lower()}") for name in "ABCDEF"}
        session.add_all(teams.values())
        session.flush()
        for name, team in teams.items():
            for role in TeamMemberRole:
                session.add(
                    TeamMember(team_id=team.id, user_id=f"{role.value.lower()}-{name}", role=role)
                )
        workspace = SlackWorkspace(
            team_id=teams["A"].id,
            slack_id="TSHARE",
            name="Shared",
            workspace_metadata={"sync": {"include_direct_messages": direct_messages}},
        )
        integration = Integration(
            name="Shared Slack",
            service_type=IntegrationType.SLACK,
            owner_team_id=teams["A"].id,
            workspace_id="TSHARE",
        )
        session.add_all([workspace, integration])
        session.flush()
        resources = {
            name: ServiceResource(
                integration_id=integration.id,
                resource_type=ResourceType.SLACK_CHANNEL,
                external_id=slack_id,
                name=name,
            )
            for name, (slack_id, _, _) in CHANNELS.items()
        }
        session.add_all(resources.values())
        for receiver, level, status, revoked_at in [
            ("B", ShareLevel.FULL_ACCESS, "active", None),
            ("C", ShareLevel.LIMITED_ACCESS, "active", None),
            ("D", ShareLevel.READ_ONLY, "active", None),
            ("E", ShareLevel.FULL_ACCESS, "revoked", NOW - timedelta(days=1)),
        ]:
            session.add(
                IntegrationShare(
                    integration_id=integration.id,
                    team_id=teams[receiver].id,
                    share_level=level,
                    status=status,
                    revoked_at=revoked_at,
                )
            )
        session.flush()
        ids = (workspace.id, integration.id)
        team_ids = {name: team.id for name, team in teams.items()}
        resource_ids = {name: r.id for name, r in resources.items()}
    with engine.begin() as connection:
        store = SlackStore(connection, ids[0])
        store.upsert_users({"slack_id": k, "name": v} for k, v in USERS.items())
        store.upsert_channels(
            [
                {"slack_id": slack_id, "name": name, "type": kind, "is_archived": False}
                for name, (slack_id, kind, _) in CHANNELS.items()
            ],
            select_public=True,
            join_public=True,  # the public ones start selected: the app may join them
            from_export=False,
        )
    shared = Shared(engine, ids[0], ids[1], team_ids, {}, resource_ids)
    with Session(engine) as session:
        access = workspace_access(session, team_ids["A"], ids[0])
        shared.channels = {c.name: c.channel_id for c in access.channels.values()}
    for name, (slack_id, kind, authors) in CHANNELS.items():
        ChannelSync(
            None,
            engine,
            ids[0],
            ChannelRef(shared.channels[name], slack_id, name, kind),
            NameLookup(users=USERS, channels={}),
            SyncReport(),
        ).store_page(_messages(name, authors))
    shared.grant("C", "eng", AccessLevel.READ)
    shared.grant("C", "secret", AccessLevel.WRITE)
    shared.grant("D", "secret", AccessLevel.ADMIN)
    shared.grant("E", "general", AccessLevel.ADMIN)
    shared.grant("F", "general", AccessLevel.ADMIN)
    return shared
