"""Checks that would catch a broken sync of one workspace-day, from the database."""

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine

from toban_orchestration.slack.store import (
    authorless_message_count,
    incomplete_channel_names,
    orphan_reply_count,
)
from toban_orchestration.slack.sync import day_start


@dataclass(frozen=True)
class DayHealth:
    orphan_replies: int
    """Replies whose parent is not stored (and whose thread's parent is not known to Slack as
    deleted): a thread fetch that did not finish."""
    authorless_messages: int
    """Messages with neither a user nor a bot to attribute them to, system notices aside."""
    incomplete_channels: int
    """Selected channels whose day is not recorded as read to its last page, those the app
    cannot read aside (unsupported, or archived without the app in it: nothing to read there)."""
    incomplete_channel_names: tuple[str, ...] = field(default=(), compare=False)
    """The channels `incomplete_channels` counts, as "#name (slack id)". Not compared: two
    healths are equal by their counts."""


def day_health(engine: Engine, slack_id: str, day: date) -> DayHealth:
    start = day_start(day)
    with engine.connect() as connection:
        orphans = orphan_reply_count(connection, slack_id, start)
        authorless = authorless_message_count(connection, slack_id, start)
        incomplete = incomplete_channel_names(connection, slack_id, day)
    names = tuple(f"#{name} ({slack_id})" for name, slack_id in incomplete)
    return DayHealth(orphans, authorless, len(names), names)
