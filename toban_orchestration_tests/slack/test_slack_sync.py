"""The Web API sync against the local Slack server, through the real slack-sdk client, compared
with the server's ground truth row for row."""

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from toban_orchestration.db.enums import IntegrationEventType, IntegrationStatus
from toban_orchestration.db.models import (
    Integration,
    IntegrationEvent,
    ServiceResource,
    SlackChannel,
    SlackWorkspace,
)
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.slack import ingest, normalize
from toban_orchestration.slack.client import ClientOptions, SlackApi, SlackError
from toban_orchestration.slack.health import DayHealth, day_health
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration_tests.fakes.slack_server import (
    FakeSlackServer,
    FakeWorkspace,
    Fault,
    generate_workspace,
)
from toban_orchestration_tests.support.web_api_sync import (
    DAYS,
    LAST,
    START,
    TOKEN,
    Connected,
    assert_matches_ground_truth,
    connect,
    stored_messages,
    synced_channels,
)


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher([generate_key()])


@pytest.fixture
def connected(migrated_engine: Engine, cipher: TokenCipher) -> Iterator[Connected]:
    workspace = generate_workspace(seed=7, days=DAYS, start=START, messages_per_channel_day=25)
    with FakeSlackServer(short_pages=True) as server:
        yield connect(migrated_engine, server, workspace, cipher)


def test_full_sync_matches_the_server_row_for_row(connected: Connected) -> None:
    ingest.refresh_channels(connected.engine, connected.cipher, connected.slack_id)
    connected.select_all_channels()
    result = connected.sync_all()

    channels = synced_channels(connected)
    # public and private channels; never a DM unless enabled
    kinds = {connected.workspace.channel(c).kind for c in channels}
    assert kinds == {"public", "private"}
    assert_matches_ground_truth(connected, channels)
    assert result.report.messages.inserted > 300
    assert result.metadata()["dagster/row_count"] > 0
    # the channel the app is not in is skipped, with a warning naming it
    outsider = next(
        c for c in connected.workspace.channels if not c.is_member and c.kind == "public"
    )
    assert any(outsider.id in warning for warning in result.report.warnings)
    with connected.engine.connect() as connection:
        spans = connection.execute(
            text(
                "SELECT c.oldest_synced_ts = min(m.slack_ts), "
                "c.latest_synced_ts = max(m.slack_ts), c.last_sync_at IS NOT NULL "
                "FROM slack_channel c JOIN slack_message m "
                "ON m.channel_id = c.id GROUP BY c.id"
            )
        ).all()
        assert spans
        assert all(all(row) for row in spans)
        assert connection.execute(text("SELECT last_sync_at FROM slack_workspace")).scalar_one()
        # Time-ordered ids (db/ids.py), for index locality on bulk loads.
        versions = connection.execute(
            text(
                "SELECT DISTINCT substr(id::text, 15, 1) FROM slack_message UNION "
                "SELECT DISTINCT substr(id::text, 15, 1) FROM slack_reaction"
            )
        ).scalars()
        assert set(versions) == {"7"}
    with Session(connected.engine) as session:
        resources = set(session.scalars(select(ServiceResource.external_id)))
        assert resources >= set(channels)
        assert all(r.last_synced_at for r in session.scalars(select(ServiceResource)))


def test_a_second_sync_changes_nothing_and_fetches_no_thread_again(connected: Connected) -> None:
    connected.select_all_channels()
    connected.sync_all()
    connected.select_all_channels()
    connected.sync_all()
    with connected.engine.connect() as connection:
        before = connection.execute(
            text("SELECT id, updated_at FROM slack_message ORDER BY id")
        ).all()
    connected.server.reset_calls()
    again = connected.sync_all()
    report = again.report
    assert (report.messages.inserted, report.messages.updated, report.messages.deleted) == (0, 0, 0)
    assert (report.reactions.inserted, report.reactions.deleted) == (0, 0)
    assert connected.server.calls["conversations.replies"] == 0
    with connected.engine.connect() as connection:
        after = connection.execute(
            text("SELECT id, updated_at FROM slack_message ORDER BY id")
        ).all()
    assert after == before


def test_edits_deletions_late_replies_and_reactions_are_followed(connected: Connected) -> None:
    connected.select_all_channels()
    connected.sync_all()
    workspace = connected.workspace
    general = workspace.channels[0].id
    history = [m for m in workspace.message_dicts(general) if not m.get("thread_ts")]
    parent_ts = workspace.thread_parent_ts(general)[0]
    edited_ts, deleted_ts, reacted_ts = history[1]["ts"], history[2]["ts"], history[3]["ts"]
    user = workspace.users[0].id

    workspace.edit_message(general, edited_ts, "now with <@" + user + "> &amp; more")
    workspace.delete_message(general, deleted_ts)
    late = workspace.add_reply(general, parent_ts, text="a late answer")
    workspace.add_reaction(general, reacted_ts, "tada", user)
    had = workspace.reaction_pairs(general, history[4]["ts"]) or []
    for emoji, reactor in had:
        workspace.remove_reaction(general, history[4]["ts"], emoji, reactor)

    # The late reply lands on a later day than its parent: syncing only that day finds it by
    # re-checking the older days' threads.
    late_day = normalize.ts_to_datetime(late).date()
    with connected.engine.begin() as connection:
        connection.execute(
            text("UPDATE slack_sync_day SET threads_checked_at = now() - interval '1 day'")
        )
    result = ingest.sync_message_days(
        connected.engine, connected.cipher, connected.slack_id, late_day, late_day
    )
    assert result.report.messages.deleted >= 1
    assert_matches_ground_truth(connected, [general])
    with connected.engine.connect() as connection:
        deleted = connection.execute(
            text(
                "SELECT is_deleted, deleted_at IS NOT NULL FROM slack_message WHERE slack_ts = :ts"
            ),
            {"ts": deleted_ts},
        ).one()
        processed = connection.execute(
            text("SELECT processed_text, is_edited FROM slack_message WHERE slack_ts = :ts"),
            {"ts": edited_ts},
        ).one()
    assert tuple(deleted) == (True, True)
    name = normalize.display_name(_user_dict(workspace, user))
    assert processed == (f"now with @{name} & more", True)


def test_each_kind_of_message_and_each_name_is_stored_by_the_rules(connected: Connected) -> None:
    """`slack_message.kind` and `slack_user.display_label` through the Web API sync: a message
    of each kind (a deleted thread parent's tombstone among them), and people renamed between
    two syncs."""
    workspace, engine = connected.workspace, connected.engine
    general = workspace.channels[0].id
    first = int(normalize.day_bounds(START)[0].split(".")[0])
    subtypes: dict[str | None, str] = {
        None: "message",
        "me_message": "message",
        "file_share": "message",
        "bot_message": "message",
        "channel_join": "notice",
        "channel_topic": "notice",
        "pinned_item": "notice",
        "bot_add": "notice",
    }
    expected: dict[str, str] = {}
    for i, (subtype, kind) in enumerate(subtypes.items()):
        expected[workspace.add_message(general, ts=f"{first + 60 + i}.000007", subtype=subtype)] = (
            kind
        )
    parent = workspace.add_message(general, ts=f"{first + 120}.000007")
    expected[workspace.add_reply(general, parent, ts=f"{first + 121}.000007", broadcast=True)] = (
        "message"
    )
    expected[workspace.add_reply(general, parent, ts=f"{first + 122}.000007")] = "message"
    workspace.delete_message(general, parent)  # a tombstone while replies remain
    expected[parent] = "notice"
    connected.select_all_channels()
    connected.sync_all()
    assert_matches_ground_truth(connected, [general])  # kind of every message, as the rule says
    assert _stored_kinds(engine, list(expected)) == expected
    expected_labels = _expected_labels(workspace)
    assert _stored_labels(engine, list(expected_labels)) == expected_labels

    humans = [u for u in workspace.users if not u.is_bot and not u.deleted]
    workspace.update_user(humans[0].id, display_name="Nick")
    workspace.update_user(humans[1].id, display_name="", real_name="")
    ingest.refresh_users(engine, connected.cipher, connected.slack_id)
    labels = _stored_labels(engine, list(expected_labels))
    assert labels == _expected_labels(workspace)
    assert labels[humans[0].id] == "Nick"
    assert labels[humans[1].id] == humans[1].name


def _stored_kinds(engine: Engine, timestamps: list[str]) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                text("SELECT slack_ts, kind FROM slack_message WHERE slack_ts = ANY(:ts)"),
                {"ts": timestamps},
            ).all()
        )


def _stored_labels(engine: Engine, slack_ids: list[str]) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                text("SELECT slack_id, display_label FROM slack_user WHERE slack_id = ANY(:ids)"),
                {"ids": slack_ids},
            ).all()
        )


def _expected_labels(workspace: FakeWorkspace) -> dict[str, str]:
    return {
        str(raw["id"]): normalize.display_name(normalize.user_row(raw))
        for raw in workspace.user_dicts()
    }


def _user_dict(workspace: FakeWorkspace, user_id: str) -> dict[str, object]:
    raw = next(u for u in workspace.user_dicts() if u["id"] == user_id)
    return normalize.user_row(raw)


def test_api_calls_stay_within_ten_percent_of_the_minimum(
    migrated_engine: Engine, cipher: TokenCipher
) -> None:
    workspace = generate_workspace(seed=3, days=DAYS, start=START, messages_per_channel_day=40)
    options = SyncOptions(
        pacing=False, page_size=100, include_direct_messages=True, join_public_channels=True
    )
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher, sync=options)
        ingest.refresh_channels(connected.engine, cipher, connected.slack_id)
        connected.select_all_channels()
        server.reset_calls()
        result = connected.sync_all()
        minimum = server.minimum_calls(page_size=100, include_archived=True)
        used = result.stats.total_calls
        ours = sum(
            server.calls[m]
            for m in (
                "conversations.history",
                "conversations.replies",
                "reactions.get",
                "conversations.join",
            )
        )
        floor = sum(
            minimum[m]
            for m in (
                "conversations.history",
                "conversations.replies",
                "reactions.get",
                "conversations.join",
            )
        )
    assert used >= floor
    assert ours <= floor * 1.10, (dict(server.calls), minimum)
    assert_matches_ground_truth(connected, synced_channels(connected))


def test_rate_limits_server_errors_and_dropped_connections_are_retried(
    connected: Connected,
) -> None:
    connected.select_all_channels()
    server = connected.server
    server.inject("conversations.history", Fault.rate_limited(retry_after=0), times=2)
    server.inject("conversations.replies", Fault.server_error(status=503))
    server.inject("users.list", Fault.server_error(status=500))
    server.inject("conversations.list", Fault.drop(), times=2)
    ingest.refresh_users(connected.engine, connected.cipher, connected.slack_id)
    channels = ingest.refresh_channels(connected.engine, connected.cipher, connected.slack_id)
    connected.select_all_channels()
    result = ingest.sync_message_days(
        connected.engine, connected.cipher, connected.slack_id, START, LAST
    )
    assert channels.stats.retries["connection_error"] == 2
    assert result.stats.retries["rate_limited"] == 2
    assert result.stats.retries["server_error"] == 1
    assert result.metadata()["api_retries"] == 3
    assert_matches_ground_truth(connected, synced_channels(connected))


def test_a_server_that_keeps_failing_fails_the_sync_without_losing_stored_rows(
    connected: Connected,
) -> None:
    connected.select_all_channels()
    connected.sync_all()
    before = stored_messages(connected.engine, connected.workspace.channels[0].id)
    connected.server.inject("conversations.history", Fault.server_error(status=500), times=50)
    with pytest.raises(SlackError, match=r"conversations\.history failed"):
        ingest.sync_message_days(
            connected.engine, connected.cipher, connected.slack_id, START, LAST
        )
    assert stored_messages(connected.engine, connected.workspace.channels[0].id) == before


def test_a_run_that_dies_before_fetching_replies_leaves_no_hole(connected: Connected) -> None:
    ingest.refresh_users(connected.engine, connected.cipher, connected.slack_id)
    ingest.refresh_channels(connected.engine, connected.cipher, connected.slack_id)
    connected.select_all_channels()
    connected.server.inject("conversations.replies", Fault.slack_error("fatal_error"), times=1)
    with pytest.raises(SlackError, match="fatal_error"):
        ingest.sync_message_days(
            connected.engine, connected.cipher, connected.slack_id, START, LAST
        )
    # The parents are stored, but not as "replies fetched": the next run fetches them.
    result = ingest.sync_message_days(
        connected.engine, connected.cipher, connected.slack_id, START, LAST
    )
    assert result.report.threads_fetched > 0
    assert_matches_ground_truth(connected, synced_channels(connected))


@pytest.mark.parametrize(
    ("revoke", "error", "status"),
    [
        ("revoke_token", "token_revoked", IntegrationStatus.REVOKED),
        ("deactivate_token", "account_inactive", IntegrationStatus.REVOKED),
    ],
)
def test_a_revoked_token_marks_the_integration_and_spares_other_workspaces(
    migrated_engine: Engine,
    cipher: TokenCipher,
    caplog: pytest.LogCaptureFixture,
    revoke: str,
    error: str,
    status: IntegrationStatus,
) -> None:
    caplog.set_level(logging.DEBUG)
    first = generate_workspace(seed=11, days=1, start=START, messages_per_channel_day=5)
    second = generate_workspace(seed=12, days=1, start=START, messages_per_channel_day=5)
    other_token = "xoxb-other-9876543210"
    with FakeSlackServer() as server:
        dead = connect(migrated_engine, server, first, cipher)
        alive = connect(
            migrated_engine, server, second, cipher, token=other_token, team_slug="beta"
        )
        getattr(server, revoke)(TOKEN)
        with pytest.raises(ingest.WorkspaceAuthError, match=error) as raised:
            dead.sync_all()
        result = alive.sync_all(START, START)
    assert result.report.messages.inserted > 0
    assert TOKEN not in str(raised.value)
    assert TOKEN not in caplog.text
    assert other_token not in caplog.text
    with Session(migrated_engine) as session:
        integration = session.scalars(
            select(Integration).where(Integration.workspace_id == dead.slack_id)
        ).one()
        assert integration.status == status
        workspace = session.scalars(
            select(SlackWorkspace).where(SlackWorkspace.slack_id == dead.slack_id)
        ).one()
        assert (workspace.is_connected, workspace.connection_status) == (False, error)
        event = session.scalars(
            select(IntegrationEvent).where(
                IntegrationEvent.integration_id == integration.id,
                IntegrationEvent.event_type == IntegrationEventType.STATUS_CHANGED,
            )
        ).one()
        assert event.details is not None
        assert event.details["slack_error"] == error
        other = session.scalars(
            select(Integration).where(Integration.workspace_id == alive.slack_id)
        ).one()
        assert other.status == IntegrationStatus.ACTIVE


def test_tokens_are_stored_encrypted(connected: Connected) -> None:
    with connected.engine.connect() as connection:
        stored = (
            connection.execute(
                text(
                    "SELECT encrypted_value FROM integration_credential "
                    "UNION ALL SELECT access_token FROM slack_workspace"
                )
            )
            .scalars()
            .all()
        )
    assert len(stored) == 2
    for value in stored:
        assert TOKEN not in value
        assert connected.cipher.decrypt(value) == TOKEN


def test_channel_not_found_marks_the_channel_unsupported(connected: Connected) -> None:
    connected.select_all_channels()
    ingest.refresh_users(connected.engine, connected.cipher, connected.slack_id)
    ingest.refresh_channels(connected.engine, connected.cipher, connected.slack_id)
    connected.select_all_channels()
    connected.server.inject("conversations.history", Fault.slack_error("channel_not_found"))
    result = ingest.sync_message_days(
        connected.engine, connected.cipher, connected.slack_id, START, START
    )
    assert any("channel_not_found" in w for w in result.report.warnings)
    with connected.engine.connect() as connection:
        unsupported = (
            connection.execute(
                select(SlackChannel.slack_id).where(SlackChannel.is_supported.is_(False))
            )
            .scalars()
            .all()
        )
    assert len(unsupported) == 1
    assert unsupported[0] in {c.id for c in connected.workspace.channels}


def test_limited_mode_reads_fifteen_a_page_and_paces_history_a_minute_apart() -> None:
    api = SlackApi("xoxb-x", options=ClientOptions(limited=True, page_size=200))
    assert api.page_size == 15
    assert api._pacer.interval("conversations.history") == 60.0
    assert api._pacer.interval("users.list") == 3.0


def test_short_capped_pages_still_read_everything(
    migrated_engine: Engine, cipher: TokenCipher
) -> None:
    workspace = generate_workspace(seed=5, days=2, start=START, messages_per_channel_day=30)
    with FakeSlackServer(short_pages=True, max_page_size=15, repeat_thread_parent=True) as server:
        connected = connect(migrated_engine, server, workspace, cipher)
        ingest.refresh_channels(connected.engine, cipher, connected.slack_id)
        connected.select_all_channels()
        connected.sync_all(START, START + timedelta(1))
        assert_matches_ground_truth(connected, synced_channels(connected))


def test_day_health_finds_orphan_replies_and_unfinished_days(connected: Connected) -> None:
    ingest.refresh_channels(connected.engine, connected.cipher, connected.slack_id)
    connected.select_all_channels()
    connected.sync_all()
    healthy = day_health(connected.engine, connected.slack_id, START)
    unreadable = sum(
        1
        for c in connected.workspace.channels
        if not c.is_member and c.kind in ("public", "private")
    )
    assert unreadable > 0
    # channels the app is not in were never read; everything else is whole
    assert healthy == DayHealth(0, 0, unreadable)
    with connected.engine.begin() as connection:
        connection.execute(
            text(
                "DELETE FROM slack_message WHERE is_thread_parent AND slack_ts IN "
                "(SELECT thread_ts FROM slack_message WHERE is_thread_reply "
                "AND message_datetime < :end)"
            ),
            {"end": normalize.ts_to_datetime(normalize.day_bounds(START)[1])},
        )
        connection.execute(
            text("UPDATE slack_sync_day SET complete = false WHERE day = :d"), {"d": START}
        )
    broken = day_health(connected.engine, connected.slack_id, START)
    assert broken.orphan_replies > 0
    assert broken.incomplete_channels > unreadable
