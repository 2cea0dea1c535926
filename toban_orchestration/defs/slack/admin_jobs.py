"""Choosing a workspace's channels and sync settings from the Dagster UI: two jobs launched
from the Launchpad with typed run config, for people who never open a terminal.

They run the code of `toban slack select/deselect/configure` (`slack/admin.py`): the same
matching (name, id or glob; private conversations one by one), the same validation
(`SyncOptions`), the same audit (an IntegrationEvent, here with the actor `dagster-run:<run
id>`). A refused request fails the run with admin's one line and changes nothing (one
transaction). The run shows what changed as its op's output metadata, and as an observation of
`slack_channels` / `slack_workspace` (the workspace's partition) with the new selection or
settings, so the asset's page shows them before its next materialization.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field, ValidationInfo, field_validator

from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack.admin_metadata import (
    changed_settings_table,
    channel_label,
    ordered,
    selected_channels_metadata,
    settings_table,
    sync_options_or_none,
)
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.defs.slack.resources import SlackSyncSettings
from toban_orchestration.slack import admin, store
from toban_orchestration.slack.store import AdminChannel
from toban_orchestration.slack.workspaces import WorkspaceNotFoundError

# A refused request is refused again: the daemon's run retries (dagster.yaml) leave these
# runs alone when a step failed.
ADMIN_JOB_TAGS = {"kind": "slack", "dagster/retry_on_asset_or_op_failure": "false"}
# Channels named in one line of the run's log before "and N more".
NAMES_LOGGED = 20

WORKSPACE_DESCRIPTION = (
    "The Slack workspace id (team id, T...), as in the slack_workspace partitions."
)


def actor(context: dg.OpExecutionContext) -> str:
    """Who made the change, in the audit trail: this run."""
    return f"dagster-run:{context.run_id}"


def refused(error: Exception) -> dg.Failure:
    """A refusal (admin's one line): the run fails, is not retried, and changed nothing."""
    return dg.Failure(description=str(error), allow_retries=False)


def _observe(
    context: dg.OpExecutionContext, asset: str, slack_id: str, metadata: dict[str, dg.MetadataValue]
) -> None:
    """An observation of the workspace's partition of `asset` (when it is one: a workspace
    imported from an export and never added as a partition gets the run metadata only)."""
    if context.instance.has_dynamic_partition(workspace_partitions.name or "", slack_id):
        context.log_event(dg.AssetObservation(asset, partition=slack_id, metadata=metadata))


# --- channels -----------------------------------------------------------------------------------


class ChannelSelectionConfig(dg.Config):
    """Which channels of a workspace are synced and analyzed (selected)."""

    workspace: str = Field(description=WORKSPACE_DESCRIPTION)
    select: list[str] = Field(
        default=[],
        description="Public channels to select: names (with or without #), ids (C...) or globs "
        "on names ('eng-*'). A name or glob never selects a private channel or DM: use "
        "`private`. A name that matches nothing refuses the whole request.",
    )
    all_public: bool = Field(
        default=False,
        description="Select every public channel the app can read (those it cannot are left "
        "out, and the run says why).",
    )
    private: list[str] = Field(
        default=[],
        description="Private channels or DMs to select, one name or id each (no globs).",
    )
    deselect: list[str] = Field(
        default=[],
        description="Channels to stop syncing: names, ids or globs, of any type. Applied after "
        "the selections: a channel both selected and deselected ends up not selected (for "
        "example all_public except a few). Their stored messages and analyses stay.",
    )
    deselect_all_public: bool = Field(
        default=False, description="Stop syncing every public channel."
    )

    @field_validator(
        "select", "private", "deselect", "all_public", "deselect_all_public", mode="before"
    )
    @classmethod
    def _left_empty(cls, value: Any, info: ValidationInfo) -> Any:
        """A field left empty in the Launchpad (`select:`) arrives as None: its default."""
        if value is None:
            return False if info.field_name in ("all_public", "deselect_all_public") else []
        return value


def _names(channels: Sequence[AdminChannel]) -> str:
    labels = [channel_label(channel) for channel in ordered(channels)]
    more = len(labels) - NAMES_LOGGED
    return ", ".join(labels[:NAMES_LOGGED]) + (f" and {more} more" if more > 0 else "")


def _change_lines(change: admin.SelectionChange) -> list[str]:
    """What one request changed, for the run's log: channels by label (DMs by their id, never
    by their names, which name people)."""
    verb = "Selected" if change.selected else "Deselected"
    lines = [f"{verb} {len(change.changed)}: {_names(change.changed)}"] if change.changed else []
    if change.unchanged:
        state = "selected" if change.selected else "not selected"
        lines.append(f"Already {state}: {_names(change.unchanged)}")
    lines += [f"Left out {channel_label(c)}: {why}" for c, why in change.left_out]
    return lines


def _changes_table(before: dict[str, bool], after: Sequence[AdminChannel]) -> tuple[str, int, int]:
    """The channels whose selection the run changed (before and after the whole request), and
    how many it selected and deselected."""
    changed = [
        c for c in ordered(after) if c.slack_id in before and before[c.slack_id] != c.is_selected
    ]
    if not changed:
        return "Nothing changed.", 0, 0
    rows = ["| channel | type | now |", "|---|---|---|"]
    rows += [
        f"| {channel_label(c)} | {c.type} | {'selected' if c.is_selected else 'not selected'} |"
        for c in changed
    ]
    selected = sum(c.is_selected for c in changed)
    return "\n".join(rows), selected, len(changed) - selected


@dg.op(tags={"kind": "slack"})
def select_slack_channels(
    context: dg.OpExecutionContext,
    config: ChannelSelectionConfig,
    app_database: AppDatabase,
    slack_sync: SlackSyncSettings,
) -> None:
    """Select and deselect channels as `toban slack select/deselect` do, in one transaction;
    without any channel named, show the selection."""
    today = datetime.now(UTC).date()
    selecting = bool(config.select or config.private or config.all_public)
    deselecting = bool(config.deselect or config.deselect_all_public)
    try:
        with app_database.engine().begin() as connection:
            workspace = admin.find_workspace(connection, config.workspace)
            before = {
                c.slack_id: c.is_selected
                for c in store.admin_channels(connection, workspace.id, count_messages=False)
            }
            changes: list[admin.SelectionChange] = []
            if selecting:
                changes.append(
                    admin.change_selection(
                        connection,
                        workspace.slack_id,
                        selected=True,
                        names=config.select,
                        private=config.private,
                        all_public=config.all_public,
                        actor=actor(context),
                        today=today,
                        backfill_days=slack_sync.backfill_days,
                    )
                )
            if deselecting:
                changes.append(
                    admin.change_selection(
                        connection,
                        workspace.slack_id,
                        selected=False,
                        names=config.deselect,
                        all_public=config.deselect_all_public,
                        actor=actor(context),
                        today=today,
                        backfill_days=slack_sync.backfill_days,
                    )
                )
            options = sync_options_or_none(workspace)
            after = store.admin_channels(connection, workspace.id, count_messages=False)
    except (admin.AdminError, WorkspaceNotFoundError) as error:
        raise refused(error) from None
    for change in changes:
        for line in _change_lines(change):
            context.log.info(line)
        for channel, why in change.warnings:
            context.log.warning(f"{channel_label(channel)}: {why}")
    table, selected, deselected = _changes_table(before, after)
    if not (selecting or deselecting):
        context.log.info(f"No channel named: the selection of {admin.label(workspace)} is shown.")
    elif not (selected or deselected):
        context.log.info(f"Nothing changed in {admin.label(workspace)}.")
    window = admin.backfill_window(today, slack_sync.backfill_days)
    if selected and window is not None:
        context.log.info(
            f"The next syncs read the channels selected; the days of the backfill window "
            f"({window[0]} to {window[1]}) are read by the next daily run, or now by "
            f"materializing slack_messages for those days of {workspace.slack_id}."
        )
    current = selected_channels_metadata(after, options)
    context.add_output_metadata(
        {
            "workspace": dg.MetadataValue.text(admin.label(workspace)),
            "changes": dg.MetadataValue.md(table),
            "channels_selected": dg.MetadataValue.int(selected),
            "channels_deselected": dg.MetadataValue.int(deselected),
            "actor": dg.MetadataValue.text(actor(context)),
            **current,
        }
    )
    if selected or deselected:
        _observe(
            context,
            "slack_channels",
            workspace.slack_id,
            {**current, "changed_by": dg.MetadataValue.text(actor(context))},
        )


@dg.job(
    description="Choose the channels a Slack workspace syncs and analyzes (as `toban slack "
    "select/deselect`): names, ids or globs to select or deselect, every public channel, "
    "private channels by name. The run's metadata shows what changed and the selection.",
    tags=ADMIN_JOB_TAGS,
)
def slack_select_channels_job() -> None:
    select_slack_channels()


# --- sync settings ------------------------------------------------------------------------------


class SyncSettingsConfig(dg.Config):
    """A workspace's sync settings (`SyncOptions`); a setting left out stays as it is."""

    workspace: str = Field(description=WORKSPACE_DESCRIPTION)
    select_public_channels: bool | None = Field(
        default=None,
        description="New public channels the app can read start selected, so synced and "
        "analyzed (default true).",
    )
    include_private_channels: bool | None = Field(
        default=None,
        description="Sync the selected private channels the app is a member of (default true).",
    )
    include_direct_messages: bool | None = Field(
        default=None,
        description="List and sync DMs and group DMs; never without it (default false).",
    )
    join_public_channels: bool | None = Field(
        default=None,
        description="Join a selected public channel the app is not in, instead of skipping it "
        "(default false).",
    )
    thread_lookback_days: int | None = Field(
        default=None,
        description="Days back a sync looks for late replies to older threads (0-365, default 30).",
    )
    thread_recheck_hours: float | None = Field(
        default=None,
        description="Threads of a day checked more recently than this many hours are not "
        "re-read (>=0, default 6).",
    )
    thread_reconcile_days: int | None = Field(
        default=None,
        description="Days before a synced day whose threads are re-read whole, so edits, "
        "deletions and reactions on replies arrive without events (0-365, default 7).",
    )
    page_size: int | None = Field(
        default=None, description="Messages asked for per page (1-999, default 200)."
    )
    fetch_concurrency: int | None = Field(
        default=None,
        description="Threads whose replies are read at the same time, per channel (1-16, "
        "default 4).",
    )
    channel_concurrency: int | None = Field(
        default=None, description="Channels synced at the same time (1-8, default 3)."
    )
    pacing: bool | None = Field(
        default=None,
        description="Space requests by Slack's tier limits (default true).",
    )
    limited: bool | None = Field(
        default=None,
        description="Slack's 2025 limits for commercially distributed non-Marketplace apps "
        "(default false).",
    )
    retry_backoff_seconds: float | None = Field(
        default=None,
        description="Seconds before the first retry of a 5xx answer or a dropped connection, "
        "doubled each time (>0 <=30, default 0.5).",
    )

    def requested(self) -> dict[str, str]:
        """The settings given, as `admin.configure` takes them (as typed on the command line:
        on/off for switches)."""
        out: dict[str, str] = {}
        for setting in admin.SETTINGS:
            value = getattr(self, setting.name)
            if isinstance(value, bool):
                out[setting.name] = "on" if value else "off"
            elif value is not None:
                out[setting.name] = str(value)
        return out


@dg.op(tags={"kind": "slack"})
def configure_slack_sync(
    context: dg.OpExecutionContext, config: SyncSettingsConfig, app_database: AppDatabase
) -> None:
    """Change sync settings as `toban slack configure` does (validated by `SyncOptions`,
    stored only when different); without any, show them."""
    requested = config.requested()
    try:
        with app_database.engine().begin() as connection:
            change = admin.configure(connection, config.workspace, requested, actor=actor(context))
    except (admin.AdminError, WorkspaceNotFoundError) as error:
        raise refused(error) from None
    workspace = change.workspace
    for name, (before, after) in change.changed.items():
        context.log.info(f"Changed {name}: {admin.shown(before)} -> {admin.shown(after)}")
    if change.changed:
        context.log.info("The next syncs use the new settings.")
    elif requested:
        context.log.info(f"Nothing changed in {admin.label(workspace)}: the values are the same.")
    else:
        context.log.info(f"No setting given: the settings of {admin.label(workspace)} are shown.")
    current = {"sync_settings": dg.MetadataValue.md(settings_table(change.options))}
    context.add_output_metadata(
        {
            "workspace": dg.MetadataValue.text(admin.label(workspace)),
            "changes": dg.MetadataValue.md(changed_settings_table(change.changed)),
            "settings_changed": dg.MetadataValue.int(len(change.changed)),
            "actor": dg.MetadataValue.text(actor(context)),
            **current,
        }
    )
    if change.changed:
        _observe(
            context,
            "slack_workspace",
            workspace.slack_id,
            {**current, "changed_by": dg.MetadataValue.text(actor(context))},
        )


@dg.job(
    description="Show or change a Slack workspace's sync settings (as `toban slack configure`): "
    "fill in the settings to change, leave the others out. The run's metadata shows what "
    "changed and every setting.",
    tags=ADMIN_JOB_TAGS,
)
def slack_configure_sync_job() -> None:
    configure_slack_sync()
