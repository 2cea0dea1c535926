"""Raw Slack payloads (Web API or export, same shapes) to rows for our tables.

Pure functions: no I/O, no database, no Dagster, so they are cheap to test exhaustively. Rows are
plain dicts keyed by column name; references to other rows stay as Slack ids (user `U...`,
thread_ts) and are resolved to UUIDs by the store.
"""

import html
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from toban_orchestration.db.enums import SYSTEM_NOTICE_SUBTYPES, ChannelType

Row = dict[str, Any]

# Characters PostgreSQL refuses in text and JSONB: NUL, and lone UTF-16 surrogates that a JSON
# decoder lets through.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MENTION = re.compile(r"<([@#!])([^>|]+)(?:\|([^>]*))?>|<([^>|]+)(?:\|([^>]*))?>")
TOMBSTONE_SUBTYPE = "tombstone"
TOMBSTONE_TEXT = "This message was deleted."
SLACKBOT = "USLACKBOT"
BROADCAST_SUBTYPE = "thread_broadcast"
# Subtypes that are system notices, not somebody's contribution: the database derives
# `slack_message.kind` from them (db/enums.py, migration 0004).
SYSTEM_SUBTYPES = SYSTEM_NOTICE_SUBTYPES


def clean_text(value: str | None) -> str | None:
    if value is None:
        return None
    if value.isascii() and "\x00" not in value:  # most text: a surrogate is never ASCII
        return value
    return _UNSTORABLE.sub("", value)


def clean_json(value: Any) -> Any:
    """Drop characters PostgreSQL refuses anywhere in a JSON value (keys included)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    return value


def _cap(value: object, length: int) -> str | None:
    """A string column's value, cleaned and cut to the column's length."""
    if value is None or value == "":
        return None
    text = clean_text(str(value)) or ""
    return text[:length] or None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _is_plain_ts(whole: str, fraction: str) -> bool:
    """Whether a ts split at its dot is digits, as Slack writes them; anything else goes the
    exact, slower way (`Decimal`)."""
    return whole.isdigit() and (not fraction or fraction.isdigit())


def ts_to_datetime(ts: str) -> datetime:
    """Slack's "seconds.micro" timestamp as an aware UTC datetime, exact to the microsecond
    (integer arithmetic on the two halves: a float would round)."""
    whole, _, fraction = ts.partition(".")
    if _is_plain_ts(whole, fraction):
        micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
        return _EPOCH + timedelta(0, int(whole), micro)  # positional: a fifth faster
    seconds = Decimal(ts)  # anything unusual ("1.5e9"): exact, slower, and errors clearly
    whole_seconds = int(seconds)
    return _EPOCH + timedelta(
        seconds=whole_seconds, microseconds=int((seconds - whole_seconds) * 1_000_000)
    )


def messages_per_day(stamps: Iterable[str]) -> Counter[date]:
    """How many of these Slack timestamps fall on each UTC day: counted by whole days since
    the epoch, so that a datetime is made once a day instead of once a message."""
    days_since_epoch: Counter[int] = Counter()
    per_day: Counter[date] = Counter()
    for ts in stamps:
        whole, _, fraction = ts.partition(".")
        if _is_plain_ts(whole, fraction):
            days_since_epoch[int(whole) // 86_400] += 1
        else:  # anything unusual goes the exact way
            per_day[ts_to_datetime(ts).date()] += 1
    epoch_day = _EPOCH.date()
    for number, count in days_since_epoch.items():
        per_day[epoch_day + timedelta(days=number)] += count
    return per_day


def day_bounds(day: date) -> tuple[str, str]:
    """`oldest` and `latest` for conversations.history with inclusive=true covering one UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    first = int(start.timestamp())
    return f"{first}.000000", f"{first + 86_399}.999999"


# --- users ---------------------------------------------------------------------------------


def user_row(raw: Mapping[str, Any]) -> Row:
    profile: Mapping[str, Any] = raw.get("profile") or {}
    image = next(
        (profile[k] for k in ("image_192", "image_72", "image_512", "image_48") if profile.get(k)),
        None,
    )
    return {
        "slack_id": raw["id"],
        "name": _cap(raw.get("name"), 255),
        "display_name": _cap(profile.get("display_name"), 255),
        "real_name": _cap(raw.get("real_name") or profile.get("real_name"), 255),
        "email": _cap(profile.get("email"), 255),
        "title": _cap(profile.get("title"), 255),
        "phone": _cap(profile.get("phone"), 50),
        "timezone": _cap(raw.get("tz"), 100),
        "timezone_offset": raw.get("tz_offset"),
        "profile_image_url": _cap(image, 1024),
        "is_bot": bool(raw.get("is_bot")) or raw["id"] == "USLACKBOT",
        "is_admin": bool(raw.get("is_admin")),
        "is_deleted": bool(raw.get("deleted")),
        "profile_data": clean_json(profile) or None,
    }


def bot_user_row(raw_message: Mapping[str, Any]) -> Row:
    """A bot that posts without a user id becomes a user keyed by its bot id, so that all its
    messages are attributed to one row."""
    profile: Mapping[str, Any] = raw_message.get("bot_profile") or {}
    name = raw_message.get("username") or profile.get("name") or raw_message["bot_id"]
    return {
        "slack_id": raw_message["bot_id"],
        "name": _cap(name, 255),
        "display_name": _cap(name, 255),
        "real_name": _cap(profile.get("name"), 255),
        "is_bot": True,
        "profile_data": clean_json(dict(profile)) or None,
    }


def display_name(user: Mapping[str, Any]) -> str:
    """How a person is named: display name, else real name, else username, else "". The
    database stores it as `slack_user.display_label` (generated from the same columns by
    `models.slack.DISPLAY_LABEL_SQL`, which must agree with this rule)."""
    return str(user.get("display_name") or user.get("real_name") or user.get("name") or "")


# --- channels ------------------------------------------------------------------------------


def channel_type(raw: Mapping[str, Any]) -> ChannelType:
    if raw.get("is_im"):
        return ChannelType.IM
    if raw.get("is_mpim"):
        return ChannelType.MPIM
    if raw.get("is_private") or raw.get("is_group"):
        return ChannelType.PRIVATE
    return ChannelType.PUBLIC


def channel_row(raw: Mapping[str, Any]) -> Row:
    kind = channel_type(raw)
    name = raw.get("name")
    if not name and kind is ChannelType.IM:
        # The API names the other person in `user`; an export has only `members`.
        other = raw.get("user") or "-".join(str(m) for m in raw.get("members") or [])
        name = f"dm-{other}" if other else raw["id"]
    members = raw.get("members")
    member_count = raw.get("num_members")
    if member_count is None and isinstance(members, list):
        member_count = len(members)
    created = raw.get("created")
    return {
        "slack_id": raw["id"],
        "name": _cap(name or raw["id"], 255),
        "type": kind.value,
        "purpose": _cap((raw.get("purpose") or {}).get("value"), 1024),
        "topic": _cap((raw.get("topic") or {}).get("value"), 1024),
        "member_count": member_count,
        "is_archived": bool(raw.get("is_archived")),
        "created_at_ts": str(created) if created is not None else None,
        "has_bot": bool(raw.get("is_member")),
    }


# --- messages ------------------------------------------------------------------------------


def author_id(raw: Mapping[str, Any]) -> str | None:
    """The Slack id a message is attributed to: its user, else its bot."""
    user = raw.get("user")
    if user:
        return str(user)
    bot = raw.get("bot_id")
    return str(bot) if bot else None


def is_bot_message(raw: Mapping[str, Any]) -> bool:
    return raw.get("subtype") == "bot_message" or (not raw.get("user") and bool(raw.get("bot_id")))


def reaction_pairs(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(emoji, user) pairs of a message, each once."""
    pairs: dict[tuple[str, str], None] = {}
    for reaction in raw.get("reactions") or []:
        name = reaction.get("name")
        for user in reaction.get("users") or []:
            if name and user:
                pairs[(str(name), str(user))] = None
    return list(pairs)


def reactions_incomplete(raw: Mapping[str, Any]) -> bool:
    """Slack lists at most a few users per reaction; `count` says how many there are."""
    return any(
        int(r.get("count") or 0) > len(r.get("users") or []) for r in raw.get("reactions") or []
    )


def render_text(
    text: str | None,
    user_name: Callable[[str], str | None],
    channel_name: Callable[[str], str | None],
) -> str | None:
    """Slack markup to readable text: <@U1> -> @name, <#C1|x> -> #x, <url|label> -> label
    (url), <!here> -> @here; then &amp; &lt; &gt; decoded."""
    if text is None:
        return None

    def replace(match: re.Match[str]) -> str:
        sigil, target, label, link, link_label = match.groups()
        if sigil == "@":
            name = label or user_name(target)
            return f"@{name or target}"
        if sigil == "#":
            name = label or channel_name(target)
            return f"#{name or target}"
        if sigil == "!":
            special = target.split("^", 1)[0]
            if special.startswith("subteam"):
                name = label or special
                return name if name.startswith("@") else f"@{name}"
            if special.startswith("date"):
                return label or special
            return f"@{special}"
        if link_label and link_label != link:
            return f"{link_label} ({link})"
        return str(link)

    return html.unescape(_MENTION.sub(replace, clean_text(text) or ""))


@dataclass(frozen=True)
class NameLookup:
    """Slack ids to names, for rendering text."""

    users: Mapping[str, str]
    channels: Mapping[str, str]

    def user(self, slack_id: str) -> str | None:
        return self.users.get(slack_id)

    def channel(self, slack_id: str) -> str | None:
        return self.channels.get(slack_id)


def message_row(
    raw: Mapping[str, Any],
    names: NameLookup,
    reactions: Sequence[tuple[str, str]] | None = None,
) -> Row:
    """`reactions`: the message's `reaction_pairs`, when the caller has them already."""
    ts = str(raw["ts"])
    thread_ts = raw.get("thread_ts")
    subtype = raw.get("subtype")
    is_reply = bool(thread_ts) and thread_ts != ts
    reply_count = int(raw.get("reply_count") or 0)
    reply_users = raw.get("reply_users") or []
    attachments = raw.get("attachments")
    files = raw.get("files")
    edited = raw.get("edited") or {}
    text = raw.get("text")
    return {
        "slack_ts": ts,
        "slack_id": _cap(raw.get("client_msg_id") or ts, 255),
        "author": author_id(raw),
        "text": clean_text(text),
        "processed_text": render_text(text, names.user, names.channel),
        "message_type": "bot_message"
        if is_bot_message(raw)
        else _cap(raw.get("type"), 50) or "message",
        "subtype": _cap(subtype, 50),
        "is_edited": bool(edited),
        "edited_ts": _cap(edited.get("ts"), 50),
        "has_attachments": bool(attachments or files),
        "attachments": clean_json(attachments) if attachments else None,
        "files": clean_json(files) if files else None,
        "thread_ts": _cap(thread_ts, 50),
        "is_thread_parent": not is_reply
        and bool(thread_ts)
        and (reply_count > 0 or subtype == TOMBSTONE_SUBTYPE),
        "is_thread_reply": is_reply,
        "reply_count": reply_count,
        "reply_users_count": int(raw.get("reply_users_count") or len(reply_users)),
        "latest_reply_ts": _cap(raw.get("latest_reply"), 50),
        "reaction_count": len(reaction_pairs(raw) if reactions is None else reactions),
        "message_datetime": ts_to_datetime(ts),
        "is_deleted": subtype == TOMBSTONE_SUBTYPE,
    }


def tombstone(ts: str) -> dict[str, Any]:
    """A deleted thread parent as Slack shows it while replies remain (history and replies
    return this in its place)."""
    return {
        "type": "message",
        "subtype": TOMBSTONE_SUBTYPE,
        "text": TOMBSTONE_TEXT,
        "user": SLACKBOT,
        "hidden": True,
        "ts": ts,
        "thread_ts": ts,
    }


def authors_and_reactors(messages: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every Slack user or bot id a batch of messages refers to as author or reactor."""
    ids: set[str] = set()
    for raw in messages:
        author = author_id(raw)
        if author:
            ids.add(author)
        ids.update(user for _, user in reaction_pairs(raw))
    return ids
