"""The fake Slack server's Events API: the events each workspace mutation records, and their
delivery over Socket Mode (through slack-sdk's own ``SocketModeClient``) and to a Request URL.

The product's event receiver is tested against this server, so these tests pin down that what
it sends has Slack's shapes (taken from Slack's documentation and from payloads captured from
Slack) and that delivery behaves like Slack's: at least once, retried while unacknowledged,
signed over HTTP. No mocks: real websockets, real HTTP.
"""

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from toban_orchestration_tests.fakes.slack_server import (
    BOT_MESSAGE,
    CHANNEL_JOIN,
    CHANNEL_LEAVE,
    FILE_SHARE,
    MESSAGE_CHANGED,
    MESSAGE_DELETED,
    THREAD_BROADCAST,
    TOMBSTONE,
    Channel,
    FakeSlackServer,
    FakeWorkspace,
    generate_workspace,
    int_to_ts,
    slack_signature,
    ts_to_int,
)

JSONDict = dict[str, Any]
TOKEN = "xoxb-events-test"
APP_TOKEN = "xapp-1-AEVENTS-1-test"
SECRET = "events-test-signing-secret"


def small_workspace(seed: int = 11) -> FakeWorkspace:
    return generate_workspace(
        seed, users=5, channels=3, private_channels=1, days=1, messages_per_channel_day=6
    )


@pytest.fixture
def workspace() -> FakeWorkspace:
    """A small workspace recording events (no server: shapes only)."""
    workspace = small_workspace()
    workspace.events_enabled = True
    return workspace


def channel_of(workspace: FakeWorkspace, kind: str, *, member: bool = True) -> Channel:
    return next(
        c
        for c in workspace.channels
        if c.kind == kind and c.is_member == member and not c.is_archived
    )


def human(workspace: FakeWorkspace, index: int = 0) -> str:
    return [u.id for u in workspace.users if not u.is_bot and not u.deleted][index]


def events(workspace: FakeWorkspace) -> list[JSONDict]:
    """The inner events recorded since the last call (which clears them)."""
    recorded = [envelope["event"] for envelope in workspace.recorded_events()]
    workspace.clear_events()
    return recorded


def message_event(workspace: FakeWorkspace, channel: Channel, ts: str) -> JSONDict:
    """What a ``message`` event for a new message is: its rendering, plus where it is."""
    return {
        **workspace.message_dict(channel.id, ts),
        "channel": channel.id,
        "event_ts": ts,
        "channel_type": {"public": "channel", "private": "group"}.get(channel.kind, channel.kind),
    }


# ---------------------------------------------------------------------- envelopes and messages


def test_nothing_is_recorded_while_events_are_off() -> None:
    workspace = small_workspace()
    general = channel_of(workspace, "public")
    ts = workspace.add_message(general.id, text="quiet")
    workspace.add_reply(general.id, ts, text="still quiet")
    workspace.edit_message(general.id, ts, "edited")
    workspace.add_reaction(general.id, ts, "eyes", human(workspace))
    workspace.create_channel("no-news")
    workspace.update_user(human(workspace), title="Boss")
    workspace.delete_message(general.id, ts)
    workspace.revoke_token()
    assert workspace.recorded_events() == []
    with FakeSlackServer(workspace, TOKEN) as server:  # a server whose events are off
        assert server.events_sent() == []
        assert server.pending_events() == 0


def test_envelope_of_a_message(workspace: FakeWorkspace) -> None:
    general = channel_of(workspace, "public")
    author = human(workspace, 1)
    ts = workspace.add_message(general.id, user=author, text="Hello <@U1> & co")
    (envelope,) = workspace.recorded_events()
    assert list(envelope) == [
        "token",
        "team_id",
        "api_app_id",
        "event",
        "type",
        "event_id",
        "event_time",
        "authorizations",
        "is_ext_shared_channel",
        "event_context",
    ]
    assert envelope["token"] == workspace.verification_token
    assert envelope["team_id"] == workspace.team_id
    assert envelope["api_app_id"] == workspace.api_app_id
    assert envelope["api_app_id"].startswith("A")
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"].startswith("Ev")
    assert envelope["event_time"] == int(float(ts))
    assert envelope["authorizations"] == [
        {
            "enterprise_id": None,
            "team_id": workspace.team_id,
            "user_id": workspace.bot_user_id,
            "is_bot": True,
            "is_enterprise_install": False,
        }
    ]
    assert envelope["is_ext_shared_channel"] is False
    assert envelope["event_context"].startswith("4-")
    event = envelope["event"]
    assert event == message_event(workspace, general, ts)
    assert event["type"] == "message"
    assert "subtype" not in event
    assert (event["user"], event["text"], event["ts"]) == (author, "Hello <@U1> & co", ts)
    assert event["team"] == workspace.team_id
    assert "client_msg_id" in event


def test_replies_and_broadcasts(workspace: FakeWorkspace) -> None:
    general = channel_of(workspace, "public")
    parent_author = human(workspace, 0)
    parent = workspace.add_message(general.id, user=parent_author, text="parent")
    reply = workspace.add_reply(general.id, parent, user=human(workspace, 1), text="reply")
    broadcast = workspace.add_reply(
        general.id, parent, user=human(workspace, 2), text="to all", broadcast=True
    )
    _, reply_event, broadcast_event = events(workspace)
    assert reply_event == message_event(workspace, general, reply)
    assert (reply_event["thread_ts"], reply_event["parent_user_id"]) == (parent, parent_author)
    assert broadcast_event["subtype"] == THREAD_BROADCAST
    assert broadcast_event["thread_ts"] == parent
    # Slack sends the thread's parent as "root", its thread fields counting this reply.
    root = broadcast_event.pop("root")
    assert root == workspace.message_dict(general.id, parent)
    assert (root["reply_count"], root["latest_reply"]) == (2, broadcast)
    assert broadcast_event == message_event(workspace, general, broadcast)


def test_bot_messages_and_file_shares(workspace: FakeWorkspace) -> None:
    general = channel_of(workspace, "public")
    bot_ts = workspace.add_message(general.id, subtype=BOT_MESSAGE, text="deployed")
    files = [{"id": "F0TEST", "name": "report.pdf", "mimetype": "application/pdf"}]
    file_ts = workspace.add_message(
        general.id, subtype=FILE_SHARE, text="", extra={"files": files, "upload": True}
    )
    bot_event, file_event = events(workspace)
    integration = workspace.user(workspace.integration_bot_id)
    assert bot_event == message_event(workspace, general, bot_ts)
    assert bot_event["subtype"] == BOT_MESSAGE
    assert "user" not in bot_event
    assert (bot_event["bot_id"], bot_event["username"]) == (integration.bot_id, integration.name)
    assert file_event == message_event(workspace, general, file_ts)
    assert (file_event["subtype"], file_event["files"]) == (FILE_SHARE, files)


def test_channel_types_and_membership(workspace: FakeWorkspace) -> None:
    """Message events name the conversation type; an app gets none from conversations its bot
    user is not in, until it joins."""
    kinds = {"private": "group", "im": "im", "mpim": "mpim"}
    for kind, channel_type in kinds.items():
        channel = channel_of(workspace, kind)
        workspace.add_message(channel.id, text=kind)
        (event,) = events(workspace)
        assert (event["channel"], event["channel_type"]) == (channel.id, channel_type)
    outside = channel_of(workspace, "public", member=False)
    workspace.add_message(outside.id, text="not for the bot")
    assert events(workspace) == []
    assert workspace.join(outside.id)
    ts = workspace.add_message(outside.id, text="now it is")
    joined, message = events(workspace)
    assert joined == {
        "type": "member_joined_channel",
        "user": workspace.bot_user_id,
        "channel": outside.id,
        "channel_type": "C",
        "team": workspace.team_id,
        "event_ts": joined["event_ts"],
    }
    assert message == message_event(workspace, outside, ts)


def test_edits_of_a_message_and_of_a_reply(workspace: FakeWorkspace) -> None:
    general = channel_of(workspace, "public")
    author = human(workspace, 1)
    ts = workspace.add_message(general.id, user=author, text="helo")
    reply = workspace.add_reply(general.id, ts, user=author, text="typo")
    workspace.clear_events()
    before = workspace.message_dict(general.id, ts)
    edit_ts = workspace.edit_message(general.id, ts, "hello")
    reply_before = workspace.message_dict(general.id, reply)
    reply_edit_ts = workspace.edit_message(general.id, reply, "no typo")
    changed, reply_changed = events(workspace)
    assert changed == {
        "type": "message",
        "subtype": MESSAGE_CHANGED,
        "message": workspace.message_dict(general.id, ts),
        "previous_message": before,
        "channel": general.id,
        "hidden": True,
        "ts": edit_ts,
        "event_ts": edit_ts,
        "channel_type": "channel",
    }
    assert changed["message"]["text"] == "hello"
    assert changed["message"]["edited"] == {"user": author, "ts": edit_ts}
    assert changed["previous_message"]["text"] == "helo"
    assert reply_changed["message"] == workspace.message_dict(general.id, reply)
    assert reply_changed["message"]["thread_ts"] == ts
    assert reply_changed["previous_message"] == reply_before
    assert reply_changed["ts"] == reply_changed["event_ts"] == reply_edit_ts


def test_deletes_of_a_message_and_of_a_reply(workspace: FakeWorkspace) -> None:
    general = channel_of(workspace, "public")
    lone = workspace.add_message(general.id, text="soon gone")
    parent = workspace.add_message(general.id, text="parent")
    reply = workspace.add_reply(general.id, parent, text="reply")
    other = workspace.add_reply(general.id, parent, text="another")
    workspace.clear_events()
    lone_before = workspace.message_dict(general.id, lone)
    reply_before = workspace.message_dict(general.id, reply)
    workspace.delete_message(general.id, lone)
    workspace.delete_message(general.id, reply)
    deleted, reply_deleted = events(workspace)
    assert deleted == {
        "type": "message",
        "subtype": MESSAGE_DELETED,
        "hidden": True,
        "channel": general.id,
        "previous_message": lone_before,
        "deleted_ts": lone,
        "ts": deleted["ts"],
        "event_ts": deleted["ts"],
        "channel_type": "channel",
    }
    assert ts_to_int(deleted["ts"]) > ts_to_int(other)
    assert reply_deleted["deleted_ts"] == reply
    assert reply_deleted["previous_message"] == reply_before
    assert reply_deleted["previous_message"]["thread_ts"] == parent


def test_deleting_a_thread_parent_makes_a_tombstone(workspace: FakeWorkspace) -> None:
    """Slack sends a message_changed whose message is the tombstone; when the last reply goes,
    the tombstone goes too, with a message_deleted of its own."""
    general = channel_of(workspace, "public")
    parent = workspace.add_message(general.id, text="parent")
    reply = workspace.add_reply(general.id, parent, text="reply")
    workspace.clear_events()
    before = workspace.message_dict(general.id, parent)
    workspace.delete_message(general.id, parent)
    (changed,) = events(workspace)
    tombstone = workspace.message_dict(general.id, parent)
    assert tombstone["subtype"] == TOMBSTONE
    assert changed["subtype"] == MESSAGE_CHANGED
    assert (changed["message"], changed["previous_message"]) == (tombstone, before)
    assert changed["message"]["reply_count"] == 1
    workspace.delete_message(general.id, reply)
    reply_deleted, parent_deleted = events(workspace)
    assert reply_deleted["deleted_ts"] == reply
    assert parent_deleted["subtype"] == MESSAGE_DELETED
    assert parent_deleted["deleted_ts"] == parent
    gone = parent_deleted["previous_message"]
    assert (gone["subtype"], gone["ts"], gone["reply_count"], gone["reply_users"]) == (
        TOMBSTONE,
        parent,
        0,
        [],
    )
    assert workspace.message_count(general.id) == len(general.by_ts)
    assert ts_to_int(parent) not in general.by_ts


def test_tombstone_can_also_send_message_deleted(workspace: FakeWorkspace) -> None:
    workspace.tombstone_sends_deleted = True
    general = channel_of(workspace, "public")
    parent = workspace.add_message(general.id, text="parent")
    workspace.add_reply(general.id, parent, text="reply")
    workspace.clear_events()
    workspace.delete_message(general.id, parent)
    assert [(e["subtype"], e.get("deleted_ts")) for e in events(workspace)] == [
        (MESSAGE_DELETED, parent),
        (MESSAGE_CHANGED, None),
    ]


def test_reactions_on_a_message_and_on_a_reply(workspace: FakeWorkspace) -> None:
    general = channel_of(workspace, "public")
    author, reactor = human(workspace, 0), human(workspace, 1)
    ts = workspace.add_message(general.id, user=author, text="react to me")
    reply = workspace.add_reply(general.id, ts, user=reactor, text="and me")
    workspace.clear_events()
    workspace.add_reaction(general.id, ts, "tada", reactor)
    workspace.add_reaction(general.id, reply, "eyes", author)
    workspace.remove_reaction(general.id, ts, "tada", reactor)
    added, added_to_reply, removed = events(workspace)
    assert added == {
        "type": "reaction_added",
        "user": reactor,
        "reaction": "tada",
        "item_user": author,
        "item": {"type": "message", "channel": general.id, "ts": ts},
        "event_ts": added["event_ts"],
    }
    assert added_to_reply["item"] == {"type": "message", "channel": general.id, "ts": reply}
    assert added_to_reply["item_user"] == reactor
    assert removed == {**added, "type": "reaction_removed", "event_ts": removed["event_ts"]}


# ---------------------------------------------------------------------- channels, members, users


def test_channel_lifecycle_events(workspace: FakeWorkspace) -> None:
    creator = human(workspace)
    channel_id = workspace.create_channel("launch", creator=creator)
    (created,) = events(workspace)
    channel = workspace.channel(channel_id)
    assert created == {
        "type": "channel_created",
        "channel": {
            "id": channel_id,
            "is_channel": True,
            "name": "launch",
            "name_normalized": "launch",
            "created": channel.created,
            "creator": creator,
            "is_shared": False,
            "is_org_shared": False,
            "context_team_id": workspace.team_id,
        },
        "event_ts": created["event_ts"],
    }
    assert (channel.kind, channel.is_member, channel.members) == ("public", False, [creator])
    workspace.rename_channel(channel_id, "launch-2027")
    workspace.archive_channel(channel_id, user=creator)
    workspace.unarchive_channel(channel_id, user=creator)
    workspace.delete_channel(channel_id)
    renamed, archived, unarchived, deleted = events(workspace)
    assert renamed["type"] == "channel_rename"
    assert renamed["channel"] == {
        "id": channel_id,
        "name": "launch-2027",
        "name_normalized": "launch-2027",
        "created": channel.created,
        "is_channel": True,
        "is_mpim": False,
    }
    assert archived == {
        "type": "channel_archive",
        "channel": channel_id,
        "user": creator,
        "is_moved": 0,
        "event_ts": archived["event_ts"],
    }
    assert unarchived == {
        "type": "channel_unarchive",
        "channel": channel_id,
        "user": creator,
        "event_ts": unarchived["event_ts"],
    }
    assert deleted == {
        "type": "channel_deleted",
        "channel": channel_id,
        "event_ts": deleted["event_ts"],
    }
    assert channel_id not in {c.id for c in workspace.channels}


def test_private_channels_are_announced_only_to_members(workspace: FakeWorkspace) -> None:
    hidden = workspace.create_channel("secret", private=True)
    workspace.rename_channel(hidden, "still-secret")
    assert events(workspace) == []  # Slack announces no private channel to apps outside it
    private = channel_of(workspace, "private")
    workspace.rename_channel(private.id, "private-renamed")
    workspace.archive_channel(private.id)
    workspace.unarchive_channel(private.id)
    workspace.delete_channel(private.id)
    assert [
        (e["type"], e["channel"] if e["type"] != "group_rename" else e["channel"]["id"])
        for e in events(workspace)
    ] == [
        ("group_rename", private.id),
        ("group_archive", private.id),
        ("group_unarchive", private.id),
        ("group_deleted", private.id),
    ]


def test_members_joining_and_leaving(workspace: FakeWorkspace) -> None:
    general = channel_of(workspace, "public")
    newcomer = workspace.add_user("nora.newcomer", "Nora Newcomer")
    workspace.clear_events()
    inviter = human(workspace)
    join_ts = workspace.add_member(general.id, newcomer, inviter=inviter)
    assert join_ts is not None
    joined, join_message = events(workspace)
    assert joined == {
        "type": "member_joined_channel",
        "user": newcomer,
        "channel": general.id,
        "channel_type": "C",
        "team": workspace.team_id,
        "inviter": inviter,
        "event_ts": joined["event_ts"],
    }
    assert join_message == message_event(workspace, general, join_ts)
    assert (join_message["subtype"], join_message["inviter"]) == (CHANNEL_JOIN, inviter)
    assert join_message["text"] == f"<@{newcomer}> has joined the channel"
    leave_ts = workspace.remove_member(general.id, newcomer)
    assert leave_ts is not None
    left, leave_message = events(workspace)
    assert left == {
        "type": "member_left_channel",
        "user": newcomer,
        "channel": general.id,
        "channel_type": "C",
        "team": workspace.team_id,
        "event_ts": left["event_ts"],
    }
    assert leave_message["subtype"] == CHANNEL_LEAVE
    assert newcomer not in general.members


def test_our_bot_joining_and_leaving_changes_is_member(workspace: FakeWorkspace) -> None:
    outside = channel_of(workspace, "public", member=False)
    bot = workspace.bot_user_id
    ts = workspace.add_member(outside.id, bot, inviter=human(workspace))
    assert ts is not None
    assert outside.is_member
    joined, join_message = events(workspace)
    assert (joined["type"], joined["user"]) == ("member_joined_channel", bot)
    assert (join_message["subtype"], join_message["user"]) == (CHANNEL_JOIN, bot)
    with FakeSlackServer(workspace, TOKEN) as server:
        client = WebClient(token=TOKEN, base_url=server.base_url)
        assert client.conversations_info(channel=outside.id)["channel"]["is_member"] is True
        remover = human(workspace)
        workspace.remove_member(outside.id, bot, actor=remover)
        assert client.conversations_info(channel=outside.id)["channel"]["is_member"] is False
    (left,) = events(workspace)
    assert left == {
        "type": "channel_left",
        "channel": outside.id,
        "actor_id": remover,
        "event_ts": left["event_ts"],
    }
    workspace.add_message(outside.id, text="the bot no longer hears this")
    assert events(workspace) == []


def test_user_events(workspace: FakeWorkspace) -> None:
    user_id = human(workspace, 1)
    workspace.update_user(user_id, title="Chief Shipper", display_name="shipper")
    (changed,) = events(workspace)
    user = workspace.user(user_id)
    assert changed == {
        "type": "user_change",
        "user": workspace.render_user(user),
        "cache_ts": user.updated,
        "event_ts": changed["event_ts"],
    }
    assert changed["user"]["profile"]["title"] == "Chief Shipper"
    with pytest.raises(TypeError):
        workspace.update_user(user_id, shoe_size=44)
    new_id = workspace.add_user("olga.new", "Olga New", email="olga@example.com")
    (joined,) = events(workspace)
    assert joined["type"] == "team_join"
    assert joined["user"] == workspace.render_user(workspace.user(new_id))
    assert workspace.user_dicts()[-1]["id"] == new_id


def test_tokens_revoked_and_app_uninstalled(workspace: FakeWorkspace) -> None:
    general = channel_of(workspace, "public")
    workspace.revoke_token()
    workspace.add_message(general.id, text="nobody listens")
    (revoked,) = workspace.recorded_events()
    assert revoked["event"] == {
        "type": "tokens_revoked",
        "tokens": {"oauth": [], "bot": [workspace.bot_user_id]},
    }
    assert "event_context" not in revoked
    workspace.clear_events()
    workspace.restore_access()
    workspace.uninstall_app()
    assert [e["type"] for e in events(workspace)] == ["tokens_revoked", "app_uninstalled"]
    workspace.add_message(general.id, text="still nobody")
    workspace.uninstall_app()
    assert events(workspace) == []
    with FakeSlackServer(workspace, TOKEN) as server:
        with pytest.raises(SlackApiError) as error:
            WebClient(token=TOKEN, base_url=server.base_url).auth_test()
        assert error.value.response["error"] == "token_revoked"


def test_event_ids_are_unique_and_event_ts_increase(workspace: FakeWorkspace) -> None:
    general = channel_of(workspace, "public")
    old = next(m for m in general.history if m.subtype != TOMBSTONE)
    ts = workspace.add_message(general.id, text="a")
    workspace.add_reaction(general.id, ts, "eyes", human(workspace))
    workspace.edit_message(general.id, int_to_ts(old.ts), "an old message, edited")
    workspace.add_message(general.id, ts="1700000000.000100", text="backdated")
    workspace.delete_message(general.id, ts)
    workspace.add_member(general.id, workspace.add_user("late.comer"))
    envelopes = workspace.recorded_events()
    assert len({e["event_id"] for e in envelopes}) == len(envelopes) == 8
    stamps = [ts_to_int(e["event"]["event_ts"]) for e in envelopes]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


# ---------------------------------------------------------------------- Socket Mode


@contextlib.contextmanager
def events_server(workspace: FakeWorkspace, **options: Any) -> Iterator[FakeSlackServer]:
    """A running server delivering events; on a clean exit, none of its threads crashed."""
    with FakeSlackServer(workspace, TOKEN) as server:
        server.enable_events(app_token=APP_TOKEN, signing_secret=SECRET, **options)
        yield server
        assert server.internal_errors == []


def socket_url(server: FakeSlackServer) -> str:
    answer = WebClient(base_url=server.base_url).apps_connections_open(app_token=APP_TOKEN)
    return str(answer["url"])


def receive(connection: ClientConnection, timeout: float = 3.0) -> JSONDict:
    message = json.loads(connection.recv(timeout=timeout))
    assert isinstance(message, dict)
    return message


@contextlib.contextmanager
def open_socket(server: FakeSlackServer) -> Iterator[tuple[ClientConnection, JSONDict]]:
    """A raw websocket client (to control acks exactly), past the server's hello."""
    with connect(socket_url(server)) as connection:
        hello = receive(connection)
        assert hello["type"] == "hello"
        assert server.wait_for_socket_clients(hello["num_connections"])
        yield connection, hello


def test_slack_sdk_socket_mode_client_receives_and_acks() -> None:
    workspace = small_workspace()
    general = channel_of(workspace, "public")
    # A long ack timeout: on a loaded machine the SDK's listener threads may ack late.
    with events_server(workspace, ack_timeout=10.0) as server:
        requests: list[SocketModeRequest] = []
        raw: list[JSONDict] = []
        client = SocketModeClient(
            app_token=APP_TOKEN, web_client=WebClient(base_url=server.base_url)
        )

        def on_request(client: BaseSocketModeClient, request: SocketModeRequest) -> None:
            requests.append(request)
            client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

        def on_message(client: BaseSocketModeClient, message: JSONDict, _: str | None) -> None:
            raw.append(message)

        client.socket_mode_request_listeners.append(on_request)
        client.message_listeners.append(on_message)
        try:
            client.connect()
            assert server.wait_for_socket_clients(1)
            ts = workspace.add_message(general.id, text="over the socket")
            workspace.add_reaction(general.id, ts, "rocket", human(workspace))
            assert server.wait_until_events_delivered(5)
            sent = server.events_sent()
            # The SDK hands requests to a pool of listener threads: any order.
            by_id = {r.payload["event_id"]: r.payload for r in requests}
            assert by_id == {e["event_id"]: e for e in sent}
            assert [r.type for r in requests] == ["events_api", "events_api"]
            assert [r.retry_attempt for r in requests] == [0, 0]
            assert [e["event"]["type"] for e in sent] == ["message", "reaction_added"]
            assert sorted(server.events_acknowledged()) == sorted(e["event_id"] for e in sent)
            attempts = server.delivery_attempts()
            assert [(a.retry_attempt, a.transport, a.outcome) for a in attempts] == [
                (0, "socket", "acknowledged")
            ] * 2
            hello = raw[0]
            assert (hello["type"], hello["num_connections"]) == ("hello", 1)
            assert hello["connection_info"] == {"app_id": workspace.api_app_id}
            # Slack refreshes connections: the client reconnects and events keep coming.
            assert server.disconnect_socket_clients() == 1
            assert server.wait_for_socket_clients(1)
            workspace.add_message(general.id, text="after the refresh")
            assert server.wait_until_events_delivered(5)
            assert len(requests) == 3
            assert server.pending_events() == 0
            assert server.calls["apps.connections.open"] == 2
        finally:
            client.auto_reconnect_enabled = False
            client.close()


def test_apps_connections_open_takes_the_app_token_only() -> None:
    workspace = small_workspace()
    with events_server(workspace) as server:
        web = WebClient(base_url=server.base_url)
        url = socket_url(server)
        assert url.startswith(f"ws://127.0.0.1:{server.event_delivery.socket_port}/link/?ticket=")
        for token, error in (
            (TOKEN, "not_allowed_token_type"),
            ("xapp-1-AOTHER-1-wrong", "invalid_auth"),
        ):
            with pytest.raises(SlackApiError) as refused:
                web.apps_connections_open(app_token=token)
            assert refused.value.response["error"] == error
        with pytest.raises(SlackApiError) as wrong_method:
            WebClient(token=APP_TOKEN, base_url=server.base_url).auth_test()
        assert wrong_method.value.response["error"] == "not_allowed_token_type"
        forged = url.replace("ticket=", "ticket=forged-")
        with pytest.raises(InvalidStatus):
            connect(forged)


def test_unacknowledged_envelope_is_redelivered() -> None:
    workspace = small_workspace()
    general = channel_of(workspace, "public")
    with events_server(workspace, ack_timeout=0.3) as server:
        with open_socket(server) as (connection, _):
            workspace.add_message(general.id, text="ack me, eventually")
            first = receive(connection)
            assert (first["type"], first["retry_attempt"], first["retry_reason"]) == (
                "events_api",
                0,
                "",
            )
            assert first["accepts_response_payload"] is False
            second = receive(connection)  # no ack within 0.3 s
            assert (second["retry_attempt"], second["retry_reason"]) == (1, "timeout")
            assert second["payload"] == first["payload"]
            assert second["envelope_id"] != first["envelope_id"]
            connection.send(json.dumps({"envelope_id": second["envelope_id"]}))
            assert server.wait_until_events_delivered(3)
        event_id = first["payload"]["event_id"]
        assert server.events_acknowledged() == [event_id]
        assert [(a.retry_attempt, a.outcome) for a in server.delivery_attempts()] == [
            (0, "timeout"),
            (1, "acknowledged"),
        ]


def test_envelope_dropped_after_max_retries() -> None:
    workspace = small_workspace()
    general = channel_of(workspace, "public")
    with events_server(workspace, ack_timeout=0.2, max_retries=1) as server:
        with open_socket(server) as (connection, _):
            workspace.add_message(general.id, text="never acked")
            attempts = [receive(connection)["retry_attempt"] for _ in range(2)]
            assert attempts == [0, 1]
            assert server.wait_until_events_delivered(3)
            with pytest.raises(TimeoutError):
                connection.recv(timeout=0.4)  # nothing more
        (envelope,) = server.events_sent()
        assert server.events_dropped() == [envelope["event_id"]]
        assert server.events_acknowledged() == []
        assert server.pending_events() == 0


def test_events_wait_for_a_connection_and_move_when_one_closes() -> None:
    workspace = small_workspace()
    general = channel_of(workspace, "public")
    with events_server(workspace, ack_timeout=2.0) as server:
        workspace.add_message(general.id, text="recorded while nobody listens")
        time.sleep(0.2)
        assert server.pending_events() == 1
        assert server.delivery_attempts() == []
        with open_socket(server) as (first, hello), open_socket(server) as (second, hello_2):
            assert (hello["num_connections"], hello_2["num_connections"]) == (1, 2)
            waiting = receive(first)
            assert waiting["retry_attempt"] == 0  # waiting was no attempt
            first.close()  # closes before its ack: the envelope goes to the other connection
            moved = receive(second)
            assert (moved["retry_attempt"], moved["payload"]) == (1, waiting["payload"])
            second.send(json.dumps({"envelope_id": moved["envelope_id"]}))
            assert server.wait_until_events_delivered(3)
        assert [a.outcome for a in server.delivery_attempts()] == ["closed", "acknowledged"]


# ---------------------------------------------------------------------- HTTP Request URL


class Receiver:
    """A Request URL on loopback that verifies signatures with slack-sdk and answers each POST
    as ``answers`` says (a status, or a number of seconds to stall first)."""

    def __init__(self, answers: Callable[[int], int | float] = lambda _: 200) -> None:
        self.requests: list[tuple[dict[str, str], bytes, bool]] = []
        self.verifier = SignatureVerifier(SECRET)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                valid = receiver.verifier.is_valid_request(body, headers)
                with receiver._lock:
                    receiver.requests.append((headers, body, valid))
                    answer = answers(len(receiver.requests))
                if isinstance(answer, float):
                    time.sleep(answer)
                    answer = 200
                if not valid:
                    answer = 401
                payload = json.loads(body)
                verification = valid and payload.get("type") == "url_verification"
                reply = payload.get("challenge", "") if verification else ""
                data = reply.encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(answer)  # the sender may have stopped waiting
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/slack/events"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def test_http_delivery_is_signed() -> None:
    workspace = small_workspace()
    general = channel_of(workspace, "public")
    with Receiver() as receiver, events_server(workspace, request_url=receiver.url) as server:
        ts = workspace.add_message(general.id, text="over http")
        workspace.edit_message(general.id, ts, "over http, edited")
        assert server.wait_until_events_delivered(5)
    sent = {envelope["event_id"]: envelope for envelope in server.events_sent()}
    assert len(sent) == len(receiver.requests) == 2
    for headers, body, valid in receiver.requests:  # in any order, as Slack's
        assert valid
        envelope = json.loads(body)
        assert envelope == sent[envelope["event_id"]]
        timestamp = headers["X-Slack-Request-Timestamp"]
        assert abs(int(timestamp) - time.time()) < 30
        assert headers["X-Slack-Signature"] == slack_signature(SECRET, timestamp, body)
        assert headers["Content-Type"] == "application/json"
        assert "X-Slack-Retry-Num" not in headers
    assert sorted(server.events_acknowledged()) == sorted(sent)


def test_http_retries_with_retry_headers() -> None:
    workspace = small_workspace()
    general = channel_of(workspace, "public")
    # First POST: 500; second: stalls past ack_timeout; third: 200.
    answers: dict[int, int | float] = {1: 500, 2: 0.6}
    with (
        Receiver(lambda n: answers.get(n, 200)) as receiver,
        events_server(workspace, request_url=receiver.url, ack_timeout=0.3) as server,
    ):
        workspace.add_message(general.id, text="third time lucky")
        assert server.wait_until_events_delivered(5)
    retry_headers = [
        (h.get("X-Slack-Retry-Num"), h.get("X-Slack-Retry-Reason")) for h, _, _ in receiver.requests
    ]
    assert retry_headers == [(None, None), ("1", "http_error"), ("2", "http_timeout")]
    assert len({body for _, body, _ in receiver.requests}) == 1  # the same event each time
    assert [(a.retry_attempt, a.outcome, a.status) for a in server.delivery_attempts()] == [
        (0, "http_error", 500),
        (1, "http_timeout", None),
        (2, "acknowledged", 200),
    ]


def test_http_connection_failures_drop_the_event() -> None:
    workspace = small_workspace()
    general = channel_of(workspace, "public")
    with Receiver() as receiver:
        closed_url = receiver.url
    with events_server(workspace, request_url=closed_url, max_retries=2) as server:
        workspace.add_message(general.id, text="nobody home")
        assert server.wait_until_events_delivered(5)
    assert [a.outcome for a in server.delivery_attempts()] == ["connection_failed"] * 3
    assert server.events_dropped() == [server.events_sent()[0]["event_id"]]


def test_url_verification_and_refused_requests() -> None:
    workspace = small_workspace()
    with Receiver() as receiver, events_server(workspace, request_url=receiver.url) as server:
        assert server.send_url_verification(challenge="3eZbrw1aBm2rZgRNFdxV2595E9CY3gm") == (
            "3eZbrw1aBm2rZgRNFdxV2595E9CY3gm"
        )
        _, body, valid = receiver.requests[-1]
        assert valid
        assert json.loads(body) == {
            "token": workspace.verification_token,
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gm",
            "type": "url_verification",
        }
        assert server.send_url_verification(tamper_signature=True) == ""
        old = server.post_signed(
            None, {"type": "url_verification", "challenge": "x"}, timestamp=int(time.time()) - 600
        )
        unsigned = server.post_signed(None, {"type": "url_verification"}, signed=False)
        assert (old.status, unsigned.status) == (401, 401)
        assert [valid for _, _, valid in receiver.requests] == [True, False, False, False]
        assert server.events_sent() == []


def test_stop_leaves_no_threads_behind() -> None:
    before = set(threading.enumerate())
    workspace = small_workspace()
    with (
        events_server(workspace, ack_timeout=5.0) as server,
        open_socket(server) as (connection, _),
    ):
        workspace.add_message(channel_of(workspace, "public").id, text="left pending")
        receive(connection)
        # The server stops with a client still connected and an envelope unacknowledged.
        server.stop()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and set(threading.enumerate()) - before:
        time.sleep(0.05)
    assert set(threading.enumerate()) - before == set()
    assert server.pending_events() == 1
