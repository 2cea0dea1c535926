"""A generated Slack workspace: the ground truth that the fake server serves and tests compare to.

Why this shape:

* Sync tests compare a database with the workspace row for row, so every derived field (a
  parent's ``reply_count``/``reply_users``/``latest_reply``, a reaction's ``count``) is computed
  from the stored messages when a message is rendered. Mutations therefore cannot leave them
  inconsistent.
* A benchmark generates a million messages or more. Messages are ``__slots__`` objects holding
  integers and shared strings; text, ``client_msg_id``, attachments and files of generated
  messages are derived from a hash of (channel, ts) when rendered instead of being stored.
* Each channel keeps its history-visible messages sorted by ts, with a parallel list of integer
  timestamps for ``bisect``, so a request costs time proportional to the page it returns.

Timestamps are integers of microseconds inside (``1762000000.000100`` is ``1762000000000100``):
Slack ts strings have a fixed six-digit fraction, so integer order equals Slack's order.
"""

from __future__ import annotations

import base64
import bisect
import gc
import itertools
import json
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
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

MESSAGE_CHANGED: Final = "message_changed"
MESSAGE_DELETED: Final = "message_deleted"
_CHANNEL_TYPES: Final = {"public": "channel", "private": "group", "im": "im", "mpim": "mpim"}
"""A message event's ``channel_type`` by ``Channel.kind``."""
_MEMBER_CHANNEL_TYPES: Final = {"public": "C", "private": "G", "im": "D", "mpim": "G"}
"""``member_joined_channel``/``member_left_channel`` use one letter instead."""
_EVENT_SERIAL: Final = itertools.count(1)
"""Event ids are unique in the process, across workspaces, as Slack's are across teams."""
_USER_FIELDS: Final = frozenset(
    {"name", "real_name", "display_name", "title", "email", "tz", "deleted", "is_admin"}
)
"""What ``update_user`` may change."""

EventListener = Callable[[JSONDict], None]

_MASK64: Final = (1 << 64) - 1
JSON_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))
"""Compact, as Slack answers; one shared encoder (``json.dumps`` with options makes one a call)."""
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
_REACTION_NAMES: Final = _split(
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


def _mix(value: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread hash used to derive message content from ts."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
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


class FakeWorkspace:
    """A Slack workspace held in memory; see the module docstring for the design.

    All mutations and reads by the server hold ``lock``, so tests may mutate while a sync runs.
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
        self.lock = threading.RLock()
        self.token_revoked = False
        self.account_inactive = False
        self.app_uninstalled = False
        self.events_enabled = False
        """Record Events API envelopes for mutations (``recorded_events``). Off by default, so
        tests and benchmarks that do not listen pay nothing."""
        self.tombstone_sends_deleted = False
        """Deleting a thread parent that has replies sends one ``message_changed`` (to the
        tombstone), which is what Slack sends; True also sends a ``message_deleted`` first."""
        bot_id = next((u.bot_id for u in users if u.id == bot_user_id), None)
        self.api_app_id = "A" + bot_id[1:] if bot_id else "AFAKEAPP"
        """Our app's id, as its bot user's profile names it; envelopes carry it."""
        self.verification_token = f"fake-verification-{team_id.lower()}"
        """The deprecated ``token`` of every envelope."""
        self._clock = clock
        self._users_by_id = {user.id: user for user in users}
        self._channels_by_id = {channel.id: channel for channel in channels}
        self._mentionable = [u.id for u in users if not u.is_bot and not u.deleted]
        # Generated text names public channels by id and name: a snapshot, so that creating,
        # renaming or deleting channels later does not change the text of existing messages.
        self._public = [(c.id, c.name) for c in channels if c.kind == "public"]
        self._events: list[JSONDict] = []
        self._event_listeners: list[EventListener] = []
        self._last_event_ts = 0
        self._id_serial = 0
        self._json: dict[Message, str] = {}
        """Each message's answer as compact JSON, made when first served; emptied by every
        mutation, so what is served never lags the ground truth."""

    # ------------------------------------------------------------------ lookups

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

    # ------------------------------------------------------------------ ground truth

    def user_dicts(self) -> list[JSONDict]:
        """Every user (bots and deleted included) as ``users.list`` returns them."""
        with self.lock:
            return [self.render_user(user) for user in self.users]

    def channel_dicts(self) -> list[JSONDict]:
        """Every conversation (all four types, archived included) as ``conversations.list``."""
        with self.lock:
            return [self.render_channel(channel) for channel in self.channels]

    def iter_message_dicts(self, channel_id: str) -> Iterator[JSONDict]:
        """Every message and reply of a channel once, oldest first, as the API renders them.

        Broadcast replies appear once. Reaction ``users`` are as the API shows them (maybe
        incomplete); use ``reaction_pairs`` for the complete truth. Iterates so that a
        million-message workspace need not hold all dicts at once.
        """
        with self.lock:
            channel = self.channel(channel_id)
            keys = sorted(channel.by_ts)
        for key in keys:
            with self.lock:
                message = channel.by_ts.get(key)
                if message is not None:
                    yield self.render_message(channel, message)

    def message_dicts(self, channel_id: str) -> list[JSONDict]:
        return list(self.iter_message_dicts(channel_id))

    def message_dict(self, channel_id: str, ts: str, *, full_reactions: bool = False) -> JSONDict:
        with self.lock:
            return self.render_message(
                self.channel(channel_id), self.find(channel_id, ts), full_reactions=full_reactions
            )

    def reaction_pairs(self, channel_id: str, ts: str) -> list[tuple[str, str]]:
        """The complete (emoji name, user id) pairs of one message."""
        with self.lock:
            message = self.find(channel_id, ts)
            return [(r.name, user) for r in message.reactions or () for user in r.users]

    def all_reaction_pairs(self, channel_id: str) -> dict[str, list[tuple[str, str]]]:
        """For each message of the channel that has reactions: ts -> complete pairs."""
        with self.lock:
            channel = self.channel(channel_id)
            return {
                int_to_ts(key): [(r.name, user) for r in message.reactions for user in r.users]
                for key, message in sorted(channel.by_ts.items())
                if message.reactions
            }

    def message_count(self, channel_id: str | None = None) -> int:
        """Messages plus replies (a broadcast reply counted once)."""
        with self.lock:
            if channel_id is not None:
                return len(self.channel(channel_id).by_ts)
            return sum(len(channel.by_ts) for channel in self.channels)

    def thread_parent_ts(self, channel_id: str) -> list[str]:
        with self.lock:
            return [int_to_ts(m.ts) for m in self.channel(channel_id).thread_parents()]

    def stats(self) -> dict[str, int]:
        """Counts of the interesting cases, for benchmarks and sanity checks."""
        with self.lock:
            result = {
                "messages": 0,
                "history": 0,
                "replies": 0,
                "threads": 0,
                "broadcasts": 0,
                "tombstones": 0,
                "late_replies": 0,
                "reactions": 0,
                "incomplete_reaction_messages": 0,
            }
            for channel in self.channels:
                result["messages"] += len(channel.by_ts)
                result["history"] += len(channel.history)
                for message in channel.by_ts.values():
                    if message.parent is not None:
                        result["replies"] += 1
                        if message.ts // DAY_US != message.parent.ts // DAY_US:
                            result["late_replies"] += 1
                        if message.subtype == THREAD_BROADCAST:
                            result["broadcasts"] += 1
                    elif message.replies:
                        result["threads"] += 1
                    if message.subtype == TOMBSTONE:
                        result["tombstones"] += 1
                    if message.reactions:
                        result["reactions"] += sum(len(r.users) for r in message.reactions)
                        if message.has_incomplete_reactions:
                            result["incomplete_reaction_messages"] += 1
            return result

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
            "avatar_hash": f"g{_id_hash(user.id) & 0xFFFFFFFFFF:010x}",
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
            "color": f"{_id_hash(user.id) >> 40 & 0xFFFFFF:06x}",
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

        ``g`` is ``_mix(h)``: ``render_message`` computes it once for the text and the
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
            h = _mix(message.ts ^ channel.salt)
            g = _mix(h)
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
                result.update(_copy_json(message.extra))
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

    def message_json(self, channel: Channel, message: Message) -> str:
        """``render_message`` as the compact JSON the server sends, kept once made: encoding
        dicts was most of the server's CPU, which shares the benchmark's cores with the
        pipeline it measures (real Slack's does not). Call with ``lock`` held."""
        encoded = self._json.get(message)
        if encoded is None:
            encoded = JSON_ENCODER.encode(self.render_message(channel, message))
            self._json[message] = encoded
        return encoded

    def prerender(self) -> int:
        """Encode every message ahead of serving (``message_json``); returns the bytes held.

        For benchmarks: Slack's servers render on their own machines, so the local stand-in
        does it before the clock starts. A million messages make about 260 MB of JSON."""
        size = 0
        with self.lock:
            for channel in self.channels:
                for message in channel.by_ts.values():
                    size += len(self.message_json(channel, message))
        return size

    def _changed(self) -> None:
        """Every mutation calls this: a message's JSON may depend on others (a parent's
        ``reply_count`` on its replies), so all of it is made again when next served."""
        self._json.clear()

    def _derived_extras(self, message: Message, h: int, out: JSONDict) -> None:
        """Files, huddle rooms and link unfurls of generated messages, derived from the hash."""
        subtype = message.subtype
        g = _mix(h ^ 0x5DEECE66D)
        if subtype == FILE_SHARE:
            file_id = "F" + _encode_id(g, 10)
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
            out["room"] = {"id": "R" + _encode_id(g, 10), "name": "", "media_server": ""}
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

    # ------------------------------------------------------------------ events

    def recorded_events(self) -> list[JSONDict]:
        """Every Events API envelope recorded so far, oldest first (copies, safe to change)."""
        with self.lock:
            return [_copy_json(envelope) for envelope in self._events]

    def clear_events(self) -> None:
        with self.lock:
            self._events.clear()

    def add_event_listener(self, listener: EventListener) -> None:
        """Call ``listener(envelope)`` for each envelope recorded from now on, in order.

        It runs with ``lock`` held, inside the mutation: it must be quick and must never wait
        for a thread that takes ``lock`` (the server's listener only queues the envelope).
        """
        with self.lock:
            self._event_listeners.append(listener)

    def remove_event_listener(self, listener: EventListener) -> None:
        with self.lock:
            if listener in self._event_listeners:
                self._event_listeners.remove(listener)

    @property
    def _installed(self) -> bool:
        """Whether events are recorded at all: Slack sends none once the app's bot token is
        revoked or the app uninstalled."""
        return self.events_enabled and not self.token_revoked and not self.app_uninstalled

    def _sees(self, channel: Channel) -> bool:
        """Whether our app gets ``channel``'s message, reaction and member events: a bot's
        ``message.*`` subscriptions cover the conversations its bot user is in, no others."""
        return self.events_enabled and channel.is_member and self._installed

    def _event_ts(self, preferred: int | None = None) -> int:
        """A unique, increasing ``event_ts``: ``preferred`` (a new message's own ts, an edit's
        ts, which Slack reuses) when that keeps the order, else just after the clock and the
        last event. The clock does not move, so messages get the same ts with events on or
        off."""
        candidate = self._clock if preferred is None else preferred
        value = max(candidate, self._last_event_ts + 1)
        self._last_event_ts = value
        return value

    def _emit(self, event: JSONDict, *, channel_id: str | None, event_ts: int | None) -> None:
        """Record ``event`` in its Events API envelope (the shape of envelopes captured from
        Slack) and hand it to the listeners."""
        when = event_ts if event_ts is not None else max(self._clock, self._last_event_ts)
        envelope: JSONDict = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": "Ev" + _base36(next(_EVENT_SERIAL), 10),
            "event_time": when // TS_SCALE,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        if channel_id is not None:
            # Slack's is opaque: "4-" and base64 of what it is about; receivers must not parse it.
            context = {"et": event["type"], "tid": self.team_id, "aid": self.api_app_id}
            context["cid"] = channel_id
            encoded = base64.urlsafe_b64encode(JSON_ENCODER.encode(context).encode())
            envelope["event_context"] = "4-" + encoded.decode().rstrip("=")
        self._events.append(envelope)
        for listener in self._event_listeners:
            listener(envelope)

    def _emit_now(self, event: JSONDict, channel_id: str | None = None) -> None:
        """Emit an event that happens now: it gets a fresh ``event_ts`` as its last key."""
        event_ts = self._event_ts()
        event["event_ts"] = int_to_ts(event_ts)
        self._emit(event, channel_id=channel_id, event_ts=event_ts)

    def _emit_message(self, channel: Channel, message: Message) -> None:
        """A ``message`` event for a message just posted: its rendering plus where it is."""
        event_ts = self._event_ts(message.ts)
        event = self.render_message(channel, message)
        if message.subtype == THREAD_BROADCAST and message.parent is not None:
            event["root"] = self.render_message(channel, message.parent)
        event["channel"] = channel.id
        event["event_ts"] = int_to_ts(event_ts)
        event["channel_type"] = _CHANNEL_TYPES[channel.kind]
        self._emit(event, channel_id=channel.id, event_ts=event_ts)

    def _emit_changed(
        self, channel: Channel, message: JSONDict, previous: JSONDict, event_ts: int
    ) -> None:
        ts = int_to_ts(event_ts)
        event: JSONDict = {
            "type": "message",
            "subtype": MESSAGE_CHANGED,
            "message": message,
            "previous_message": previous,
            "channel": channel.id,
            "hidden": True,
            "ts": ts,
            "event_ts": ts,
            "channel_type": _CHANNEL_TYPES[channel.kind],
        }
        self._emit(event, channel_id=channel.id, event_ts=event_ts)

    def _emit_deleted(self, channel: Channel, deleted_ts: int, previous: JSONDict) -> None:
        event_ts = self._event_ts()
        ts = int_to_ts(event_ts)
        event: JSONDict = {
            "type": "message",
            "subtype": MESSAGE_DELETED,
            "hidden": True,
            "channel": channel.id,
            "previous_message": previous,
            "deleted_ts": int_to_ts(deleted_ts),
            "ts": ts,
            "event_ts": ts,
            "channel_type": _CHANNEL_TYPES[channel.kind],
        }
        self._emit(event, channel_id=channel.id, event_ts=event_ts)

    def _emit_reaction(
        self, kind: str, channel: Channel, message: Message, name: str, user: str
    ) -> None:
        event: JSONDict = {"type": kind, "user": user, "reaction": name}
        if message.user is not None:
            event["item_user"] = message.user
        event["item"] = {"type": "message", "channel": channel.id, "ts": int_to_ts(message.ts)}
        self._emit_now(event, channel.id)

    def _emit_member(
        self, kind: str, channel: Channel, user_id: str, inviter: str | None = None
    ) -> None:
        event: JSONDict = {
            "type": kind,
            "user": user_id,
            "channel": channel.id,
            "channel_type": _MEMBER_CHANNEL_TYPES[channel.kind],
            "team": self.team_id,
        }
        if inviter is not None:
            event["inviter"] = inviter
        self._emit_now(event, channel.id)

    def _channel_summary(self, channel: Channel, *, created_event: bool) -> JSONDict:
        """The ``channel`` object of ``channel_created`` (or, without ``created_event``, of
        ``channel_rename``/``group_rename``), with the fields Slack sends in each."""
        if created_event:
            return {
                "id": channel.id,
                "is_channel": True,
                "name": channel.name,
                "name_normalized": channel.name,
                "created": channel.created,
                "creator": channel.creator,
                "is_shared": False,
                "is_org_shared": False,
                "context_team_id": self.team_id,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "created": channel.created,
            "is_channel": True,
            "is_mpim": False,
        }

    def _announces(self, channel: Channel) -> bool:
        """Whether channel lifecycle events (rename, archive, delete) reach our app: public
        channels' always (``channels:read``), private ones' only while our bot is a member."""
        return self._installed and (channel.kind == "public" or channel.is_member)

    def _new_id(self, prefix: str) -> str:
        """A fresh, never reused id (deterministic for a workspace and its mutations)."""
        while True:
            self._id_serial += 1
            value = _mix(_id_hash(self.team_id) ^ (self._id_serial * 0x9E3779B97F4A7C15))
            candidate = prefix + _encode_id(value, 10)
            if candidate not in self._users_by_id and candidate not in self._channels_by_id:
                return candidate

    # ------------------------------------------------------------------ mutations

    def _next_ts(self) -> int:
        """A fresh ts after everything generated so far (1 s later), unique in every channel."""
        self._clock += TS_SCALE
        return self._clock

    def _claim_ts(self, channel: Channel, ts: str | None) -> int:
        if ts is None:
            return self._next_ts()
        key = ts_to_int(ts)
        if key in channel.by_ts:
            raise WorkspaceError("duplicate_ts", ts)
        self._clock = max(self._clock, key)
        return key

    def _default_author(self, channel: Channel) -> str:
        for user_id in channel.members:
            user = self._users_by_id[user_id]
            if not user.is_bot and not user.deleted:
                return user_id
        return self._mentionable[0]

    def _insert_history(self, channel: Channel, message: Message) -> None:
        index = bisect.bisect_left(channel.history_ts, message.ts)
        channel.history.insert(index, message)
        channel.history_ts.insert(index, message.ts)

    def _remove_history(self, channel: Channel, message: Message) -> None:
        index = bisect.bisect_left(channel.history_ts, message.ts)
        if index < len(channel.history) and channel.history[index] is message:
            del channel.history[index]
            del channel.history_ts[index]

    def add_message(
        self,
        channel_id: str,
        *,
        ts: str | None = None,
        user: str | None = None,
        text: str | None = None,
        subtype: str | None = None,
        extra: JSONDict | None = None,
    ) -> str:
        """Post a top-level message (default ts: after everything so far). Returns its ts."""
        with self.lock:
            self._changed()
            channel = self.channel(channel_id)
            key = self._claim_ts(channel, ts)
            author = None if subtype == BOT_MESSAGE else (user or self._default_author(channel))
            message = Message(key, author, subtype, None)
            message.text = text if text is not None else f"message {int_to_ts(key)}"
            message.extra = dict(extra or {})
            channel.by_ts[key] = message
            self._insert_history(channel, message)
            if self._sees(channel):
                self._emit_message(channel, message)
            return int_to_ts(key)

    def add_reply(
        self,
        channel_id: str,
        parent_ts: str,
        *,
        ts: str | None = None,
        user: str | None = None,
        text: str | None = None,
        broadcast: bool = False,
        extra: JSONDict | None = None,
    ) -> str:
        """Reply in the thread of ``parent_ts`` (a reply's ts means its thread). Returns its ts.

        The parent's ts never changes; its reply_count/reply_users/latest_reply follow.
        """
        with self.lock:
            self._changed()
            channel = self.channel(channel_id)
            parent = self.find(channel_id, parent_ts)
            parent = parent.parent or parent
            key = self._claim_ts(channel, ts)
            if key <= parent.ts:
                raise WorkspaceError("invalid_ts", "a reply must be newer than its parent")
            message = Message(
                key,
                user or self._default_author(channel),
                THREAD_BROADCAST if broadcast else None,
                parent,
            )
            message.text = text if text is not None else f"reply {int_to_ts(key)}"
            message.extra = dict(extra or {})
            if parent.replies is None:
                parent.replies = []
            keys = [r.ts for r in parent.replies]
            parent.replies.insert(bisect.bisect_left(keys, key), message)
            channel.by_ts[key] = message
            if broadcast:
                self._insert_history(channel, message)
            if self._sees(channel):
                self._emit_message(channel, message)
            return int_to_ts(key)

    def edit_message(
        self, channel_id: str, ts: str, new_text: str, *, user: str | None = None
    ) -> str:
        """Replace the text and set ``edited``; only the latest text stays visible, like Slack.

        Returns the edit's ts.
        """
        with self.lock:
            self._changed()
            channel = self.channel(channel_id)
            message = self.find(channel_id, ts)
            if message.subtype == TOMBSTONE:
                raise WorkspaceError("cant_update_message", ts)
            previous = self.render_message(channel, message) if self._sees(channel) else None
            edit_ts = self._next_ts()
            message.text = new_text
            message.edited = (user or message.user or self.integration_bot_id, edit_ts)
            if previous is not None:
                # Slack's message_changed for an edit has the edit's ts as its own.
                rendered = self.render_message(channel, message)
                self._emit_changed(channel, rendered, previous, self._event_ts(edit_ts))
            return int_to_ts(edit_ts)

    def delete_message(self, channel_id: str, ts: str) -> None:
        """Delete like Slack: a parent with replies becomes a tombstone, others disappear.

        Deleting the last reply of a tombstone removes the tombstone too.

        Events, as Slack sends them: ``message_deleted`` (with ``deleted_ts`` and the
        ``previous_message``); for a parent that becomes a tombstone, a ``message_changed``
        whose ``message`` is the tombstone instead (see ``tombstone_sends_deleted``); when the
        last reply of a tombstone goes, a ``message_deleted`` for the tombstone follows the
        reply's, its ``previous_message`` the tombstone with the empty thread Slack shows.
        """
        with self.lock:
            self._changed()
            channel = self.channel(channel_id)
            message = self.find(channel_id, ts)
            if message.subtype == TOMBSTONE:
                raise WorkspaceError("message_not_found", f"{ts} is already deleted")
            sees = self._sees(channel)
            previous = self.render_message(channel, message) if sees else None
            if message.parent is None and message.replies:
                message.subtype = TOMBSTONE
                message.text = None
                message.reactions = None
                message.edited = None
                message.extra = {}
                if previous is not None:
                    if self.tombstone_sends_deleted:
                        self._emit_deleted(channel, message.ts, previous)
                    tombstone = self.render_message(channel, message)
                    self._emit_changed(channel, tombstone, previous, self._event_ts())
                return
            del channel.by_ts[message.ts]
            if message.in_history:
                self._remove_history(channel, message)
            if previous is not None:
                self._emit_deleted(channel, message.ts, previous)
            parent = message.parent
            if parent is not None and parent.replies is not None:
                parent.replies.remove(message)
                if not parent.replies:
                    parent.replies = None
                    if parent.subtype == TOMBSTONE:
                        del channel.by_ts[parent.ts]
                        self._remove_history(channel, parent)
                        if sees:
                            self._emit_deleted(channel, parent.ts, self._empty_tombstone(parent))

    def _empty_tombstone(self, parent: Message) -> JSONDict:
        """A tombstone whose last reply is gone, as ``message_deleted`` shows it (captured
        from Slack: the thread fields stay, emptied, and ``parent_user_id`` is Slackbot)."""
        ts = int_to_ts(parent.ts)
        return {
            "type": "message",
            "subtype": TOMBSTONE,
            "text": TOMBSTONE_TEXT,
            "user": SLACKBOT_USER,
            "hidden": True,
            "ts": ts,
            "thread_ts": ts,
            "parent_user_id": SLACKBOT_USER,
            "reply_count": 0,
            "reply_users_count": 0,
            "latest_reply": "0000000000.000000",
            "reply_users": [],
            "is_locked": False,
            "subscribed": False,
        }

    def add_reaction(
        self, channel_id: str, ts: str, name: str, user: str, *, hidden: bool = False
    ) -> None:
        """Add ``user``'s reaction. ``hidden=True`` keeps the user out of the shown list.

        A reaction that is incomplete stays incomplete (new users are not shown), like Slack.
        """
        with self.lock:
            self._changed()
            message = self.find(channel_id, ts)
            if message.subtype == TOMBSTONE:
                raise WorkspaceError("message_not_found", ts)
            if message.reactions is None:
                message.reactions = []
            for reaction in message.reactions:
                if reaction.name == name:
                    if user in reaction.users:
                        raise WorkspaceError("already_reacted", f"{name} by {user}")
                    complete = not reaction.incomplete
                    reaction.users.append(user)
                    if complete and not hidden:
                        reaction.shown += 1
                    break
            else:
                message.reactions.append(Reaction(name, [user], 0 if hidden else 1))
            channel = self.channel(channel_id)
            if self._sees(channel):
                self._emit_reaction("reaction_added", channel, message, name, user)

    def remove_reaction(self, channel_id: str, ts: str, name: str, user: str) -> None:
        """Remove ``user``'s reaction; an emoji nobody uses any more disappears."""
        with self.lock:
            self._changed()
            message = self.find(channel_id, ts)
            for reaction in message.reactions or ():
                if reaction.name == name and user in reaction.users:
                    index = reaction.users.index(user)
                    reaction.users.pop(index)
                    if index < reaction.shown:
                        reaction.shown -= 1
                    reaction.shown = min(reaction.shown, len(reaction.users))
                    if not reaction.users:
                        assert message.reactions is not None
                        message.reactions.remove(reaction)
                        if not message.reactions:
                            message.reactions = None
                    break
            else:
                raise WorkspaceError("no_reaction", f"{name} by {user} on {ts}")
            channel = self.channel(channel_id)
            if self._sees(channel):
                self._emit_reaction("reaction_removed", channel, message, name, user)

    def join(self, channel_id: str) -> bool:
        """Our bot joins a public channel; returns False if it already was a member."""
        with self.lock:
            channel = self.channel(channel_id)
            if channel.kind != "public":
                raise WorkspaceError("method_not_supported_for_channel_type", channel_id)
            if channel.is_archived:
                raise WorkspaceError("is_archived", channel_id)
            if channel.is_member:
                return False
            channel.is_member = True
            channel.members.append(self.bot_user_id)
            if self._sees(channel):
                self._emit_member("member_joined_channel", channel, self.bot_user_id)
            return True

    def create_channel(
        self, name: str, *, private: bool = False, creator: str | None = None
    ) -> str:
        """Create an empty channel that our bot is not in (unless it is the creator); returns
        its id. Event: ``channel_created`` for a public channel. Slack announces no private
        channel to apps outside it (there is no ``group_created``), so a private one has none.
        """
        with self.lock:
            self._changed()
            if any(channel.name == name for channel in self.channels):
                raise WorkspaceError("name_taken", name)
            creator_id = creator or self._mentionable[0]
            self.user(creator_id)
            channel_id = self._new_id("C")
            channel = Channel(
                channel_id,
                name,
                "private" if private else "public",
                created=self._clock // TS_SCALE,
                creator=creator_id,
                members=[creator_id],
                is_member=creator_id == self.bot_user_id,
                salt=_id_hash(channel_id),
            )
            self.channels.append(channel)
            self._channels_by_id[channel_id] = channel
            if not private and self._installed:
                summary = self._channel_summary(channel, created_event=True)
                self._emit_now({"type": "channel_created", "channel": summary})
            return channel_id

    def _lifecycle_channel(self, channel_id: str) -> Channel:
        channel = self.channel(channel_id)
        if channel.kind not in ("public", "private"):
            raise WorkspaceError("method_not_supported_for_channel_type", channel_id)
        return channel

    def rename_channel(self, channel_id: str, name: str) -> None:
        """Rename a channel. Event: ``channel_rename`` (``group_rename`` for a private channel
        our bot is in)."""
        with self.lock:
            self._changed()
            channel = self._lifecycle_channel(channel_id)
            if any(c.name == name and c is not channel for c in self.channels):
                raise WorkspaceError("name_taken", name)
            channel.name = name
            if self._announces(channel):
                kind = "channel_rename" if channel.kind == "public" else "group_rename"
                summary = self._channel_summary(channel, created_event=False)
                self._emit_now({"type": kind, "channel": summary})

    def archive_channel(self, channel_id: str, *, user: str | None = None) -> None:
        """Archive a channel (``user`` did it; default its creator). Event:
        ``channel_archive`` (``group_archive`` for a private channel our bot is in)."""
        with self.lock:
            self._changed()
            channel = self._lifecycle_channel(channel_id)
            if channel.is_general:
                raise WorkspaceError("cant_archive_general", channel_id)
            if channel.is_archived:
                raise WorkspaceError("already_archived", channel_id)
            channel.is_archived = True
            if self._announces(channel):
                kind = "channel_archive" if channel.kind == "public" else "group_archive"
                actor = user or channel.creator
                self._emit_now({"type": kind, "channel": channel.id, "user": actor, "is_moved": 0})

    def unarchive_channel(self, channel_id: str, *, user: str | None = None) -> None:
        """Unarchive a channel. Event: ``channel_unarchive`` (``{channel, user}``), or
        ``group_unarchive`` (``{channel, actor_id}``) for a private channel our bot is in."""
        with self.lock:
            self._changed()
            channel = self._lifecycle_channel(channel_id)
            if not channel.is_archived:
                raise WorkspaceError("not_archived", channel_id)
            channel.is_archived = False
            if self._announces(channel):
                actor = user or channel.creator
                if channel.kind == "public":
                    event = {"type": "channel_unarchive", "channel": channel.id, "user": actor}
                else:
                    event = {"type": "group_unarchive", "channel": channel.id, "actor_id": actor}
                self._emit_now(event)

    def delete_channel(self, channel_id: str, *, user: str | None = None) -> None:
        """Delete a channel and its messages. Event: ``channel_deleted``, or
        ``group_deleted`` for a private channel our bot is in."""
        with self.lock:
            self._changed()
            channel = self._lifecycle_channel(channel_id)
            if channel.is_general:
                raise WorkspaceError("cant_delete_general", channel_id)
            announces = self._announces(channel)
            self.channels.remove(channel)
            del self._channels_by_id[channel_id]
            if announces:
                if channel.kind == "public":
                    self._emit_now({"type": "channel_deleted", "channel": channel_id})
                else:
                    self._emit_now(
                        {
                            "type": "group_deleted",
                            "channel": channel_id,
                            "date_deleted": self._clock // TS_SCALE,
                            "actor_id": user or channel.creator,
                        }
                    )

    def _post_system_message(self, channel: Channel, user_id: str, subtype: str) -> Message:
        key = self._next_ts()
        message = Message(key, user_id, subtype, None)
        verb = "joined" if subtype == CHANNEL_JOIN else "left"
        message.text = f"<@{user_id}> has {verb} the channel"
        message.extra = {}
        channel.by_ts[key] = message
        self._insert_history(channel, message)
        return message

    def add_member(
        self,
        channel_id: str,
        user_id: str,
        *,
        inviter: str | None = None,
        post_message: bool = True,
    ) -> str | None:
        """``user_id`` joins a channel (added by ``inviter``, if given). Returns the ts of the
        ``channel_join`` message Slack posts for it (None with ``post_message=False``).

        Our bot user joining makes the channel ``is_member`` (readable), as Slack then reports
        it. Events, to an app whose bot is in the channel (after the join, when it is the one
        joining): ``member_joined_channel``, then the ``channel_join`` message.
        """
        with self.lock:
            self._changed()
            channel = self._lifecycle_channel(channel_id)
            self.user(user_id)
            if channel.is_archived:
                raise WorkspaceError("is_archived", channel_id)
            if user_id in channel.members:
                raise WorkspaceError("already_in_channel", user_id)
            channel.members.append(user_id)
            if user_id == self.bot_user_id:
                channel.is_member = True
            if self._sees(channel):
                self._emit_member("member_joined_channel", channel, user_id, inviter)
            if not post_message:
                return None
            message = self._post_system_message(channel, user_id, CHANNEL_JOIN)
            if inviter is not None:
                message.extra = {"inviter": inviter}
            if self._sees(channel):
                self._emit_message(channel, message)
            return int_to_ts(message.ts)

    def remove_member(
        self,
        channel_id: str,
        user_id: str,
        *,
        actor: str | None = None,
        post_message: bool = True,
    ) -> str | None:
        """``user_id`` leaves a channel (removed by ``actor``, if given). Returns the ts of the
        ``channel_leave`` message (None with ``post_message=False``).

        Someone else leaving: ``member_left_channel``, then the ``channel_leave`` message, to an
        app whose bot is in the channel. Our bot leaving: the channel is no longer
        ``is_member`` and the app gets ``channel_left`` (``group_left`` for a private channel)
        with ``actor_id``, as captured from Slack, and nothing more from that channel.
        """
        with self.lock:
            self._changed()
            channel = self._lifecycle_channel(channel_id)
            if user_id not in channel.members:
                raise WorkspaceError("not_in_channel", user_id)
            sees = self._sees(channel)
            channel.members.remove(user_id)
            message = None
            if user_id == self.bot_user_id:
                if post_message:
                    message = self._post_system_message(channel, user_id, CHANNEL_LEAVE)
                channel.is_member = False
                if sees:
                    kind = "channel_left" if channel.kind == "public" else "group_left"
                    self._emit_now(
                        {"type": kind, "channel": channel.id, "actor_id": actor or user_id}
                    )
            else:
                if sees:
                    self._emit_member("member_left_channel", channel, user_id)
                if post_message:
                    message = self._post_system_message(channel, user_id, CHANNEL_LEAVE)
                    if sees:
                        self._emit_message(channel, message)
            return None if message is None else int_to_ts(message.ts)

    def update_user(self, user_id: str, **fields: Any) -> None:
        """Change a user's profile fields (``name``, ``real_name``, ``display_name``, ``title``,
        ``email``, ``tz``, ``deleted``, ``is_admin``); ``updated`` moves on. Event:
        ``user_change`` with the user as ``users.list`` renders it."""
        unknown = set(fields) - _USER_FIELDS
        if unknown:
            raise TypeError(f"update_user: no such user fields {sorted(unknown)}")
        with self.lock:
            self._changed()
            user = self.user(user_id)
            for name, value in fields.items():
                setattr(user, name, value)
            user.updated = max(user.updated + 1, self._clock // TS_SCALE)
            if self._installed:
                event: JSONDict = {"type": "user_change", "user": self.render_user(user)}
                event["cache_ts"] = user.updated
                self._emit_now(event)

    def add_user(
        self,
        name: str,
        real_name: str | None = None,
        *,
        display_name: str = "",
        title: str = "",
        email: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
    ) -> str:
        """A new member of the workspace; returns the user id. Event: ``team_join`` with the
        user as ``users.list`` renders it. (Slack would also add them to #general; add that
        with ``add_member`` if a test needs it.)"""
        with self.lock:
            self._changed()
            if any(user.name == name for user in self.users):
                raise WorkspaceError("name_taken", name)
            user = User(
                self._new_id("U"),
                name,
                real_name if real_name is not None else name,
                display_name=display_name,
                title=title,
                email=email,
                is_bot=is_bot,
                bot_id=self._new_id("B") if is_bot else None,
                is_admin=is_admin,
                updated=self._clock // TS_SCALE,
            )
            self.users.append(user)
            self._users_by_id[user.id] = user
            if self._installed:
                event: JSONDict = {"type": "team_join", "user": self.render_user(user)}
                event["cache_ts"] = user.updated
                self._emit_now(event)
            return user.id

    def _emit_tokens_revoked(self) -> None:
        # Each list names user ids, not tokens; we have a bot token only.
        tokens = {"oauth": [], "bot": [self.bot_user_id]}
        self._emit({"type": "tokens_revoked", "tokens": tokens}, channel_id=None, event_ts=None)

    def revoke_token(self) -> None:
        """Every token of this workspace now gets ``token_revoked``. Event: ``tokens_revoked``
        naming our bot user; after it Slack sends this app nothing more."""
        with self.lock:
            if self._installed:
                self._emit_tokens_revoked()
            self.token_revoked = True

    def uninstall_app(self) -> None:
        """Our app is uninstalled: its tokens are revoked. Events: ``tokens_revoked`` (unless
        already sent) and ``app_uninstalled``; Slack does not promise their order."""
        with self.lock:
            if self._installed:
                self._emit_tokens_revoked()
            if self.events_enabled and not self.app_uninstalled:
                self._emit({"type": "app_uninstalled"}, channel_id=None, event_ts=None)
            self.token_revoked = True
            self.app_uninstalled = True

    def deactivate_account(self) -> None:
        """Every token of this workspace now gets ``account_inactive``."""
        self.account_inactive = True

    def restore_access(self) -> None:
        self.token_revoked = False
        self.account_inactive = False
        self.app_uninstalled = False


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON-like data, so callers can mutate rendered dicts safely."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _id_hash(text: str) -> int:
    """A hash of an id that, unlike ``hash()``, is the same in every process."""
    return _mix(int.from_bytes(text.encode(), "big") & _MASK64)


def _base36(value: int, width: int) -> str:
    """``value`` in upper-case base 36, most significant digit first, zero-padded."""
    digits = []
    while value:
        value, digit = divmod(value, 36)
        digits.append("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[digit])
    return "".join(reversed(digits)).rjust(width, "0")


def _encode_id(value: int, length: int) -> str:
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
            candidate = prefix + _encode_id(self._rng.getrandbits(64), 10)
            if candidate not in self._seen:
                self._seen.add(candidate)
                return candidate


def _make_reactions(
    rng: random.Random, reactors: list[str], incomplete_ratio: float
) -> list[Reaction]:
    count = 1 if rng.random() < 0.7 else 2 + (rng.random() < 0.3)
    names = rng.sample(_REACTION_NAMES, count)
    reactions = []
    for name in names:
        users = rng.sample(reactors, min(len(reactors), 1 + int(rng.random() ** 2 * 6)))
        shown = None
        if len(users) >= 2 and rng.random() < incomplete_ratio:
            shown = rng.randrange(1, len(users))
        reactions.append(Reaction(name, users, shown))
    return reactions


def generate_workspace(
    seed: int = 0,
    *,
    users: int = 12,
    channels: int = 4,
    private_channels: int = 2,
    days: int = 3,
    messages_per_channel_day: int = 20,
    start: date = date(2026, 11, 1),
    reply_ratio: float = 0.25,
    thread_ratio: float = 0.15,
    broadcast_ratio: float = 1 / 16,
    reaction_ratio: float = 0.1,
    incomplete_reaction_ratio: float = 0.05,
    team_name: str | None = None,
) -> FakeWorkspace:
    """Generate a deterministic workspace for ``seed``.

    Conversations: ``channels`` public channels (the first is #general, the last one our bot is
    not in, to exercise ``not_in_channel``), ``private_channels`` private ones, one archived
    public channel, one im (``D...``) and one mpim (``G...``). Every conversation gets exactly
    ``messages_per_channel_day`` messages (top level and replies) on each of ``days`` UTC days
    from ``start``, so the total is predictable: ``(channels + private_channels + 3) * days *
    messages_per_channel_day``.

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
    rng = random.Random(seed)
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

    workspace = FakeWorkspace(
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


def _ensure_cases(workspace: FakeWorkspace, flags: set[str]) -> None:
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
        name = next(n for n in _REACTION_NAMES if n not in taken)
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
