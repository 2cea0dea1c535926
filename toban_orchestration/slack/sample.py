"""A generated Slack workspace: one seeded, pure model that every sample workspace is built from.

The demo (``toban demo``), the export tests and benchmarks, and the tests' local Slack server all
use this module: ``generate`` (or ``demo_workspace``) builds the model once, and adapters render
it, as the Web API answers (``SampleWorkspace.render_*``, which the local server serves) or as a
Slack export folder (``write_export``). No I/O but ``write_export``; no randomness but the seeded
generator's, so a seed always gives the same workspace.

Why this shape:

* Sync tests compare a database with the workspace row for row, so every derived field (a
  parent's ``reply_count``/``reply_users``/``latest_reply``, a reaction's ``count``) is computed
  from the stored messages when a message is rendered. Mutations (the test server's) therefore
  cannot leave them inconsistent.
* A benchmark generates a million messages or more. Messages are ``__slots__`` objects holding
  integers and shared strings; text, ``client_msg_id``, attachments and files of generated
  messages are derived from a hash of (channel, ts) when rendered instead of being stored.
* Each channel keeps its history-visible messages sorted by ts, with a parallel list of integer
  timestamps for ``bisect``, so a request costs time proportional to the page it returns.

Timestamps are integers of microseconds inside (``1762000000.000100`` is ``1762000000000100``):
Slack ts strings have a fixed six-digit fraction, so integer order equals Slack's order.
"""

from __future__ import annotations

import bisect
import gc
import json
import random
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

JSONDict = dict[str, Any]

TS_SCALE: Final = 1_000_000
"""Microseconds per second: the unit of the integer timestamps used inside."""

DAY_US: Final = 86_400 * TS_SCALE

# Subtypes. Shared string objects, so a million messages store one pointer each.
CHANNEL_JOIN: Final = "channel_join"
CHANNEL_LEAVE: Final = "channel_leave"
BOT_MESSAGE: Final = "bot_message"
FILE_SHARE: Final = "file_share"
HUDDLE_THREAD: Final = "huddle_thread"
THREAD_BROADCAST: Final = "thread_broadcast"
TOMBSTONE: Final = "tombstone"

TOMBSTONE_TEXT: Final = "This message was deleted."
SLACKBOT_USER: Final = "USLACKBOT"
MASK64: Final = (1 << 64) - 1
_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _split(text: str, separator: str | None = None) -> tuple[str, ...]:
    """Word lists are written as strings: one line holds many names."""
    return tuple(text.split(separator))


_FIRST_NAMES: Final = _split(
    "Ada Grace Linus Margaret Alan Barbara Dennis Frances Ken Radia Edsger Hedy Donald "
    "Katherine John Sophie Tim Annie Guido Joan"
)
_LAST_NAMES: Final = _split(
    "Lovelace,Hopper,Torvalds,Hamilton,Turing,Liskov,Ritchie,Allen,Thompson,Perlman,Dijkstra,"
    "Lamarr,Knuth,Johnson,McCarthy,Wilson,Berners-Lee,Easley,van Rossum,Clarke",
    ",",
)
_TITLES: Final = _split(
    "Engineer,Senior Engineer,Designer,Product Manager,Data Scientist,Support Lead,"
    "Engineering Manager,,Recruiter,SRE",
    ",",
)
_TIMEZONES: Final = (
    ("America/Los_Angeles", "Pacific Standard Time", -28_800),
    ("America/New_York", "Eastern Standard Time", -18_000),
    ("Europe/London", "Greenwich Mean Time", 0),
    ("Europe/Paris", "Central European Time", 3_600),
    ("Asia/Kolkata", "India Standard Time", 19_800),
    ("Asia/Tokyo", "Japan Standard Time", 32_400),
)
_CHANNEL_NAMES: Final = _split(
    "general random engineering design product support marketing sales ops data releases "
    "incidents hiring watercooler announcements security"
)
_WORDS: Final = _split(
    "the deploy is done can you review my pull request please thanks looks good to me standup "
    "in five minutes who owns this bug fixed on staging prod lunch today meeting notes shipped "
    "new feature flag rollback latency dashboard alert pager coffee docs updated schema "
    "migration query slow cache hit test green red flaky retry tomorrow friday sprint plan "
    "design mock spec ok great"
)
REACTION_NAMES: Final = _split(
    "thumbsup heart tada eyes white_check_mark joy rocket pray +1 fire thumbsup::skin-tone-3 "
    "raised_hands"
)

assert len(_WORDS) == 64  # text generation picks words with 6-bit slices of a hash

_WORD_SHIFTS: Final = tuple(tuple(range(4, 4 + 6 * (3 + n), 6)) for n in range(8))
"""The bit offsets of the 3 to 10 words of a generated text, by ``h & 7``: built once, not per
message."""

# The bits ``uuid.UUID(..., version=4)`` forces: the version nibble (4) and the RFC 4122 variant.
_UUID4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def ts_to_int(ts: str) -> int:
    """Parse a Slack ts (``"1762000000.000100"``, also ``"1762000000"``) into microseconds.

    Raises ValueError for anything else, so the server can answer ``invalid_ts_*`` errors.
    """
    seconds, _, fraction = ts.strip().partition(".")
    if not seconds.isdigit() or len(fraction) > 6 or (fraction and not fraction.isdigit()):
        raise ValueError(f"not a Slack timestamp: {ts!r}")
    return int(seconds) * TS_SCALE + int(fraction.ljust(6, "0"))


def int_to_ts(value: int) -> str:
    """Format microseconds as a Slack ts string with its six-digit fraction."""
    # A quarter cheaper than an f-string, and the server formats one or more per message.
    return "%d.%06d" % divmod(value, TS_SCALE)  # noqa: UP031 (speed, see above)


def mix64(value: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread hash used to derive message content from ts."""
    z = (value + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _uuid4_string(value: int) -> str:
    """``str(uuid.UUID(int=value, version=4))`` for a 128-bit ``value``, without building the
    UUID object: a third of the cost, and rendering needs one per human message."""
    digits = "%032x" % (value & _UUID4_CLEAR | _UUID4_SET)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


class WorkspaceError(LookupError):
    """A mutation or lookup that Slack would refuse; ``error`` is Slack's error name."""

    def __init__(self, error: str, detail: str = "") -> None:
        super().__init__(f"{error}: {detail}" if detail else error)
        self.error = error


class User:
    """A member of the workspace: a human, a bot user or a deleted account."""

    __slots__ = (
        "bot_id",
        "deleted",
        "display_name",
        "email",
        "id",
        "is_admin",
        "is_bot",
        "name",
        "real_name",
        "title",
        "tz",
        "updated",
    )

    def __init__(
        self,
        id: str,
        name: str,
        real_name: str,
        *,
        display_name: str = "",
        title: str = "",
        email: str | None = None,
        tz: tuple[str, str, int] = _TIMEZONES[2],
        is_bot: bool = False,
        bot_id: str | None = None,
        deleted: bool = False,
        is_admin: bool = False,
        updated: int = 0,
    ) -> None:
        self.id = id
        self.name = name
        self.real_name = real_name
        self.display_name = display_name
        self.title = title
        self.email = email
        self.tz = tz
        self.is_bot = is_bot
        self.bot_id = bot_id
        self.deleted = deleted
        self.is_admin = is_admin
        self.updated = updated


class Reaction:
    """One emoji on a message. ``users`` is complete; the API shows only ``users[:shown]``.

    ``shown < len(users)`` is the case Slack produces for popular reactions: ``count`` is larger
    than the users listed in history, and only ``reactions.get`` with ``full=true`` lists all.
    """

    __slots__ = ("name", "shown", "users")

    def __init__(self, name: str, users: list[str], shown: int | None = None) -> None:
        self.name = name
        self.users = users
        self.shown = len(users) if shown is None else shown

    @property
    def incomplete(self) -> bool:
        return self.shown < len(self.users)


class Message:
    """A message or reply. Derived thread fields are computed from ``replies`` when rendered.

    ``text``/``extra`` of None mean "derive from the hash of (channel, ts)" (generated
    messages); mutations store them explicitly (``extra`` is then a dict, possibly empty).
    """

    __slots__ = (
        "edited",
        "extra",
        "parent",
        "reactions",
        "replies",
        "subtype",
        "text",
        "ts",
        "user",
    )

    def __init__(
        self, ts: int, user: str | None, subtype: str | None, parent: Message | None
    ) -> None:
        self.ts = ts
        self.user = user
        self.subtype = subtype
        self.parent = parent
        self.text: str | None = None
        self.replies: list[Message] | None = None
        self.reactions: list[Reaction] | None = None
        self.edited: tuple[str, int] | None = None
        self.extra: JSONDict | None = None

    @property
    def in_history(self) -> bool:
        """Whether ``conversations.history`` returns it: top level, or a broadcast reply."""
        return self.parent is None or self.subtype == THREAD_BROADCAST

    @property
    def has_incomplete_reactions(self) -> bool:
        return self.reactions is not None and any(r.incomplete for r in self.reactions)


class Channel:
    """A conversation (public or private channel, im or mpim) and its message indexes.

    ``history``/``history_ts`` hold the history-visible messages sorted by ts (for bisect);
    ``by_ts`` finds any message, reply or not, by its integer ts.
    """

    __slots__ = (
        "by_ts",
        "created",
        "creator",
        "history",
        "history_ts",
        "id",
        "im_user",
        "is_archived",
        "is_general",
        "is_member",
        "kind",
        "members",
        "name",
        "purpose",
        "salt",
        "topic",
    )

    def __init__(
        self,
        id: str,
        name: str,
        kind: str,
        *,
        created: int,
        creator: str,
        members: list[str],
        is_member: bool,
        topic: str = "",
        purpose: str = "",
        is_archived: bool = False,
        is_general: bool = False,
        im_user: str | None = None,
        salt: int = 0,
    ) -> None:
        self.id = id
        self.name = name
        self.kind = kind  # "public", "private", "im" or "mpim"
        self.created = created
        self.creator = creator
        self.members = members
        self.is_member = is_member
        self.topic = topic
        self.purpose = purpose
        self.is_archived = is_archived
        self.is_general = is_general
        self.im_user = im_user
        self.salt = salt
        self.history: list[Message] = []
        self.history_ts: list[int] = []
        self.by_ts: dict[int, Message] = {}

    @property
    def is_private(self) -> bool:
        return self.kind != "public"

    @property
    def slack_type(self) -> str:
        """The ``types`` value of ``conversations.list`` that selects this conversation."""
        return {
            "public": "public_channel",
            "private": "private_channel",
            "im": "im",
            "mpim": "mpim",
        }[self.kind]

    def thread_parents(self) -> Iterator[Message]:
        """Top-level messages that have replies (tombstones included)."""
        for message in self.history:
            if message.parent is None and message.replies:
                yield message


class SampleWorkspace:
    """A Slack workspace's users, conversations and messages, and how the API renders them.

    The model every generator here builds; the tests' local Slack server serves it (its
    ``FakeWorkspace`` adds mutations and events), ``write_export`` writes it as an export.
    """

    def __init__(
        self,
        *,
        team_id: str,
        team_name: str,
        domain: str,
        users: list[User],
        channels: list[Channel],
        bot_user_id: str,
        integration_bot_id: str,
        clock: int,
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.domain = domain
        self.users = users
        self.channels = channels
        self.bot_user_id = bot_user_id
        """The user id of our app's bot (what ``auth.test`` answers for the token)."""
        self.integration_bot_id = integration_bot_id
        """The user id of the bot that posts ``bot_message``s and app messages."""
        self._clock = clock
        """Microseconds: the generated history ends before it (new messages go after)."""
        self._users_by_id = {user.id: user for user in users}
        self._channels_by_id = {channel.id: channel for channel in channels}
        self._mentionable = [u.id for u in users if not u.is_bot and not u.deleted]
        # Generated text names public channels by id and name: a snapshot, so that creating,
        # renaming or deleting channels later does not change the text of existing messages.
        self._public = [(c.id, c.name) for c in channels if c.kind == "public"]

    @property
    def bot_id(self) -> str:
        return self.user(self.bot_user_id).bot_id or ""

    def user(self, user_id: str) -> User:
        try:
            return self._users_by_id[user_id]
        except KeyError:
            raise WorkspaceError("user_not_found", user_id) from None

    def channel(self, channel_id: str) -> Channel:
        try:
            return self._channels_by_id[channel_id]
        except KeyError:
            raise WorkspaceError("channel_not_found", channel_id) from None

    def channel_by_name(self, name: str) -> Channel:
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise WorkspaceError("channel_not_found", name)

    def find(self, channel_id: str, ts: str | int) -> Message:
        """The message or reply with this ts; ``message_not_found`` otherwise."""
        key = ts_to_int(ts) if isinstance(ts, str) else ts
        message = self.channel(channel_id).by_ts.get(key)
        if message is None:
            raise WorkspaceError("message_not_found", f"{channel_id} {ts}")
        return message

    # ------------------------------------------------------------------ rendering

    def render_user(self, user: User) -> JSONDict:
        """A ``users.list`` member object."""
        profile: JSONDict = {
            "title": user.title,
            "phone": "",
            "skype": "",
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "status_text": "",
            "status_emoji": "",
            "avatar_hash": f"g{id_hash(user.id) & 0xFFFFFFFFFF:010x}",
            "image_24": f"https://avatars.example.com/{user.id}_24.png",
            "image_48": f"https://avatars.example.com/{user.id}_48.png",
            "image_72": f"https://avatars.example.com/{user.id}_72.png",
            "image_192": f"https://avatars.example.com/{user.id}_192.png",
            "team": self.team_id,
        }
        if user.email is not None:
            profile["email"] = user.email
        if user.bot_id is not None:
            profile["bot_id"] = user.bot_id
            profile["api_app_id"] = "A" + user.bot_id[1:]
            profile["always_active"] = True
        result: JSONDict = {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "color": f"{id_hash(user.id) >> 40 & 0xFFFFFF:06x}",
            "real_name": user.real_name,
        }
        if not user.deleted:
            result["tz"], result["tz_label"], result["tz_offset"] = user.tz
        result["profile"] = profile
        result.update(
            is_admin=user.is_admin,
            is_owner=False,
            is_primary_owner=False,
            is_restricted=False,
            is_ultra_restricted=False,
            is_bot=user.is_bot,
            is_app_user=False,
            updated=user.updated,
            is_email_confirmed=user.email is not None,
        )
        return result

    def render_channel(self, channel: Channel) -> JSONDict:
        """A ``conversations.list``/``conversations.info`` channel object."""
        if channel.kind == "im":
            return {
                "id": channel.id,
                "created": channel.created,
                "is_archived": False,
                "is_im": True,
                "is_org_shared": False,
                "context_team_id": self.team_id,
                "updated": channel.created * 1000,
                "user": channel.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": channel.kind in ("public", "private"),
            "is_group": False,
            "is_im": False,
            "is_mpim": channel.kind == "mpim",
            "is_private": channel.is_private,
            "created": channel.created,
            "is_archived": channel.is_archived,
            "is_general": channel.is_general,
            "unlinked": 0,
            "name_normalized": channel.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.team_id,
            "updated": channel.created * 1000,
            "parent_conversation": None,
            "creator": channel.creator,
            "is_ext_shared": False,
            "shared_team_ids": [self.team_id],
            "is_member": channel.is_member,
            "topic": {"value": channel.topic, "creator": channel.creator, "last_set": 0},
            "purpose": {"value": channel.purpose, "creator": channel.creator, "last_set": 0},
            "previous_names": [],
            "num_members": len(channel.members),
        }

    def _text(self, message: Message, h: int, g: int) -> str:
        """Generated text with the Slack markup a sync must survive, derived from the hash.

        ``g`` is ``mix64(h)``: ``render_message`` computes it once for the text and the
        ``client_msg_id``.
        """
        if message.subtype == CHANNEL_JOIN:
            return f"<@{message.user}> has joined the channel"
        if message.subtype == HUDDLE_THREAD:
            return ""
        words = [_WORDS[(h >> shift) & 63] for shift in _WORD_SHIFTS[h & 7]]
        if g % 7 == 0:
            words.insert(0, f"<@{self._mentionable[(g >> 8) % len(self._mentionable)]}>")
        if g % 11 == 0:
            target_id, target_name = self._public[(g >> 16) % len(self._public)]
            words.append(f"<#{target_id}|{target_name}>")
        if g % 13 == 0:
            words.append(f"<https://example.com/{words[1]}|{words[-1]}>")
        elif g % 17 == 0:
            words.append(f"<https://example.com/docs/{g & 0xFFFF:x}>")
        if g % 29 == 0:
            words.insert(0, "<!here>")
        elif g % 31 == 0:
            words.insert(0, "<!channel>")
        if g % 19 == 0:
            words.append("&amp; a &lt;b&gt; c")
        if g % 1009 == 0:
            words.append("nul\u0000byte")
        return " ".join(words)

    def render_message(
        self, channel: Channel, message: Message, *, full_reactions: bool = False
    ) -> JSONDict:
        """The message dict Slack returns in history/replies (``reactions.get`` with ``full``).

        The server serves every message through this (``message_json`` keeps the encoded
        result until the next mutation), so it is written for speed: dict displays instead of
        ``update(**kwargs)``, each hash computed once. Nothing is cached here, so the ground
        truth that tests read shows mutations at once. The key order is part of what the
        server answers: keep it.
        """
        subtype = message.subtype
        ts = int_to_ts(message.ts)
        result: JSONDict
        if subtype == TOMBSTONE:
            result = {
                "type": "message",
                "subtype": TOMBSTONE,
                "text": TOMBSTONE_TEXT,
                "user": SLACKBOT_USER,
                "hidden": True,
                "ts": ts,
            }
        else:
            h = mix64(message.ts ^ channel.salt)
            g = mix64(h)
            if subtype is None:
                result = {"type": "message", "ts": ts}
            else:
                result = {"type": "message", "subtype": subtype, "ts": ts}
            user = message.user
            if user is not None:
                result["user"] = user
            if subtype == BOT_MESSAGE:
                integration = self.user(self.integration_bot_id)
                result["bot_id"] = integration.bot_id
                result["username"] = integration.name
            elif user is not None:
                author = self._users_by_id.get(user)
                if author is not None and author.bot_id is not None:
                    result["bot_id"] = author.bot_id
                elif subtype is None or subtype in (THREAD_BROADCAST, FILE_SHARE):
                    result["client_msg_id"] = _uuid4_string((h << 64) | g)
            text = message.text
            result["text"] = text if text is not None else self._text(message, h, g)
            if user is not None:
                result["team"] = self.team_id
            if message.extra is not None:
                result.update(copy_json(message.extra))
            elif subtype != CHANNEL_JOIN:  # joins have no files, rooms or unfurls
                self._derived_extras(message, h, result)
        parent = message.parent
        if parent is not None:
            result["thread_ts"] = int_to_ts(parent.ts)
            result["parent_user_id"] = parent.user or self.integration_bot_id
        elif message.replies:
            replies = message.replies
            fallback = self.integration_bot_id
            reply_users = list(dict.fromkeys([r.user or fallback for r in replies]))
            result["thread_ts"] = ts
            result["reply_count"] = len(replies)
            result["reply_users_count"] = len(reply_users)
            result["latest_reply"] = int_to_ts(replies[-1].ts)
            result["reply_users"] = reply_users
            result["is_locked"] = False
            result["subscribed"] = False
        if message.edited is not None and subtype != TOMBSTONE:
            result["edited"] = {"user": message.edited[0], "ts": int_to_ts(message.edited[1])}
        if message.reactions:
            result["reactions"] = [
                {
                    "name": r.name,
                    "users": r.users[:] if full_reactions else r.users[: r.shown],
                    "count": len(r.users),
                }
                for r in message.reactions
            ]
        return result

    def _derived_extras(self, message: Message, h: int, out: JSONDict) -> None:
        """Files, huddle rooms and link unfurls of generated messages, derived from the hash."""
        subtype = message.subtype
        g = mix64(h ^ 0x5DEECE66D)
        if subtype == FILE_SHARE:
            file_id = "F" + encode_id(g, 10)
            kind = ("png", "image/png") if g & 1 else ("pdf", "application/pdf")
            out["files"] = [
                {
                    "id": file_id,
                    "created": message.ts // TS_SCALE,
                    "timestamp": message.ts // TS_SCALE,
                    "name": f"file_{file_id.lower()}.{kind[0]}",
                    "title": f"File {file_id}",
                    "mimetype": kind[1],
                    "filetype": kind[0],
                    "user": message.user,
                    "size": 1024 + g % 900_000,
                    "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{file_id}/x",
                }
            ]
            out["upload"] = True
            out["display_as_bot"] = False
        elif subtype == HUDDLE_THREAD:
            out["room"] = {"id": "R" + encode_id(g, 10), "name": "", "media_server": ""}
        elif subtype in (None, THREAD_BROADCAST, BOT_MESSAGE) and g % 23 == 0:
            out["attachments"] = [
                {
                    "id": 1,
                    "fallback": "Example Domain",
                    "title": "Example Domain",
                    "title_link": f"https://example.com/page/{g & 0xFFF}",
                    "from_url": f"https://example.com/page/{g & 0xFFF}",
                    "text": "This domain is for use in illustrative examples.",
                    "service_name": "example.com",
                }
            ]


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-like data, so callers can mutate rendered dicts safely."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def id_hash(text: str) -> int:
    """A hash of an id that, unlike ``hash()``, is the same in every process."""
    return mix64(int.from_bytes(text.encode(), "big") & MASK64)


def base36(value: int, width: int) -> str:
    """``value`` in upper-case base 36, most significant digit first, zero-padded."""
    digits = []
    while value:
        value, digit = divmod(value, 36)
        digits.append("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[digit])
    return "".join(reversed(digits)).rjust(width, "0")


def encode_id(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, len(_ID_ALPHABET))
        chars.append(_ID_ALPHABET[digit])
    return "".join(chars)


class _IdMaker:
    """Unique Slack-looking ids (``U0A1B2C3D4E``) from the workspace's random generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: set[str] = set()

    def __call__(self, prefix: str) -> str:
        while True:
            candidate = prefix + encode_id(self._rng.getrandbits(64), 10)
            if candidate not in self._seen:
                self._seen.add(candidate)
                return candidate


def _make_reactions(
    rng: random.Random, reactors: list[str], incomplete_ratio: float
) -> list[Reaction]:
    count = 1 if rng.random() < 0.7 else 2 + (rng.random() < 0.3)
    names = rng.sample(REACTION_NAMES, count)
    reactions = []
    for name in names:
        users = rng.sample(reactors, min(len(reactors), 1 + int(rng.random() ** 2 * 6)))
        shown = None
        if len(users) >= 2 and rng.random() < incomplete_ratio:
            shown = rng.randrange(1, len(users))
        reactions.append(Reaction(name, users, shown))
    return reactions


def generate(
    seed: int = 0,
    *,
    users: int = 12,
    channels: int = 4,
    private_channels: int = 2,
    archived: bool = True,
    direct: bool = True,
    days: int = 3,
    messages_per_channel_day: int = 20,
    start: date = date(2026, 11, 1),
    reply_ratio: float = 0.25,
    thread_ratio: float = 0.15,
    broadcast_ratio: float = 1 / 16,
    reaction_ratio: float = 0.1,
    incomplete_reaction_ratio: float = 0.05,
    team_name: str | None = None,
) -> SampleWorkspace:
    """Generate a deterministic workspace for ``seed``.

    Conversations: ``channels`` public channels (the first is #general, the last one our bot is
    not in, to exercise ``not_in_channel``), ``private_channels`` private ones, one archived
    public channel (unless not ``archived``), one im (``D...``) and one mpim (``G...``) (unless
    not ``direct``). Every conversation gets exactly ``messages_per_channel_day`` messages (top
    level and replies) on each of ``days`` UTC days from ``start``, so the total is predictable:
    ``(channels + private_channels + 3) * days * messages_per_channel_day`` with the defaults.

    ``reply_ratio`` of the messages are replies, spread over the recent top-level messages that
    ``thread_ratio`` of them become thread parents (so threads average a few replies and some
    continue on a later day); ``broadcast_ratio`` of the replies are also sent to the channel.

    Users: ``users`` humans (the last one deleted) plus two bots: our app's (``bot_user_id``)
    and an integration that posts ``bot_message``s.

    Guaranteed when there is room for them: a tombstoned parent with replies, a reaction whose
    ``count`` exceeds its shown users, a reply on a later day than its parent, a ``\\u0000``.
    """
    if users < 3 or channels < 2 or days < 1 or messages_per_channel_day < 1:
        raise ValueError("need users >= 3, channels >= 2, days >= 1, messages_per_channel_day >= 1")
    rng = random.Random(seed)  # noqa: S311 - sample data, reproducible on purpose
    make_id = _IdMaker(rng)
    team_id = make_id("T")
    team = team_name or f"Fake Team {seed}"
    start_seconds = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
    created = start_seconds - 400 * 86_400

    people: list[User] = []
    for index in range(users):
        first = _FIRST_NAMES[index % len(_FIRST_NAMES)]
        last = _LAST_NAMES[(index * 7 + seed) % len(_LAST_NAMES)]
        suffix = "" if index < len(_FIRST_NAMES) else str(index // len(_FIRST_NAMES))
        handle = f"{first.lower()}.{last.lower().replace(' ', '')}{suffix}"
        people.append(
            User(
                make_id("U"),
                handle,
                f"{first} {last}",
                display_name=first if index % 3 else "",
                title=_TITLES[index % len(_TITLES)],
                email=f"{handle}@example.com",
                tz=_TIMEZONES[rng.randrange(len(_TIMEZONES))],
                deleted=index == users - 1,
                is_admin=index == 0,
                updated=created + index * 3_600,
            )
        )
    our_bot = User(
        make_id("U"),
        "toban",
        "Toban",
        display_name="Toban",
        is_bot=True,
        bot_id=make_id("B"),
        updated=created,
    )
    integration = User(
        make_id("U"),
        "deploybot",
        "Deploy Bot",
        display_name="deploybot",
        is_bot=True,
        bot_id=make_id("B"),
        updated=created,
    )
    all_users = [*people, our_bot, integration]
    humans = [u.id for u in people if not u.deleted]
    deleted = [u.id for u in people if u.deleted]

    def channel_name(index: int) -> str:
        base = _CHANNEL_NAMES[index % len(_CHANNEL_NAMES)]
        return base if index < len(_CHANNEL_NAMES) else f"{base}-{index // len(_CHANNEL_NAMES)}"

    conversations: list[Channel] = []
    for index in range(channels):
        if index == 0:
            members = list(humans)
        else:
            members = rng.sample(humans, max(2, min(len(humans), 2 + rng.randrange(len(humans)))))
        is_member = index < channels - 1
        conversations.append(
            Channel(
                make_id("C"),
                channel_name(index),
                "public",
                created=created + index * 86_400,
                creator=humans[0],
                members=[*members, our_bot.id, integration.id] if is_member else members,
                is_member=is_member,
                topic=f"All about {channel_name(index)}",
                purpose=f"A place for {channel_name(index)}",
                is_general=index == 0,
            )
        )
    for index in range(private_channels):
        name = f"private-{channel_name(channels + index)}"
        members = rng.sample(humans, min(len(humans), 3))
        conversations.append(
            Channel(
                make_id("C"),
                name,
                "private",
                created=created + 50 * 86_400,
                creator=members[0],
                members=[*members, our_bot.id],
                is_member=True,
                purpose=f"Private {name}",
            )
        )
    if archived:
        archived_members = rng.sample(humans, min(len(humans), 3))
        conversations.append(
            Channel(
                make_id("C"),
                "old-project",
                "public",
                created=created + 10 * 86_400,
                creator=archived_members[0],
                members=[*archived_members, our_bot.id],
                is_member=True,
                topic="Finished",
                purpose="The old project",
                is_archived=True,
            )
        )
    if direct:
        im_user = humans[1]
        conversations.append(
            Channel(
                make_id("D"),
                im_user,
                "im",
                created=created + 20 * 86_400,
                creator=im_user,
                members=[im_user, our_bot.id],
                is_member=True,
                im_user=im_user,
            )
        )
        mpim_members = humans[:3]
        mpim_name = "mpdm-" + "--".join(u.name for u in people[:3])
        conversations.append(
            Channel(
                make_id("G"),
                f"{mpim_name}-1",
                "mpim",
                created=created + 30 * 86_400,
                creator=mpim_members[0],
                members=[*mpim_members, our_bot.id],
                is_member=True,
                purpose=f"Group messaging with: {' '.join('@' + u for u in mpim_members)}",
            )
        )
    for channel in conversations:
        channel.salt = rng.getrandbits(64)

    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of tracked objects: collections would dominate generation time
    try:
        flags = _generate_messages(
            rng,
            conversations,
            humans=humans,
            deleted=deleted,
            integration_id=integration.id,
            start_us=start_seconds * TS_SCALE,
            days=days,
            per_day=messages_per_channel_day,
            reply_ratio=reply_ratio,
            thread_ratio=thread_ratio,
            broadcast_ratio=broadcast_ratio,
            reaction_ratio=reaction_ratio,
            incomplete_reaction_ratio=incomplete_reaction_ratio,
        )
    finally:
        if gc_was_enabled:
            gc.enable()

    workspace = SampleWorkspace(
        team_id=team_id,
        team_name=team,
        domain=f"fake-team-{seed}",
        users=all_users,
        channels=conversations,
        bot_user_id=our_bot.id,
        integration_bot_id=integration.id,
        clock=(start_seconds + days * 86_400) * TS_SCALE,
    )
    _ensure_cases(workspace, flags)
    return workspace


def _generate_messages(
    rng: random.Random,
    conversations: list[Channel],
    *,
    humans: list[str],
    deleted: list[str],
    integration_id: str,
    start_us: int,
    days: int,
    per_day: int,
    reply_ratio: float,
    thread_ratio: float,
    broadcast_ratio: float,
    reaction_ratio: float,
    incomplete_reaction_ratio: float,
) -> set[str]:
    """The hot loop: one 64-bit random draw per message decides everything but reactions.

    Returns which guaranteed cases already occurred (``"incomplete"``, ``"late"``).
    """
    flags: set[str] = set()
    getrandbits = rng.getrandbits
    reply_cut = int(reply_ratio * 256)
    broadcast_cut = int(broadcast_ratio * 256)
    thread_cut = max(1, int(thread_ratio * 256))
    reaction_cut = int(reaction_ratio * 1024)
    edit_cut = 16  # of 512: about 3 % of messages are edited
    day_range = range(DAY_US)
    human_set = set(humans)
    for channel_index, channel in enumerate(conversations):
        authors = [m for m in channel.members if m in human_set] or humans[:1]
        if channel.is_general:
            authors += deleted  # a deleted user's old messages stay
        reactors = authors
        n_authors = len(authors)
        history = channel.history
        history_ts = channel.history_ts
        by_ts = channel.by_ts
        pool: list[Message] = []  # recent thread-eligible parents
        for day in range(days):
            base = start_us + day * DAY_US
            offsets = rng.sample(day_range, per_day)
            offsets.sort()
            for position, offset in enumerate(offsets):
                ts = base + offset
                r = getrandbits(64)
                user: str | None = authors[(r >> 30) % n_authors]
                force_reply = channel_index == 0 and day == 1 and position == 0
                if pool and (((r >> 10) & 0xFF) < reply_cut or force_reply):
                    parent = pool[((r >> 26) & 0xF) % len(pool)]
                    if parent.ts < base:
                        flags.add("late")
                    subtype = THREAD_BROADCAST if ((r >> 18) & 0xFF) < broadcast_cut else None
                    message = Message(ts, user, subtype, parent)
                    if parent.replies is None:
                        parent.replies = [message]
                    else:
                        parent.replies.append(message)
                    if subtype is not None:
                        history.append(message)
                        history_ts.append(ts)
                else:
                    kind = r & 0x3FF
                    eligible = False
                    if kind < 20:
                        subtype = CHANNEL_JOIN
                    elif kind < 60:
                        subtype = BOT_MESSAGE
                        user = None
                    elif kind < 90:
                        subtype = FILE_SHARE
                        eligible = ((r >> 18) & 0xFF) < thread_cut
                    elif kind < 100:
                        subtype = HUDDLE_THREAD
                    elif kind < 110:
                        subtype = None
                        user = integration_id  # a modern app message: user and bot_id
                    else:
                        subtype = None
                        eligible = ((r >> 18) & 0xFF) < thread_cut
                    message = Message(ts, user, subtype, None)
                    history.append(message)
                    history_ts.append(ts)
                    if eligible:
                        pool.append(message)
                        if len(pool) > 8:
                            del pool[0]
                by_ts[ts] = message
                if subtype != CHANNEL_JOIN and ((r >> 40) & 0x3FF) < reaction_cut:
                    message.reactions = _make_reactions(rng, reactors, incomplete_reaction_ratio)
                    if message.has_incomplete_reactions:
                        flags.add("incomplete")
                if user is not None and subtype != CHANNEL_JOIN and ((r >> 50) & 0x1FF) < edit_cut:
                    message.edited = (user, ts + TS_SCALE * (1 + ((r >> 59) & 0x1F) * 60))
    return flags


def _ensure_cases(workspace: SampleWorkspace, flags: set[str]) -> None:
    """Make the rare cases certain, even in tiny workspaces, without relying on chance."""
    readable = [c for c in workspace.channels if c.is_member and not c.is_archived]
    people = {u.id for u in workspace.users if not u.is_bot}

    def plain(channel: Channel) -> list[Message]:
        return [
            m
            for m in channel.history
            if m.subtype is None and m.parent is None and m.user in people and not m.replies
        ]

    if "late" not in flags:  # a reply on a later day than its parent
        for channel in readable:
            messages = plain(channel)
            if not messages:
                continue
            first_day = messages[0].ts // DAY_US
            later = next((m for m in messages if m.ts // DAY_US > first_day), None)
            if later is not None:
                parent = [m for m in messages if m.ts // DAY_US == first_day][-1]
                _turn_into_reply(channel, later, parent)
                break
    threads = (m for c in readable for m in c.thread_parents())
    doomed = next((m for m in threads if len(m.replies or ()) >= 2), None)
    doomed = doomed or next((m for c in readable for m in c.thread_parents()), None)
    if doomed is None:
        for channel in readable:
            messages = plain(channel)
            if len(messages) >= 2:
                _turn_into_reply(channel, messages[1], messages[0])
                doomed = messages[0]
                break
    if doomed is not None:  # a deleted parent that keeps its replies
        if doomed.has_incomplete_reactions:
            flags.discard("incomplete")  # maybe the only one: the check below adds another
        doomed.subtype = TOMBSTONE
        doomed.reactions = None
        doomed.edited = None
        doomed.extra = {}
    for channel in readable:  # a reaction whose count exceeds the users it lists
        if "incomplete" in flags:
            break
        reactors = [u for u in channel.members if u in people]
        messages = plain(channel)
        if not messages or len(reactors) < 2:
            continue
        target = messages[len(messages) // 2]
        taken = {r.name for r in target.reactions or ()}
        name = next(n for n in REACTION_NAMES if n not in taken)
        target.reactions = [*(target.reactions or []), Reaction(name, reactors[:4], 1)]
        flags.add("incomplete")
    for channel in readable:  # a NUL character, which PostgreSQL refuses in text
        candidates = (m for m in reversed(channel.history) if m.subtype is None)
        last_plain = next((m for m in candidates if m.parent is None and m.user in people), None)
        if last_plain is not None:
            last_plain.text = (
                workspace.render_message(channel, last_plain)["text"] + " nul\u0000here"
            )
            break


def _turn_into_reply(channel: Channel, message: Message, parent: Message) -> None:
    """Move a top-level message into ``parent``'s thread (it must be newer than the parent)."""
    index = bisect.bisect_left(channel.history_ts, message.ts)
    del channel.history[index]
    del channel.history_ts[index]
    message.parent = parent
    replies = parent.replies or []
    replies.insert(bisect.bisect_left([r.ts for r in replies], message.ts), message)
    parent.replies = replies


# ---------------------------------------------------------------------------------- the demo's


DEMO_TEAM_ID: Final = "TDEMO0001"
DEMO_NAME: Final = "Toban Demo"
DEMO_SEED: Final = 20261125
DEMO_PEOPLE: Final = {  # Slack id -> (user name, display name, real name, role)
    "UDEMOANA": ("ana", "Ana", "Ana Lima", "helper"),
    "UDEMOBEN": ("ben", "Ben", "Ben Okafor", "asker"),
    "UDEMOCHL": ("chloe", "Chloe", "Chloe Martin", "coordinator"),
    "UDEMODEV": ("dev", "Dev", "Dev Patel", "reactor"),
    # Ana Lima's namesake: the reports show "Ana (Ana Lima)" and "Ana (Ana Rossi)".
    "UDEMOANR": ("ana.r", "Ana", "Ana Rossi", "asker"),
    "UDEMOFIN": ("finn", "Finn", "Finn Berg", "helper"),
}
DEMO_CHANNELS: Final = {"CDEMOPLAT": "platform", "CDEMOPROD": "product", "CDEMORAND": "random"}
_QUESTIONS: Final = (
    "How do I rotate the deploy token without downtime?",
    "Why does the nightly backfill skip the last partition?",
    "Is there a way to replay a failed sync for one channel?",
    "What is the right page size for conversations.history?",
    "Who owns the alerting for the ingestion lag?",
    "Can we run the analysis for a custom date range?",
)
_ANSWERS: Final = (
    "Put the new key first in TOBAN_ENCRYPTION_KEYS, run the rotation, then drop the old one.",
    "The daily partitions end yesterday; today's is not complete yet. See "
    "<https://docs.dagster.io/partitions|the partitions docs>.",
    "Materialize that partition again from the UI: the upserts make it idempotent.",
    "200 is a good default; in limited mode Slack caps it at 15. Use `page_size` in the sync "
    "settings.",
    "Rerun it with `toban slack import` and the counts will match, the store is idempotent.",
)
_PLANS: Final = (
    "Let's schedule the release planning meeting tomorrow at 10, <@UDEMOANA> <@UDEMOBEN> "
    "please join.",
    "Reminder: the deadline for the ingestion milestone is Friday. <@UDEMOFIN> owns the backfill.",
    "Plan for next week: <@UDEMOANR> takes the analysis review, <@UDEMOANA> the sync fixes.",
    "Standup moved to 9:30 tomorrow <!here>",
)
_CHATTER: Final = (
    "Morning all!",
    "Coffee machine on floor 2 is fixed.",
    "Great demo yesterday.",
    "Anyone up for lunch?",
)


def demo_workspace(first: date, last: date, *, seed: int = DEMO_SEED) -> SampleWorkspace:
    """The demo's workspace, from ``first`` to ``last`` (UTC days): people who play known roles
    (helpers who answer questions in threads, askers, a coordinator who plans and mentions
    people, a reactor who only reacts), two of whom share a first name. Written text, no
    generated extras; deterministic for ``seed``."""
    rng = random.Random(seed)  # noqa: S311 - sample data, reproducible on purpose
    created = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()) - 86_400
    people = [
        User(user_id, name, real, display_name=display, title=role, updated=created)
        for user_id, (name, display, real, role) in DEMO_PEOPLE.items()
    ]
    channels = [
        Channel(
            channel_id,
            name,
            "public",
            created=created,
            creator=people[0].id,
            members=list(DEMO_PEOPLE),
            is_member=True,
        )
        for channel_id, name in DEMO_CHANNELS.items()
    ]
    helpers = [u for u, p in DEMO_PEOPLE.items() if p[3] == "helper"]
    askers = [u for u, p in DEMO_PEOPLE.items() if p[3] == "asker"]
    for channel in channels:
        day = first
        while day <= last:
            base = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
            post = _Poster(channel)

            if channel.name != "random" and day.weekday() < 5:
                asker = rng.choice(askers)
                question = post(base, asker, rng.choice(_QUESTIONS))
                for n, helper in enumerate(rng.sample(helpers, k=rng.randint(1, 2))):
                    post(
                        base + timedelta(minutes=7 + 11 * n),
                        helper,
                        rng.choice(_ANSWERS),
                        [Reaction("pray", [asker, "UDEMODEV"])],
                        parent=question,
                    )
                question.reactions = [Reaction("eyes", ["UDEMODEV"])]
                post(
                    base + timedelta(hours=2),
                    "UDEMOCHL",
                    rng.choice(_PLANS),
                    [Reaction("+1", ["UDEMODEV", "UDEMOANA"])],
                )
            if channel.name == "random":
                post(base + timedelta(hours=3), rng.choice(list(DEMO_PEOPLE)), rng.choice(_CHATTER))
            day += timedelta(days=1)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return SampleWorkspace(
        team_id=DEMO_TEAM_ID,
        team_name=DEMO_NAME,
        domain="toban-demo",
        users=people,
        channels=channels,
        bot_user_id="",  # no app and no integration: nobody posts as a bot
        integration_bot_id="",
        clock=int(end.timestamp()) * TS_SCALE,
    )


class _Poster:
    """Adds written messages to one channel-day, each with a unique ts (the minutes may not
    be)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.posted = 0

    def __call__(
        self,
        at: datetime,
        user: str,
        text: str,
        reactions: list[Reaction] | None = None,
        parent: Message | None = None,
    ) -> Message:
        self.posted += 1
        message = Message(int(at.timestamp()) * TS_SCALE + self.posted, user, None, parent)
        message.text = text
        message.extra = {}  # no generated files or unfurls
        message.reactions = reactions
        self.channel.by_ts[message.ts] = message
        if parent is None:
            self.channel.history.append(message)
            self.channel.history_ts.append(message.ts)
        else:
            parent.replies = [*(parent.replies or ()), message]
        return message


# ---------------------------------------------------------------------------------- exports

EXPORT_LISTS: Final = {
    "public": "channels.json",
    "private": "groups.json",
    "im": "dms.json",
    "mpim": "mpims.json",
}
"""The list file of each conversation kind in an export (public channels only, unless the
export was made with the private conversations, as Business+ and Enterprise exports can be)."""


@dataclass(frozen=True)
class WrittenExport:
    path: Path
    messages: int
    """Messages and thread replies written (a broadcast reply once)."""
    first_day: date | None
    last_day: date | None
    """The first and last days with a day file."""


def write_export(
    workspace: SampleWorkspace,
    root: Path,
    *,
    kinds: Iterable[str] = ("public",),
    indent: int | None = 1,
) -> WrittenExport:
    """Write the workspace as an unzipped Slack export under ``root`` (created): ``users.json``,
    a list file per conversation kind of ``kinds`` that has conversations (``EXPORT_LISTS``),
    and a folder per conversation (its name; an im's id) of one ``YYYY-MM-DD.json`` per UTC day
    with messages, every message and reply in the file of its own day, as the API renders
    them. ``zip_folder`` zips it."""
    root.mkdir(parents=True, exist_ok=True)
    _write_json(root / "users.json", [workspace.render_user(u) for u in workspace.users], indent)
    total = 0
    days: set[date] = set()
    for kind in kinds:
        chosen = [c for c in workspace.channels if c.kind == kind]
        if not chosen:
            continue
        listed = []
        for channel in chosen:
            listed.append({**workspace.render_channel(channel), "members": list(channel.members)})
            folder = root / (channel.id if kind == "im" else channel.name)
            by_day: dict[date, list[JSONDict]] = {}
            for key in sorted(channel.by_ts):
                day = datetime.fromtimestamp(key // TS_SCALE, UTC).date()
                rendered = workspace.render_message(channel, channel.by_ts[key])
                by_day.setdefault(day, []).append(rendered)
            if by_day:
                folder.mkdir(exist_ok=True)
            for day, messages in by_day.items():
                _write_json(folder / f"{day.isoformat()}.json", messages, indent)
                total += len(messages)
            days.update(by_day)
        _write_json(root / EXPORT_LISTS[kind], listed, indent)
    return WrittenExport(root, total, min(days, default=None), max(days, default=None))


def _write_json(path: Path, value: Any, indent: int | None) -> None:
    path.write_text(json.dumps(value, indent=indent), encoding="utf-8")


def zip_folder(source: Path, archive: Path, *, top: str | None = None) -> Path:
    """Zip a folder's content (an export), at the root of the zip or under one top folder."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                name = path.relative_to(source).as_posix()
                zipped.write(path, f"{top}/{name}" if top else name)
    return archive
