"""Checks that would catch a broken sync of one workspace-day, from the database."""

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine, text

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
    params = {"slack_id": slack_id, "start": day_start(day), "day": day}
    with engine.connect() as connection:
        base = (
            "FROM slack_message m JOIN slack_channel c ON c.id = m.channel_id "
            "JOIN slack_workspace w ON w.id = c.workspace_id WHERE w.slack_id = :slack_id "
            "AND m.message_datetime >= :start AND m.message_datetime < :start + interval '1 day' "
        )
        orphans = connection.execute(
            text(
                "SELECT count(*) " + base + "AND m.is_thread_reply AND m.parent_id IS NULL "
                "AND NOT m.is_deleted"
            ),
            params,
        ).scalar_one()
        authorless = connection.execute(
            text(
                "SELECT count(*) " + base + "AND m.user_id IS NULL AND NOT m.is_deleted "
                "AND coalesce(m.subtype, '') NOT IN ('tombstone', 'file_comment', 'channel_join', "
                "'channel_leave', 'bot_add', 'bot_remove')"
            ),
            params,
        ).scalar_one()
        incomplete = connection.execute(
            text(
                "SELECT c.name, c.slack_id FROM slack_channel c JOIN slack_workspace w "
                "ON w.id = c.workspace_id LEFT JOIN slack_sync_day d ON d.channel_id = c.id "
                "AND d.day = :day WHERE w.slack_id = :slack_id AND c.is_selected_for_analysis "
                "AND c.is_supported AND NOT (c.is_archived AND NOT c.has_bot) "
                "AND (d.complete IS NULL OR NOT d.complete) ORDER BY c.name, c.slack_id"
            ),
            params,
        ).all()
    names = tuple(f"#{name} ({slack_id})" for name, slack_id in incomplete)
    return DayHealth(int(orphans), int(authorless), len(names), names)
