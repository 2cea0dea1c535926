"""Every change in Slack reaches the database: through events alone, through reconciliation
alone (inside its window), and both together, after several rounds of random changes on
messages and thread replies, compared with the local server row for row."""

import random
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import pytest
from pydantic import SecretStr
from slack_sdk import WebClient
from sqlalchemy import Engine, select, text, update

from toban_orchestration.db.models import SlackEventInbox
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.events import slack_events_sensor
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import get_settings
from toban_orchestration.slack import ingest
from toban_orchestration.slack.apply_events import apply_pending
from toban_orchestration.slack.events import TRANSPORT_HTTP, parse_envelope
from toban_orchestration.slack.receiver import EventReceiver, ReceiverConfig
from toban_orchestration.slack.store import store_event_delivery
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace
from toban_orchestration_tests.support.web_api_sync import (
    Connected,
    connect,
    differences,
    make_random_changes,
)

APP_TOKEN = "xapp-1-changes-test"
START = date(2026, 11, 1)
DAYS = 4
LAST = START + timedelta(DAYS - 1)


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher([generate_key()])


def _options(**overrides: object) -> SyncOptions:
    base: dict[str, object] = {"pacing": False, "page_size": 50, "retry_backoff_seconds": 0.01}
    return SyncOptions.model_validate(base | overrides)


@pytest.fixture
def synced(migrated_engine: Engine, cipher: TokenCipher) -> Iterator[Connected]:
    """A workspace synced once (lookback of one day, so older threads are outside it), equal
    to the server."""
    workspace = generate_workspace(seed=11, days=DAYS, start=START, messages_per_channel_day=20)
    with FakeSlackServer() as server:
        connected = connect(
            migrated_engine,
            server,
            workspace,
            cipher,
            sync=_options(thread_lookback_days=1, thread_reconcile_days=0),
        )
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
        connected.select_all_channels()
        connected.sync_all(START, LAST)
        assert differences(migrated_engine, workspace, connected.member_channels()) == []
        yield connected


def deliver(engine: Engine, envelopes: list[dict[str, object]], *, twice: bool = False) -> int:
    """Store envelopes as the receiver does (each once more when `twice`: Slack's retries);
    returns how many were new."""
    new = 0
    for envelope in envelopes:
        for _ in range(2 if twice else 1):
            with engine.begin() as connection:
                new += store_event_delivery(connection, parse_envelope(envelope), TRANSPORT_HTTP)
    return new


def test_events_alone_bring_every_change_into_the_database(synced: Connected) -> None:
    engine, workspace = synced.engine, synced.workspace
    channels = synced.member_channels()
    workspace.events_enabled = True
    rng = random.Random(5)
    made: Counter[str] = Counter()
    synced.server.reset_calls()
    for round_number in range(3):
        made += make_random_changes(workspace, channels, rng, rounds=60).made
        envelopes = workspace.recorded_events()
        workspace.clear_events()
        # Slack delivers at least once: every event arrives twice in the odd rounds.
        assert deliver(engine, envelopes, twice=round_number % 2 == 1) == len(envelopes)
        report = apply_pending(engine, synced.slack_id)
        assert report.failed == 0, report.reasons
        assert report.waiting == 0
        assert differences(engine, workspace, channels) == [], f"round {round_number}"
    # every kind of change, on messages and on replies (threads older than the lookback too)
    for kind in ("edit", "delete", "react", "unreact"):
        assert made[f"{kind} message"], made
        assert made[f"{kind} reply"], made
    assert made["reply message"], made
    assert made["reply reply"], made
    # events alone: not one history or replies call
    assert synced.server.calls["conversations.history"] == 0
    assert synced.server.calls["conversations.replies"] == 0
    with engine.connect() as connection:
        outcomes: Counter[str | None] = Counter(
            connection.execute(select(SlackEventInbox.outcome)).scalars()
        )
        redelivered = connection.execute(
            select(text("count(*)")).where(SlackEventInbox.deliveries == 2)
        ).scalar_one()
    assert outcomes["applied"] > 100
    assert set(outcomes) <= {"applied", "dropped"}
    assert redelivered > 0


def test_applying_events_again_or_after_a_poll_changes_nothing(synced: Connected) -> None:
    engine, workspace = synced.engine, synced.workspace
    channels = synced.member_channels()
    workspace.events_enabled = True
    make_random_changes(workspace, channels, random.Random(8), rounds=80)
    deliver(engine, workspace.recorded_events())
    apply_pending(engine, synced.slack_id)
    assert differences(engine, workspace, channels) == []
    with engine.connect() as connection:
        before = connection.execute(text("SELECT id, updated_at FROM slack_message")).all()
    # Every event applied a second time (as after a crash between the write and the mark).
    with engine.begin() as connection:
        connection.execute(update(SlackEventInbox).values(applied_at=None, outcome=None))
    again = apply_pending(engine, synced.slack_id)
    assert again.failed == 0
    assert differences(engine, workspace, channels) == []
    # A poll of the same days after the events, then the events re-applied as a racing poll
    # would have them: the same rows.
    synced.sync_all(START, LAST + timedelta(1))
    assert differences(engine, workspace, channels) == []
    with engine.connect() as connection:
        after = connection.execute(text("SELECT id, updated_at FROM slack_message")).all()
    assert {row[0] for row in after} == {row[0] for row in before}


def test_events_of_channels_not_synced_are_dropped(synced: Connected) -> None:
    engine, workspace = synced.engine, synced.workspace
    outsider = next(c for c in workspace.channels if c.kind == "public" and c.is_member)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE slack_channel SET is_selected_for_analysis = false WHERE slack_id = %s",
            (outsider.id,),
        )
    workspace.events_enabled = True
    ts = workspace.add_message(outsider.id, text="not for us")
    deliver(engine, workspace.recorded_events())
    report = apply_pending(engine, synced.slack_id)
    assert (report.applied, report.dropped) == (0, 1)
    assert report.reasons == Counter({"channel not selected": 1})
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM slack_message WHERE slack_ts = :ts"), {"ts": ts}
        ).scalar_one()
    assert stored == 0


def test_reconciliation_alone_brings_changes_inside_its_window(
    migrated_engine: Engine, cipher: TokenCipher
) -> None:
    workspace = generate_workspace(seed=12, days=DAYS, start=START, messages_per_channel_day=20)
    with FakeSlackServer() as server:
        connected = connect(
            migrated_engine,
            server,
            workspace,
            cipher,
            sync=_options(thread_lookback_days=30, thread_reconcile_days=7, thread_recheck_hours=0),
        )
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
        connected.select_all_channels()
        connected.sync_all(START, LAST)
        channels = connected.member_channels()
        rng = random.Random(9)
        for round_number in range(3):
            made = make_random_changes(workspace, channels, rng, rounds=60).made
            assert made["edit reply"] or made["react reply"] or made["delete reply"]
            server.reset_calls()
            # The daily run of the next day: its recheck re-reads the window's threads.
            day = LAST + timedelta(1 + round_number)
            ingest.sync_message_days(migrated_engine, cipher, connected.slack_id, day, day)
            assert differences(migrated_engine, workspace, channels) == [], f"round {round_number}"
            replies = Counter(
                (call.params.get("channel"), call.params.get("ts"))
                for call in server.call_log
                if call.method == "conversations.replies"
            )
            assert replies, "the window's threads were re-read"
            assert max(replies.values()) == 1, "a thread was read twice in one run"


def test_the_events_sensor_applies_reports_partitions_and_the_inbox_lag(
    app_environment: dict[str, str],
    migrated_engine: Engine,
    project_instance: dg.DagsterInstance,
    cipher: TokenCipher,
) -> None:
    workspace = generate_workspace(seed=13, days=2, start=START, messages_per_channel_day=10)
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher, sync=_options())
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
        connected.select_all_channels()
        connected.sync_all(START, START + timedelta(1))
        project_instance.add_dynamic_partitions(
            workspace_partitions.name or "", [connected.slack_id]
        )
        workspace.events_enabled = True
        general = workspace.channels[0].id
        first_day = next(m["ts"] for m in workspace.message_dicts(general))
        workspace.edit_message(general, first_day, "edited through an event")
        deliver(migrated_engine, workspace.recorded_events())
        with dg.build_sensor_context(
            instance=project_instance, resources=build_resources(get_settings())
        ) as context:
            result = slack_events_sensor(context)
        assert isinstance(result, dg.SensorResult)
        materialized = {
            (event.asset_key.to_user_string(), event.partition)
            for event in result.asset_events
            if isinstance(event, dg.AssetMaterialization)
        }
        key = f"{START.isoformat()}|{connected.slack_id}"
        assert ("slack_messages", key) in materialized
        assert ("slack_reactions", key) in materialized
        inbox = next(
            e
            for e in result.asset_events
            if isinstance(e, dg.AssetMaterialization)
            and e.asset_key.to_user_string() == "slack_event_inbox"
        )
        assert inbox.metadata["applied"] == dg.IntMetadataValue(1)
        assert inbox.metadata["pending_events"] == dg.IntMetadataValue(0)
        lag = next(e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation))
        assert lag.passed
        assert differences(migrated_engine, workspace, connected.member_channels()) == []
        # An event that waits (a reaction on a message never stored) shows as lag once old.
        with migrated_engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO slack_event_inbox (event_id, team_id, event_type, event_time, "
                    "channel_slack_id, transport, payload, received_at) VALUES ('EvOLD', :team, "
                    "'reaction_added', now(), :channel, 'http', :payload, "
                    "now() - interval '2 hours')"
                ),
                {
                    "team": connected.slack_id,
                    "channel": general,
                    "payload": '{"event": {"type": "reaction_added", "user": "U1", "reaction":'
                    ' "eyes", "item": {"type": "message", "channel": "' + general + '", "ts":'
                    ' "1.000001"}}}',
                },
            )
        with dg.build_sensor_context(
            instance=project_instance,
            cursor=result.cursor,
            resources=build_resources(get_settings()),
        ) as context:
            later = slack_events_sensor(context)
        assert isinstance(later, dg.SensorResult)
        lag = next(e for e in later.asset_events if isinstance(e, dg.AssetCheckEvaluation))
        with migrated_engine.connect() as connection:
            rows = connection.execute(
                text("SELECT event_id, outcome, detail, attempts FROM slack_event_inbox")
            ).all()
        assert not lag.passed, rows
        assert lag.metadata["pending_events"] == dg.IntMetadataValue(1)


def test_channel_member_user_and_access_events_are_followed(synced: Connected) -> None:
    engine, workspace = synced.engine, synced.workspace
    workspace.events_enabled = True
    general = workspace.channels[0]
    humans = [u for u in workspace.users if not u.is_bot and not u.deleted]
    new_channel = workspace.create_channel("launch-room")
    workspace.rename_channel(general.id, "general-renamed")
    archived = next(c for c in workspace.channels if c.kind == "public" and c.id != general.id)
    workspace.archive_channel(archived.id)
    with engine.connect() as connection:
        members_before = connection.execute(
            text("SELECT member_count FROM slack_channel WHERE slack_id = :c"), {"c": general.id}
        ).scalar_one()
    newcomer = workspace.add_user("newcomer", "New Comer")
    joined = workspace.add_member(general.id, newcomer)
    workspace.update_user(humans[0].id, display_name="renamed-person")
    workspace.update_user(humans[1].id, display_name="", real_name="")
    # Deleting a thread parent with replies: a message_changed to its tombstone.
    parent = next(
        ts
        for ts in workspace.thread_parent_ts(general.id)
        if workspace.find(general.id, ts).subtype is None
    )
    workspace.delete_message(general.id, parent)
    workspace.remove_member(general.id, workspace.bot_user_id)
    workspace.uninstall_app()
    deliver(engine, workspace.recorded_events())
    report = apply_pending(engine, synced.slack_id)
    assert report.failed == 0, report.reasons
    with engine.connect() as connection:
        channels = {
            row.slack_id: row
            for row in connection.execute(
                text("SELECT slack_id, name, is_archived, has_bot, member_count FROM slack_channel")
            )
        }
        users: dict[str, str | None] = {
            slack_id: name
            for slack_id, name in connection.execute(
                text("SELECT slack_id, display_name FROM slack_user")
            )
        }
        labels: dict[str, str] = dict(
            connection.execute(text("SELECT slack_id, display_label FROM slack_user")).all()
        )
        kinds: dict[str, tuple[str, str]] = {
            ts: (subtype, kind)
            for ts, subtype, kind in connection.execute(
                text("SELECT slack_ts, subtype, kind FROM slack_message WHERE slack_ts = ANY(:ts)"),
                {"ts": [joined, parent]},
            )
        }
        status = connection.execute(
            text("SELECT status FROM integration WHERE workspace_id = :w"), {"w": synced.slack_id}
        ).scalar_one()
        audit = {
            details["slack_error"]
            for details in connection.execute(
                text("SELECT details FROM integration_event WHERE event_type = 'STATUS_CHANGED'")
            ).scalars()
        }
    assert channels[new_channel].name == "launch-room"
    assert channels[general.id].name == "general-renamed"
    assert channels[archived.id].is_archived
    assert channels[general.id].has_bot is False  # our bot was removed: channel_left
    assert channels[general.id].member_count == members_before + 1
    assert users[humans[0].id] == "renamed-person"
    assert newcomer in users
    # user_change and team_join keep the display label by the rule
    assert labels[humans[0].id] == "renamed-person"
    assert labels[humans[1].id] == humans[1].name
    assert labels[newcomer] == "New Comer"
    # a channel_join message, and a message that became a tombstone, are notices
    assert kinds == {joined: ("channel_join", "notice"), parent: ("tombstone", "notice")}
    assert status == "REVOKED"
    # uninstalling revokes the bot token too: Slack sends both events
    assert audit == {"token_revoked", "app_uninstalled"}


def test_through_socket_mode_with_the_receiver_restarted_the_database_equals_slack(
    synced: Connected,
) -> None:
    """The whole path: Slack's Socket Mode deliveries, the receiver (stopped half-way through
    the changes and started again), the inbox, the applier."""
    engine, workspace, server = synced.engine, synced.workspace, synced.server
    channels = synced.member_channels()
    server.enable_events(app_token=APP_TOKEN, ack_timeout=1.0, max_retries=100)
    workspace.events_enabled = True
    config = ReceiverConfig(app_token=SecretStr(APP_TOKEN))
    rng = random.Random(21)
    with EventReceiver(engine, config, web_client=WebClient(base_url=server.base_url)):
        assert server.wait_for_socket_clients(1)
        make_random_changes(workspace, channels, rng, rounds=40)
        assert server.wait_until_events_delivered(30)
    # Receiver down: Slack keeps these until a client connects again.
    make_random_changes(workspace, channels, rng, rounds=40)
    with EventReceiver(engine, config, web_client=WebClient(base_url=server.base_url)):
        assert server.wait_until_events_delivered(30)
        make_random_changes(workspace, channels, rng, rounds=40)
        assert server.wait_until_events_delivered(30)
    assert server.events_dropped() == []
    sent = {envelope["event_id"] for envelope in server.events_sent()}
    with engine.connect() as connection:
        stored = list(connection.execute(select(SlackEventInbox.event_id)).scalars())
    assert sorted(stored) == sorted(sent)  # nothing lost, nothing doubled
    report = apply_pending(engine, synced.slack_id)
    assert report.failed == 0, report.reasons
    assert differences(engine, workspace, channels) == []


def test_applied_events_are_pruned_after_their_retention(
    app_environment: dict[str, str],
    migrated_engine: Engine,
    project_instance: dg.DagsterInstance,
) -> None:
    with migrated_engine.begin() as connection:
        for event_id, age in (("EvOLD", "8 days"), ("EvRECENT", "6 days")):
            connection.execute(
                text(
                    "INSERT INTO slack_event_inbox (event_id, team_id, event_type, event_time, "
                    "transport, payload, applied_at, outcome) VALUES (:id, 'T1', 'message', "
                    "now(), 'http', '{}', now() - CAST(:age AS interval), 'applied')"
                ),
                {"id": event_id, "age": age},
            )
    with dg.build_sensor_context(
        instance=project_instance, resources=build_resources(get_settings())
    ) as context:
        result = slack_events_sensor(context)
    assert isinstance(result, dg.SensorResult)
    with migrated_engine.connect() as connection:
        left = list(connection.execute(select(SlackEventInbox.event_id)).scalars())
    assert left == ["EvRECENT"]  # TOBAN_EVENTS_RETENTION_DAYS is 7
