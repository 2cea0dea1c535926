"""The fake Slack server, checked through the real slack-sdk ``WebClient``.

Sync tests trust this server as Slack's stand-in, so these tests pin down the behaviours a sync
depends on (pagination that never loses or repeats a message, time windows, threads, reactions,
faults) and that the ground truth the server serves is what the accessors report.
"""

import contextlib
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import FixedValueRetryIntervalCalculator, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.web import SlackResponse

from toban_orchestration_tests.fakes.slack_server import (
    BOT_MESSAGE,
    CHANNEL_JOIN,
    FILE_SHARE,
    HUDDLE_THREAD,
    THREAD_BROADCAST,
    TOMBSTONE,
    TOMBSTONE_TEXT,
    FakeSlackServer,
    FakeWorkspace,
    Fault,
    WorkspaceError,
    generate_workspace,
    int_to_ts,
    minimum_calls,
    page_count,
    ts_to_int,
)

JSONDict = dict[str, Any]
TOKEN = "xoxb-test-token"
ALL_TYPES = "public_channel,private_channel,mpim,im"


@pytest.fixture(scope="module")
def shared_workspace() -> FakeWorkspace:
    """A workspace that tests only read (tests that mutate generate their own)."""
    return generate_workspace(7)


@contextlib.contextmanager
def serving(workspace: FakeWorkspace, **options: Any) -> Iterator[FakeSlackServer]:
    """A running server for ``workspace``; on a clean exit, none of its handlers crashed."""
    with FakeSlackServer(workspace, TOKEN, **options) as server:
        yield server
        assert server.internal_errors == []


@pytest.fixture
def server(shared_workspace: FakeWorkspace) -> Iterator[FakeSlackServer]:
    with serving(shared_workspace) as server:
        yield server


def _client(server: FakeSlackServer, **options: Any) -> WebClient:
    return WebClient(token=TOKEN, base_url=server.base_url, **options)


@pytest.fixture
def client(server: FakeSlackServer) -> WebClient:
    return _client(server)


def paginate(
    call: Callable[..., SlackResponse], key: str, **params: Any
) -> tuple[list[JSONDict], list[int]]:
    """Follow ``next_cursor`` until it is empty; returns the items and each page's length."""
    items: list[JSONDict] = []
    sizes: list[int] = []
    cursor = ""
    while True:
        response = call(**params, cursor=cursor) if cursor else call(**params)
        page = response[key]
        items.extend(page)
        sizes.append(len(page))
        cursor = response["response_metadata"]["next_cursor"]
        if not cursor:
            return items, sizes


def in_history(message: JSONDict) -> bool:
    return "parent_user_id" not in message or message.get("subtype") == THREAD_BROADCAST


def expected_history(workspace: FakeWorkspace, channel_id: str) -> list[JSONDict]:
    """Ground truth of ``conversations.history``: newest first, no plain replies."""
    return [m for m in reversed(workspace.message_dicts(channel_id)) if in_history(m)]


def perfect_sync(client: WebClient, page_size: int) -> dict[str, dict[str, JSONDict]]:
    """What a correct sync does: every message and reply once, complete reactions."""
    paginate(client.users_list, "members", limit=page_size)
    channels, _ = paginate(client.conversations_list, "channels", types=ALL_TYPES, limit=page_size)
    result: dict[str, dict[str, JSONDict]] = {}
    for channel in channels:
        if not channel.get("is_member", True):
            if channel["is_private"] or channel["is_archived"]:
                continue
            client.conversations_join(channel=channel["id"])
        seen: dict[str, JSONDict] = {}
        history, _ = paginate(
            client.conversations_history, "messages", channel=channel["id"], limit=page_size
        )
        for message in history:
            seen[message["ts"]] = message
            if message.get("reply_count"):
                thread, _ = paginate(
                    client.conversations_replies,
                    "messages",
                    channel=channel["id"],
                    ts=message["ts"],
                    limit=page_size,
                )
                seen.update((reply["ts"], reply) for reply in thread)
        for ts, message in seen.items():
            if any(r["count"] > len(r["users"]) for r in message.get("reactions", ())):
                full = client.reactions_get(channel=channel["id"], timestamp=ts, full=True)
                seen[ts] = {**message, "reactions": full["message"]["reactions"]}
        result[channel["id"]] = seen
    return result


# ---------------------------------------------------------------------------- transport


def test_slack_sdk_posts_forms_and_the_server_also_takes_get_and_json(
    server: FakeSlackServer, client: WebClient, shared_workspace: FakeWorkspace
) -> None:
    """slack-sdk 3.x's sync client POSTs a form for every method, even those it marks GET."""
    general = shared_workspace.channels[0].id
    client.auth_test()
    client.team_info()
    client.users_list(limit=5)
    client.conversations_list(types=ALL_TYPES)
    client.conversations_info(channel=general)
    client.conversations_history(channel=general, limit=2)
    client.reactions_get(channel=general, timestamp=shared_workspace.thread_parent_ts(general)[0])
    client.conversations_replies(channel=general, ts=shared_workspace.thread_parent_ts(general)[0])
    client.conversations_join(channel=general)
    assert {(r.http_verb, r.content_type) for r in server.call_log} == {
        ("POST", "application/x-www-form-urlencoded")
    }

    # A plain GET with the query string and the token as a parameter (what other clients send).
    url = f"{server.base_url}conversations.history?channel={general}&limit=3&token={TOKEN}"
    with urllib.request.urlopen(url) as answer:
        body = json.loads(answer.read())
    assert body["ok"] is True
    assert len(body["messages"]) == 3
    # A JSON body, as api_call(json=...) sends it.
    response = client.api_call("conversations.history", json={"channel": general, "limit": 4})
    assert len(response["messages"]) == 4
    assert server.call_log[-2].http_verb == "GET"
    assert server.call_log[-1].content_type == "application/json"
    assert server.call_log[-1].params["limit"] == "4"


def test_auth_errors() -> None:
    workspace = generate_workspace(7)
    with FakeSlackServer(workspace, TOKEN) as server:
        server.add_workspace(workspace, "xoxb-second")
        server.add_workspace(workspace, "xoxb-third")
        with pytest.raises(SlackApiError) as error:
            WebClient(token="xoxb-nope", base_url=server.base_url).auth_test()
        assert error.value.response["error"] == "invalid_auth"
        assert error.value.response.status_code == 200
        with pytest.raises(SlackApiError) as error:
            WebClient(base_url=server.base_url).auth_test()
        assert error.value.response["error"] == "not_authed"

        server.revoke_token("xoxb-second")
        server.deactivate_token("xoxb-third")
        for token, expected in (
            ("xoxb-second", "token_revoked"),
            ("xoxb-third", "account_inactive"),
        ):
            with pytest.raises(SlackApiError) as error:
                WebClient(token=token, base_url=server.base_url).team_info()
            assert error.value.response["error"] == expected
        answer = WebClient(token=TOKEN, base_url=server.base_url).auth_test()
        assert answer["team_id"] == workspace.team_id
        assert answer["user_id"] == workspace.bot_user_id
        assert answer["bot_id"] == workspace.bot_id

        workspace.revoke_token()
        with pytest.raises(SlackApiError) as error:
            WebClient(token=TOKEN, base_url=server.base_url).auth_test()
        assert error.value.response["error"] == "token_revoked"
        workspace.restore_access()
        workspace.deactivate_account()
        with pytest.raises(SlackApiError) as error:
            WebClient(token=TOKEN, base_url=server.base_url).auth_test()
        assert error.value.response["error"] == "account_inactive"


def test_two_workspaces_are_told_apart_by_token() -> None:
    first, second = generate_workspace(1), generate_workspace(2)
    with FakeSlackServer(first, "xoxb-one") as server:
        server.add_workspace(second, "xoxb-two")
        teams = {
            WebClient(token=token, base_url=server.base_url).team_info()["team"]["id"]
            for token in ("xoxb-one", "xoxb-two")
        }
    assert teams == {first.team_id, second.team_id}


# ---------------------------------------------------------------------------- listing


def test_users_and_conversations_lists_match_the_ground_truth(
    shared_workspace: FakeWorkspace,
) -> None:
    with serving(shared_workspace, short_pages=True) as server:
        client = _client(server)
        members, sizes = paginate(client.users_list, "members", limit=4)
        assert members == shared_workspace.user_dicts()
        assert any(0 < size < 4 for size in sizes[:-1])  # a short page that is not the last
        channels, _ = paginate(client.conversations_list, "channels", types=ALL_TYPES, limit=3)
        assert channels == shared_workspace.channel_dicts()

    users = shared_workspace.users
    assert sum(u.is_bot for u in users) == 2
    assert all(u.bot_id for u in users if u.is_bot)
    assert sum(u.deleted for u in users) == 1
    profile = shared_workspace.user_dicts()[0]["profile"]
    assert {"display_name", "real_name", "title", "image_72", "email"} <= profile.keys()
    assert {"tz", "tz_offset"} <= shared_workspace.user_dicts()[0].keys()
    kinds = {c.kind for c in shared_workspace.channels}
    assert kinds == {"public", "private", "im", "mpim"}
    ids = {c.kind: c.id[0] for c in shared_workspace.channels}
    assert ids == {"public": "C", "private": "C", "im": "D", "mpim": "G"}
    assert shared_workspace.team_id.startswith("T")
    assert all(u.id.startswith("U") for u in users)


def test_conversations_list_types_archived_and_limit(
    client: WebClient, shared_workspace: FakeWorkspace
) -> None:
    public = client.conversations_list()["channels"]
    assert {c["id"] for c in public} == {
        c.id for c in shared_workspace.channels if c.kind == "public"
    }
    assert any(c["is_archived"] for c in public)
    assert any(not c["is_member"] for c in public)
    unarchived = client.conversations_list(exclude_archived=True)["channels"]
    assert len(unarchived) == len(public) - 1
    ims = client.conversations_list(types="im,mpim")["channels"]
    assert sorted(c["id"][0] for c in ims) == ["D", "G"]
    private = client.conversations_list(types="private_channel")["channels"]
    assert private
    assert all(c["is_private"] and c["is_member"] for c in private)
    with pytest.raises(SlackApiError) as error:
        client.conversations_list(limit=1000)
    assert error.value.response["error"] == "invalid_limit"
    with pytest.raises(SlackApiError) as error:
        client.conversations_list(types="public_channel,shared")
    assert error.value.response["error"] == "invalid_types"


# ---------------------------------------------------------------------------- history


@pytest.mark.parametrize(
    ("options", "limit"),
    [
        ({}, 7),
        ({"short_pages": True}, 7),
        ({"max_page_size": 15}, 200),
        ({"max_page_size": 15, "short_pages": True}, 200),
    ],
)
def test_history_pagination_yields_every_message_exactly_once(
    shared_workspace: FakeWorkspace, options: dict[str, Any], limit: int
) -> None:
    with serving(shared_workspace, **options) as server:
        client = _client(server)
        expected_calls = 0
        for channel in shared_workspace.channels:
            if not channel.is_member:
                continue
            messages, sizes = paginate(
                client.conversations_history, "messages", channel=channel.id, limit=limit
            )
            assert messages == expected_history(shared_workspace, channel.id)
            assert [m["ts"] for m in messages] == sorted((m["ts"] for m in messages), reverse=True)
            effective = min(limit, options.get("max_page_size", limit))
            assert max(sizes) <= effective
            if options.get("short_pages") and len(messages) > effective:
                assert sizes[0] < effective  # a short first page, and yet more follows
            expected_calls += page_count(
                len(messages), effective, short_pages=options.get("short_pages", False)
            )
        assert server.calls["conversations.history"] == expected_calls


def test_a_client_that_stops_on_a_short_page_misses_messages(
    shared_workspace: FakeWorkspace,
) -> None:
    general = shared_workspace.channels[0].id
    with serving(shared_workspace, short_pages=True) as server:
        client = _client(server)
        collected: list[JSONDict] = []
        cursor = ""
        while True:  # the classic bug: "fewer than limit, so this was the last page"
            page = client.conversations_history(channel=general, limit=10, cursor=cursor)
            collected.extend(page["messages"])
            cursor = page["response_metadata"]["next_cursor"]
            if len(page["messages"]) < 10:
                break
        assert page["has_more"] is True
        assert len(collected) < len(expected_history(shared_workspace, general))


def test_sdk_iteration_follows_the_cursors(
    client: WebClient, shared_workspace: FakeWorkspace
) -> None:
    general = shared_workspace.channels[0].id
    messages = [
        m
        for page in client.conversations_history(channel=general, limit=9)
        for m in page["messages"]
    ]
    assert messages == expected_history(shared_workspace, general)


def test_history_oldest_latest_and_inclusive(
    client: WebClient, shared_workspace: FakeWorkspace
) -> None:
    general = shared_workspace.channels[0].id
    everything = expected_history(shared_workspace, general)
    newest, oldest = everything[5]["ts"], everything[15]["ts"]

    def window(**params: Any) -> list[str]:
        messages, _ = paginate(
            client.conversations_history, "messages", channel=general, limit=4, **params
        )
        return [m["ts"] for m in messages]

    exclusive = [m["ts"] for m in everything[6:15]]
    assert window(oldest=oldest, latest=newest) == exclusive
    assert window(oldest=oldest, latest=newest, inclusive=True) == [
        m["ts"] for m in everything[5:16]
    ]
    assert window(oldest=oldest) == [m["ts"] for m in everything[:15]]
    assert window(latest=newest) == [m["ts"] for m in everything[6:]]
    # A window in the middle of a second: ts strings compare by their microseconds.
    between = int_to_ts(ts_to_int(oldest) + 1)
    assert window(oldest=between, latest=newest, inclusive=True) == [
        m["ts"] for m in everything[5:15]
    ]
    page = client.conversations_history(channel=general, oldest=oldest, latest=newest, limit=3)
    assert page["has_more"] is True
    assert page["response_metadata"]["next_cursor"]
    last = client.conversations_history(channel=general, oldest=oldest, latest=newest, limit=9)
    assert last["has_more"] is False
    assert last["response_metadata"]["next_cursor"] == ""
    assert window(oldest="0", latest="1") == []
    with pytest.raises(SlackApiError) as error:
        client.conversations_history(channel=general, oldest="yesterday")
    assert error.value.response["error"] == "invalid_ts_oldest"


def test_history_has_broadcasts_but_not_plain_replies(
    client: WebClient, shared_workspace: FakeWorkspace
) -> None:
    stats = shared_workspace.stats()
    assert stats["broadcasts"] > 0
    seen_replies = seen_broadcasts = 0
    for channel in shared_workspace.channels:
        if not channel.is_member:
            continue
        messages, _ = paginate(
            client.conversations_history, "messages", channel=channel.id, limit=100
        )
        for message in messages:
            if "parent_user_id" in message:
                assert message["subtype"] == THREAD_BROADCAST
                seen_broadcasts += 1
            seen_replies += message.get("reply_count", 0)
    assert seen_broadcasts == stats["broadcasts"]
    public_non_member = next(c for c in shared_workspace.channels if not c.is_member)
    assert seen_replies == stats["replies"] - sum(
        len(p.replies or ()) for p in public_non_member.thread_parents()
    )


def test_not_in_channel_join_and_unknown_channel() -> None:
    workspace = generate_workspace(3)
    outsider = next(c for c in workspace.channels if not c.is_member)
    private = next(c for c in workspace.channels if c.kind == "private")
    with serving(workspace) as server:
        client = _client(server)
        with pytest.raises(SlackApiError) as error:
            client.conversations_history(channel=outsider.id)
        assert error.value.response["error"] == "not_in_channel"
        with pytest.raises(SlackApiError) as error:
            client.conversations_history(channel="C0NOTHERE")
        assert error.value.response["error"] == "channel_not_found"
        with pytest.raises(SlackApiError) as error:
            client.conversations_join(channel=private.id)
        assert error.value.response["error"] == "method_not_supported_for_channel_type"
        members_before = client.conversations_info(channel=outsider.id)["channel"]["num_members"]
        joined = client.conversations_join(channel=outsider.id)
        assert joined["channel"]["is_member"] is True
        assert joined["channel"]["num_members"] == members_before + 1
        assert "warning" not in joined
        assert client.conversations_join(channel=outsider.id)["warning"] == "already_in_channel"
        messages, _ = paginate(
            client.conversations_history, "messages", channel=outsider.id, limit=50
        )
        assert messages == expected_history(workspace, outsider.id)
        assert client.conversations_info(channel=outsider.id)["channel"]["is_member"] is True


# ---------------------------------------------------------------------------- threads


@pytest.mark.parametrize(
    "options",
    [{}, {"short_pages": True}, {"repeat_thread_parent": True}, {"max_page_size": 2}],
)
def test_replies_parent_first_then_replies_oldest_first(
    shared_workspace: FakeWorkspace, options: dict[str, Any]
) -> None:
    with serving(shared_workspace, **options) as server:
        client = _client(server)
        for channel in shared_workspace.channels:
            if not channel.is_member:
                continue
            truth = {m["ts"]: m for m in shared_workspace.message_dicts(channel.id)}
            for parent_ts in shared_workspace.thread_parent_ts(channel.id):
                messages, _ = paginate(
                    client.conversations_replies,
                    "messages",
                    channel=channel.id,
                    ts=parent_ts,
                    limit=3,
                )
                assert messages[0] == truth[parent_ts]
                replies = [m for m in messages if m["ts"] != parent_ts]
                assert replies == [m for m in truth.values() if m.get("thread_ts") == parent_ts][1:]
                assert len(replies) == truth[parent_ts]["reply_count"]
                assert all(r["parent_user_id"] for r in replies)
        minimum = server.minimum_calls(3, join_channels=False)
        assert server.calls["conversations.replies"] == minimum["conversations.replies"]


def test_replies_errors_and_reply_ts(client: WebClient, shared_workspace: FakeWorkspace) -> None:
    general = shared_workspace.channels[0].id
    parent_ts = shared_workspace.thread_parent_ts(general)[1]
    thread = client.conversations_replies(channel=general, ts=parent_ts)["messages"]
    by_reply = client.conversations_replies(channel=general, ts=thread[-1]["ts"])["messages"]
    assert by_reply == thread
    lone = next(m for m in expected_history(shared_workspace, general) if "thread_ts" not in m)
    assert client.conversations_replies(channel=general, ts=lone["ts"])["messages"] == [lone]
    with pytest.raises(SlackApiError) as error:
        client.conversations_replies(channel=general, ts="1000000000.000001")
    assert error.value.response["error"] == "thread_not_found"


def test_late_replies_and_the_tombstone(client: WebClient, shared_workspace: FakeWorkspace) -> None:
    stats = shared_workspace.stats()
    assert stats["late_replies"] > 0
    assert stats["tombstones"] == 1
    general = shared_workspace.channels[0].id
    tombstone = next(
        m for m in expected_history(shared_workspace, general) if m.get("subtype") == TOMBSTONE
    )
    assert tombstone["text"] == TOMBSTONE_TEXT
    assert tombstone["reply_count"] >= 2
    thread = client.conversations_replies(channel=general, ts=tombstone["ts"])["messages"]
    assert thread[0] == tombstone
    assert len(thread) == 1 + tombstone["reply_count"]
    assert all(r["parent_user_id"] != "USLACKBOT" for r in thread[1:])

    late = [
        m
        for channel in shared_workspace.channels
        for m in shared_workspace.message_dicts(channel.id)
        if "parent_user_id" in m
        and int(float(m["ts"])) // 86_400 != int(float(m["thread_ts"])) // 86_400
    ]
    assert len(late) == stats["late_replies"]


# ---------------------------------------------------------------------------- reactions


def test_reactions_get_fills_incomplete_users(
    client: WebClient, shared_workspace: FakeWorkspace
) -> None:
    incomplete = 0
    for channel in shared_workspace.channels:
        for ts, pairs in shared_workspace.all_reaction_pairs(channel.id).items():
            shown = shared_workspace.message_dict(channel.id, ts)["reactions"]
            if all(r["count"] == len(r["users"]) for r in shown):
                continue
            incomplete += 1
            full = client.reactions_get(channel=channel.id, timestamp=ts, full=True)
            reactions = full["message"]["reactions"]
            assert [(r["name"], u) for r in reactions for u in r["users"]] == pairs
            assert all(r["count"] == len(r["users"]) for r in reactions)
            partial = client.reactions_get(channel=channel.id, timestamp=ts)
            assert partial["message"]["reactions"] == shown
    assert incomplete == shared_workspace.stats()["incomplete_reaction_messages"] > 0


# ---------------------------------------------------------------------------- faults


def test_rate_limit_fault_carries_retry_after(server: FakeSlackServer, client: WebClient) -> None:
    server.inject("team.info", Fault.rate_limited(retry_after=7))
    with pytest.raises(SlackApiError) as error:
        client.team_info()
    assert error.value.response.status_code == 429
    assert error.value.response.headers["Retry-After"] == "7"
    assert error.value.response["error"] == "ratelimited"
    assert client.team_info()["ok"] is True
    assert server.faults_served == 1
    assert server.calls["team.info"] == 2

    server.inject("team.info", Fault.rate_limited(retry_after=0))
    patient = _client(server, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    assert patient.team_info()["ok"] is True
    assert server.calls["team.info"] == 4
    assert server.faults_served_by_method["team.info"] == 2


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(server: FakeSlackServer, client: WebClient, status: int) -> None:
    server.inject("users.list", Fault.server_error(status))
    with pytest.raises(SlackApiError) as error:
        client.users_list()
    assert error.value.response.status_code == status
    server.inject("users.list", str(status))
    handler = ServerErrorRetryHandler(
        max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
    )
    retrying = _client(server, retry_handlers=[handler])
    assert retrying.users_list()["ok"] is True
    assert server.calls["users.list"] == 3
    assert [r.status for r in server.call_log] == [status, status, 200]


def test_slack_error_fault_and_fault_order(server: FakeSlackServer, client: WebClient) -> None:
    server.inject("auth.test", "internal_error")
    server.inject("auth.test", Fault.rate_limited(), times=2)
    server.inject("*", Fault.slack_error("fatal_error"))
    with pytest.raises(SlackApiError) as error:
        client.auth_test()
    assert (error.value.response.status_code, error.value.response["error"]) == (
        200,
        "internal_error",
    )
    for _ in range(2):
        with pytest.raises(SlackApiError) as error:
            client.auth_test()
        assert error.value.response.status_code == 429
    with pytest.raises(SlackApiError) as error:
        client.team_info()  # the wildcard fault goes to whichever method comes first
    assert error.value.response["error"] == "fatal_error"
    assert server.pending_faults() == 0
    assert client.auth_test()["ok"] is True
    assert [r.fault for r in server.call_log] == [
        "slack_error",
        "ratelimited",
        "ratelimited",
        "slack_error",
        None,
    ]


def test_dropped_connection(server: FakeSlackServer) -> None:
    server.inject("conversations.list", Fault.drop())
    with pytest.raises(ConnectionError):
        _client(server, retry_handlers=[]).conversations_list()
    # slack-sdk's default handlers retry a connection error once.
    server.inject("conversations.list", "drop")
    assert _client(server).conversations_list()["ok"] is True
    assert server.calls["conversations.list"] == 3
    assert server.faults_served == 2


def test_slow_answer(server: FakeSlackServer) -> None:
    server.inject("auth.test", Fault.slow(0.3))
    started = time.monotonic()
    assert _client(server).auth_test()["ok"] is True
    assert time.monotonic() - started >= 0.3
    server.inject("auth.test", Fault.slow(2))
    with pytest.raises(TimeoutError):
        _client(server, timeout=0.2, retry_handlers=[]).auth_test()


def test_optional_rate_limit(shared_workspace: FakeWorkspace) -> None:
    with serving(shared_workspace, rate_limits={"team.info": 2}, rate_limit_window=30) as server:
        client = _client(server)
        client.team_info()
        client.team_info()
        with pytest.raises(SlackApiError) as error:
            client.team_info()
        assert error.value.response.status_code == 429
        assert 1 <= int(error.value.response.headers["Retry-After"]) <= 30
        assert client.auth_test()["ok"] is True  # other methods are not limited
        assert server.rate_limited_calls == 1
        assert server.faults_served == 0


# ---------------------------------------------------------------------------- mutations


def test_mutations_keep_derived_fields_consistent() -> None:
    workspace = generate_workspace(11)
    general = workspace.channels[0]
    parent_ts = next(int_to_ts(m.ts) for m in general.thread_parents() if m.subtype != TOMBSTONE)
    before = workspace.message_dict(general.id, parent_ts)
    newcomer = next(u for u in general.members if u not in before["reply_users"])
    first, second = [u for u in general.members if u != newcomer][:2]

    reply_ts = workspace.add_reply(general.id, parent_ts, user=newcomer, text="late answer")
    after = workspace.message_dict(general.id, parent_ts)
    assert after["ts"] == parent_ts
    assert after["reply_count"] == before["reply_count"] + 1
    assert after["latest_reply"] == reply_ts
    assert after["reply_users"][-1] == newcomer
    assert after["reply_users_count"] == before["reply_users_count"] + 1
    assert workspace.message_dict(general.id, reply_ts)["parent_user_id"] == before["user"]

    broadcast_ts = workspace.add_reply(general.id, parent_ts, broadcast=True, text="fyi")
    with FakeSlackServer(workspace, TOKEN) as server:
        client = _client(server)
        top = client.conversations_history(channel=general.id, limit=1)["messages"][0]
        assert (top["ts"], top["subtype"]) == (broadcast_ts, THREAD_BROADCAST)
        assert client.conversations_replies(channel=general.id, ts=parent_ts)["messages"][-1][
            "ts"
        ] == (broadcast_ts)

        workspace.delete_message(general.id, broadcast_ts)
        workspace.delete_message(general.id, reply_ts)
        assert workspace.message_dict(general.id, parent_ts) == before
        top = client.conversations_history(channel=general.id, limit=1)["messages"][0]
        assert top["ts"] != broadcast_ts

        new_ts = workspace.add_message(general.id, text="hello <@U1> &amp; bye")
        assert client.conversations_history(channel=general.id, limit=1)["messages"][0]["text"] == (
            "hello <@U1> &amp; bye"
        )
        edit_ts = workspace.edit_message(general.id, new_ts, "hello again")
        edited = client.conversations_history(channel=general.id, limit=1)["messages"][0]
        assert edited["text"] == "hello again"
        assert edited["edited"]["ts"] == edit_ts > new_ts

        workspace.add_reaction(general.id, new_ts, "tada", newcomer)
        workspace.add_reaction(general.id, new_ts, "tada", first)
        workspace.add_reaction(general.id, new_ts, "tada", second, hidden=True)
        with pytest.raises(WorkspaceError):
            workspace.add_reaction(general.id, new_ts, "tada", newcomer)
        shown = workspace.message_dict(general.id, new_ts)["reactions"]
        assert shown == [{"name": "tada", "users": [newcomer, first], "count": 3}]
        full = client.reactions_get(channel=general.id, timestamp=new_ts, full=True)
        assert full["message"]["reactions"][0]["users"] == [
            newcomer,
            first,
            second,
        ]
        workspace.remove_reaction(general.id, new_ts, "tada", newcomer)
        assert workspace.message_dict(general.id, new_ts)["reactions"] == [
            {"name": "tada", "users": [first], "count": 2}
        ]
        assert workspace.reaction_pairs(general.id, new_ts) == [
            ("tada", first),
            ("tada", second),
        ]

        # A parent with replies becomes a tombstone; its last reply's deletion removes it.
        thread_ts = workspace.add_message(general.id, text="question")
        only_reply = workspace.add_reply(general.id, thread_ts, text="answer")
        workspace.delete_message(general.id, thread_ts)
        tombstone = client.conversations_history(channel=general.id, limit=1)["messages"][0]
        assert (tombstone["subtype"], tombstone["reply_count"]) == (TOMBSTONE, 1)
        workspace.delete_message(general.id, only_reply)
        with pytest.raises(SlackApiError) as error:
            client.conversations_replies(channel=general.id, ts=thread_ts)
        assert error.value.response["error"] == "thread_not_found"
        assert client.conversations_history(channel=general.id, limit=1)["messages"][0]["ts"] == (
            new_ts
        )
        assert server.internal_errors == []


def test_answers_follow_mutations_of_messages_already_served() -> None:
    """The server keeps each message's encoded answer (all of them after ``prerender``): every
    kind of mutation must show in the next answer, for the message and for its thread parent."""
    workspace = generate_workspace(12)
    general = workspace.channels[0]
    parent = next(m for m in general.thread_parents() if m.subtype != TOMBSTONE and m.replies)
    parent_ts = int_to_ts(parent.ts)
    assert parent.replies is not None
    reply_ts = int_to_ts(parent.replies[0].ts)
    reactor = general.members[0]
    assert workspace.prerender() > 0

    def expected_thread() -> list[dict[str, Any]]:
        thread = [parent, *(parent.replies or ())]
        return [workspace.message_dict(general.id, int_to_ts(m.ts)) for m in thread]

    mutations: list[Callable[[], object]] = [
        lambda: workspace.add_reply(general.id, parent_ts, text="late answer"),
        lambda: workspace.edit_message(general.id, reply_ts, "edited after it was served"),
        lambda: workspace.add_reaction(general.id, reply_ts, "toban_test", reactor),
        lambda: workspace.remove_reaction(general.id, reply_ts, "toban_test", reactor),
        lambda: workspace.delete_message(general.id, reply_ts),
        lambda: workspace.edit_message(general.id, parent_ts, "the question, edited"),
    ]
    with FakeSlackServer(workspace, TOKEN) as server:
        client = _client(server)

        def served_thread() -> list[dict[str, Any]]:
            answer = client.conversations_replies(channel=general.id, ts=parent_ts, limit=1000)
            return list(answer["messages"])

        for mutate in mutations:
            before = served_thread()
            mutate()
            after = served_thread()
            assert after != before
            assert after == expected_thread()
        top = client.conversations_history(channel=general.id, latest=parent_ts, inclusive=True)
        assert top["messages"][0] == workspace.message_dict(general.id, parent_ts)
        assert top["messages"][0]["text"] == "the question, edited"
        assert server.internal_errors == []


def test_mutation_errors() -> None:
    workspace = generate_workspace(5)
    general = workspace.channels[0].id
    with pytest.raises(WorkspaceError) as error:
        workspace.delete_message(general, "1.000001")
    assert error.value.error == "message_not_found"
    ts = workspace.add_message(general, ts="1793491200.000001")  # 2026-11-01 00:00:00.000001
    with pytest.raises(WorkspaceError) as error:
        workspace.add_message(general, ts=ts)
    assert error.value.error == "duplicate_ts"
    with pytest.raises(WorkspaceError) as error:
        workspace.remove_reaction(general, ts, "tada", "U1")
    assert error.value.error == "no_reaction"
    # A message with an explicit old ts lands in its place in history, not on top.
    assert expected_history(workspace, general)[-1]["ts"] == ts


# ---------------------------------------------------------------------------- ground truth


def test_perfect_sync_matches_ground_truth_and_minimum_calls() -> None:
    workspace = generate_workspace(21)
    before = minimum_calls(workspace, page_size=6, max_page_size=4, short_pages=True)
    with serving(workspace, max_page_size=4, short_pages=True) as server:
        assert server.minimum_calls(6) == before
        synced = perfect_sync(_client(server), page_size=6)
        for channel in workspace.channels:
            truth = workspace.message_dicts(channel.id)
            got = synced[channel.id]
            assert sorted(got) == [m["ts"] for m in truth]
            for message in truth:
                if "reactions" not in message:
                    assert got[message["ts"]] == message
            pairs = {
                ts: [(r["name"], u) for r in m["reactions"] for u in r["users"]]
                for ts, m in got.items()
                if "reactions" in m
            }
            assert pairs == workspace.all_reaction_pairs(channel.id)
        calls = server.calls
        assert {method: calls[method] for method in before if method != "total"} == {
            method: count for method, count in before.items() if method != "total"
        }
        assert sum(calls.values()) == before["total"]


def test_message_variety(shared_workspace: FakeWorkspace) -> None:
    """The shapes a sync must store: subtypes, markup, files, attachments, edits, NUL."""
    messages = [m for c in shared_workspace.channels for m in shared_workspace.message_dicts(c.id)]
    subtypes = {m.get("subtype") for m in messages}
    assert {None, CHANNEL_JOIN, BOT_MESSAGE, FILE_SHARE, HUDDLE_THREAD, THREAD_BROADCAST} <= (
        subtypes
    )
    assert TOMBSTONE in subtypes
    bots = [m for m in messages if m.get("subtype") == BOT_MESSAGE]
    assert all("user" not in m and m["bot_id"].startswith("B") for m in bots)
    assert all(
        m["files"][0]["id"].startswith("F") for m in messages if m.get("subtype") == FILE_SHARE
    )
    assert any("attachments" in m for m in messages)
    assert any("edited" in m for m in messages)
    texts = " ".join(m["text"] for m in messages)
    for markup in ("<@U", "<#C", "<https://", "<!here>", "<!channel>", "&amp;", "&lt;", "\u0000"):
        assert markup in texts, markup
    stamps = [m["ts"] for m in messages]
    assert all(len(ts) == 17 and ts[10] == "." for ts in stamps)
    for channel in shared_workspace.channels:
        channel_stamps = [m["ts"] for m in shared_workspace.message_dicts(channel.id)]
        assert channel_stamps == sorted(set(channel_stamps))
    assert json.loads(json.dumps(messages)) == messages


def test_generation_is_deterministic() -> None:
    first, again, other = generate_workspace(42), generate_workspace(42), generate_workspace(43)

    def snapshot(workspace: FakeWorkspace) -> list[Any]:
        return [
            workspace.user_dicts(),
            workspace.channel_dicts(),
            [workspace.message_dicts(c.id) for c in workspace.channels],
            [workspace.all_reaction_pairs(c.id) for c in workspace.channels],
        ]

    assert snapshot(first) == snapshot(again)
    assert snapshot(first) != snapshot(other)


def test_size_parameters_and_large_generation_is_quick() -> None:
    small = generate_workspace(
        1, channels=2, private_channels=0, days=2, messages_per_channel_day=5
    )
    assert small.message_count() == (2 + 0 + 3) * 2 * 5
    started = time.perf_counter()
    big = generate_workspace(
        9, users=40, channels=7, private_channels=0, days=20, messages_per_channel_day=1000
    )
    elapsed = time.perf_counter() - started
    assert big.message_count() == 200_000
    assert elapsed < 5, elapsed  # about 0.5 s on a 2-core machine
    stats = big.stats()
    assert stats["threads"] > 1000
    assert stats["incomplete_reaction_messages"] > 10

    # Pages from the middle of a big channel cost what the page costs (bisect, no scan).
    with serving(big, max_page_size=15) as server:
        client = _client(server)
        general = big.channels[0]
        middle = int_to_ts(general.history_ts[len(general.history_ts) // 2])
        started = time.perf_counter()
        for _ in range(20):
            page = client.conversations_history(channel=general.id, latest=middle, limit=200)
        assert len(page["messages"]) == 15
        assert time.perf_counter() - started < 2


def test_concurrent_clients(shared_workspace: FakeWorkspace, server: FakeSlackServer) -> None:
    """The server is threaded: several sync workers may page at once."""
    channels = [c.id for c in shared_workspace.channels if c.is_member]

    def fetch(channel_id: str) -> list[JSONDict]:
        messages, _ = paginate(
            _client(server).conversations_history, "messages", channel=channel_id, limit=5
        )
        return messages

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(fetch, channels * 2))
    assert results == [expected_history(shared_workspace, c) for c in channels * 2]


def test_timestamp_helpers() -> None:
    assert ts_to_int("1762000000.000100") == 1_762_000_000_000_100
    assert int_to_ts(1_762_000_000_000_100) == "1762000000.000100"
    assert ts_to_int("1762000000") == ts_to_int("1762000000.000000")
    assert ts_to_int("1762000000.1") == 1_762_000_000_100_000
    for bad in ("", "abc", "1.2.3", "-1.000001", "1.1234567"):
        with pytest.raises(ValueError, match="timestamp"):
            ts_to_int(bad)
