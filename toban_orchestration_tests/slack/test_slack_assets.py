"""The Slack assets in Dagster: partitions by workspace and by day, with the metadata the UI
shows, on the project's PostgreSQL-backed instance."""

from collections.abc import Iterator, Mapping
from datetime import date

import dagster as dg
import pytest
from sqlalchemy import Engine, select, update

from toban_orchestration.db.models import SlackChannel
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.assets import (
    slack_channels,
    slack_users,
    slack_workspace,
)
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import get_settings
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace
from toban_orchestration_tests.support.partitioned_assets import MESSAGES
from toban_orchestration_tests.support.web_api_sync import Connected, connect

DAY = date(2026, 11, 1)


def _int(metadata: Mapping[str, dg.MetadataValue], key: str) -> int:
    value = metadata[key].value
    assert isinstance(value, int), (key, value)
    return value


@pytest.fixture
def connected_workspace(
    app_environment: dict[str, str], migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Connected]:
    key = generate_key()
    monkeypatch.setenv("TOBAN_ENCRYPTION_KEYS", key)
    get_settings.cache_clear()
    workspace = generate_workspace(seed=21, days=2, start=DAY, messages_per_channel_day=10)
    with FakeSlackServer() as server:
        yield connect(migrated_engine, server, workspace, TokenCipher([key]))


def test_workspace_assets_and_a_message_partition_materialize_with_metadata(
    connected_workspace: Connected, project_instance: dg.DagsterInstance
) -> None:
    slack_id = connected_workspace.slack_id
    project_instance.add_dynamic_partitions(workspace_partitions.name or "", [slack_id])

    snapshot = dg.materialize(
        [slack_workspace, slack_users, slack_channels],
        partition_key=slack_id,
        resources=build_resources(get_settings()),
        instance=project_instance,
    )
    assert snapshot.success
    users = snapshot.asset_materializations_for_node("slack_users")[0].metadata
    assert _int(users, "users_inserted") == len(connected_workspace.workspace.users)
    assert _int(users, "dagster/row_count") >= len(connected_workspace.workspace.users)
    assert _int(users, "api_calls") >= 1
    # The one public channel the app is not in starts unselected (it cannot be read)...
    outsider = next(
        c.id
        for c in connected_workspace.workspace.channels
        if c.kind == "public" and not c.is_member
    )
    selected = select(SlackChannel.is_selected_for_analysis).where(
        SlackChannel.slack_id == outsider
    )
    with connected_workspace.engine.begin() as connection:
        assert connection.execute(selected).scalar_one() is False
        # ...until someone selects it by name (`toban slack select` warns that it cannot be read).
        connection.execute(
            update(SlackChannel)
            .where(SlackChannel.slack_id == outsider)
            .values(is_selected_for_analysis=True)
        )

    key = dg.MultiPartitionKey({"date": DAY.isoformat(), "workspace": slack_id})
    first = dg.materialize(
        [MESSAGES],
        partition_key=key,
        resources=build_resources(get_settings()),
        instance=project_instance,
    )
    assert first.success
    checks = {c.check_name: c for c in first.get_asset_check_evaluations()}
    assert checks["replies_have_parents"].passed
    assert checks["messages_have_authors"].passed
    # The one public channel the app is not in is selected but unreadable: the check says so
    # until someone invites the app or deselects the channel.
    unread = checks["day_read_to_last_page"]
    assert not unread.passed
    assert unread.metadata["failing_rows"].value == 1
    messages = first.asset_materializations_for_node("slack_messages_and_reactions")
    by_key = {m.asset_key.to_user_string(): m.metadata for m in messages}
    assert set(by_key) == {"slack_messages", "slack_reactions"}
    assert _int(by_key["slack_messages"], "messages_inserted") > 0
    assert _int(by_key["slack_messages"], "dagster/row_count") > 0
    assert _int(by_key["slack_messages"], "api_calls") > 0
    # The day's own reactions; the run also stored those on replies posted on later days.
    reaction_rows = _int(by_key["slack_reactions"], "dagster/row_count")
    assert 0 < reaction_rows <= _int(by_key["slack_reactions"], "reactions_inserted")

    again = dg.materialize(
        [MESSAGES],
        partition_key=key,
        resources=build_resources(get_settings()),
        instance=project_instance,
    )
    repeated = again.asset_materializations_for_node("slack_messages_and_reactions")[0].metadata
    assert _int(repeated, "messages_inserted") == 0
    assert _int(repeated, "messages_updated") == 0
    assert _int(repeated, "dagster/row_count") == _int(
        by_key["slack_messages"], "dagster/row_count"
    )


def test_a_revoked_token_fails_the_run_without_retrying_and_without_the_token(
    connected_workspace: Connected, project_instance: dg.DagsterInstance
) -> None:
    slack_id = connected_workspace.slack_id
    project_instance.add_dynamic_partitions(workspace_partitions.name or "", [slack_id])
    connected_workspace.server.revoke_token("xoxb-sync-test-0123456789")
    result = dg.materialize(
        [slack_users],
        partition_key=slack_id,
        resources=build_resources(get_settings()),
        instance=project_instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("slack_users")
    assert failure is not None
    assert "token_revoked" in str(failure.error)
    records = project_instance.get_records_for_run(result.run_id).records
    everything = " ".join(str(record.event_log_entry) for record in records)
    assert "xoxb-sync-test-0123456789" not in everything
    assert "STEP_UP_FOR_RETRY" not in everything
