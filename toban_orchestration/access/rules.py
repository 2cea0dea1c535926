"""Who may read what, as pure functions over plain values (README, "Who may see what").

A team reaches a Slack workspace's channels through the integrations of that workspace:

| the team holds the integration as | public channels | private | DMs | requests |
|---|---|---|---|---|
| owner team | all | all | if synced (1) | yes |
| active share, FULL_ACCESS | all | granted | never | yes |
| active share, READ_ONLY | all | granted | never | no, sees |
| active share, LIMITED_ACCESS | granted | granted | never | yes |
| revoked share, or none | none | none | never | no |

(1) only when the workspace's sync option `include_direct_messages` is on.

"Granted" means a ResourceAccess row of the team on the channel's SLACK_CHANNEL
ServiceResource, at any level (READ, WRITE, ADMIN all read). A grant counts only inside an
active share of the same integration: the share is the door, grants pick rooms, and revoking
the share closes everything at once even if the app left grants behind.

Team roles (inside the team the analysis is for): VIEWER sees, MEMBER also requests ad hoc
analyses, ADMIN also schedules recurring ones and manages shares and grants, OWNER also
deletes integrations and erases data.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from toban_orchestration.db.enums import AccessLevel, ChannelType, ShareLevel, TeamMemberRole

ACTIVE_SHARE_STATUS = "active"


class IntegrationLevel(StrEnum):
    """How a team holds an integration, strongest first in `LEVEL_ORDER`."""

    OWNER = "OWNER"
    FULL_ACCESS = ShareLevel.FULL_ACCESS.value
    LIMITED_ACCESS = ShareLevel.LIMITED_ACCESS.value
    READ_ONLY = ShareLevel.READ_ONLY.value


LEVEL_ORDER = (
    IntegrationLevel.OWNER,
    IntegrationLevel.FULL_ACCESS,
    IntegrationLevel.LIMITED_ACCESS,
    IntegrationLevel.READ_ONLY,
)
# Levels whose holders may ask for new analyses (READ_ONLY teams only see existing ones).
REQUESTING_LEVELS = frozenset(
    {IntegrationLevel.OWNER, IntegrationLevel.FULL_ACCESS, IntegrationLevel.LIMITED_ACCESS}
)
# Levels that reach every public channel without a per-channel grant.
ALL_PUBLIC_LEVELS = frozenset(
    {IntegrationLevel.OWNER, IntegrationLevel.FULL_ACCESS, IntegrationLevel.READ_ONLY}
)
DIRECT_TYPES = frozenset({ChannelType.IM.value, ChannelType.MPIM.value})


class Reason(StrEnum):
    """Why a channel is left out of a team's analysis (stored in `excluded_channels`)."""

    NO_ACCESS = "no_access"
    """The team neither owns the workspace's integration nor holds a share of it."""
    SHARE_REVOKED = "share_revoked"
    """The team's share was revoked (or set to another status than active)."""
    NOT_GRANTED = "not_granted"
    """LIMITED_ACCESS share, and no ResourceAccess grant on this channel."""
    PRIVATE_NOT_GRANTED = "private_channel_not_granted"
    """A private channel reaches a share only through a grant on it."""
    DIRECT_MESSAGES = "direct_messages_not_shared"
    """DMs and group DMs are never shared; the owner reads them only when the workspace
    syncs them on purpose."""
    DIRECT_MESSAGES_DISABLED = "direct_messages_disabled"
    OTHER_WORKSPACE = "other_workspace"
    """The channel belongs to another workspace than the analysis."""
    ANALYSIS_NOT_ALLOWED = "analysis_not_allowed"
    """The whole analysis may not run (its team or its requester may not ask for it, see its
    `error_message`): nothing of it is analyzed."""


@dataclass(frozen=True)
class ShareFacts:
    level: ShareLevel
    status: str
    revoked_at: datetime | None


@dataclass(frozen=True)
class ChannelDecision:
    level: AccessLevel | None
    """The team's access to the channel; None: it may not read it."""
    reason: Reason | None = None
    """Why not, when `level` is None."""

    @property
    def readable(self) -> bool:
        return self.level is not None


def share_is_active(status: str, revoked_at: datetime | None, at: datetime) -> bool:
    """Active status and not revoked by `at` (a revocation dated later has not happened yet)."""
    return status == ACTIVE_SHARE_STATUS and (revoked_at is None or revoked_at > at)


def integration_level(
    *, is_owner: bool, shares: Iterable[ShareFacts], at: datetime
) -> IntegrationLevel | None:
    """The strongest way the team holds one integration at `at`, or None."""
    if is_owner:
        return IntegrationLevel.OWNER
    active = {
        IntegrationLevel(s.level.value)
        for s in shares
        if share_is_active(s.status, s.revoked_at, at)
    }
    return strongest(active)


def strongest(levels: Iterable[IntegrationLevel | None]) -> IntegrationLevel | None:
    present = {level for level in levels if level is not None}
    return next((level for level in LEVEL_ORDER if level in present), None)


def channel_decision(
    level: IntegrationLevel | None,
    channel_type: str,
    grant: AccessLevel | None,
    *,
    direct_messages_enabled: bool = False,
    had_share: bool = False,
) -> ChannelDecision:
    """One channel, for a team holding the integration at `level` (None: not at all), with the
    team's grant on the channel if any. `had_share`: the team holds a share that is no longer
    active (only changes the reason given)."""
    if level is None:
        return ChannelDecision(None, Reason.SHARE_REVOKED if had_share else Reason.NO_ACCESS)
    if channel_type in DIRECT_TYPES:
        if level is not IntegrationLevel.OWNER:
            return ChannelDecision(None, Reason.DIRECT_MESSAGES)
        if not direct_messages_enabled:
            return ChannelDecision(None, Reason.DIRECT_MESSAGES_DISABLED)
        return ChannelDecision(AccessLevel.ADMIN)
    if level is IntegrationLevel.OWNER:
        return ChannelDecision(AccessLevel.ADMIN)
    capped = _cap(grant, level)
    if channel_type == ChannelType.PUBLIC.value and level in ALL_PUBLIC_LEVELS:
        default = AccessLevel.READ if level is IntegrationLevel.READ_ONLY else AccessLevel.WRITE
        return ChannelDecision(_max(default, capped))
    if capped is not None:
        return ChannelDecision(capped)
    if level is IntegrationLevel.LIMITED_ACCESS:
        return ChannelDecision(None, Reason.NOT_GRANTED)
    return ChannelDecision(None, Reason.PRIVATE_NOT_GRANTED)


_ACCESS_RANK = {AccessLevel.READ: 1, AccessLevel.WRITE: 2, AccessLevel.ADMIN: 3}


def _max(a: AccessLevel, b: AccessLevel | None) -> AccessLevel:
    return a if b is None or _ACCESS_RANK[a] >= _ACCESS_RANK[b] else b


def _cap(grant: AccessLevel | None, level: IntegrationLevel) -> AccessLevel | None:
    """A READ_ONLY share stays read-only whatever its grants say."""
    if grant is not None and level is IntegrationLevel.READ_ONLY:
        return AccessLevel.READ
    return grant


def combine(decisions: Iterable[ChannelDecision]) -> ChannelDecision:
    """A channel reachable through several integrations (several teams connected the same
    workspace): the best decision wins; if none reads, the first reason is kept."""
    best: ChannelDecision | None = None
    for decision in decisions:
        if best is None or (
            decision.level is not None
            and (best.level is None or _ACCESS_RANK[decision.level] > _ACCESS_RANK[best.level])
        ):
            best = decision
    return best or ChannelDecision(None, Reason.NO_ACCESS)


# --- roles ---------------------------------------------------------------------------------

_ROLE_RANK = {
    TeamMemberRole.VIEWER: 1,
    TeamMemberRole.MEMBER: 2,
    TeamMemberRole.ADMIN: 3,
    TeamMemberRole.OWNER: 4,
}


class Action(StrEnum):
    SEE = "see analyses"
    REQUEST = "request analyses"
    SCHEDULE = "schedule analyses"
    MANAGE_SHARING = "manage shares and grants"
    ERASE = "delete integrations and erase data"


# The least role each action needs.
REQUIRED_ROLE = {
    Action.SEE: TeamMemberRole.VIEWER,
    Action.REQUEST: TeamMemberRole.MEMBER,
    Action.SCHEDULE: TeamMemberRole.ADMIN,
    Action.MANAGE_SHARING: TeamMemberRole.ADMIN,
    Action.ERASE: TeamMemberRole.OWNER,
}


def role_may(role: TeamMemberRole | None, action: Action) -> bool:
    """None (not a member of the team) may do nothing."""
    return role is not None and _ROLE_RANK[role] >= _ROLE_RANK[REQUIRED_ROLE[action]]


def may_see(role: TeamMemberRole | None) -> bool:
    return role_may(role, Action.SEE)


def may_request(role: TeamMemberRole | None) -> bool:
    return role_may(role, Action.REQUEST)


def may_schedule(role: TeamMemberRole | None) -> bool:
    return role_may(role, Action.SCHEDULE)


def may_manage_sharing(role: TeamMemberRole | None) -> bool:
    return role_may(role, Action.MANAGE_SHARING)
