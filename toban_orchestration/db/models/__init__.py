"""Every table of the Toban schema (docs/data-model.md). Importing this package registers them
all on `Base.metadata`, which Alembic compares against the database."""

from toban_orchestration.db.base import Base
from toban_orchestration.db.models.integration import (
    Integration,
    IntegrationCredential,
    IntegrationEvent,
    IntegrationShare,
    ResourceAccess,
    ServiceResource,
)
from toban_orchestration.db.models.slack import (
    SlackAnalysis,
    SlackChannel,
    SlackChannelAnalysis,
    SlackContribution,
    SlackEventInbox,
    SlackMessage,
    SlackReaction,
    SlackSyncDay,
    SlackUser,
    SlackWorkspace,
    slack_analysis_channels,
)
from toban_orchestration.db.models.team import Team, TeamMember

__all__ = [
    "Base",
    "Integration",
    "IntegrationCredential",
    "IntegrationEvent",
    "IntegrationShare",
    "ResourceAccess",
    "ServiceResource",
    "SlackAnalysis",
    "SlackChannel",
    "SlackChannelAnalysis",
    "SlackContribution",
    "SlackEventInbox",
    "SlackMessage",
    "SlackReaction",
    "SlackSyncDay",
    "SlackUser",
    "SlackWorkspace",
    "Team",
    "TeamMember",
    "slack_analysis_channels",
]
