"""The real Slack export, ingested into a real database, checked against its own files."""

import json
import shutil
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from toban_orchestration.db.models import (
    SlackChannel,
    SlackMessage,
    SlackReaction,
    SlackSyncDay,
    SlackUser,
    SlackWorkspace,
    Team,
)
from toban_orchestration.slack import ingest, normalize
from toban_orchestration.slack.export import ExportFormatError
from toban_orchestration.slack.ingest import import_export_workspace
from toban_orchestration.slack.normalize import reaction_pairs
from toban_orchestration.slack.sample import zip_folder
from toban_orchestration.slack.store import planned_message_rows

EXPORT = Path(__file__).parents[1] / "data" / "slack-export-houstondatavis"


def _expected() -> dict[str, object]:
    """What the archive holds, counted straight from its files."""
    per_channel: Counter[str] = Counter()
    reactions = edited = authored = 0
    for day_file in EXPORT.glob("*/*.json"):
        messages = json.loads(day_file.read_text())
        per_channel[day_file.parent.name] += len(messages)
        for message in messages:
            reactions += len(reaction_pairs(message))
            edited += "edited" in message
            authored += bool(message.get("user"))
    users = json.loads((EXPORT / "users.json").read_text())
    return {
        "users": {user["id"] for user in users},
        "per_channel": per_channel,
        "reactions": reactions,
        "edited": edited,
        "authored": authored,
    }


def _expected_kinds() -> dict[tuple[str, str], str]:
    """(channel, ts) -> `slack_message.kind` by the Python rule, from the archive's files."""
    kinds: dict[tuple[str, str], str] = {}
    for day_file in EXPORT.glob("*/*.json"):
        for message in json.loads(day_file.read_text()):
            notice = message.get("subtype") in normalize.SYSTEM_SUBTYPES
            kinds[(day_file.parent.name, message["ts"])] = "notice" if notice else "message"
    return kinds


@pytest.fixture
def team_id(migrated_engine: Engine) -> uuid.UUID:
    with Session(migrated_engine) as session, session.begin():
        team = Team(name="Houston Data Vis", slug="houston")
        session.add(team)
        session.flush()
        return team.id


def _count(engine: Engine, statement: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(statement).scalar_one())  # type: ignore[call-overload]


def test_real_export_lands_row_for_row(migrated_engine: Engine, team_id: uuid.UUID) -> None:
    expected = _expected()
    result = import_export_workspace(migrated_engine, EXPORT, team_id)

    assert result.users.report.users.inserted == 71
    assert result.channels.report.channels.inserted == 16
    assert result.messages.report.messages.inserted == 1382
    assert result.messages.report.reactions.inserted == expected["reactions"]
    with Session(migrated_engine) as session:
        assert set(session.scalars(select(SlackUser.slack_id))) == expected["users"]
        counts = dict(
            session.execute(
                select(SlackChannel.name, func.count(SlackMessage.id))
                .join(SlackMessage, SlackMessage.channel_id == SlackChannel.id)
                .group_by(SlackChannel.name)
            ).all()
        )
        assert counts == dict(expected["per_channel"])  # type: ignore[call-overload]
        assert (
            session.scalar(
                select(func.count()).select_from(SlackMessage).where(SlackMessage.is_edited)
            )
            == expected["edited"]
        )
        assert (
            session.scalar(
                select(func.count())
                .select_from(SlackMessage)
                .where(SlackMessage.user_id.isnot(None))
            )
            == expected["authored"]
        )
        assert (
            session.scalar(select(func.count()).select_from(SlackReaction)) == expected["reactions"]
        )
        # reaction_count is kept in step with the reaction rows
        mismatched = session.execute(
            text(
                "SELECT count(*) FROM slack_message m WHERE m.reaction_count <> "
                "(SELECT count(*) FROM slack_reaction r WHERE r.message_id = m.id)"
            )
        ).scalar_one()
        assert mismatched == 0
        workspace = session.scalars(select(SlackWorkspace)).one()
        assert workspace.slack_id == result.slack_id
        # A message's kind and a person's display label, as the Python rules say
        kinds = {
            (channel, ts): kind
            for channel, ts, kind in session.execute(
                select(SlackChannel.name, SlackMessage.slack_ts, SlackMessage.kind).join(
                    SlackChannel, SlackChannel.id == SlackMessage.channel_id
                )
            )
        }
        assert kinds == _expected_kinds()
        assert Counter(kinds.values()) == {"message": 1031, "notice": 351}
        labels = dict(session.execute(select(SlackUser.slack_id, SlackUser.display_label)).all())
        assert labels == {
            raw["id"]: normalize.display_name(normalize.user_row(raw))
            for raw in json.loads((EXPORT / "users.json").read_text())
        }
        days = session.scalar(select(func.count()).select_from(SlackSyncDay))
        # every channel, every day of the imported range (the archive's first to last day):
        # a day without a file had no messages and is as complete as the others
        dates = sorted(date.fromisoformat(f.stem) for f in EXPORT.glob("*/*.json"))
        channels = sum(1 for p in EXPORT.iterdir() if p.is_dir())
        spans = channels * ((dates[-1] - dates[0]).days + 1)
        assert days == spans


def test_reimporting_the_same_export_changes_nothing(
    migrated_engine: Engine, team_id: uuid.UUID, tmp_path: Path
) -> None:
    import_export_workspace(migrated_engine, EXPORT, team_id)
    with migrated_engine.connect() as connection:
        before = connection.execute(
            text("SELECT id, slack_ts, updated_at FROM slack_message ORDER BY id")
        ).all()
    # The same export as the zip Slack hands out: its channels are read by several threads
    # from one zip file, and give the same rows.
    again = import_export_workspace(
        migrated_engine, zip_folder(EXPORT, tmp_path / "houston.zip"), team_id
    )
    report = again.messages.report
    assert (report.messages.inserted, report.messages.updated, report.messages.deleted) == (0, 0, 0)
    assert (report.reactions.inserted, report.reactions.deleted) == (0, 0)
    assert again.users.report.users.updated == 0
    with migrated_engine.connect() as connection:
        after = connection.execute(
            text("SELECT id, slack_ts, updated_at FROM slack_message ORDER BY id")
        ).all()
    assert after == before


def test_a_broken_day_file_is_named_and_stored_data_is_kept(
    migrated_engine: Engine, team_id: uuid.UUID, tmp_path: Path
) -> None:
    copy = tmp_path / "export"
    shutil.copytree(EXPORT, copy)
    import_export_workspace(migrated_engine, copy, team_id)
    stored = _count(migrated_engine, select(func.count()).select_from(SlackMessage))

    (copy / "general" / "2015-06-10.json").write_text('[{"ts": "1433955600.000002", ')
    with pytest.raises(ExportFormatError, match=r"general/2015-06-10\.json.*bad JSON at line 1"):
        import_export_workspace(migrated_engine, copy, team_id)
    assert _count(migrated_engine, select(func.count()).select_from(SlackMessage)) == stored


def _write_quiet_channel(root: Path, per_day: dict[date, int]) -> None:
    """An export of one channel with `per_day[day]` messages in each day's file, and no file
    for the days in between (a quiet channel of a long archive)."""
    (root / "quiet").mkdir(parents=True)
    users = [{"id": f"U{i:08d}", "team_id": "T0QUIET01", "name": f"user{i}"} for i in range(3)]
    (root / "users.json").write_text(json.dumps(users))
    created = int(datetime.combine(min(per_day), datetime.min.time(), UTC).timestamp())
    channel = {"id": "C0QUIET01", "name": "quiet", "created": created, "members": []}
    (root / "channels.json").write_text(json.dumps([channel]))
    for day, count in per_day.items():
        midnight = int(datetime.combine(day, datetime.min.time(), UTC).timestamp())
        messages: list[dict[str, Any]] = [
            {
                "type": "message",
                "user": users[n % 3]["id"],
                "text": f"note {n}",
                "ts": f"{midnight + 60 * n}.000100",
            }
            for n in range(count)
        ]
        if count > 1:  # a thread, and a reaction: the day's count covers replies too
            messages[1] |= {"thread_ts": messages[0]["ts"], "parent_user_id": users[0]["id"]}
            messages[0] |= {"thread_ts": messages[0]["ts"], "reply_count": 1}
            messages[0]["reactions"] = [{"name": "tada", "users": [users[2]["id"]], "count": 1}]
        (root / "quiet" / f"{day.isoformat()}.json").write_text(json.dumps(messages))


def test_a_long_quiet_range_records_every_day_and_reimporting_changes_nothing(
    migrated_engine: Engine, team_id: uuid.UUID, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Statistics are taken once an import has inserted this many messages (20,000 in use).
    monkeypatch.setattr(ingest, "EXPORT_ANALYZE_AFTER_MESSAGES", 5)
    first = date(2019, 3, 1)
    per_day = {first: 2, first + timedelta(17): 1, first + timedelta(200): 3}
    per_day[first + timedelta(399)] = 1
    _write_quiet_channel(tmp_path / "export", per_day)

    def sync_days() -> list[tuple[object, ...]]:
        with migrated_engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    select(
                        SlackSyncDay.id,
                        SlackSyncDay.day,
                        SlackSyncDay.message_count,
                        SlackSyncDay.api_calls,
                        SlackSyncDay.complete,
                    ).order_by(SlackSyncDay.day)
                )
            ]

    result = import_export_workspace(migrated_engine, tmp_path / "export", team_id)
    assert result.messages.report.messages.inserted == 7
    with migrated_engine.connect() as connection:
        # Taken after the one page of 7 messages (before: none, as on a new database).
        assert planned_message_rows(connection) == 7
    assert (result.first_day, result.last_day) == (first, first + timedelta(399))
    recorded = sync_days()
    # Every day of the 400, once, complete; the days without a file with no messages.
    assert [(day, count, calls, complete) for _, day, count, calls, complete in recorded] == [
        (first + timedelta(n), per_day.get(first + timedelta(n), 0), 0, True) for n in range(400)
    ]
    with migrated_engine.connect() as connection:
        messages_before = connection.execute(
            text("SELECT id, slack_ts, parent_id, updated_at FROM slack_message ORDER BY id")
        ).all()
        # A reply stored in the same page as its parent points at it.
        replies = connection.execute(
            text(
                "SELECT r.parent_id = p.id FROM slack_message r JOIN slack_message p "
                "ON p.channel_id = r.channel_id AND p.slack_ts = r.thread_ts "
                "WHERE r.is_thread_reply"
            )
        ).scalars()
        assert list(replies) == [True, True]

    again = import_export_workspace(migrated_engine, tmp_path / "export", team_id)
    report = again.messages.report
    assert (report.messages.inserted, report.messages.updated, report.messages.deleted) == (0, 0, 0)
    assert (report.reactions.inserted, report.reactions.deleted) == (0, 0)
    assert (again.users.report.users.inserted, again.users.report.users.updated) == (0, 0)
    channels = again.channels.report.channels
    assert (channels.inserted, channels.updated) == (0, 0)
    # The same rows (same ids: upserted, not added again), counting the same messages.
    assert sync_days() == recorded
    with migrated_engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT id, slack_ts, parent_id, updated_at FROM slack_message ORDER BY id")
            ).all()
            == messages_before
        )

    # A message gone from its day file is one deleted since the last export: it is flagged.
    day_file = tmp_path / "export" / "quiet" / f"{(first + timedelta(200)).isoformat()}.json"
    messages = json.loads(day_file.read_text())
    day_file.write_text(json.dumps(messages[:2]))
    third = import_export_workspace(migrated_engine, tmp_path / "export", team_id)
    assert third.messages.report.messages.deleted == 1
    with migrated_engine.connect() as connection:
        deleted = connection.execute(
            select(SlackMessage.slack_ts).where(SlackMessage.is_deleted)
        ).scalars()
        assert list(deleted) == [messages[2]["ts"]]
