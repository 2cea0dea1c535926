"""The tests' Slack workspace: the generated model (toban_orchestration.slack.sample) with what
the local server adds, mutations that Slack would make and the Events API envelopes they send.

All mutations and reads by the server hold ``lock``; every derived field is still computed from
the stored messages when rendered (see the model's docstring), so mutations cannot leave a
parent's ``reply_count`` or a reaction's ``count`` inconsistent.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

from toban_orchestration.slack import sample
from toban_orchestration.slack.sample import (
    BOT_MESSAGE,
    CHANNEL_JOIN,
    CHANNEL_LEAVE,
    DAY_US,
    SLACKBOT_USER,
    THREAD_BROADCAST,
    TOMBSTONE,
    TOMBSTONE_TEXT,
    TS_SCALE,
    Channel,
    JSONDict,
    Message,
    Reaction,
    SampleWorkspace,
    User,
    WorkspaceError,
    base36,
    copy_json,
    encode_id,
    id_hash,
    int_to_ts,
    mix64,
    ts_to_int,
)

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
JSON_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))
"""Compact, as Slack answers; one shared encoder (``json.dumps`` with options makes one a call)."""


class FakeWorkspace(SampleWorkspace):
    """A Slack workspace held in memory and served by the local server; see the module docstring.

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
        super().__init__(
            team_id=team_id,
            team_name=team_name,
            domain=domain,
            users=users,
            channels=channels,
            bot_user_id=bot_user_id,
            integration_bot_id=integration_bot_id,
            clock=clock,
        )
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
        self._events: list[JSONDict] = []
        self._event_listeners: list[EventListener] = []
        self._last_event_ts = 0
        self._id_serial = 0
        self._json: dict[Message, str] = {}
        """Each message's answer as compact JSON, made when first served; emptied by every
        mutation, so what is served never lags the ground truth."""

    @classmethod
    def serving(cls, model: SampleWorkspace) -> FakeWorkspace:
        """A generated model, ready to serve and mutate (its users, channels and messages are
        shared, not copied: a million-message model costs nothing more)."""
        return cls(
            team_id=model.team_id,
            team_name=model.team_name,
            domain=model.domain,
            users=model.users,
            channels=model.channels,
            bot_user_id=model.bot_user_id,
            integration_bot_id=model.integration_bot_id,
            clock=model._clock,
        )

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

    # ------------------------------------------------------------------ events

    def recorded_events(self) -> list[JSONDict]:
        """Every Events API envelope recorded so far, oldest first (copies, safe to change)."""
        with self.lock:
            return [copy_json(envelope) for envelope in self._events]

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
            "event_id": "Ev" + base36(next(_EVENT_SERIAL), 10),
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
            value = mix64(id_hash(self.team_id) ^ (self._id_serial * 0x9E3779B97F4A7C15))
            candidate = prefix + encode_id(value, 10)
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
                salt=id_hash(channel_id),
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


def generate_workspace(seed: int = 0, **shape: Any) -> FakeWorkspace:
    """``sample.generate``'s workspace (see its parameters), served by the local Slack server."""
    return FakeWorkspace.serving(sample.generate(seed, **shape))
