"""Normalization is pure: Slack payloads in, rows out."""

from datetime import UTC, date, datetime

import pytest

from toban_orchestration.slack import normalize

NAMES = normalize.NameLookup(users={"U1": "alice", "U2": "Bob B."}, channels={"C9": "general"})


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("hi <@U1>", "hi @alice"),
        ("hi <@U1|legacy>", "hi @legacy"),
        ("<@U404> is unknown", "@U404 is unknown"),
        ("see <#C9|general> and <#C9>", "see #general and #general"),
        ("<https://example.com|the docs>", "the docs (https://example.com)"),
        ("<https://example.com>", "https://example.com"),
        (
            "<mailto:a@example.invalid|a@example.invalid>",
            "a@example.invalid (mailto:a@example.invalid)",
        ),
        ("<!here> <!channel> <!everyone>", "@here @channel @everyone"),
        ("<!subteam^S1|@devs> ship it", "@devs ship it"),
        ("a &amp; b &lt;c&gt;", "a & b <c>"),
        ("&lt;@U1&gt; stays literal", "<@U1> stays literal"),
        ("nul\x00byte", "nulbyte"),
    ],
)
def test_render_text_resolves_slack_markup(text: str, rendered: str) -> None:
    assert normalize.render_text(text, NAMES.user, NAMES.channel) == rendered


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("plain ascii", "plain ascii"),
        ("nul\x00in ascii", "nulin ascii"),
        ("café ✓ 日本", "café ✓ 日本"),
        ("café\x00 \ud83d lone", "café  lone"),
        ("\udfff", ""),
    ],
)
def test_clean_text_drops_only_what_postgres_refuses(text: str, cleaned: str) -> None:
    assert normalize.clean_text(text) == cleaned


def test_clean_json_removes_what_postgres_refuses_at_any_depth() -> None:
    value = {"a\x00": ["x\x00y", {"b": "\ud800z"}], "n": 1, "none": None}
    assert normalize.clean_json(value) == {"a": ["xy", {"b": "z"}], "n": 1, "none": None}


def test_timestamps_are_exact_utc() -> None:
    assert normalize.ts_to_datetime("1762000000.000100") == datetime(
        2025, 11, 1, 12, 26, 40, 100, tzinfo=UTC
    )
    oldest, latest = normalize.day_bounds(date(2025, 11, 1))
    assert normalize.ts_to_datetime(oldest) == datetime(2025, 11, 1, tzinfo=UTC)
    assert normalize.ts_to_datetime(latest) == datetime(2025, 11, 1, 23, 59, 59, 999999, tzinfo=UTC)


def test_messages_are_counted_on_their_utc_day() -> None:
    stamps = [
        "1761955200.000000",  # 2025-11-01 00:00:00
        "1762041599.999999",  # 2025-11-01 23:59:59.999999
        "1762041600.000001",  # 2025-11-02
        "1762041601",  # no fraction
        "1.7620416e9",  # unusual, still a time: 2025-11-02 00:00:00
        "86399.5",  # 1970-01-01
    ]
    assert normalize.messages_per_day(stamps) == {
        date(2025, 11, 1): 2,
        date(2025, 11, 2): 3,
        date(1970, 1, 1): 1,
    }
    assert sum(normalize.messages_per_day(stamps).values()) == len(stamps)
    assert {normalize.ts_to_datetime(ts).date() for ts in stamps} == set(
        normalize.messages_per_day(stamps)
    )


def test_thread_parent_reply_and_broadcast() -> None:
    parent = normalize.message_row(
        {
            "ts": "100.000001",
            "thread_ts": "100.000001",
            "user": "U1",
            "text": "q?",
            "reply_count": 2,
            "reply_users": ["U2", "U1"],
            "latest_reply": "300.000001",
        },
        NAMES,
    )
    assert parent["is_thread_parent"]
    assert not parent["is_thread_reply"]
    assert (parent["reply_count"], parent["reply_users_count"], parent["latest_reply_ts"]) == (
        2,
        2,
        "300.000001",
    )
    reply = normalize.message_row(
        {"ts": "200.000001", "thread_ts": "100.000001", "user": "U2", "text": "a"}, NAMES
    )
    assert reply["is_thread_reply"]
    assert not reply["is_thread_parent"]
    broadcast = normalize.message_row(
        {
            "ts": "300.000001",
            "thread_ts": "100.000001",
            "user": "U1",
            "subtype": "thread_broadcast",
        },
        NAMES,
    )
    assert broadcast["is_thread_reply"]
    assert broadcast["subtype"] == "thread_broadcast"
    plain = normalize.message_row({"ts": "400.000001", "user": "U1", "text": "x"}, NAMES)
    assert not plain["is_thread_parent"]
    assert not plain["is_thread_reply"]


def test_tombstone_parent_is_flagged_deleted_but_stays_a_parent() -> None:
    row = normalize.message_row(
        {
            "ts": "100.000001",
            "thread_ts": "100.000001",
            "subtype": "tombstone",
            "text": "This message was deleted.",
            "reply_count": 1,
        },
        NAMES,
    )
    assert row["is_deleted"]
    assert row["is_thread_parent"]
    assert row["author"] is None


def test_edits_attachments_and_files() -> None:
    row = normalize.message_row(
        {
            "ts": "1.000001",
            "user": "U1",
            "text": "fixed",
            "edited": {"user": "U1", "ts": "2.000001"},
            "files": [{"id": "F1", "name": "a\x00.png"}],
        },
        NAMES,
    )
    assert (row["is_edited"], row["edited_ts"]) == (True, "2.000001")
    assert row["has_attachments"]
    assert row["files"] == [{"id": "F1", "name": "a.png"}]


def test_bot_messages_are_attributed_to_their_bot() -> None:
    raw = {
        "ts": "1.000001",
        "subtype": "bot_message",
        "bot_id": "B7",
        "username": "deploybot",
        "text": "deployed",
    }
    row = normalize.message_row(raw, NAMES)
    assert (row["author"], row["message_type"]) == ("B7", "bot_message")
    bot = normalize.bot_user_row(raw)
    assert (bot["slack_id"], bot["name"], bot["is_bot"]) == ("B7", "deploybot", True)
    # A bot that posts with a user id is attributed to that user.
    with_user = normalize.message_row({**raw, "user": "U2", "subtype": None}, NAMES)
    assert with_user["author"] == "U2"


def test_reactions_become_pairs_and_incompleteness_is_seen() -> None:
    raw = {
        "ts": "1.000001",
        "user": "U1",
        "reactions": [
            {"name": "+1", "users": ["U1", "U2", "U2"], "count": 2},
            {"name": "eyes", "users": ["U2"], "count": 5},
        ],
    }
    assert normalize.reaction_pairs(raw) == [("+1", "U1"), ("+1", "U2"), ("eyes", "U2")]
    assert normalize.message_row(raw, NAMES)["reaction_count"] == 3
    # The pairs a caller computed already are counted, not computed again.
    assert normalize.message_row(raw, NAMES, [("+1", "U1")])["reaction_count"] == 1
    assert normalize.reactions_incomplete(raw)
    assert not normalize.reactions_incomplete(
        {"reactions": [{"name": "x", "users": ["U1"], "count": 1}]}
    )


def test_unknown_subtypes_are_kept() -> None:
    row = normalize.message_row({"ts": "1.000001", "user": "U1", "subtype": "huddle_thread"}, NAMES)
    assert row["subtype"] == "huddle_thread"


def test_users_and_channels() -> None:
    user = normalize.user_row(
        {
            "id": "U1",
            "name": "alice",
            "real_name": "Alice A",
            "deleted": True,
            "tz": "Europe/Paris",
            "tz_offset": 3600,
            "profile": {"display_name": "ali", "title": "t" * 300, "image_72": "https://i/72"},
        }
    )
    assert (user["display_name"], user["is_deleted"], user["timezone_offset"]) == (
        "ali",
        True,
        3600,
    )
    assert len(user["title"]) == 255
    assert user["profile_image_url"] == "https://i/72"
    assert normalize.user_row({"id": "USLACKBOT", "name": "slackbot"})["is_bot"]

    private = normalize.channel_row(
        {"id": "G1", "name": "secret", "is_group": True, "created": 1, "members": ["U1", "U2"]}
    )
    assert (private["type"], private["member_count"], private["created_at_ts"]) == (
        "private",
        2,
        "1",
    )
    dm = normalize.channel_row({"id": "D1", "is_im": True, "user": "U2"})
    assert (dm["type"], dm["name"]) == ("im", "dm-U2")
    exported_dm = normalize.channel_row({"id": "D2", "is_im": True, "members": ["U1", "U2"]})
    assert exported_dm["name"] == "dm-U1-U2"
    public = normalize.channel_row(
        {"id": "C1", "name": "general", "purpose": {"value": "p"}, "topic": {"value": ""}}
    )
    assert (public["type"], public["purpose"], public["topic"]) == ("public", "p", None)
