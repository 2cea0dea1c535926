"""Range runs: one run reads each channel's history once for a range of days and reports every
day as its own partition, with the figures and checks a day run would give."""

from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.assets import slack_messages_range_job
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import get_settings
from toban_orchestration.slack import ingest
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace
from toban_orchestration_tests.support.web_api_sync import Connected, connect, differences

START = date(2026, 11, 1)
DAYS = 12
LAST = START + timedelta(DAYS - 1)


@pytest.fixture
def connected(
    app_environment: dict[str, str], migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Connected]:
    key = generate_key()
    monkeypatch.setenv("TOBAN_ENCRYPTION_KEYS", key)
    get_settings.cache_clear()
    # A quiet workspace: a few messages a day, most of a page empty.
    workspace = generate_workspace(seed=31, days=DAYS, start=START, messages_per_channel_day=4)
    with FakeSlackServer() as server:
        connected = connect(
            migrated_engine,
            server,
            workspace,
            TokenCipher([key]),
            sync=SyncOptions(pacing=False, page_size=200, retry_backoff_seconds=0.01),
        )
        ingest.refresh_channels(migrated_engine, TokenCipher([key]), connected.slack_id)
        connected.select_all_channels()
        yield connected


def _range_config(slack_id: str, first: date, last: date) -> dict[str, object]:
    return {
        "ops": {
            "sync_slack_message_range": {
                "config": {
                    "workspace": slack_id,
                    "first": first.isoformat(),
                    "last": last.isoformat(),
                }
            }
        }
    }


def test_a_range_run_reads_each_channel_once_and_reports_every_day(
    connected: Connected, project_instance: dg.DagsterInstance
) -> None:
    slack_id = connected.slack_id
    project_instance.add_dynamic_partitions(workspace_partitions.name or "", [slack_id])
    connected.server.reset_calls()
    result = slack_messages_range_job.execute_in_process(
        run_config=_range_config(slack_id, START, LAST),
        instance=project_instance,
        resources=build_resources(get_settings()),
    )
    assert result.success
    assert differences(connected.engine, connected.workspace, connected.member_channels()) == []
    # One history call per selected channel for all 12 days (one page: under 200 messages
    # each; the channel the app is not in refuses its one call), where day runs make 12 each.
    selected = [c for c in connected.workspace.channels if c.kind in ("public", "private")]
    assert connected.server.calls["conversations.history"] == len(selected)
    materialized = result.asset_materializations_for_node("sync_slack_message_range")
    by_asset: dict[str, dict[str, dg.AssetMaterialization]] = {}
    for event in materialized:
        by_asset.setdefault(event.asset_key.to_user_string(), {})[event.partition or ""] = event
    keys = {f"{START + timedelta(n)}|{slack_id}" for n in range(DAYS)}
    assert set(by_asset["slack_messages"]) == keys
    assert set(by_asset["slack_reactions"]) == keys
    with connected.engine.connect() as connection:
        stored: dict[str, int] = dict(
            connection.execute(
                text(
                    "SELECT (message_datetime AT TIME ZONE 'UTC')::date::text, count(*) "
                    "FROM slack_message GROUP BY 1"
                )
            ).all()
        )
    # Like a day run's, the row count is every stored message of the day, deleted ones too
    # (they are kept, flagged): the UI's figure then equals the table's.
    for key, event in by_asset["slack_messages"].items():
        day = key.split("|")[0]
        assert event.metadata["dagster/row_count"] == dg.IntMetadataValue(stored.get(day, 0))
        # a first sync: every message of the day is new
        assert event.metadata["messages_inserted"] == dg.IntMetadataValue(stored.get(day, 0))
        assert event.metadata["range"] == dg.TextMetadataValue(f"{START}..{LAST}")
    checks = result.get_asset_check_evaluations()
    assert {(c.check_name, c.partition) for c in checks} >= {
        ("replies_have_parents", key) for key in keys
    }
    assert all(c.passed for c in checks if c.check_name == "replies_have_parents")
    # The partitions show as materialized in the instance, day by day.
    status = project_instance.get_materialized_partitions(dg.AssetKey("slack_messages"))
    assert keys <= set(status)


def test_a_range_with_first_after_last_is_refused_in_one_line(
    connected: Connected, project_instance: dg.DagsterInstance
) -> None:
    result = slack_messages_range_job.execute_in_process(
        run_config=_range_config(connected.slack_id, LAST, START),
        instance=project_instance,
        resources=build_resources(get_settings()),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("sync_slack_message_range")
    assert failure is not None
    assert failure.user_failure_data is not None
    assert f"first {LAST} is after last {START}" in str(failure.user_failure_data.description)


def test_a_first_range_run_refreshes_and_reports_the_snapshot_before_its_messages(
    connected: Connected, project_instance: dg.DagsterInstance
) -> None:
    """A new workspace's first sync is one run: the workspace, its users and its channels are
    refreshed and reported as their own partitions' materializations, then the messages."""
    slack_id = connected.slack_id
    project_instance.add_dynamic_partitions(workspace_partitions.name or "", [slack_id])
    with connected.engine.begin() as connection:  # as new: no channel or user stored yet
        connection.execute(text("DELETE FROM slack_channel"))
        connection.execute(text("DELETE FROM slack_user"))
    connected.server.reset_calls()
    config = _range_config(slack_id, START, LAST)
    config["ops"]["sync_slack_message_range"]["config"]["snapshot_first"] = True  # type: ignore[index]
    result = slack_messages_range_job.execute_in_process(
        run_config=config, instance=project_instance, resources=build_resources(get_settings())
    )
    assert result.success
    calls = connected.server.calls
    assert (calls["team.info"], calls["users.list"], calls["conversations.list"]) == (1, 1, 1)
    materialized = result.asset_materializations_for_node("sync_slack_message_range")
    order = [e.asset_key.to_user_string() for e in materialized]
    assert order[:3] == ["slack_workspace", "slack_users", "slack_channels"]
    snapshot = {e.asset_key.to_user_string(): e for e in materialized[:3]}
    assert {e.partition for e in snapshot.values()} == {slack_id}
    listed = len(connected.workspace.users)  # users.list's members (messages add bots later)
    assert snapshot["slack_users"].metadata["dagster/row_count"] == dg.IntMetadataValue(listed)
    assert "selected_channels" in snapshot["slack_channels"].metadata
    # The public channels the refresh stored are selected by default (private ones wait for
    # a person to select them) and synced in the same run: each one the app is in equals Slack.
    public = [c.id for c in connected.workspace.channels if c.is_member and c.kind == "public"]
    assert public
    assert differences(connected.engine, connected.workspace, public) == []
    for asset in ("slack_workspace", "slack_users", "slack_channels"):
        assert slack_id in project_instance.get_materialized_partitions(dg.AssetKey(asset))
