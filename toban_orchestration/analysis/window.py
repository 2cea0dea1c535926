"""What an analysis reads: one channel's messages and reactions in a time window, from the
database, without what is not somebody's contribution (deleted messages, join/leave and other
system notices, and bots unless asked for)."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select
from sqlalchemy.orm import aliased

from toban_orchestration.db.models import SlackChannel, SlackMessage, SlackReaction, SlackUser
from toban_orchestration.slack.normalize import SYSTEM_SUBTYPES, display_name


@dataclass(frozen=True)
class WindowMessage:
    id: uuid.UUID
    ts: str
    at: datetime
    author: str
    """Slack id of the author (user or bot)."""
    text: str
    thread_ts: str | None
    is_reply: bool
    parent_author: str | None
    """Author of the thread's parent, for replies (the parent may be older than the window)."""
    parent_is_question: bool
    reply_count: int


@dataclass(frozen=True)
class WindowReaction:
    message_id: uuid.UUID
    user: str
    emoji: str


@dataclass
class ChannelWindow:
    channel_id: uuid.UUID
    channel_name: str
    start: datetime
    end: datetime
    messages: list[WindowMessage] = field(default_factory=list)
    reactions: list[WindowReaction] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    """Slack id -> display name, for everyone who wrote or reacted."""
    user_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    """Slack id -> slack_user.id."""


def includes_bots(parameters: dict[str, Any] | None) -> bool:
    """An analysis counts bots' messages only when its parameters ask for it."""
    return bool((parameters or {}).get("include_bots", False))


def analyzable(start: datetime, end: datetime, *, include_bots: bool) -> list[ColumnElement[bool]]:
    """The messages an analysis of [start, end) counts (joined with their SlackUser author)."""
    conditions = [
        SlackMessage.message_datetime >= start,
        SlackMessage.message_datetime < end,
        SlackMessage.is_deleted.is_(False),
        SlackMessage.user_id.isnot(None),
        (SlackMessage.subtype.is_(None)) | (SlackMessage.subtype.not_in(SYSTEM_SUBTYPES)),
    ]
    if not include_bots:
        conditions.append(SlackUser.is_bot.is_(False))
    return conditions


def count_analyzable_messages(
    connection: Connection,
    channel_ids: list[uuid.UUID],
    start: datetime,
    end: datetime,
    *,
    include_bots: bool = False,
) -> dict[uuid.UUID, int]:
    """Per channel, how many messages `load_channel_window` would read now."""
    rows = connection.execute(
        select(SlackMessage.channel_id, func.count())
        .join(SlackUser, SlackUser.id == SlackMessage.user_id)
        .where(
            SlackMessage.channel_id.in_(channel_ids),
            *analyzable(start, end, include_bots=include_bots),
        )
        .group_by(SlackMessage.channel_id)
    )
    counts = dict.fromkeys(channel_ids, 0)
    for channel_id, count in rows:
        counts[channel_id] = int(count)
    return counts


def load_channel_window(
    connection: Connection,
    channel_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    include_bots: bool = False,
) -> ChannelWindow:
    channel_name = connection.execute(
        select(SlackChannel.name).where(SlackChannel.id == channel_id)
    ).scalar_one()
    window = ChannelWindow(channel_id, channel_name, start, end)
    parent = aliased(SlackMessage)
    parent_user = aliased(SlackUser)
    conditions = [
        SlackMessage.channel_id == channel_id,
        *analyzable(start, end, include_bots=include_bots),
    ]
    rows = connection.execute(
        select(
            SlackMessage.id,
            SlackMessage.slack_ts,
            SlackMessage.message_datetime,
            SlackUser.slack_id,
            SlackUser.id,
            SlackUser.display_name,
            SlackUser.real_name,
            SlackUser.name,
            SlackMessage.processed_text,
            SlackMessage.thread_ts,
            SlackMessage.is_thread_reply,
            parent_user.slack_id,
            parent.processed_text.contains("?"),
            SlackMessage.reply_count,
        )
        .join(SlackUser, SlackUser.id == SlackMessage.user_id)
        .outerjoin(
            parent,
            and_(
                parent.channel_id == SlackMessage.channel_id,
                parent.slack_ts == SlackMessage.thread_ts,
                SlackMessage.is_thread_reply,
            ),
        )
        .outerjoin(parent_user, parent_user.id == parent.user_id)
        .where(*conditions)
        .order_by(SlackMessage.slack_ts)
    )
    for row in rows:
        (mid, ts, at, author, author_id, display, real, name, text, thread_ts, is_reply,
         parent_author, parent_is_question, reply_count) = row  # fmt: skip
        window.names[author] = display_name(
            {"display_name": display, "real_name": real, "name": name}
        )
        window.user_ids[author] = author_id
        window.messages.append(
            WindowMessage(
                id=mid,
                ts=ts,
                at=at,
                author=author,
                text=text or "",
                thread_ts=thread_ts,
                is_reply=is_reply,
                parent_author=parent_author,
                parent_is_question=bool(parent_is_question),
                reply_count=reply_count,
            )
        )
    message_ids = [m.id for m in window.messages]
    if message_ids:
        reactions = connection.execute(
            select(
                SlackReaction.message_id,
                SlackUser.slack_id,
                SlackUser.id,
                SlackUser.display_name,
                SlackUser.real_name,
                SlackUser.name,
                SlackReaction.emoji_name,
                SlackUser.is_bot,
            )
            .join(SlackUser, SlackUser.id == SlackReaction.user_id)
            .where(SlackReaction.message_id.in_(message_ids))
            .order_by(SlackReaction.message_id, SlackUser.slack_id, SlackReaction.emoji_name)
        )
        for message_id, user, user_id, display, real, name, emoji, is_bot in reactions:
            if is_bot and not include_bots:
                continue
            window.names.setdefault(
                user, display_name({"display_name": display, "real_name": real, "name": name})
            )
            window.user_ids.setdefault(user, user_id)
            window.reactions.append(WindowReaction(message_id, user, emoji))
    return window
