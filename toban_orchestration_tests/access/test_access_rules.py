"""Who may read what: the pure rules (every share level, channel type and grant) and the same
rules read from the database (owner, shares, grants, revocations, roles)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

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
from toban_orchestration.access.store import (
    analysis_team,
    readable_channels,
    team_integrations,
    team_role,
    workspace_access,
)
from toban_orchestration.analysis.store import may_see_analysis
from toban_orchestration.db.enums import (
    AccessLevel,
    ShareLevel,
    TeamMemberRole,
)
from toban_orchestration.db.models import (
    IntegrationShare,
    ResourceAccess,
    SlackAnalysis,
    SlackChannelAnalysis,
    TeamMember,
    slack_analysis_channels,
)
from toban_orchestration_tests.support.shared_teams import (
    END,
    NOW,
    START,
    Shared,
    seed_shared,
)

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
