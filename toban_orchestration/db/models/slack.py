import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from toban_orchestration.db.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from toban_orchestration.db.enums import (
    SYSTEM_NOTICE_SUBTYPES,
    AnalysisStatus,
    ChannelType,
    MessageKind,
    ScheduleFrequency,
)
from toban_orchestration.db.types import one_of


def _flag(default: bool = False) -> Mapped[bool]:
    return mapped_column(Boolean, default=default, server_default=true() if default else false())


def _count() -> Mapped[int]:
    return mapped_column(Integer, default=0, server_default=text("0"))


# Columns the database derives at every write (added in 0004, docs/data-model.md), so that an
# analysis reads what it needs instead of recomputing it from Slack's fields, and no writer (the
# Web API sync, an export import, an Events API edit, a user_change) can leave them stale. The
# expressions are written as PostgreSQL prints them back, so that Alembic's comparison (which
# cannot alter a generated column, only warn) notices when they change without a migration.
DISPLAY_LABEL_SQL = "COALESCE(" + ", ".join(
    [f"NULLIF(({column})::text, ''::text)" for column in ("display_name", "real_name", "name")]
    + ["''::text)"]
)
"""How a person is named (`slack.normalize.display_name`'s rule): the display name, else the
real name, else the username, else ''."""
_NOTICES = ", ".join(f"'{notice}'::character varying" for notice in sorted(SYSTEM_NOTICE_SUBTYPES))
MESSAGE_KIND_SQL = (
    f"CASE WHEN ((subtype)::text = ANY ((ARRAY[{_NOTICES}])::text[])) "
    f"THEN '{MessageKind.NOTICE.value}'::text ELSE '{MessageKind.MESSAGE.value}'::text END"
)
"""A message's `MessageKind`: a notice when its Slack subtype is one of
`SYSTEM_NOTICE_SUBTYPES`, else a message (no subtype included)."""


def _status() -> Mapped[str]:
    pending = AnalysisStatus.PENDING.value
    return mapped_column(String(50), default=pending, server_default=pending)


class SlackWorkspace(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A connected Slack workspace; its tokens are stored encrypted."""

    __tablename__ = "slack_workspace"

    # RESTRICT: a workspace's messages are deleted only by an explicit purge, never as a side
    # effect of deleting its team.
    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("team.id", ondelete="RESTRICT"), index=True
    )
    slack_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str | None] = mapped_column(String(255))
    icon_url: Mapped[str | None] = mapped_column(String(1024))
    team_size: Mapped[int | None] = mapped_column(Integer)
    workspace_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    is_connected: Mapped[bool] = _flag(True)
    connection_status: Mapped[str | None] = mapped_column(String(50))
    last_connected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    access_token: Mapped[str | None] = mapped_column(String(1024))
    refresh_token: Mapped[str | None] = mapped_column(String(1024))
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SlackChannel(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A channel (or DM) of a workspace, with its sync and selection state."""

    __tablename__ = "slack_channel"
    __table_args__ = (
        UniqueConstraint("workspace_id", "slack_id"),
        one_of("type", ChannelType),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_workspace.id", ondelete="CASCADE")
    )
    slack_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(50), default=ChannelType.PUBLIC.value)
    purpose: Mapped[str | None] = mapped_column(String(1024))
    topic: Mapped[str | None] = mapped_column(String(1024))
    member_count: Mapped[int | None] = mapped_column(Integer)
    is_archived: Mapped[bool] = _flag()
    created_at_ts: Mapped[str | None] = mapped_column(String(50))
    has_bot: Mapped[bool] = _flag()
    bot_joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_selected_for_analysis: Mapped[bool] = _flag()
    is_supported: Mapped[bool] = _flag(True)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    oldest_synced_ts: Mapped[str | None] = mapped_column(String(50))
    latest_synced_ts: Mapped[str | None] = mapped_column(String(50))


class SlackUser(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A member (person or bot) of a workspace."""

    __tablename__ = "slack_user"
    __table_args__ = (UniqueConstraint("workspace_id", "slack_id"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_workspace.id", ondelete="CASCADE")
    )
    slack_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    real_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(50))
    timezone: Mapped[str | None] = mapped_column(String(100))
    timezone_offset: Mapped[int | None] = mapped_column(Integer)
    profile_image_url: Mapped[str | None] = mapped_column(String(1024))
    is_bot: Mapped[bool] = _flag()
    is_admin: Mapped[bool] = _flag()
    is_deleted: Mapped[bool] = _flag()
    profile_data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Added in 0004: the name analyses and reports show, derived by the database.
    display_label: Mapped[str] = mapped_column(
        String(255), Computed(DISPLAY_LABEL_SQL, persisted=True)
    )


class SlackMessage(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A message or thread reply; identified in Slack by (channel, ts)."""

    __tablename__ = "slack_message"
    __table_args__ = (
        # The natural key that upserts target. Its index also serves SCHEMA.md's
        # "SlackMessage channel_id/slack_ts" performance index, so no second index is built.
        UniqueConstraint("channel_id", "slack_ts"),
        Index("ix_slack_message_user_id_slack_ts", "user_id", "slack_ts"),
    )

    channel_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_channel.id", ondelete="CASCADE")
    )
    # SET NULL: erasing a user's profile must not delete other people's replies to them; the
    # erasure job deletes the user's own messages explicitly.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_user.id", ondelete="SET NULL")
    )
    # SET NULL: a reply survives its parent's removal and keeps thread_ts to find the thread.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_message.id", ondelete="SET NULL"), index=True
    )
    slack_id: Mapped[str | None] = mapped_column(String(255))
    slack_ts: Mapped[str] = mapped_column(String(50))
    text: Mapped[str | None] = mapped_column(Text)
    processed_text: Mapped[str | None] = mapped_column(Text)
    message_type: Mapped[str] = mapped_column(String(50), default="message")
    subtype: Mapped[str | None] = mapped_column(String(50))
    is_edited: Mapped[bool] = _flag()
    edited_ts: Mapped[str | None] = mapped_column(String(50))
    has_attachments: Mapped[bool] = _flag()
    attachments: Mapped[list[Any] | None] = mapped_column(JSONB)
    files: Mapped[list[Any] | None] = mapped_column(JSONB)
    thread_ts: Mapped[str | None] = mapped_column(String(50), index=True)
    is_thread_parent: Mapped[bool] = _flag()
    is_thread_reply: Mapped[bool] = _flag()
    reply_count: Mapped[int] = _count()
    reply_users_count: Mapped[int] = _count()
    reaction_count: Mapped[int] = _count()
    message_datetime: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    is_analyzed: Mapped[bool] = _flag()
    message_category: Mapped[str | None] = mapped_column(String(100))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    analysis_data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Added in 0002 (docs/data-model.md): a message deleted in Slack is kept, flagged and
    # excluded from analyses; `latest_reply_ts` lets a re-sync fetch only threads that changed.
    is_deleted: Mapped[bool] = _flag()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    latest_reply_ts: Mapped[str | None] = mapped_column(String(50))
    # Added in 0004: message or notice (`MessageKind`), derived by the database from `subtype`.
    kind: Mapped[str] = mapped_column(String(20), Computed(MESSAGE_KIND_SQL, persisted=True))


class SlackReaction(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One user's emoji reaction on one message."""

    __tablename__ = "slack_reaction"
    __table_args__ = (UniqueConstraint("message_id", "user_id", "emoji_name"),)

    message_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_message.id", ondelete="CASCADE")
    )
    # CASCADE: a reaction is the reacting user's own data and goes with an erased user.
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_user.id", ondelete="CASCADE"), index=True
    )
    emoji_name: Mapped[str] = mapped_column(String(255))
    emoji_code: Mapped[str | None] = mapped_column(String(255))
    reaction_ts: Mapped[str | None] = mapped_column(String(50))


class SlackSyncDay(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """How far one channel-day has been synced (added in 0002).

    It records a finished sync of the day (all pages read), and when the threads of that day's
    messages were last checked for new replies, so that a daily run re-reads only what may have
    changed and a check can find a day that stopped before its last page.
    """

    __tablename__ = "slack_sync_day"
    __table_args__ = (UniqueConstraint("channel_id", "day"),)

    channel_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_channel.id", ondelete="CASCADE")
    )
    day: Mapped[date] = mapped_column(Date)
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    threads_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_count: Mapped[int] = _count()
    api_calls: Mapped[int] = _count()
    complete: Mapped[bool] = _flag()


class SlackEventInbox(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An Events API delivery, stored before Slack is acknowledged (added in 0003).

    The receiver writes one row per Slack `event_id` (a redelivery is a no-op) in one short
    transaction and only then acknowledges, so an event is either here or redelivered by Slack.
    The applier (a Dagster sensor) applies pending rows in order and marks them; applied rows
    are pruned after a retention period. The payload is Slack text: erasure and retention
    treat it like messages.
    """

    __tablename__ = "slack_event_inbox"
    __table_args__ = (
        UniqueConstraint("event_id"),
        # The applier's queue: pending events of a workspace, oldest first.
        Index(
            "ix_slack_event_inbox_pending",
            "team_id",
            "event_time",
            "id",
            postgresql_where=text("applied_at IS NULL"),
        ),
        # A poll re-applies the events of the channels it just wrote (events that raced it).
        Index("ix_slack_event_inbox_channel", "team_id", "channel_slack_id", "event_time"),
        # Pruning of applied events.
        Index("ix_slack_event_inbox_applied_at", "applied_at"),
    )

    event_id: Mapped[str] = mapped_column(String(255))
    team_id: Mapped[str] = mapped_column(String(255))
    """The Slack workspace id (T...), as Slack sent it."""
    event_type: Mapped[str] = mapped_column(String(100))
    event_subtype: Mapped[str | None] = mapped_column(String(100))
    channel_slack_id: Mapped[str | None] = mapped_column(String(255))
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    transport: Mapped[str] = mapped_column(String(20))
    """socket_mode or http."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """The envelope's `event`, as Slack sent it (cleaned of characters PostgreSQL refuses)."""
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    deliveries: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    """How many times Slack delivered it (retries land on the same row)."""
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(50))
    """applied, dropped (a channel not synced, a kind we do not follow), or failed."""
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = _count()
    """Applications tried; an event waiting for its message is retried a few times."""


slack_analysis_channels = Table(
    "slack_analysis_channels",
    Base.metadata,
    Column(
        "analysis_id",
        UUID(as_uuid=True),
        ForeignKey("slack_analysis.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "channel_id",
        UUID(as_uuid=True),
        ForeignKey("slack_channel.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)
"""Which channels an analysis covers (SlackChannel }o--o{ SlackAnalysis)."""


class SlackAnalysis(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One analysis run (scheduled or requested) over a workspace and a time window."""

    __tablename__ = "slack_analysis"
    __table_args__ = (
        one_of("status", AnalysisStatus),
        one_of("schedule_frequency", ScheduleFrequency),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_workspace.id", ondelete="CASCADE"), index=True
    )
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    llm_model: Mapped[str | None] = mapped_column(String(255))
    analysis_type: Mapped[str | None] = mapped_column(String(50))
    is_scheduled: Mapped[bool] = _flag()
    schedule_frequency: Mapped[str | None] = mapped_column(String(50))
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = _status()
    progress: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    error_message: Mapped[str | None] = mapped_column(Text)
    result_summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    completion_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SlackContribution(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A user's contribution scores and counts in one analysis (per channel, or overall)."""

    __tablename__ = "slack_contribution"
    __table_args__ = (
        # Re-running an analysis replaces its rows; NULLS NOT DISTINCT makes the overall row
        # (channel_id NULL) unique too.
        UniqueConstraint(
            "analysis_id", "user_id", "channel_id", postgresql_nulls_not_distinct=True
        ),
    )

    analysis_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_analysis.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_user.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_channel.id", ondelete="CASCADE"), index=True
    )
    problem_solving_score: Mapped[float | None] = mapped_column(Float)
    knowledge_sharing_score: Mapped[float | None] = mapped_column(Float)
    team_coordination_score: Mapped[float | None] = mapped_column(Float)
    engagement_score: Mapped[float | None] = mapped_column(Float)
    total_score: Mapped[float | None] = mapped_column(Float)
    message_count: Mapped[int] = _count()
    thread_reply_count: Mapped[int] = _count()
    reaction_given_count: Mapped[int] = _count()
    reaction_received_count: Mapped[int] = _count()
    notable_contributions: Mapped[list[Any] | None] = mapped_column(JSONB)
    insights: Mapped[str | None] = mapped_column(Text)
    insights_data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class SlackChannelAnalysis(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """The LLM (or offline) report for one channel in one analysis."""

    __tablename__ = "slack_channel_analysis"
    __table_args__ = (
        UniqueConstraint("analysis_id", "channel_id"),
        one_of("status", AnalysisStatus),
    )

    analysis_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_analysis.id", ondelete="CASCADE")
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("slack_channel.id", ondelete="CASCADE"), index=True
    )
    start_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message_count: Mapped[int] = _count()
    participant_count: Mapped[int] = _count()
    thread_count: Mapped[int] = _count()
    reaction_count: Mapped[int] = _count()
    channel_summary: Mapped[str | None] = mapped_column(Text)
    topic_analysis: Mapped[str | None] = mapped_column(Text)
    contributor_insights: Mapped[str | None] = mapped_column(Text)
    key_highlights: Mapped[str | None] = mapped_column(Text)
    model_used: Mapped[str | None] = mapped_column(String(255))
    generated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    raw_response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = _status()
    error_message: Mapped[str | None] = mapped_column(Text)
