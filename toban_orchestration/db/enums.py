"""Value sets of the schema's enumerated columns.

Columns typed `Enum` in SCHEMA.md are native PostgreSQL enum types whose labels are the member
names below. Where SCHEMA.md says "etc.", the set was completed here; docs/data-model.md
explains each choice. Columns typed `String` with a fixed vocabulary (channel type, analysis
status, schedule frequency) keep their string type and get a CHECK constraint instead.
"""

from enum import StrEnum


class TeamMemberRole(StrEnum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"


class IntegrationType(StrEnum):
    SLACK = "SLACK"
    GITHUB = "GITHUB"
    NOTION = "NOTION"
    DISCORD = "DISCORD"


class IntegrationStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DISCONNECTED = "DISCONNECTED"  # a person disconnected it; data stays, nothing is scheduled
    EXPIRED = "EXPIRED"  # the token expired and could not be refreshed
    REVOKED = "REVOKED"  # Slack answered token_revoked / account_inactive
    ERROR = "ERROR"  # anything else that stops syncing until someone looks


class CredentialType(StrEnum):
    OAUTH_TOKEN = "OAUTH_TOKEN"  # generic OAuth access token
    BOT_TOKEN = "BOT_TOKEN"  # Slack xoxb-
    USER_TOKEN = "USER_TOKEN"  # Slack xoxp-
    APP_TOKEN = "APP_TOKEN"  # Slack xapp- (app-level)
    PERSONAL_TOKEN = "PERSONAL_TOKEN"  # e.g. a GitHub personal access token
    API_KEY = "API_KEY"


class ResourceType(StrEnum):
    SLACK_CHANNEL = "SLACK_CHANNEL"
    SLACK_USER = "SLACK_USER"
    SLACK_EMOJI = "SLACK_EMOJI"
    GITHUB_REPOSITORY = "GITHUB_REPOSITORY"
    GITHUB_ISSUE = "GITHUB_ISSUE"
    GITHUB_PR = "GITHUB_PR"
    GITHUB_WEBHOOK = "GITHUB_WEBHOOK"
    NOTION_PAGE = "NOTION_PAGE"
    NOTION_DATABASE = "NOTION_DATABASE"
    NOTION_BLOCK = "NOTION_BLOCK"
    DISCORD_GUILD = "DISCORD_GUILD"
    DISCORD_CHANNEL = "DISCORD_CHANNEL"


class ShareLevel(StrEnum):
    FULL_ACCESS = "FULL_ACCESS"
    LIMITED_ACCESS = "LIMITED_ACCESS"
    READ_ONLY = "READ_ONLY"


class AccessLevel(StrEnum):
    READ = "READ"
    WRITE = "WRITE"
    ADMIN = "ADMIN"


class IntegrationEventType(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    STATUS_CHANGED = "STATUS_CHANGED"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    RECONNECTED = "RECONNECTED"
    SHARED = "SHARED"
    UNSHARED = "UNSHARED"
    ACCESS_GRANTED = "ACCESS_GRANTED"
    ACCESS_REVOKED = "ACCESS_REVOKED"
    ACCESS_CHANGED = "ACCESS_CHANGED"
    TOKEN_REFRESHED = "TOKEN_REFRESHED"
    TOKEN_REFRESH_FAILED = "TOKEN_REFRESH_FAILED"
    KEY_ROTATED = "KEY_ROTATED"
    SYNC_COMPLETED = "SYNC_COMPLETED"
    SYNC_FAILED = "SYNC_FAILED"
    DATA_PURGED = "DATA_PURGED"
    DATA_ERASED = "DATA_ERASED"
    ERROR = "ERROR"


class ChannelType(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    IM = "im"
    MPIM = "mpim"


class AnalysisStatus(StrEnum):
    """Status of a SlackAnalysis and of each SlackChannelAnalysis."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ScheduleFrequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class MessageKind(StrEnum):
    """`slack_message.kind` (added in 0004): whether a message is somebody's contribution, the
    one thing about a message's Slack subtype that an analysis needs. The database derives it
    from `subtype` (a generated column, `models.slack.MESSAGE_KIND_SQL`), so every writer
    keeps it right. Replies, bots and deletions have columns of their own
    (`is_thread_reply`, the author's `is_bot`, `is_deleted`)."""

    MESSAGE = "message"
    """Somebody's post: an ordinary message, a reply, a broadcast, a file share, a bot's post."""
    NOTICE = "notice"
    """A system notice (`SYSTEM_NOTICE_SUBTYPES`): nobody's contribution."""


SYSTEM_NOTICE_SUBTYPES = frozenset(
    {
        "channel_join",
        "channel_leave",
        "group_join",
        "group_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "channel_unarchive",
        "group_topic",
        "group_purpose",
        "group_name",
        "group_archive",
        "group_unarchive",
        "pinned_item",
        "unpinned_item",
        "bot_add",
        "bot_remove",
        # A deleted thread parent as Slack shows it while replies remain.
        "tombstone",
    }
)
"""Slack message subtypes that are system notices (`MessageKind.NOTICE`): joins and leaves,
topic, purpose and name changes, archiving, pins, bots added or removed, and tombstones."""
