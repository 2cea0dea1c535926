"""A workspace's channel selection and sync settings as Dagster metadata (markdown tables).

The `slack_channels` and `slack_workspace` materializations carry them, and so do the runs of
the Launchpad jobs that change them (`defs/slack/admin_jobs.py`). The rows come from the
administration code (`slack/admin.py`, `slack/store.py`), as `toban slack channels` and
`toban slack configure` show them.

Direct messages and group DMs are shown by their Slack id, never by name: their names are made
of people's names or ids, and Dagster's event log is not erased with a person
(access-and-privacy.md).
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy import Connection

from toban_orchestration.db.enums import ChannelType, IntegrationStatus
from toban_orchestration.defs.slack.resources import SlackSyncSettings
from toban_orchestration.slack import admin, store
from toban_orchestration.slack.store import AdminChannel
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration.slack.workspaces import SOURCE_EXPORT

# Rows of a channel table before "and N more".
CHANNEL_ROWS = 200
_TYPE_ORDER = {
    ChannelType.PUBLIC: 0,
    ChannelType.PRIVATE: 1,
    ChannelType.MPIM: 2,
    ChannelType.IM: 3,
}


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def channel_label(channel: AdminChannel) -> str:
    """`#name` for a channel, the Slack id for a DM or group DM (their names name people)."""
    if channel.type in (ChannelType.IM, ChannelType.MPIM):
        return f"`{channel.slack_id}`"
    name = channel.name.replace("`", "'")
    return f"`#{name}`"


def ordered(channels: Sequence[AdminChannel]) -> list[AdminChannel]:
    return sorted(
        channels, key=lambda c: (_TYPE_ORDER.get(ChannelType(c.type), 9), c.name, c.slack_id)
    )


def channel_table(
    channels: Sequence[AdminChannel], options: SyncOptions | None, *, limit: int = CHANNEL_ROWS
) -> str:
    """Channel, type, app member, last synced day and why it is not read (when it is not),
    `limit` rows at most, then how many more."""
    if not channels:
        return "No channel."
    rows = [
        "| channel | type | app member | last synced day | note |",
        "|---|---|---|---|---|",
    ]
    shown = ordered(channels)
    for channel in shown[:limit]:
        warning = admin.channel_warning(channel, options) if options is not None else None
        kind = channel.type + (" (archived)" if channel.is_archived else "")
        rows.append(
            f"| {_cell(channel_label(channel))} | {kind} | {'yes' if channel.has_bot else 'no'} "
            f"| {channel.last_synced_day or '-'} "
            f"| {_cell(admin.short_warning(warning)) if warning else ''} |"
        )
    more = len(shown) - limit
    if more > 0:
        rows.append(f"\nand {more} more")
    return "\n".join(rows)


def settings_table(options: SyncOptions) -> str:
    """Every sync setting: its value, its default, the values it takes and what it does."""
    defaults = SyncOptions()
    rows = ["| setting | value | default | range | what |", "|---|---|---|---|---|"]
    for setting in admin.SETTINGS:
        value = admin.shown(getattr(options, setting.name))
        default = admin.shown(getattr(defaults, setting.name))
        rows.append(
            f"| `{setting.name}` | {'**' + value + '**' if value != default else value} "
            f"| {default} | {_cell(setting.short_range)} | {_cell(setting.what)} |"
        )
    return "\n".join(rows)


def changed_settings_table(changed: Mapping[str, tuple[Any, Any]]) -> str:
    if not changed:
        return "Nothing changed."
    rows = ["| setting | before | after |", "|---|---|---|"]
    rows += [
        f"| `{name}` | {admin.shown(before)} | {admin.shown(after)} |"
        for name, (before, after) in changed.items()
    ]
    return "\n".join(rows)


def selected_channels_metadata(
    channels: Sequence[AdminChannel], options: SyncOptions | None
) -> dict[str, dg.MetadataValue]:
    selected = [c for c in channels if c.is_selected]
    return {
        "selected_channels": dg.MetadataValue.md(channel_table(selected, options)),
        "selected_channel_count": dg.MetadataValue.int(len(selected)),
    }


def sync_options_or_none(workspace: store.AdminWorkspace) -> SyncOptions | None:
    """The workspace's sync settings, None when the stored ones are invalid."""
    try:
        return admin.sync_options(workspace)
    except admin.AdminError:
        return None


def channels_metadata(connection: Connection, slack_id: str) -> dict[str, dg.MetadataValue]:
    """The `slack_channels` metadata: the channels selected for sync and analysis."""
    workspace = admin.find_workspace(connection, slack_id)
    channels = store.admin_channels(connection, workspace.id, count_messages=False)
    return selected_channels_metadata(channels, sync_options_or_none(workspace))


def workspace_settings_metadata(
    connection: Connection, slack_id: str, slack_sync: SlackSyncSettings
) -> dict[str, dg.MetadataValue]:
    """The `slack_workspace` metadata: the workspace's sync settings (or why they are invalid)."""
    workspace = admin.find_workspace(connection, slack_id)
    try:
        table = settings_table(admin.sync_options(workspace))
    except admin.AdminError as error:
        table = f"{_cell(str(error))}: correct them with `slack_configure_sync_job`."
    return {
        "sync_settings": dg.MetadataValue.md(table),
        "waiting_analyses": dg.MetadataValue.md(
            waiting_analyses(connection, workspace, slack_sync)
        ),
    }


def waiting_analyses(
    connection: Connection, workspace: store.AdminWorkspace, slack_sync: SlackSyncSettings
) -> str:
    """Why a weekly or monthly analysis of this workspace is not made (its automation says
    nothing): it covers days before the backfill window that were never synced, with the
    `toban backfill` that completes it. `toban status` prints the same lines."""
    if (
        workspace.source == SOURCE_EXPORT
        or workspace.integration_status != IntegrationStatus.ACTIVE
    ):
        return "None waits for a sync: the workspace is not synced from Slack's API."
    window = admin.backfill_window(datetime.now(UTC).date(), slack_sync.backfill_days)
    if window is None:
        return "No backfill window (TOBAN_BACKFILL_DAYS is 0): nothing is synced by itself."
    waiting = admin.waiting_windows(
        connection, [workspace.slack_id], window, slack_sync.first_partition_day
    ).get(workspace.slack_id, [])
    if not waiting:
        return "None: every weekly and monthly window that began in the backfill window can run."
    return "\n".join(f"- {_cell(w.line(workspace.slack_id))}" for w in waiting)
