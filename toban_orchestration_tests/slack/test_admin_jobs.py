"""Choosing channels and sync settings from the Dagster UI: the Launchpad jobs run in process on
a workspace of the local Slack server, and the snapshot assets' metadata shows the selection and
the settings."""

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import Engine, select, update

from toban_orchestration.db.enums import ChannelType
from toban_orchestration.db.models import IntegrationEvent, SlackChannel, SlackWorkspace
from toban_orchestration.definitions import defs
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.admin_jobs import (
    ADMIN_JOB_TAGS,
    SyncSettingsConfig,
    slack_configure_sync_job,
    slack_select_channels_job,
)
from toban_orchestration.defs.slack.admin_metadata import channel_table
from toban_orchestration.defs.slack.assets import slack_channels, slack_workspace
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import get_settings
from toban_orchestration.slack import admin, ingest
from toban_orchestration.slack.store import AdminChannel
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace
from toban_orchestration_tests.support.web_api_sync import Connected, connect

DAY = date(2026, 11, 1)
SELECT_OP = "select_slack_channels"
CONFIGURE_OP = "configure_slack_sync"


@pytest.fixture
def connected(
    app_environment: dict[str, str],
    migrated_engine: Engine,
    project_instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Connected]:
    """A registered workspace (a Dagster partition) whose channels are stored, DMs included,
    with only #general selected."""
    key = generate_key()
    monkeypatch.setenv("TOBAN_ENCRYPTION_KEYS", key)
    get_settings.cache_clear()
    workspace = generate_workspace(seed=21, days=1, start=DAY, messages_per_channel_day=4)
    with FakeSlackServer() as server:
        found = connect(
            migrated_engine,
            server,
            workspace,
            TokenCipher([key]),
            sync=SyncOptions(pacing=False, include_direct_messages=True),
        )
        ingest.refresh_channels(migrated_engine, found.cipher, found.slack_id)
        with migrated_engine.begin() as connection:
            connection.execute(
                update(SlackChannel).values(is_selected_for_analysis=SlackChannel.name == "general")
            )
        project_instance.add_dynamic_partitions(workspace_partitions.name or "", [found.slack_id])
        yield found


def _ids(connected: Connected) -> dict[str, str]:
    """Channel name -> Slack id."""
    return {channel.name: channel.id for channel in connected.workspace.channels}


def _selected(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                select(SlackChannel.slack_id).where(SlackChannel.is_selected_for_analysis)
            ).scalars()
        )


def _audit(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(IntegrationEvent.details)
            .where(IntegrationEvent.actor_user_id == f"dagster-run:{run_id}")
            .order_by(IntegrationEvent.created_at)
        ).scalars()
        return [dict(details or {}) for details in rows]


def _sync_settings(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        metadata = connection.execute(select(SlackWorkspace.workspace_metadata)).scalar_one()
    return dict(metadata["sync"])


def _run(
    job: dg.JobDefinition, op: str, config: Mapping[str, Any], instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    return job.execute_in_process(
        run_config={"ops": {op: {"config": dict(config)}}},
        instance=instance,
        resources=build_resources(get_settings()),
        raise_on_error=False,
    )


def _output_metadata(result: dg.ExecuteInProcessResult, op: str) -> Mapping[str, Any]:
    outputs = [e for e in result.events_for_node(op) if e.is_successful_output]
    assert len(outputs) == 1
    return {key: value.value for key, value in outputs[0].step_output_data.metadata.items()}


def _failure(result: dg.ExecuteInProcessResult, op: str) -> str:
    assert not result.success
    failure = result.failure_data_for_node(op)
    assert failure is not None
    assert failure.user_failure_data is not None
    return str(failure.user_failure_data.description)


def _logs(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    """The run's log, as its page shows it."""
    return "\n".join(entry.user_message for entry in instance.all_logs(result.run_id))


def test_a_run_selects_by_glob_id_and_private_name_deselects_and_shows_what_changed(
    connected: Connected, migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    ids = _ids(connected)
    mpim = next(c for c in connected.workspace.channels if c.kind == "mpim")
    result = _run(
        slack_select_channels_job,
        SELECT_OP,
        {
            "workspace": connected.slack_id,
            "select": ["eng*", ids["random"]],
            "private": ["private-product", mpim.id],
            "deselect": ["#general"],
        },
        project_instance,
    )
    assert result.success
    wanted = {ids["engineering"], ids["random"], ids["private-product"], mpim.id}
    assert _selected(migrated_engine) == wanted

    metadata = _output_metadata(result, SELECT_OP)
    assert (metadata["channels_selected"], metadata["channels_deselected"]) == (4, 1)
    assert metadata["selected_channel_count"] == 4
    assert metadata["actor"] == f"dagster-run:{result.run_id}"
    changes = metadata["changes"]
    for row in (
        "| `#engineering` | public | selected |",
        "| `#random` | public | selected |",
        "| `#private-product` | private | selected |",
        f"| `{mpim.id}` | mpim | selected |",
        "| `#general` | public | not selected |",
    ):
        assert row in changes
    assert "`#engineering` | public | yes | - |" in metadata["selected_channels"]
    # A group DM is shown by its id: its name is made of people's names.
    logs = _logs(project_instance, result)
    assert mpim.name not in f"{metadata}\n{logs}"
    assert "Selected 4: `#engineering`, `#random`, `#private-product`" in logs

    # The audit trail names the run, as the CLI's names the OS user.
    events = _audit(migrated_engine, result.run_id)
    assert [(e["change"], set(e["channels"])) for e in events] == [
        ("channels_selected", wanted),
        ("channels_deselected", {ids["general"]}),
    ]
    # The asset's page shows the new selection at once, as an observation of its partition.
    observations = result.asset_observations_for_node(SELECT_OP)
    assert [(o.asset_key, o.partition) for o in observations] == [
        (dg.AssetKey("slack_channels"), connected.slack_id)
    ]
    assert observations[0].metadata["selected_channels"].value == metadata["selected_channels"]

    # all_public with a few deselected; a channel already so is not a change.
    again = _run(
        slack_select_channels_job,
        SELECT_OP,
        {"workspace": connected.slack_id, "all_public": True, "deselect": ["random", "design"]},
        project_instance,
    )
    assert again.success
    # #old-project is archived but the app is in it: readable. #design: the app is not in it.
    assert _selected(migrated_engine) == {
        ids["general"],
        ids["engineering"],
        ids["old-project"],
        ids["private-product"],
        mpim.id,
    }
    second = _output_metadata(again, SELECT_OP)
    assert (second["channels_selected"], second["channels_deselected"]) == (2, 1)
    assert "Left out `#design`: the app is not a member" in _logs(project_instance, again)

    # Nothing named (a field left empty arrives as None): the run shows the selection.
    shown = _run(
        slack_select_channels_job,
        SELECT_OP,
        {"workspace": connected.slack_id, "select": None, "all_public": None},
        project_instance,
    )
    assert shown.success
    listed = _output_metadata(shown, SELECT_OP)
    assert (listed["changes"], listed["selected_channel_count"]) == ("Nothing changed.", 5)
    assert _audit(migrated_engine, shown.run_id) == []
    assert shown.asset_observations_for_node(SELECT_OP) == []


def test_a_run_configures_two_settings_and_shows_the_change(
    connected: Connected, migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    result = _run(
        slack_configure_sync_job,
        CONFIGURE_OP,
        {
            "workspace": connected.slack_id,
            "thread_lookback_days": 60,
            "pacing": True,
            "include_direct_messages": True,  # already on: not a change
        },
        project_instance,
    )
    assert result.success
    stored = _sync_settings(migrated_engine)
    assert (stored["thread_lookback_days"], stored["pacing"]) == (60, True)

    metadata = _output_metadata(result, CONFIGURE_OP)
    assert metadata["settings_changed"] == 2
    assert metadata["changes"] == (
        "| setting | before | after |\n|---|---|---|\n"
        "| `thread_lookback_days` | 30 | 60 |\n| `pacing` | off | on |"
    )
    assert "| `thread_lookback_days` | **60** | 30 | 0-365 |" in metadata["sync_settings"]
    assert "| `pacing` | on | on | on/off |" in metadata["sync_settings"]
    assert "Changed thread_lookback_days: 30 -> 60" in _logs(project_instance, result)
    assert _audit(migrated_engine, result.run_id) == [
        {
            "workspace": connected.slack_id,
            "change": "sync_settings",
            "from": {"thread_lookback_days": 30, "pacing": False},
            "to": {"thread_lookback_days": 60, "pacing": True},
        }
    ]
    observations = result.asset_observations_for_node(CONFIGURE_OP)
    assert [(o.asset_key, o.partition) for o in observations] == [
        (dg.AssetKey("slack_workspace"), connected.slack_id)
    ]

    # Nothing given: the settings are shown, nothing is written or observed.
    shown = _run(
        slack_configure_sync_job, CONFIGURE_OP, {"workspace": connected.slack_id}, project_instance
    )
    assert shown.success
    assert _output_metadata(shown, CONFIGURE_OP)["changes"] == "Nothing changed."
    assert _audit(migrated_engine, shown.run_id) == []
    assert shown.asset_observations_for_node(CONFIGURE_OP) == []


def test_refusals_fail_the_run_in_one_line_and_change_nothing(
    connected: Connected, migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    ids = _ids(connected)
    before, settings = _selected(migrated_engine), _sync_settings(migrated_engine)

    unknown = _run(
        slack_select_channels_job,
        SELECT_OP,
        {"workspace": connected.slack_id, "select": ["engineering", "enginering-x"]},
        project_instance,
    )
    line = _failure(unknown, SELECT_OP)
    assert line.startswith(f"no channel of {connected.slack_id} matches 'enginering-x' (close: ")
    assert "#engineering" in line
    assert line.endswith("; nothing changed")
    # A glob never selects a private channel, and deselection after a refused selection is
    # not applied either: one transaction.
    private = _run(
        slack_select_channels_job,
        SELECT_OP,
        {"workspace": connected.slack_id, "select": ["private-*"], "deselect": ["general"]},
        project_instance,
    )
    assert "select them one by one with --private NAME" in _failure(private, SELECT_OP)
    assert _selected(migrated_engine) == before == {ids["general"]}

    out_of_range = _run(
        slack_configure_sync_job,
        CONFIGURE_OP,
        {"workspace": connected.slack_id, "page_size": 100, "thread_lookback_days": 400},
        project_instance,
    )
    line = _failure(out_of_range, CONFIGURE_OP)
    assert "thread_lookback_days takes a whole number from 0 to 365" in line
    assert "\n" not in line
    assert _sync_settings(migrated_engine) == settings

    nowhere = _run(
        slack_configure_sync_job, CONFIGURE_OP, {"workspace": "T0NOWHERE"}, project_instance
    )
    assert "No Slack workspace T0NOWHERE is registered" in _failure(nowhere, CONFIGURE_OP)

    for result in (unknown, private, out_of_range, nowhere):
        assert _audit(migrated_engine, result.run_id) == []
        # Not retried: neither the step (allow_retries=False) nor the run (its tag).
        assert result.dagster_run.tags["dagster/retry_on_asset_or_op_failure"] == "false"
        assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_snapshot_materializations_show_the_selection_and_the_settings(
    connected: Connected, project_instance: dg.DagsterInstance
) -> None:
    ingest.sync_message_days(connected.engine, connected.cipher, connected.slack_id, DAY, DAY)
    result = dg.materialize(
        [slack_workspace, slack_channels],
        partition_key=connected.slack_id,
        resources=build_resources(get_settings()),
        instance=project_instance,
    )
    assert result.success
    by_asset = {
        m.asset_key.to_user_string(): m.metadata
        for node in ("slack_workspace", "slack_channels")
        for m in result.asset_materializations_for_node(node)
    }
    channels = by_asset["slack_channels"]
    assert channels["selected_channel_count"].value == 1
    assert channels["selected_channels"].value == (
        "| channel | type | app member | last synced day | note |\n|---|---|---|---|---|\n"
        f"| `#general` | public | yes | {DAY} |  |"
    )
    settings = by_asset["slack_workspace"]["sync_settings"].value
    assert isinstance(settings, str)
    for setting in admin.SETTINGS:
        assert f"| `{setting.name}` |" in settings
    assert "| `include_direct_messages` | **on** | off | on/off |" in settings
    # The week and month that hold the backfill window's first day began before it: their
    # analyses wait for days nothing syncs by itself, and the metadata says so and what to do.
    waiting = by_asset["slack_workspace"]["waiting_analyses"].value
    assert isinstance(waiting, str)
    first = datetime.now(UTC).date() - timedelta(days=get_settings().backfill_days)
    if first.weekday() != 0 or first.day != 1:
        assert "waits for" in waiting
        assert f"`toban backfill --workspace {connected.slack_id} --start " in waiting


def test_the_channel_table_stops_at_200_rows_and_says_how_many_more() -> None:
    channels = [
        AdminChannel(
            id=uuid.uuid4(),
            slack_id=f"C{n:04d}",
            name=f"channel-{n:03d}",
            type=ChannelType.PUBLIC,
            is_archived=False,
            has_bot=n % 2 == 0,
            is_selected=True,
            is_supported=True,
            last_synced_day=None,
            message_count=None,
        )
        for n in range(205)
    ]
    table = channel_table(channels, SyncOptions())
    assert table.count("\n| `#channel-") == 200
    assert "`#channel-199`" in table
    assert "`#channel-200`" not in table
    assert table.endswith("\nand 5 more")
    assert "| `#channel-001` | public | no | - | the app is not a member |" in table


def test_the_jobs_are_defined_with_a_field_for_every_setting() -> None:
    names = {job.name for job in defs.resolve_all_job_defs()}
    assert {"slack_select_channels_job", "slack_configure_sync_job"} <= names
    for job in (slack_select_channels_job, slack_configure_sync_job):
        assert dict(job.tags) == ADMIN_JOB_TAGS
    # Written out by hand for the Launchpad: one optional field per SyncOptions field, whose
    # description gives its range and default as `toban slack configure` does.
    fields = SyncSettingsConfig.model_fields
    assert set(fields) - {"workspace"} == set(SyncOptions.model_fields)
    defaults = SyncOptions()
    for setting in admin.SETTINGS:
        field = fields[setting.name]
        assert field.default is None
        description = field.description or ""
        default = getattr(defaults, setting.name)
        if setting.is_bool:
            assert description.endswith(f"(default {str(default).lower()}).")
        else:
            expected = f"({setting.short_range}, default {admin.shown(default)})."
            assert description.endswith(expected), (setting.name, description)
