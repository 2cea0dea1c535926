"""A generated Slack export shaped like a real community archive, not like a load test.

The real archive this imitates (208,908 messages, 71 channels over 8.5 years, 26,465 users)
and the checked-in houstondatavis export (tests' data/) share a shape the uniform generator of
test_slack_export.py lacks: most channel-days have no file at all (about a quarter have one, of
3-4 messages on average), a few channels carry most of the traffic, channels are created over
the years (so their first years are empty), most members never post, and a share of the
messages are joins, file shares, bot posts, edits, reactions and thread replies. What costs an
import is per channel-day and per user as much as per message, so the benchmark needs this shape.

Deterministic for a given seed. Returns the counts the import must reproduce row for row.
"""

import datetime
import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

TEAM = "T0ARCHIVE"
START = datetime.date(2016, 1, 1)
_BASE = int(datetime.datetime(2016, 1, 1, tzinfo=datetime.UTC).timestamp())
_EMOJI = ("+1", "tada", "heart", "eyes", "joy", "raised_hands", "white_check_mark", "fire")
_VOCABULARY = (
    "the data chart meetup talk slides anyone tried this library looks great thanks for "
    "sharing we could next week visualization dashboard python d3 map link here question about"
)
_WORDS = _VOCABULARY.split()


@dataclass
class ArchiveCounts:
    messages: int = 0
    reactions: int = 0  # (message, emoji, user) rows
    users: int = 0  # users.json entries plus the bots that post without a user id
    channels: int = 0
    channel_days: int = 0  # channels x every day of the archive's first-to-last range
    day_files: int = 0
    replies: int = 0
    thread_parents: int = 0


def _profile(user_id: str, name: str, rng: random.Random) -> dict[str, Any]:
    avatar = f"https://secure.gravatar.com/avatar/{rng.getrandbits(128):032x}.jpg"
    return {
        "avatar_hash": f"g{rng.getrandbits(44):011x}",
        "real_name": name.replace(".", " ").title(),
        "real_name_normalized": name.replace(".", " ").title(),
        "display_name": name if rng.random() < 0.6 else "",
        "email": f"{name}@example.invalid",
        "title": "",
        "phone": "",
        "team": TEAM,
        **{f"image_{size}": f"{avatar}?s={size}" for size in (24, 32, 48, 72, 192, 512)},
        "fields": None,
    }


def _users(count: int, rng: random.Random) -> list[dict[str, Any]]:
    users = []
    for i in range(count):
        user_id = f"U{i:08X}"
        name = f"member.{i}"
        users.append(
            {
                "id": user_id,
                "team_id": TEAM,
                "name": name,
                "deleted": rng.random() < 0.05,
                "color": "43761b",
                "real_name": name.replace(".", " ").title(),
                "tz": "America/Chicago",
                "tz_label": "Central Standard Time",
                "tz_offset": -21600,
                "profile": _profile(user_id, name, rng),
                "is_admin": i < 5,
                "is_owner": i == 0,
                "is_bot": False,
                "updated": _BASE,
            }
        )
    return users


def _text(rng: random.Random, users: list[dict[str, Any]], author_weights: list[float]) -> str:
    words = rng.choices(_WORDS, k=max(1, int(rng.lognormvariate(2.3, 0.8))))
    if rng.random() < 0.1:
        mentioned = rng.choices(users, cum_weights=author_weights)[0]["id"]
        words.insert(0, f"<@{mentioned}>")
    if rng.random() < 0.05:
        words.append("<https://example.invalid/post|a post>")
    return " ".join(words)


def write_archive_export(
    root: Path,
    *,
    channels: int = 70,
    days: int = 3000,
    messages: int = 200_000,
    users: int = 25_000,
    seed: int = 2016,
) -> ArchiveCounts:
    """Write the export as unzipped folders under `root` (created)."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    people = _users(users, rng)
    (root / "users.json").write_text(json.dumps(people, indent=4))
    # Most members never post: authors follow a steep power law over the member list.
    author_weights = list(accumulate(1 / (i + 1) ** 1.1 for i in range(users)))
    bots = [f"B{i:08X}" for i in range(5)]
    counts = ArchiveCounts(users=users, channels=channels)

    # A few channels carry most of the traffic (#general about a third of it).
    channel_weights = [1 / (c + 1) ** 1.2 for c in range(channels)]
    total_weight = sum(channel_weights)
    per_channel = [int(messages * w / total_weight) for w in channel_weights]
    per_channel[0] += messages - sum(per_channel)

    listed = []
    bots_used: set[str] = set()
    first_day, last_day = days, -1
    for c in range(channels):
        channel_id = f"C{c:08X}"
        name = "general" if c == 0 else f"topic-{c:03d}"
        # Channels appear over the years; some fall silent (archived) before the end.
        created = 0 if c == 0 else rng.randrange(int(days * 0.8))
        ends = days if c == 0 or rng.random() < 0.7 else rng.randrange(created + 30, days + 30)
        ends = min(ends, days)
        span = ends - created
        # Bursty days: a lognormal activity level a day, so that most days stay empty.
        day_weights = list(accumulate(rng.lognormvariate(0, 1.2) for _ in range(span)))
        per_day: dict[int, list[dict[str, Any]]] = defaultdict(list)
        written = 0
        sequence = 0  # unique microseconds a channel: no two messages share a ts

        def stamp(day: int, second: int) -> str:
            nonlocal sequence
            sequence += 1
            return f"{_BASE + day * 86_400 + second}.{sequence:06d}"

        while written < per_channel[c]:
            day = created + rng.choices(range(span), cum_weights=day_weights)[0]
            second = rng.randrange(86_400 - 7200)
            ts = stamp(day, second)
            author = rng.choices(people, cum_weights=author_weights)[0]["id"]
            message: dict[str, Any] = {"type": "message", "ts": ts}
            kind = rng.random()
            if kind < 0.10:
                message |= {
                    "subtype": "channel_join",
                    "user": author,
                    "text": f"<@{author}> has joined the channel",
                }
            elif kind < 0.12:
                bot = rng.choice(bots)
                bots_used.add(bot)
                message |= {
                    "subtype": "bot_message",
                    "bot_id": bot,
                    "username": f"bot {bot[-1]}",
                    "text": _text(rng, people, author_weights),
                }
            else:
                message |= {
                    "client_msg_id": f"{c:08x}-{sequence:04x}-4000-8000-{rng.getrandbits(48):012x}",
                    "user": author,
                    "text": _text(rng, people, author_weights),
                    "team": TEAM,
                    "blocks": [{"type": "rich_text", "block_id": "b", "elements": []}],
                }
                if kind > 0.96:
                    message |= {
                        "subtype": "file_share",
                        "files": [{"id": f"F{rng.getrandbits(40):010X}", "name": "chart.png"}],
                    }
                if rng.random() < 0.03:
                    message["edited"] = {"user": author, "ts": f"{_BASE + day * 86_400 + 60}.0"}
            if rng.random() < 0.07:
                reactions = []
                for emoji in rng.sample(_EMOJI, k=rng.choice((1, 1, 1, 2, 3))):
                    reactors = {
                        p["id"]
                        for p in rng.choices(
                            people, cum_weights=author_weights, k=rng.randint(1, 4)
                        )
                    }
                    reactions.append(
                        {"name": emoji, "users": sorted(reactors), "count": len(reactors)}
                    )
                    counts.reactions += len(reactors)
                message["reactions"] = reactions
            per_day[day].append(message)
            written += 1
            # Threads: about one plain message in twelve gets replies, minutes to hours later,
            # each in the day file of its own date (which may be the next day).
            room = per_channel[c] - written
            if "user" in message and "subtype" not in message and room and rng.random() < 0.08:
                replies = min(room, max(1, int(rng.expovariate(1 / 3))))
                reply_users: list[str] = []
                latest = ts
                reply_second = second
                for _ in range(replies):
                    # Seconds from the parent's midnight; never past the channel's last day.
                    reply_second = min(
                        reply_second + rng.randrange(30, 7200), (ends - day) * 86_400 - 1
                    )
                    replier = rng.choices(people, cum_weights=author_weights)[0]["id"]
                    reply_ts = stamp(day, reply_second)
                    per_day[day + reply_second // 86_400].append(
                        {
                            "type": "message",
                            "ts": reply_ts,
                            "user": replier,
                            "text": _text(rng, people, author_weights),
                            "thread_ts": ts,
                            "parent_user_id": author,
                        }
                    )
                    reply_users.append(replier)
                    latest = max(latest, reply_ts, key=float)
                message |= {
                    "thread_ts": ts,
                    "reply_count": replies,
                    "reply_users_count": len(set(reply_users)),
                    "reply_users": sorted(set(reply_users)),
                    "latest_reply": latest,
                }
                written += replies
                counts.replies += replies
                counts.thread_parents += 1
        counts.messages += written
        folder = root / name
        folder.mkdir()
        for day, day_messages in per_day.items():
            day_messages.sort(key=lambda m: float(m["ts"]))
            on = START + datetime.timedelta(days=day)
            (folder / f"{on.isoformat()}.json").write_text(json.dumps(day_messages, indent=4))
        counts.day_files += len(per_day)
        if per_day:
            first_day, last_day = min(first_day, *per_day), max(last_day, *per_day)
        listed.append(
            {
                "id": channel_id,
                "name": name,
                "created": _BASE + created * 86_400,
                "creator": people[0]["id"],
                "is_archived": ends < days,
                "is_general": c == 0,
                "members": [],
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": f"About {name}", "creator": "", "last_set": 0},
            }
        )
    (root / "channels.json").write_text(json.dumps(listed, indent=4))
    counts.users += len(bots_used)
    counts.channel_days = channels * (last_day - first_day + 1) if last_day >= 0 else 0
    return counts


def describe(counts: ArchiveCounts) -> str:
    mean = counts.messages / counts.day_files if counts.day_files else math.nan
    return (
        f"{counts.messages:,} messages ({counts.replies:,} thread replies to "
        f"{counts.thread_parents:,} parents), {counts.reactions:,} reactions, "
        f"{counts.users:,} users, {counts.channels} channels; {counts.day_files:,} day files "
        f"of {counts.channel_days:,} channel-days ({counts.day_files / counts.channel_days:.0%}"
        f", {mean:.1f} messages a file)"
    )
