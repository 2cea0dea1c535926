"""What an analysis reads: one channel's messages and reactions in a time window, without what
is not somebody's contribution (deleted messages, join/leave and other system notices, and bots
unless asked for). The shape lives here; `store.load_channel_window` reads it from the database
(`store.analyzable` states the rule as SQL conditions)."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
    """Slack id -> display label (`slack_user.display_label`), for everyone who wrote or
    reacted."""
    user_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    """Slack id -> slack_user.id."""


def includes_bots(parameters: dict[str, Any] | None) -> bool:
    """An analysis counts bots' messages only when its parameters ask for it."""
    return bool((parameters or {}).get("include_bots", False))
