"""One channel's refusal never fails the others: against the local Slack server, through the real
slack-sdk client and PostgreSQL, a channel that is archived, that the app is not in or may not
read is skipped, named in the report and the asset checks, and every other channel is stored
as the server has it. Only workspace-level errors (a dead token) and transient ones fail."""

from collections.abc import Iterator, Mapping
from datetime import date, timedelta

import dagster as dg
import pytest
from sqlalchemy import Engine, select, update

from toban_orchestration.db.models import SlackChannel
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.assets import slack_users
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import get_settings
from toban_orchestration.slack import ingest
from toban_orchestration.slack.client import (
    ClientOptions,
    SlackApi,
    SlackAuthError,
    SlackChannelError,
    SlackError,
    SlackRefusedError,
)
from toban_orchestration.slack.health import day_health
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration_tests.fakes.slack_server import (
    Channel,
    FakeSlackServer,
    FakeWorkspace,
    Fault,
    generate_workspace,
)
from toban_orchestration_tests.support.partitioned_assets import MESSAGES
from toban_orchestration_tests.support.web_api_sync import (
    TOKEN,
    Connected,
    archive_without_the_app,
    connect,
    expected_messages,
    stored_messages,
)

START = date(2026, 11, 1)
DAYS = 2
LAST = START + timedelta(DAYS - 1)
JOINING = SyncOptions(
    pacing=False, page_size=50, retry_backoff_seconds=0.01, join_public_channels=True
)


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher([generate_key()])


def small_workspace(seed: int = 31) -> FakeWorkspace:
    return generate_workspace(seed=seed, days=DAYS, start=START, messages_per_channel_day=10)


def label(channel: Channel) -> str:
    return f"#{channel.name} ({channel.id})"


def channel_flags(engine: Engine, channel: Channel) -> dict[str, bool]:
    with engine.connect() as connection:
        row = connection.execute(
            select(SlackChannel.is_archived, SlackChannel.has_bot, SlackChannel.is_supported).where(
                SlackChannel.slack_id == channel.id
            )
        ).one()
    return {"is_archived": row[0], "has_bot": row[1], "is_supported": row[2]}


def assert_others_match_the_server(connected: Connected, skipped: Channel) -> None:
    """Every other selected channel is stored exactly as the server has it."""
    with connected.engine.connect() as connection:
        selected = connection.execute(
            select(SlackChannel.slack_id).where(SlackChannel.is_selected_for_analysis)
        ).scalars()
        others = [c for c in selected if c != skipped.id]
    assert len(others) >= 5  # public (the one the app joins included) and private channels
    for channel_id in others:
        assert connected.workspace.channel(channel_id).is_member, channel_id
        expected = expected_messages(connected.workspace, channel_id)
        assert expected, channel_id
        assert stored_messages(connected.engine, channel_id) == expected, channel_id


def sync_everything(connected: Connected) -> ingest.IngestResult:
    ingest.refresh_channels(connected.engine, connected.cipher, connected.slack_id)
    connected.select_all_channels()  # the private channels too
    return connected.sync_all(START, LAST)


def test_an_archived_channel_the_app_cannot_join_spares_the_rest_of_the_day(
    migrated_engine: Engine, cipher: TokenCipher
) -> None:
    workspace = small_workspace()
    archived = archive_without_the_app(workspace)
    outsider = next(c for c in workspace.channels if c.kind == "public" and not c.is_member)
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher, sync=JOINING)
        result = sync_everything(connected)
        assert server.internal_errors == []
    reason = result.report.channel_errors[label(archived)]
    assert reason.startswith("is_archived; the app cannot join an archived channel")
    assert list(result.report.channel_errors) == [label(archived)]
    assert f"{label(archived)}: {reason}" in result.report.warnings
    assert outsider.is_member  # joined, and synced like the others
    assert_others_match_the_server(connected, archived)
    assert stored_messages(migrated_engine, archived.id) == {}
    assert channel_flags(migrated_engine, archived) == {
        "is_archived": True,
        "has_bot": False,
        "is_supported": True,
    }
    # An archived channel the app is not in has nothing to read: it is not "incomplete".
    health = day_health(migrated_engine, connected.slack_id, START)
    assert (health.incomplete_channels, health.incomplete_channel_names) == (0, ())


REFUSALS = [
    pytest.param(
        "missing_scope",
        {"needed": "channels:history", "provided": "users:read"},
        {},
        id="missing_scope",
    ),
    pytest.param(
        "method_not_supported_for_channel_type",
        {},
        {"is_supported": False},
        id="method_not_supported_for_channel_type",
    ),
    pytest.param("channel_not_found", {}, {"is_supported": False}, id="channel_not_found"),
    pytest.param("not_in_channel", {}, {"has_bot": False}, id="not_in_channel"),
    pytest.param("access_denied", {}, {}, id="access_denied"),
]


@pytest.mark.parametrize(("error", "extra", "learnt"), REFUSALS)
def test_a_channel_that_refuses_is_skipped_and_named_and_the_others_are_stored(
    migrated_engine: Engine,
    cipher: TokenCipher,
    error: str,
    extra: Mapping[str, str],
    learnt: Mapping[str, bool],
) -> None:
    workspace = small_workspace()
    refused = workspace.channels[1]  # a public channel the app is in
    assert refused.kind == "public"
    assert refused.is_member
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher, sync=JOINING)
        server.refuse_channel(refused.id, error, **extra)
        result = sync_everything(connected)
        assert server.internal_errors == []
    assert list(result.report.channel_errors) == [label(refused)]
    reason = result.report.channel_errors[label(refused)]
    assert reason.startswith(f"{error}")
    if error == "missing_scope":
        assert reason.startswith("missing_scope (needs channels:history); ")
        assert "add the scope" in reason
    assert f"{label(refused)}: {reason}" in result.report.warnings
    assert_others_match_the_server(connected, refused)
    assert channel_flags(migrated_engine, refused) == {
        "is_archived": False,
        "has_bot": True,
        "is_supported": True,
        **learnt,
    }
    health = day_health(migrated_engine, connected.slack_id, START)
    if learnt.get("is_supported") is False:  # no longer synced, nor expected to be
        assert health.incomplete_channel_names == ()
    else:  # readable some day: still counted, and named
        assert health.incomplete_channel_names == (label(refused),)
        assert health.incomplete_channels == 1


def test_an_auth_error_about_one_channel_still_fails_the_run(
    migrated_engine: Engine, cipher: TokenCipher
) -> None:
    workspace = small_workspace()
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher, sync=JOINING)
        ingest.refresh_users(migrated_engine, cipher, connected.slack_id)
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
        server.refuse_channel(workspace.channels[1].id, "token_revoked")
        with pytest.raises(ingest.WorkspaceAuthError, match="token_revoked") as raised:
            ingest.sync_message_days(migrated_engine, cipher, connected.slack_id, START, LAST)
    assert TOKEN not in str(raised.value)


def test_a_transient_error_is_still_raised_for_dagster_to_retry(
    migrated_engine: Engine, cipher: TokenCipher
) -> None:
    workspace = small_workspace()
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher, sync=JOINING)
        ingest.refresh_users(migrated_engine, cipher, connected.slack_id)
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
        # slack-sdk retries a 503 (a 429 too); once its retries are spent the error remains.
        server.inject("conversations.history", Fault.server_error(status=503), times=100)
        with pytest.raises(SlackError, match="internal_error") as raised:
            ingest.sync_message_days(migrated_engine, cipher, connected.slack_id, START, LAST)
    assert not isinstance(raised.value, SlackChannelError)


def test_a_refusal_is_about_one_channel_only_from_a_method_about_one_channel() -> None:
    workspace = small_workspace()
    channel = workspace.channels[1].id
    with FakeSlackServer() as server:
        server.add_workspace(workspace, token=TOKEN)
        server.refuse_channel(channel, "missing_scope", needed="groups:history")
        server.inject("users.list", Fault.slack_error("missing_scope"))
        server.inject("conversations.list", Fault.slack_error("channel_not_found"))
        options = ClientOptions(base_url=server.base_url, pacing=False, max_retries=0)
        with SlackApi(TOKEN, options) as api:
            with pytest.raises(SlackChannelError, match=r"missing_scope \(needs groups:history\)"):
                api.call("conversations.history", channel=channel)
            with pytest.raises(SlackChannelError, match="missing_scope"):
                api.call("conversations.join", channel=channel)
            # The same errors from a workspace-wide method fail the run: a missing scope is
            # refused for good (Dagster does not retry it), a missing channel is not.
            with pytest.raises(SlackRefusedError, match="reinstall the Slack app") as scope:
                api.call("users.list")
            assert scope.value.error == "missing_scope"
            with pytest.raises(SlackError) as raised:
                api.call("conversations.list")
            assert type(raised.value) is SlackError
            # Slack's own trouble about a channel is not the channel's: raised, to retry.
            server.inject("conversations.history", Fault.slack_error("ratelimited"))
            with pytest.raises(SlackError, match="ratelimited") as transient:
                api.call("conversations.history", channel=workspace.channels[0].id)
            assert type(transient.value) is SlackError
            # A dead token is the workspace's, whichever channel the call was about.
            for error, refused in (("invalid_auth", 2), ("account_inactive", 3)):
                server.refuse_channel(workspace.channels[refused].id, error)
                with pytest.raises(SlackAuthError, match=error):
                    api.call("conversations.history", channel=workspace.channels[refused].id)
            server.revoke_token(TOKEN)
            with pytest.raises(SlackAuthError, match="token_revoked"):
                api.call("conversations.history", channel=workspace.channels[0].id)


# --- through the Dagster asset -------------------------------------------------------------


@pytest.fixture
def asset_cipher(
    app_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TokenCipher]:
    key = generate_key()
    monkeypatch.setenv("TOBAN_ENCRYPTION_KEYS", key)
    get_settings.cache_clear()
    yield TokenCipher([key])
    get_settings.cache_clear()


def _materialize_day(
    connected: Connected, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(workspace_partitions.name or "", [connected.slack_id])
    ingest.refresh_users(connected.engine, connected.cipher, connected.slack_id)
    ingest.refresh_channels(connected.engine, connected.cipher, connected.slack_id)
    # Public channels the app cannot read start unselected: someone selected them all by name
    # (`toban slack select`), so the day's checks have them to name.
    with connected.engine.begin() as connection:
        connection.execute(
            update(SlackChannel)
            .where(SlackChannel.type == "public")
            .values(is_selected_for_analysis=True)
        )
    key = dg.MultiPartitionKey({"date": START.isoformat(), "workspace": connected.slack_id})
    return dg.materialize(
        [MESSAGES],
        partition_key=key,
        resources=build_resources(get_settings()),
        instance=instance,
        raise_on_error=False,
    )


def _text(metadata: Mapping[str, dg.MetadataValue], key: str) -> str:
    value = metadata[key].value
    assert isinstance(value, str), (key, value)
    return value


def test_the_asset_run_succeeds_and_names_the_archived_channel_it_skipped(
    migrated_engine: Engine, asset_cipher: TokenCipher, project_instance: dg.DagsterInstance
) -> None:
    workspace = small_workspace(seed=21)
    archived = archive_without_the_app(workspace)
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, asset_cipher, sync=JOINING)
        result = _materialize_day(connected, project_instance)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    readable = checks["channels_readable"]
    assert not readable.passed
    assert readable.severity == dg.AssetCheckSeverity.WARN
    named = _text(readable.metadata, "channels")
    assert f"{label(archived)}: is_archived; the app cannot join an archived channel" in named
    # The only channel not read is archived without the app: nothing is missing.
    unread = checks["day_read_to_last_page"]
    assert unread.passed, unread.metadata
    assert unread.metadata["failing_rows"].value == 0
    assert checks["replies_have_parents"].passed
    assert checks["messages_have_authors"].passed
    messages = result.asset_materializations_for_node("slack_messages_and_reactions")
    metadata = next(
        m.metadata for m in messages if m.asset_key.to_user_string() == "slack_messages"
    )
    assert metadata["channels_skipped"].value == 1
    assert label(archived) in _text(metadata, "warnings")


def test_day_read_to_last_page_names_the_channels_it_counts(
    migrated_engine: Engine, asset_cipher: TokenCipher, project_instance: dg.DagsterInstance
) -> None:
    workspace = small_workspace(seed=21)
    archived = archive_without_the_app(workspace)
    outsider = next(c for c in workspace.channels if c.kind == "public" and not c.is_member)
    options = SyncOptions(pacing=False, page_size=50, retry_backoff_seconds=0.01)  # no joining
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, asset_cipher, sync=options)
        result = _materialize_day(connected, project_instance)
        asked_about_archived = [
            call for call in server.call_log if call.params.get("channel") == archived.id
        ]
    assert result.success
    assert asked_about_archived == []
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    skipped = _text(checks["channels_readable"].metadata, "channels")
    assert f"{label(outsider)}: not_in_channel; the app is not in the channel" in skipped
    # Nobody can invite the app to an archived channel: it is named with what can be done,
    # without a call to Slack (it would be refused every run).
    assert f"{label(archived)}: is_archived; the app cannot join an archived channel" in skipped
    # The outsider could be read once the app is invited: missing, and named with the reason;
    # the archived channel the app is not in is not counted.
    unread = checks["day_read_to_last_page"]
    assert not unread.passed
    assert unread.metadata["failing_rows"].value == 1
    named = _text(unread.metadata, "channels")
    assert named.startswith(f"- {label(outsider)}: not_in_channel; the app is not in the channel")
    assert label(archived) not in named


def test_a_scope_the_app_lacks_fails_the_asset_once_with_what_to_do(
    migrated_engine: Engine, asset_cipher: TokenCipher, project_instance: dg.DagsterInstance
) -> None:
    """Retrying a missing scope waits 30 s, 60 s and 120 s for the same refusal; it fails at
    once and says what a person must do."""
    workspace = small_workspace(seed=22)
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, asset_cipher, sync=JOINING)
        project_instance.add_dynamic_partitions(
            workspace_partitions.name or "", [connected.slack_id]
        )
        server.inject("users.list", Fault.slack_error("missing_scope"), times=10)
        server.reset_calls()
        result = dg.materialize(
            [slack_users],
            partition_key=connected.slack_id,
            resources=build_resources(get_settings()),
            instance=project_instance,
            raise_on_error=False,
        )
        assert server.calls["users.list"] == 1
    assert not result.success
    failure = result.failure_data_for_node("slack_users")
    assert failure is not None
    assert failure.user_failure_data is not None
    description = failure.user_failure_data.description or ""
    assert "Slack users.list failed: missing_scope" in description
    assert "reinstall the Slack app" in description


def test_a_channel_marked_unsupported_is_read_again_once_slack_lists_it(
    migrated_engine: Engine, cipher: TokenCipher
) -> None:
    """`channel_not_found` marks a private channel the app left unsupported; when the app is
    invited back, the next channel refresh lists it, and it is synced again."""
    workspace = small_workspace(seed=23)
    with FakeSlackServer() as server:
        connected = connect(migrated_engine, server, workspace, cipher, sync=JOINING)
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
        listed = workspace.channels[0].id
        with migrated_engine.begin() as connection:
            connection.execute(
                update(SlackChannel)
                .where(SlackChannel.slack_id == listed)
                .values(is_supported=False)
            )
        ingest.refresh_channels(migrated_engine, cipher, connected.slack_id)
    with migrated_engine.connect() as connection:
        supported = connection.execute(
            select(SlackChannel.is_supported).where(SlackChannel.slack_id == listed)
        ).scalar_one()
    assert supported
