"""Slack Events API payloads: what the receiver stores, and what each event changes.

Pure functions: an Events API envelope (as Slack POSTs it, or as the `payload` of a Socket Mode
`events_api` envelope) becomes one inbox row; a stored event becomes a `Change`, the plain
description of what to write that `slack.apply` hands to the store. Nothing here touches the
database, so every shape Slack sends is cheap to test.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from toban_orchestration.slack import normalize

TRANSPORT_SOCKET_MODE = "socket_mode"
TRANSPORT_HTTP = "http"

# Message subtypes that carry a message somebody (or a bot) posted: stored like polled messages.
# System notices (joins, topic changes) are stored too, as the polling sync does: history
# returns them, and "the database equals Slack" includes them.
CHANGED = "message_changed"
DELETED = "message_deleted"
# Hidden bookkeeping Slack may send for a thread parent; the reply's own event carries the news.
IGNORED_MESSAGE_SUBTYPES = frozenset({"message_replied", "assistant_app_thread"})

CHANNEL_EVENTS = frozenset(
    {
        "channel_created",
        "channel_rename",
        "channel_archive",
        "channel_unarchive",
        "channel_deleted",
        "group_rename",
        "group_archive",
        "group_unarchive",
        "group_deleted",
    }
)
MEMBER_EVENTS = frozenset({"member_joined_channel", "member_left_channel"})
# Our bot removed from a channel: Slack sends these (with `actor_id`), not member_left_channel.
BOT_LEFT_EVENTS = frozenset({"channel_left", "group_left"})
USER_EVENTS = frozenset({"user_change", "team_join"})
ACCESS_EVENTS = frozenset({"tokens_revoked", "app_uninstalled"})
REACTION_EVENTS = frozenset({"reaction_added", "reaction_removed"})
FOLLOWED_EVENTS = (
    frozenset({"message"}) | CHANNEL_EVENTS | MEMBER_EVENTS | USER_EVENTS | ACCESS_EVENTS
) | (REACTION_EVENTS | BOT_LEFT_EVENTS)


class EventEnvelopeError(ValueError):
    """An envelope we cannot store; the message names the field."""


@dataclass(frozen=True)
class InboxEvent:
    """One Events API delivery, as the inbox stores it."""

    event_id: str
    team_id: str
    event_type: str
    event_subtype: str | None
    channel_slack_id: str | None
    event_time: datetime
    payload: dict[str, Any]
    """The envelope without its verification token: `event`, `authorizations` (which name
    the app's bot user), `event_id`, `event_time`."""


def _required(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    value = mapping.get(key)
    if value in (None, ""):
        raise EventEnvelopeError(f"Slack event envelope: `{where}{key}` is missing")
    return value


def event_channel(event: Mapping[str, Any]) -> str | None:
    """The channel an event is about, whichever field Slack puts it in."""
    item = event.get("item")
    if isinstance(item, Mapping) and item.get("channel"):
        return str(item["channel"])
    channel = event.get("channel")
    if isinstance(channel, Mapping):
        return str(channel.get("id") or "") or None
    if isinstance(channel, str) and channel:
        return channel
    return None


def parse_envelope(envelope: Mapping[str, Any]) -> InboxEvent:
    """An `event_callback` envelope as an inbox row; raises `EventEnvelopeError` otherwise."""
    if envelope.get("type") != "event_callback":
        raise EventEnvelopeError(
            f"Slack event envelope: `type` is {envelope.get('type')!r}, not 'event_callback'"
        )
    event = _required(envelope, "event", "")
    if not isinstance(event, Mapping):
        raise EventEnvelopeError("Slack event envelope: `event` is not an object")
    event_type = str(_required(event, "type", "event."))
    team_id = envelope.get("team_id") or event.get("team")
    if not team_id:
        # Org-wide installs name the workspace in `authorizations` only.
        authorizations = envelope.get("authorizations") or []
        team_id = authorizations[0].get("team_id") if authorizations else None
    if not team_id:
        raise EventEnvelopeError("Slack event envelope: `team_id` is missing")
    event_time = envelope.get("event_time")
    try:
        when = (
            datetime.fromtimestamp(float(event_time), UTC)
            if event_time is not None
            else normalize.ts_to_datetime(str(_required(event, "event_ts", "event.")))
        )
    except (TypeError, ValueError, ArithmeticError) as error:
        raise EventEnvelopeError(
            f"Slack event envelope: `event_time` is invalid ({error})"
        ) from None
    subtype = event.get("subtype")
    return InboxEvent(
        event_id=str(_required(envelope, "event_id", ""))[:255],
        team_id=str(team_id)[:255],
        event_type=event_type[:100],
        event_subtype=str(subtype)[:100] if subtype else None,
        channel_slack_id=event_channel(event),
        event_time=when,
        # The verification token is a credential of the app: never stored.
        payload=normalize.clean_json({k: v for k, v in envelope.items() if k != "token"}),
    )


# --- what an event changes ----------------------------------------------------------------


@dataclass
class Change:
    """What one stored event asks of the store (at most one of the parts is set)."""

    new_messages: list[dict[str, Any]] = field(default_factory=list)
    """Messages posted (Web API message shape): inserted when not stored yet."""
    edited_message: dict[str, Any] | None = None
    """The message as it is now (message_changed): its content replaces what is stored when it
    is at least as new."""
    deleted_ts: str | None = None
    reaction: tuple[str, str, str, bool] | None = None
    """(message ts, user, emoji, added)."""
    channel: dict[str, Any] | None = None
    """A channel event: {"slack_id", and the fields it changes}."""
    member: tuple[str, str | None, bool] | None = None
    """(channel, user, joined); user None: our own bot (it left)."""
    user: dict[str, Any] | None = None
    """A user object as users.list returns it."""
    access_lost: str | None = None
    """tokens_revoked or app_uninstalled."""
    ignored: str | None = None
    """Why nothing is done (a subtype we do not follow)."""


def bot_user_of(envelope: Mapping[str, Any]) -> str | None:
    """The app's bot user in the workspace the event came from."""
    for authorization in envelope.get("authorizations") or []:
        if authorization.get("is_bot") and authorization.get("user_id"):
            return str(authorization["user_id"])
    return None


def change_of(event_type: str, event: Mapping[str, Any]) -> Change:
    """The change an event describes."""
    if event_type == "message":
        subtype = event.get("subtype")
        if subtype == CHANGED:
            message = event.get("message")
            if not isinstance(message, Mapping) or not message.get("ts"):
                return Change(ignored="message_changed without a message")
            return Change(edited_message=dict(message))
        if subtype == DELETED:
            deleted = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
            if not deleted:
                return Change(ignored="message_deleted without deleted_ts")
            return Change(deleted_ts=str(deleted))
        if subtype in IGNORED_MESSAGE_SUBTYPES:
            return Change(ignored=f"message subtype {subtype}")
        if not event.get("ts"):
            return Change(ignored="message without ts")
        return Change(new_messages=[dict(event)])
    if event_type in REACTION_EVENTS:
        item = event.get("item") or {}
        if item.get("type") != "message" or not item.get("ts"):
            return Change(ignored=f"{event_type} on a {item.get('type')}")
        return Change(
            reaction=(
                str(item["ts"]),
                str(event.get("user") or ""),
                str(event.get("reaction") or ""),
                event_type == "reaction_added",
            )
        )
    if event_type in CHANNEL_EVENTS:
        return Change(channel=_channel_change(event_type, event))
    if event_type in MEMBER_EVENTS:
        return Change(
            member=(
                str(event.get("channel") or ""),
                str(event.get("user") or ""),
                event_type == "member_joined_channel",
            )
        )
    if event_type in BOT_LEFT_EVENTS:
        return Change(member=(str(event.get("channel") or ""), None, False))
    if event_type in USER_EVENTS:
        user = event.get("user")
        if not isinstance(user, Mapping) or not user.get("id"):
            return Change(ignored=f"{event_type} without a user object")
        return Change(user=dict(user))
    if event_type in ACCESS_EVENTS:
        return Change(access_lost=event_type)
    return Change(ignored=f"event type {event_type} is not followed")


def _channel_change(event_type: str, event: Mapping[str, Any]) -> dict[str, Any]:
    raw = event.get("channel")
    channel: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {"id": raw}
    kind = event_type.split("_", 1)[1]
    change: dict[str, Any] = {"slack_id": str(channel.get("id") or "")}
    if kind == "created":
        change["created"] = normalize.channel_row(channel)
    elif kind == "rename":
        change["name"] = normalize.channel_row(channel)["name"]
    elif kind == "archive":
        change["is_archived"] = True
    elif kind == "unarchive":
        change["is_archived"] = False
    elif kind == "deleted":
        change["is_archived"] = True
        change["is_supported"] = False
    return change
