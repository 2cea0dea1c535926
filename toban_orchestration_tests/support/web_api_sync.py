"""The Web API sync's test kit: a workspace of the local Slack server registered in the
database, the row-for-row comparison of what was stored with the server's ground truth, and
random changes to make (the tests of the ways a change reaches the database, events and
reconciliation, each make the same kinds of change and check the same equality)."""

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from toban_orchestration.db.enums import MessageKind
from toban_orchestration.db.models import SlackChannel, Team
from toban_orchestration.security.tokens import TokenCipher
from toban_orchestration.slack import ingest, normalize
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration.slack.workspaces import register_token_workspace
from toban_orchestration_tests.fakes.slack_server import Channel, FakeSlackServer, FakeWorkspace

TOKEN = "xoxb-sync-test-0123456789"
START = date(2026, 11, 1)
DAYS = 3
LAST = START + timedelta(DAYS - 1)
REACTIONS = ("thumbsup", "eyes", "tada", "rocket", "white_check_mark")
"""What ``make_random_changes`` reacts with."""


@dataclass
class Connected:
    """A workspace of the local server registered in the database, ready to sync."""

    engine: Engine
    workspace: FakeWorkspace
    server: FakeSlackServer
    cipher: TokenCipher
    slack_id: str

    def sync_all(self, first: date = START, last: date = LAST) -> ingest.IngestResult:
        ingest.refresh_workspace(self.engine, self.cipher, self.slack_id)
        ingest.refresh_users(self.engine, self.cipher, self.slack_id)
        ingest.refresh_channels(self.engine, self.cipher, self.slack_id)
        return ingest.sync_message_days(self.engine, self.cipher, self.slack_id, first, last)

    def select_all_channels(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(SlackChannel).values(is_selected_for_analysis=True))

    def member_channels(self) -> list[str]:
        """The public and private channels the app can read: the ones compared."""
        return [
            c.id for c in self.workspace.channels if c.is_member and c.kind in ("public", "private")
        ]


def connect(
    engine: Engine,
    server: FakeSlackServer,
    workspace: FakeWorkspace,
    cipher: TokenCipher,
    *,
    token: str = TOKEN,
    sync: SyncOptions | None = None,
    team_slug: str = "acme",
) -> Connected:
    server.add_workspace(workspace, token=token)
    with Session(engine) as session, session.begin():
        team = session.scalar(select(Team).where(Team.slug == team_slug))
        if team is None:
            team = Team(name=team_slug, slug=team_slug)
            session.add(team)
            session.flush()
        registered = register_token_workspace(
            session,
            team_id=team.id,
            token=token,
            cipher=cipher,
            base_url=server.base_url,
            sync=sync or SyncOptions(pacing=False, page_size=50, retry_backoff_seconds=0.01),
        )
        slack_id = registered.slack_id
    return Connected(engine, workspace, server, cipher, slack_id)


def stored_messages(engine: Engine, channel_slack_id: str) -> dict[str, tuple[object, ...]]:
    """What the database says Slack holds: deleted messages are gone, as is a tombstone whose
    replies are all deleted (Slack drops it then)."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT m.slack_ts, m.thread_ts, m.is_thread_reply, u.slack_id, m.subtype, m.kind, "
                "m.is_edited, m.text, m.is_deleted, m.reply_count, m.reaction_count, "
                "p.slack_ts AS parent_ts "
                "FROM slack_message m JOIN slack_channel c ON c.id = m.channel_id "
                "LEFT JOIN slack_user u ON u.id = m.user_id "
                "LEFT JOIN slack_message p ON p.id = m.parent_id "
                "WHERE c.slack_id = :channel AND NOT (m.is_deleted AND "
                "(m.subtype IS DISTINCT FROM 'tombstone' OR m.reply_count = 0))"
            ),
            {"channel": channel_slack_id},
        )
        return {row[0]: tuple(row[1:]) for row in rows}


def expected_kind(subtype: str | None) -> str:
    """`slack_message.kind` by the Python rule: a system notice, or somebody's message."""
    notice = subtype in normalize.SYSTEM_SUBTYPES
    return (MessageKind.NOTICE if notice else MessageKind.MESSAGE).value


def expected_messages(workspace: FakeWorkspace, channel_id: str) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    pairs = workspace.all_reaction_pairs(channel_id)
    for message in workspace.message_dicts(channel_id):
        ts = message["ts"]
        thread_ts = message.get("thread_ts")
        is_reply = bool(thread_ts) and thread_ts != ts
        out[ts] = (
            thread_ts,
            is_reply,
            message.get("user") or message.get("bot_id"),
            message.get("subtype"),
            expected_kind(message.get("subtype")),
            "edited" in message,
            normalize.clean_text(message.get("text")),
            message.get("subtype") == "tombstone",
            message.get("reply_count", 0),
            len(set(pairs.get(ts, []))),
            thread_ts if is_reply else None,
        )
    return out


def stored_reactions(engine: Engine, channel_slack_id: str) -> set[tuple[str, str, str]]:
    with engine.connect() as connection:
        return {
            (ts, emoji, user)
            for ts, emoji, user in connection.execute(
                text(
                    "SELECT m.slack_ts, r.emoji_name, u.slack_id FROM slack_reaction r "
                    "JOIN slack_message m ON m.id = r.message_id "
                    "JOIN slack_channel c ON c.id = m.channel_id "
                    "JOIN slack_user u ON u.id = r.user_id WHERE c.slack_id = :channel "
                    "AND NOT m.is_deleted"
                ),
                {"channel": channel_slack_id},
            )
        }


def expected_reactions(workspace: FakeWorkspace, channel_id: str) -> set[tuple[str, str, str]]:
    return {
        (ts, emoji, user)
        for ts, pairs in workspace.all_reaction_pairs(channel_id).items()
        for emoji, user in pairs
    }


def synced_channels(connected: Connected) -> list[str]:
    with connected.engine.connect() as connection:
        return list(
            connection.execute(
                select(SlackChannel.slack_id).where(
                    SlackChannel.is_selected_for_analysis, SlackChannel.is_supported
                )
            ).scalars()
        )


def assert_matches_ground_truth(connected: Connected, channels: list[str]) -> None:
    assert channels
    for channel_id in channels:
        if not connected.workspace.channel(channel_id).is_member:
            continue
        assert stored_messages(connected.engine, channel_id) == expected_messages(
            connected.workspace, channel_id
        ), channel_id
        assert stored_reactions(connected.engine, channel_id) == expected_reactions(
            connected.workspace, channel_id
        ), channel_id


def archive_without_the_app(workspace: FakeWorkspace) -> Channel:
    """The generated archived public channel, with the app no longer in it."""
    archived = workspace.channel_by_name("old-project")
    assert archived.is_archived
    assert archived.kind == "public"
    archived.is_member = False
    archived.members.remove(workspace.bot_user_id)
    return archived


def differences(engine: Engine, workspace: FakeWorkspace, channels: list[str]) -> list[str]:
    """Every row where the database and the server disagree, described; empty when equal."""
    out: list[str] = []
    for channel_id in channels:
        stored = stored_messages(engine, channel_id)
        expected = expected_messages(workspace, channel_id)
        for ts in sorted(stored.keys() | expected.keys()):
            if stored.get(ts) != expected.get(ts):
                out.append(f"{channel_id} {ts}: stored {stored.get(ts)} != {expected.get(ts)}")
        reactions = stored_reactions(engine, channel_id) ^ expected_reactions(workspace, channel_id)
        out += [f"{channel_id} reaction differs: {r}" for r in sorted(reactions)]
    return out


@dataclass
class Changes:
    made: Counter[str]
    """Kinds of change made, counted (message and reply separately)."""


def make_random_changes(
    workspace: FakeWorkspace,
    channels: list[str],
    rng: random.Random,
    rounds: int = 40,
    *,
    newer_than_ts: str | None = None,
) -> Changes:
    """Edits, deletions, late replies, new messages and reactions added and removed, on
    top-level messages and on replies, spread over `channels` (only messages at or after
    `newer_than_ts`, when given)."""
    made: Counter[str] = Counter()
    humans = [u.id for u in workspace.users if not u.is_bot and not u.deleted]
    for _ in range(rounds):
        channel_id = rng.choice(channels)
        messages = [
            m
            for m in workspace.message_dicts(channel_id)
            if m.get("subtype") in (None, "thread_broadcast")
            and (newer_than_ts is None or float(m["ts"]) >= float(newer_than_ts))
        ]
        kind = rng.choice(
            ["edit", "edit", "delete", "reply", "reply", "react", "react", "unreact", "post"]
        )
        if kind == "unreact":  # among the messages that have a reaction to take back
            messages = [m for m in messages if m.get("reactions")]
        if not messages:
            continue
        target = rng.choice(messages)
        ts = target["ts"]
        where = "reply" if target.get("thread_ts") not in (None, ts) else "message"
        if kind == "edit":
            workspace.edit_message(channel_id, ts, f"edited {rng.random():.6f} <@{humans[0]}>")
        elif kind == "delete":
            workspace.delete_message(channel_id, ts)
        elif kind == "reply":
            workspace.add_reply(
                channel_id, ts, user=rng.choice(humans), broadcast=rng.random() < 0.15
            )
        elif kind == "post":
            workspace.add_message(channel_id, user=rng.choice(humans))
            where = "channel"
        elif kind == "react":
            user = rng.choice(humans)
            emoji = rng.choice(REACTIONS)
            if (emoji, user) in workspace.reaction_pairs(channel_id, ts):
                continue
            workspace.add_reaction(channel_id, ts, emoji, user)
        else:
            pairs = workspace.reaction_pairs(channel_id, ts)
            if not pairs:
                continue
            emoji, user = rng.choice(pairs)
            workspace.remove_reaction(channel_id, ts, emoji, user)
        made[f"{kind} {where}"] += 1
    return Changes(made)
