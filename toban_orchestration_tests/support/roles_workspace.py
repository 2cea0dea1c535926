"""Workspace TROLES: a week of #platform where each person plays one role (asker, helper,
coordinator, reactor, bot), so analyses have known rankings. Seeded straight into the store."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from toban_orchestration.db.models import (
    SlackWorkspace,
    Team,
)
from toban_orchestration.slack.normalize import NameLookup
from toban_orchestration.slack.store import SlackStore
from toban_orchestration.slack.sync import ChannelRef, ChannelSync, SyncReport

START = datetime(2026, 11, 2, tzinfo=UTC)
END = START + timedelta(days=7)
USERS = {
    "UHELP": "helper",
    "UASK": "asker",
    "UCOORD": "coordinator",
    "UREACT": "reactor",
    "UBOT": "deploybot",
}


def _ts(minutes: int) -> str:
    return f"{int((START + timedelta(minutes=minutes)).timestamp())}.000100"


def role_messages() -> list[dict[str, Any]]:
    """A week of #platform: the asker asks, the helper answers in threads (with links and code),
    the coordinator plans and mentions people, the reactor only reacts, a bot posts."""
    out: list[dict[str, Any]] = []
    minute = 0
    for day in range(5):
        minute = day * 24 * 60 + 60
        question = _ts(minute)
        answer_1, answer_2 = _ts(minute + 5), _ts(minute + 9)
        out.append(
            {
                "ts": question,
                "user": "UASK",
                "text": f"How do I rotate the deploy token on day {day}?",
                "thread_ts": question,
                "reply_count": 2,
                "reply_users": ["UHELP"],
                "latest_reply": answer_2,
                "reactions": [{"name": "eyes", "users": ["UREACT"], "count": 1}],
            }
        )
        out.append(
            {
                "ts": answer_1,
                "user": "UHELP",
                "thread_ts": question,
                "text": "Run `toban keys generate`, see <https://docs.example.invalid/k|the docs>",
                "reactions": [{"name": "pray", "users": ["UASK", "UREACT"], "count": 2}],
            }
        )
        out.append(
            {
                "ts": answer_2,
                "user": "UHELP",
                "thread_ts": question,
                "text": "Then restart the workers; it takes a minute.",
            }
        )
        out.append(
            {
                "ts": _ts(minute + 30),
                "user": "UCOORD",
                "text": f"Let's schedule the release planning meeting tomorrow, <@UHELP> <@UASK> "
                f"please join (day {day})",
                "reactions": [{"name": "+1", "users": ["UREACT", "UHELP"], "count": 2}],
            }
        )
        out.append(
            {
                "ts": _ts(minute + 40),
                "bot_id": "BDEPLOY",
                "subtype": "bot_message",
                "username": "deploybot",
                "text": f"deployed build {day}",
            }
        )
        out.append(
            {"ts": _ts(minute + 50), "user": "UREACT", "subtype": "channel_join", "text": "joined"}
        )
    return out


def seed_roles_workspace(engine: Engine) -> uuid.UUID:
    """Workspace TROLES with #platform holding `role_messages()`; returns the channel's id."""
    migrated_engine = engine
    with Session(migrated_engine) as session, session.begin():
        team = Team(name="Acme", slug="acme")
        session.add(team)
        session.flush()
        workspace = SlackWorkspace(team_id=team.id, slack_id="TROLES", name="Roles")
        session.add(workspace)
        session.flush()
        workspace_id = workspace.id
    with migrated_engine.begin() as connection:
        store = SlackStore(connection, workspace_id)
        store.upsert_users(
            {"slack_id": k, "name": v, "is_bot": k == "UBOT"} for k, v in USERS.items()
        )
        store.upsert_channels(
            [{"slack_id": "CPLAT", "name": "platform", "type": "public", "is_archived": False}],
            select_public=True,
            join_public=True,  # it starts selected: the app may join it
            from_export=False,
        )
        channel_id: uuid.UUID = connection.execute(
            text("SELECT id FROM slack_channel")
        ).scalar_one()
    sync = ChannelSync(
        None,
        migrated_engine,
        workspace_id,
        ChannelRef(channel_id, "CPLAT", "platform", "public"),
        NameLookup(users=USERS, channels={"CPLAT": "platform"}),
        SyncReport(),
    )
    sync.store_page(role_messages())
    return channel_id
