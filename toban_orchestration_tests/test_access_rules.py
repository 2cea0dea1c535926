"""Who may read what: the pure rules (every share level, channel type and grant) and the same
rules read from the database (owner, shares, grants, revocations, roles)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from toban_orchestration.access.queries import (
    analysis_team,
    may_see_analysis,
    readable_channels,
    team_integrations,
    team_role,
    workspace_access,
)
from toban_orchestration.access.rules import (
    Action,
    ChannelDecision,
    IntegrationLevel,
    Reason,
    ShareFacts,
    channel_decision,
    integration_level,
    role_may,
    share_is_active,
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
    SlackAnalysis,
    SlackChannelAnalysis,
    SlackWorkspace,
    Team,
    TeamMember,
    slack_analysis_channels,
)
from toban_orchestration.slack.normalize import NameLookup
from toban_orchestration.slack.store import SlackStore
from toban_orchestration.slack.sync import ChannelRef, ChannelSync, SyncReport

NOW = datetime(2026, 11, 20, tzinfo=UTC)
L = IntegrationLevel
A = AccessLevel

# --- the pure rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "channel_type", "grant", "expected"),
    [
        # owner: everything but DMs, which need the workspace to sync them on purpose
        (L.OWNER, "public", None, ChannelDecision(A.ADMIN)),
        (L.OWNER, "private", None, ChannelDecision(A.ADMIN)),
        (L.OWNER, "im", None, ChannelDecision(None, Reason.DIRECT_MESSAGES_DISABLED)),
        (L.OWNER, "mpim", None, ChannelDecision(None, Reason.DIRECT_MESSAGES_DISABLED)),
        # FULL_ACCESS: public channels (WRITE), private ones through grants, never DMs
        (L.FULL_ACCESS, "public", None, ChannelDecision(A.WRITE)),
        (L.FULL_ACCESS, "public", A.ADMIN, ChannelDecision(A.ADMIN)),
        (L.FULL_ACCESS, "private", None, ChannelDecision(None, Reason.PRIVATE_NOT_GRANTED)),
        (L.FULL_ACCESS, "private", A.READ, ChannelDecision(A.READ)),
        (L.FULL_ACCESS, "im", A.ADMIN, ChannelDecision(None, Reason.DIRECT_MESSAGES)),
        # READ_ONLY: like FULL_ACCESS for reading, but never above READ
        (L.READ_ONLY, "public", None, ChannelDecision(A.READ)),
        (L.READ_ONLY, "public", A.ADMIN, ChannelDecision(A.READ)),
        (L.READ_ONLY, "private", A.WRITE, ChannelDecision(A.READ)),
        (L.READ_ONLY, "private", None, ChannelDecision(None, Reason.PRIVATE_NOT_GRANTED)),
        (L.READ_ONLY, "mpim", A.READ, ChannelDecision(None, Reason.DIRECT_MESSAGES)),
        # LIMITED_ACCESS: granted channels only, at the grant's level
        (L.LIMITED_ACCESS, "public", None, ChannelDecision(None, Reason.NOT_GRANTED)),
        (L.LIMITED_ACCESS, "private", None, ChannelDecision(None, Reason.NOT_GRANTED)),
        (L.LIMITED_ACCESS, "public", A.READ, ChannelDecision(A.READ)),
        (L.LIMITED_ACCESS, "private", A.WRITE, ChannelDecision(A.WRITE)),
        (L.LIMITED_ACCESS, "public", A.ADMIN, ChannelDecision(A.ADMIN)),
        (L.LIMITED_ACCESS, "im", A.ADMIN, ChannelDecision(None, Reason.DIRECT_MESSAGES)),
        # no share: a grant alone opens nothing
        (None, "public", A.ADMIN, ChannelDecision(None, Reason.NO_ACCESS)),
        (None, "public", None, ChannelDecision(None, Reason.NO_ACCESS)),
    ],
)
def test_channel_decisions(
    level: IntegrationLevel | None,
    channel_type: str,
    grant: AccessLevel | None,
    expected: ChannelDecision,
) -> None:
    assert channel_decision(level, channel_type, grant) == expected


def test_direct_messages_reach_the_owner_only_when_synced_on_purpose() -> None:
    assert channel_decision(L.OWNER, "im", None, direct_messages_enabled=True).level == A.ADMIN
    shared = channel_decision(L.FULL_ACCESS, "im", A.ADMIN, direct_messages_enabled=True)
    assert shared == ChannelDecision(None, Reason.DIRECT_MESSAGES)


def test_a_revoked_share_says_so() -> None:
    assert channel_decision(None, "public", A.READ, had_share=True) == ChannelDecision(
        None, Reason.SHARE_REVOKED
    )


@pytest.mark.parametrize(
    ("status", "revoked_at", "active"),
    [
        ("active", None, True),
        ("active", NOW - timedelta(seconds=1), False),
        ("active", NOW, False),
        ("active", NOW + timedelta(days=1), True),  # a revocation dated later has not happened
        ("revoked", None, False),
        ("pending", None, False),
    ],
)
def test_share_activity(status: str, revoked_at: datetime | None, active: bool) -> None:
    assert share_is_active(status, revoked_at, NOW) is active


def test_integration_level_takes_ownership_first_and_ignores_inactive_shares() -> None:
    full = ShareFacts(ShareLevel.FULL_ACCESS, "active", None)
    revoked = ShareFacts(ShareLevel.FULL_ACCESS, "active", NOW - timedelta(hours=1))
    limited = ShareFacts(ShareLevel.LIMITED_ACCESS, "active", None)
    assert integration_level(is_owner=True, shares=[], at=NOW) is L.OWNER
    assert integration_level(is_owner=False, shares=[full], at=NOW) is L.FULL_ACCESS
    assert integration_level(is_owner=False, shares=[revoked], at=NOW) is None
    assert integration_level(is_owner=False, shares=[revoked, limited], at=NOW) is (
        L.LIMITED_ACCESS
    )
    assert integration_level(is_owner=False, shares=[], at=NOW) is None


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (None, set()),
        (TeamMemberRole.VIEWER, {Action.SEE}),
        (TeamMemberRole.MEMBER, {Action.SEE, Action.REQUEST}),
        (
            TeamMemberRole.ADMIN,
            {Action.SEE, Action.REQUEST, Action.SCHEDULE, Action.MANAGE_SHARING},
        ),
        (TeamMemberRole.OWNER, set(Action)),
    ],
)
def test_roles(role: TeamMemberRole | None, allowed: set[Action]) -> None:
    assert {action for action in Action if role_may(role, action)} == allowed


# --- the same rules from the database -------------------------------------------------------

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


@pytest.fixture
def shared(db_session: Session) -> Shared:
    engine = db_session.get_bind()
    assert isinstance(engine, Engine)
    return seed_shared(engine)


def _view(shared: Shared, team: str) -> dict[str, str]:
    """channel name -> access level, or `-reason` when it may not read it."""
    with Session(shared.engine) as session:
        access = workspace_access(session, shared.teams[team], shared.workspace_id)
    return {
        c.name: c.decision.level.value if c.decision.level else f"-{c.decision.reason}"
        for c in access.channels.values()
    }


def test_each_team_reads_what_its_share_and_grants_give(shared: Shared) -> None:
    assert _view(shared, "A") == {
        "ann-ben": "-direct_messages_disabled",
        "eng": "ADMIN",
        "general": "ADMIN",
        "random": "ADMIN",
        "secret": "ADMIN",
    }
    assert _view(shared, "B") == {
        "ann-ben": "-direct_messages_not_shared",
        "eng": "WRITE",
        "general": "WRITE",
        "random": "WRITE",
        "secret": "-private_channel_not_granted",
    }
    assert _view(shared, "C") == {
        "ann-ben": "-direct_messages_not_shared",
        "eng": "READ",
        "general": "-not_granted",
        "random": "-not_granted",
        "secret": "WRITE",
    }
    assert _view(shared, "D") == {
        "ann-ben": "-direct_messages_not_shared",
        "eng": "READ",
        "general": "READ",
        "random": "READ",
        "secret": "READ",  # the ADMIN grant is capped by the READ_ONLY share
    }
    assert set(_view(shared, "E").values()) == {"-share_revoked"}  # its grant stays shut
    assert set(_view(shared, "F").values()) == {"-no_access"}


def test_readable_channels_follow_revocations_and_removed_grants(shared: Shared) -> None:
    with Session(shared.engine) as session, session.begin():
        before = readable_channels(session, shared.teams["C"], shared.workspace_id)
        assert before == {shared.channels["eng"], shared.channels["secret"]}
        session.query(ResourceAccess).filter_by(
            team_id=shared.teams["C"], resource_id=shared.resources["secret"]
        ).delete()
        assert readable_channels(session, shared.teams["C"], shared.workspace_id) == {
            shared.channels["eng"]
        }
        share = session.query(IntegrationShare).filter_by(team_id=shared.teams["C"]).one()
        share.revoked_at = datetime.now(UTC) + timedelta(hours=1)  # announced, not yet due
        session.flush()
        assert readable_channels(session, shared.teams["C"], shared.workspace_id) == {
            shared.channels["eng"]
        }
        later = datetime.now(UTC) + timedelta(hours=2)
        assert readable_channels(session, shared.teams["C"], shared.workspace_id, later) == set()


def test_direct_messages_synced_on_purpose_reach_the_owner_only(db_session: Session) -> None:
    engine = db_session.get_bind()
    assert isinstance(engine, Engine)
    shared = seed_shared(engine, direct_messages=True)
    assert _view(shared, "A")["ann-ben"] == "ADMIN"
    assert _view(shared, "B")["ann-ben"] == "-direct_messages_not_shared"


def test_team_integrations_lists_levels(shared: Shared) -> None:
    with Session(shared.engine) as session:
        levels = {
            team: [(i.integration_id, i.level) for i in team_integrations(session, team_id)]
            for team, team_id in shared.teams.items()
        }
    integration = shared.integration_id
    assert levels == {
        "A": [(integration, L.OWNER)],
        "B": [(integration, L.FULL_ACCESS)],
        "C": [(integration, L.LIMITED_ACCESS)],
        "D": [(integration, L.READ_ONLY)],
        "E": [],
        "F": [],
    }


def test_roles_come_from_team_membership(shared: Shared) -> None:
    with Session(shared.engine) as session:
        assert team_role(session, shared.teams["B"], "viewer-B") is TeamMemberRole.VIEWER
        assert team_role(session, shared.teams["B"], "admin-B") is TeamMemberRole.ADMIN
        assert team_role(session, shared.teams["B"], "admin-C") is None


def _analysis(shared: Shared, parameters: dict[str, Any], by: uuid.UUID | None = None) -> Any:
    return SlackAnalysis(
        workspace_id=shared.workspace_id,
        name="x",
        start_date=START,
        end_date=END,
        parameters=parameters,
        created_by_user_id=by,
    )


def test_which_team_an_analysis_is_for(shared: Shared) -> None:
    with Session(shared.engine) as session, session.begin():
        pick = analysis_team(session, _analysis(shared, {}))
        assert (pick.team_id, pick.source, pick.requester) == (
            shared.teams["A"],
            "workspace owner",
            None,
        )
        pick = analysis_team(
            session, _analysis(shared, {"team_id": str(shared.teams["C"]), "requested_by": "x"})
        )
        assert (pick.team_id, pick.source, pick.role) == (
            shared.teams["C"],
            "parameters.team_id",
            None,
        )
        pick = analysis_team(session, _analysis(shared, {"requested_by": "member-B"}))
        assert (pick.team_id, pick.role) == (shared.teams["B"], TeamMemberRole.MEMBER)
        # created_by_user_id is a UUID: a member whose user id is that UUID
        person = uuid.uuid4()
        session.add(
            TeamMember(team_id=shared.teams["C"], user_id=str(person), role=TeamMemberRole.ADMIN)
        )
        session.flush()
        pick = analysis_team(session, _analysis(shared, {}, by=person))
        assert (pick.team_id, pick.role) == (shared.teams["C"], TeamMemberRole.ADMIN)
        # a member of the owner team and of another: the owner team
        session.add(
            TeamMember(team_id=shared.teams["A"], user_id=str(person), role=TeamMemberRole.VIEWER)
        )
        session.flush()
        assert (
            analysis_team(session, _analysis(shared, {}, by=person)).team_id == (shared.teams["A"])
        )
        # two teams that both hold the workspace, neither the owner: ambiguous, say so
        session.add(
            TeamMember(team_id=shared.teams["B"], user_id="member-C", role=TeamMemberRole.MEMBER)
        )
        session.flush()
        ambiguous = analysis_team(session, _analysis(shared, {"requested_by": "member-C"}))
        assert ambiguous.team_id is None
        assert "set parameters.team_id" in (ambiguous.error or "")
        bad = analysis_team(session, _analysis(shared, {"team_id": "not-a-uuid"}))
        assert bad.error == "parameters.team_id 'not-a-uuid' is not a team id (a UUID)"
        nobody = analysis_team(session, _analysis(shared, {"requested_by": "stranger"}))
        assert nobody.error == "the requester stranger is not a member of any team"


def test_a_team_sees_an_analysis_only_if_it_reads_every_channel_in_it(shared: Shared) -> None:
    with Session(shared.engine) as session, session.begin():
        analysis = _analysis(shared, {})
        session.add(analysis)
        session.flush()
        for name in ("general", "eng"):
            session.add(
                SlackChannelAnalysis(
                    analysis_id=analysis.id,
                    channel_id=shared.channels[name],
                    start_date=START,
                    end_date=END,
                )
            )
        session.execute(
            insert(slack_analysis_channels).values(
                analysis_id=analysis.id, channel_id=shared.channels["general"]
            )
        )
        session.flush()
        seen = {
            team
            for team, team_id in shared.teams.items()
            if may_see_analysis(session, analysis.id, team_id)
        }
        assert seen == {"A", "B", "D"}  # C reads #eng but not #general; E and F nothing
        assert may_see_analysis(session, analysis.id, shared.teams["D"], "viewer-D")
        assert not may_see_analysis(session, analysis.id, shared.teams["D"], "viewer-A")
