"""Running a Slack workspace without SQL: which channels it syncs, its sync settings, and how it
is doing.

Plain code over the store (`slack/store.py`): `toban slack channels/select/deselect/configure`
and `toban status` (`cli.py`) call these functions inside one transaction and print the lines
they return. A refused request raises `AdminError` (one line, nothing changed); every change
is recorded as an IntegrationEvent naming who made it.
"""

import difflib
import fnmatch
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from toban_orchestration.access import store as access_store
from toban_orchestration.db.enums import ChannelType, IntegrationEventType, IntegrationStatus
from toban_orchestration.slack import store
from toban_orchestration.slack.client import SlackError
from toban_orchestration.slack.planning import days_to_sync
from toban_orchestration.slack.store import AdminChannel, AdminWorkspace
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration.slack.workspaces import SOURCE_EXPORT, WorkspaceNotFoundError

# Channel names listed in one line before "and N more".
NAMES_SHOWN = 12
GLOB_CHARACTERS = frozenset("*?[")


class AdminError(ValueError):
    """A request refused, with the reason in one line; nothing was changed."""


# --- the audit trail of administration changes (its SQL is access/store.py's, issue 18) -------


def record_admin_event(
    connection: Connection,
    workspace: AdminWorkspace,
    actor: str,
    details: Mapping[str, Any],
    event_type: IntegrationEventType = IntegrationEventType.UPDATED,
) -> None:
    """The audit trail of a change made by a person (ids and settings, never content), on the
    caller's connection so the change and its event commit together."""
    access_store.insert_integration_event(
        connection,
        integration_id=workspace.integration_id,
        event_type=event_type,
        actor=actor,
        team_id=workspace.team_id,
        details={"workspace": workspace.slack_id, **details},
    )


# --- workspaces -------------------------------------------------------------------------------


def find_workspace(connection: Connection, slack_id: str) -> AdminWorkspace:
    found = store.admin_workspaces(connection, slack_id.strip())
    if found:
        return found[0]
    known = [workspace.slack_id for workspace in store.admin_workspaces(connection)]
    hint = f" (registered: {', '.join(known)})" if known else ""
    raise WorkspaceNotFoundError(
        f"No Slack workspace {slack_id} is registered{hint}; add it with `toban slack add` or "
        "`toban slack import`."
    )


def stored_settings(workspace: AdminWorkspace) -> dict[str, Any]:
    sync = workspace.metadata.get("sync")
    return dict(sync) if isinstance(sync, dict) else {}


def sync_options(workspace: AdminWorkspace) -> SyncOptions:
    try:
        return SyncOptions.model_validate(stored_settings(workspace))
    except ValidationError as error:
        raise AdminError(
            f"the stored sync settings of {workspace.slack_id} are invalid: {_first_problem(error)}"
        ) from None


def label(workspace: AdminWorkspace) -> str:
    return f"{workspace.slack_id} ({workspace.name})"


# --- channels ---------------------------------------------------------------------------------

_TYPE_ORDER = {
    ChannelType.PUBLIC: 0,
    ChannelType.PRIVATE: 1,
    ChannelType.MPIM: 2,
    ChannelType.IM: 3,
}


def channel_warning(channel: AdminChannel, options: SyncOptions) -> str | None:
    """Why a channel's messages are not (or no longer) read, with what to do; None when a
    selected channel is read, and for an unselected one that has nothing wrong."""
    if not channel.is_supported:
        return "Slack no longer knows it (deleted, or private without the app): not synced"
    if not channel.is_selected:
        return None
    if channel.is_archived and not channel.has_bot:
        return "archived and the app is not in it: cannot be read (deselect it)"
    if channel.type == ChannelType.PRIVATE and not options.include_private_channels:
        return "private channels are off: turn them on with --include-private on"
    if channel.type in (ChannelType.IM, ChannelType.MPIM) and not options.include_direct_messages:
        return "direct messages are off: turn them on with --include-dms on"
    if not channel.has_bot:
        if channel.type == ChannelType.PUBLIC:
            if options.join_public_channels:
                return None  # the next sync joins it
            return "the app is not a member: invite it, or turn on --join-public-channels"
        return "the app is not a member: invite it to the channel"
    return None


def short_warning(warning: str) -> str:
    """A warning without what to do: "the app is not a member"."""
    return warning.split(":", 1)[0]


def _ordered(channels: Iterable[AdminChannel]) -> list[AdminChannel]:
    return sorted(channels, key=lambda c: (_TYPE_ORDER.get(ChannelType(c.type), 9), c.name))


@dataclass(frozen=True)
class ChannelList:
    workspace: AdminWorkspace
    options: SyncOptions
    channels: list[AdminChannel]

    def lines(self) -> list[str]:
        selected = sum(channel.is_selected for channel in self.channels)
        head = (
            f"Channels of {label(self.workspace)}: {len(self.channels)}, {selected} selected "
            "(selected channels are synced and analyzed)"
        )
        if not self.channels:
            return [
                head,
                "No channel is stored yet: the first snapshot of the workspace lists them.",
            ]
        rows = [("channel", "id", "type", "app", "selected", "last synced", "messages", "warning")]
        warned: dict[str, list[AdminChannel]] = {}
        for channel in _ordered(self.channels):
            warning = channel_warning(channel, self.options)
            if warning:
                warned.setdefault(warning, []).append(channel)
            rows.append(
                (
                    f"#{channel.name}",
                    channel.slack_id,
                    channel.type + (" (archived)" if channel.is_archived else ""),
                    "member" if channel.has_bot else "-",
                    "yes" if channel.is_selected else "no",
                    str(channel.last_synced_day or "-"),
                    "-" if channel.message_count is None else str(channel.message_count),
                    short_warning(warning) if warning else "",
                )
            )
        notes = [f"warning: {_names(found)}: {warning}" for warning, found in warned.items()]
        return [head, *_table(rows, right_aligned={6}), *notes]


def list_channels(connection: Connection, slack_id: str) -> ChannelList:
    workspace = find_workspace(connection, slack_id)
    options = sync_options(workspace)
    return ChannelList(workspace, options, store.admin_channels(connection, workspace.id))


def _table(rows: Sequence[Sequence[str]], right_aligned: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right_aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return out


def _names(channels: Iterable[AdminChannel]) -> str:
    names = [f"#{channel.name}" for channel in _ordered(channels)]
    more = len(names) - NAMES_SHOWN
    return ", ".join(names[:NAMES_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _normalized(pattern: str) -> str:
    return pattern.strip().removeprefix("#").strip().lower()


def _match(pattern: str, channels: Sequence[AdminChannel]) -> list[AdminChannel]:
    """Channels named by a name (with or without #), a Slack id, or a glob on names."""
    wanted = _normalized(pattern)
    if not wanted:
        return []
    if GLOB_CHARACTERS & set(wanted):
        return [c for c in channels if fnmatch.fnmatchcase(c.name.lower(), wanted)]
    by_id = [c for c in channels if c.slack_id.lower() == wanted]
    return by_id or [c for c in channels if c.name.lower() == wanted]


def _no_match(pattern: str, workspace: AdminWorkspace, channels: Sequence[AdminChannel]) -> str:
    wanted = "".join(ch for ch in _normalized(pattern) if ch not in GLOB_CHARACTERS)
    close = difflib.get_close_matches(wanted, sorted({c.name for c in channels}), n=5, cutoff=0.6)
    hint = (
        f"close: {', '.join('#' + name for name in close)}"
        if close
        else f"`toban slack channels --workspace {workspace.slack_id}` lists them"
    )
    return f"no channel of {workspace.slack_id} matches {pattern!r} ({hint}); nothing changed"


def _readable(channel: AdminChannel, options: SyncOptions) -> bool:
    return (
        channel.is_supported
        and not (channel.is_archived and not channel.has_bot)
        and (channel.has_bot or options.join_public_channels)
    )


@dataclass(frozen=True)
class SelectionChange:
    workspace: AdminWorkspace
    selected: bool
    changed: list[AdminChannel]
    """Channels whose selection this request changed."""
    unchanged: list[AdminChannel]
    """Channels named that were already in that state."""
    left_out: list[tuple[AdminChannel, str]]
    """Channels a glob or --all-public matched but that were not selected, and why."""
    warnings: list[tuple[AdminChannel, str]]
    """Channels just selected that the syncs will not be able to read, and what to do."""
    window: tuple[date, date] | None
    """The backfill window the next syncs fill for newly selected channels."""

    def lines(self) -> list[str]:
        verb = "Selected" if self.selected else "Deselected"
        state = "selected" if self.selected else "not selected"
        out: list[str] = []
        if self.changed:
            count = len(self.changed)
            out.append(
                f"{verb} {count} channel{'s' if count != 1 else ''} of {label(self.workspace)}: "
                f"{_names(self.changed)}"
            )
        else:
            out.append(f"Nothing changed in {label(self.workspace)}.")
        if self.unchanged:
            out.append(f"Already {state}: {_names(self.unchanged)}")
        for channel, why in self.left_out:
            out.append(f"Left out #{channel.name}: {why}")
        for channel, why in self.warnings:
            out.append(f"warning: #{channel.name}: {why}")
        if self.changed and self.selected:
            out.append(_window_sentence(self.workspace.slack_id, self.window))
        elif self.changed:
            out.append(
                "Their stored messages stay (and so do the analyses made of them); the syncs "
                "no longer read them and new analyses leave them out."
            )
        return out


def _window_sentence(slack_id: str, window: tuple[date, date] | None) -> str:
    if window is None:
        return "The next syncs read them (TOBAN_BACKFILL_DAYS is 0: no earlier days)."
    first, last = window
    days = (last - first).days + 1
    return (
        f"The next syncs read them: the {days} days of the backfill window ({first} to {last}) "
        f"will be read by the next daily run, or now with `toban backfill --workspace "
        f"{slack_id} --start {first} --end {last}`."
    )


def backfill_window(today: date, backfill_days: int) -> tuple[date, date] | None:
    """The days the daily run keeps synced: the last `backfill_days` UTC days before today."""
    if backfill_days < 1:
        return None
    last = today - timedelta(days=1)
    return last - timedelta(days=backfill_days - 1), last


def change_selection(
    connection: Connection,
    slack_id: str,
    *,
    selected: bool,
    names: Sequence[str] = (),
    private: Sequence[str] = (),
    all_public: bool = False,
    actor: str,
    today: date,
    backfill_days: int,
) -> SelectionChange:
    """Select (or deselect) channels named by name, id or glob (`names`: public channels when
    selecting, any channel when deselecting), private conversations named with `private`, and
    with `all_public` every public channel (that the app can read, when selecting).

    Private conversations are never selected by a glob or a name without --private: choosing
    one is a decision about people's privacy, made one name at a time. Every name is resolved
    before anything changes: one that matches nothing refuses the whole request."""
    workspace = find_workspace(connection, slack_id)
    options = sync_options(workspace)
    if not (names or private or all_public):
        raise AdminError(
            "name channels (names, ids or globs like 'eng-*'), --all-public or --private NAME"
        )
    channels = store.admin_channels(connection, workspace.id, count_messages=False)
    public = [c for c in channels if c.type == ChannelType.PUBLIC]
    non_public = [c for c in channels if c.type != ChannelType.PUBLIC]
    targets: dict[str, AdminChannel] = {}
    left_out: dict[str, tuple[AdminChannel, str]] = {}
    for pattern in names:
        matched = _match(pattern, channels)
        if not matched:
            raise AdminError(_no_match(pattern, workspace, channels))
        if selected:
            hidden = [c for c in matched if c.type != ChannelType.PUBLIC]
            matched = [c for c in matched if c.type == ChannelType.PUBLIC]
            if not matched:
                raise AdminError(
                    f"{pattern!r} names private conversations only ({_names(hidden)}): select "
                    "them one by one with --private NAME; nothing changed"
                )
            for channel in hidden:
                left_out[channel.slack_id] = (channel, "private: select it with --private NAME")
        targets |= {c.slack_id: c for c in matched}
    for name in private:
        if selected and GLOB_CHARACTERS & set(name):
            raise AdminError(
                f"--private {name}: name one private conversation (name or id), not a glob; "
                "nothing changed"
            )
        matched = _match(name, non_public)
        if not matched:
            if _match(name, public):
                raise AdminError(
                    f"{name!r} is a public channel: name it without --private; nothing changed"
                )
            raise AdminError(_no_match(name, workspace, channels))
        targets |= {c.slack_id: c for c in matched}
    if all_public:
        for channel in public:
            if not selected or _readable(channel, options):
                targets.setdefault(channel.slack_id, channel)
            elif channel.slack_id not in targets and not channel.is_selected:
                why = channel_warning(_as_selected(channel), options) or "the app cannot read it"
                left_out[channel.slack_id] = (channel, why)
    for slack_id in targets:
        left_out.pop(slack_id, None)
    wanted = list(targets.values())
    changed_ids = store.set_channels_selected(connection, [c.id for c in wanted], selected)
    changed = [c for c in wanted if c.id in changed_ids]
    # Channels swept in by --all-public that were already so are not worth a line each.
    named = {c.slack_id for pattern in names for c in _match(pattern, channels)} | {
        c.slack_id for name in private for c in _match(name, non_public)
    }
    unchanged = [c for c in wanted if c.id not in changed_ids and c.slack_id in named]
    warnings: list[tuple[AdminChannel, str]] = []
    if selected:
        for channel in changed:
            problem = channel_warning(_as_selected(channel), options)
            if problem:
                warnings.append((channel, problem))
    if changed:
        record_admin_event(
            connection,
            workspace,
            actor,
            {
                "change": "channels_selected" if selected else "channels_deselected",
                "channels": sorted(c.slack_id for c in changed),
                "count": len(changed),
            },
        )
    return SelectionChange(
        workspace=workspace,
        selected=selected,
        changed=changed,
        unchanged=unchanged,
        left_out=list(left_out.values()),
        warnings=warnings,
        window=backfill_window(today, backfill_days),
    )


def _as_selected(channel: AdminChannel) -> AdminChannel:
    return replace(channel, is_selected=True)


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One `SyncOptions` field on the command line."""

    name: str
    flag: str
    """The option, without its dashes; the field's own name (with dashes) is accepted too."""
    what: str

    @property
    def options(self) -> list[str]:
        full = self.name.replace("_", "-")
        return [f"--{self.flag}"] + ([f"--{full}"] if full != self.flag else [])

    @property
    def is_bool(self) -> bool:
        return SyncOptions.model_fields[self.name].annotation is bool

    @property
    def allowed(self) -> str:
        """The values the setting takes, from `SyncOptions` itself."""
        if self.is_bool:
            return "on or off"
        field = SyncOptions.model_json_schema()["properties"][self.name]
        kind = "a whole number" if field.get("type") == "integer" else "a number"
        low, high = field.get("minimum"), field.get("maximum")
        above = field.get("exclusiveMinimum")
        if low is not None and high is not None:
            return f"{kind} from {low} to {high}"
        if above is not None and high is not None:
            return f"{kind} above {above}, at most {high}"
        if low is not None:
            return f"{kind} of at least {low}"
        if above is not None:
            return f"{kind} above {above}"
        return kind

    @property
    def short_range(self) -> str:
        """`allowed` for a table: on/off, 0-365, >0 <=30, >=0."""
        if self.is_bool:
            return "on/off"
        field = SyncOptions.model_json_schema()["properties"][self.name]
        low, high = field.get("minimum"), field.get("maximum")
        above = field.get("exclusiveMinimum")
        parts = []
        if low is not None and high is not None:
            return f"{_short(low)}-{_short(high)}"
        if low is not None:
            parts.append(f">={_short(low)}")
        if above is not None:
            parts.append(f">{_short(above)}")
        if high is not None:
            parts.append(f"<={_short(high)}")
        return " ".join(parts) or "any"


def _short(value: Any) -> str:
    return shown(float(value)) if isinstance(value, float | int) else str(value)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "select_public_channels",
        "select-public",
        "new public channels the app can read start selected",
    ),
    Setting("include_private_channels", "include-private", "sync selected private channels"),
    Setting("include_direct_messages", "include-dms", "list and sync DMs and group DMs"),
    Setting(
        "join_public_channels",
        "join-public-channels",
        "join selected public channels the app is not in",
    ),
    Setting("thread_lookback_days", "lookback-days", "days back a sync looks for late replies"),
    Setting("thread_recheck_hours", "recheck-hours", "threads checked sooner are not re-read"),
    Setting("thread_reconcile_days", "reconcile-days", "days whose threads are re-read whole"),
    Setting("page_size", "page-size", "messages a page"),
    Setting("fetch_concurrency", "fetch-concurrency", "threads read at once, per channel"),
    Setting("channel_concurrency", "channel-concurrency", "channels synced at once"),
    Setting("pacing", "pacing", "space requests by Slack's tier limits"),
    Setting("limited", "limited", "Slack's 2025 limits for non-Marketplace apps"),
    Setting("retry_backoff_seconds", "retry-backoff", "seconds before the first retry"),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class SettingsChange:
    workspace: AdminWorkspace
    options: SyncOptions
    changed: dict[str, tuple[Any, Any]]
    """Setting -> (before, after), for the settings this request changed."""

    def lines(self) -> list[str]:
        out: list[str] = []
        for name, (before, after) in self.changed.items():
            out.append(f"Changed {name}: {shown(before)} -> {shown(after)}")
        if self.changed:
            out.append("The next syncs use the new settings.")
        out.append(f"Sync settings of {label(self.workspace)}:")
        defaults = SyncOptions()
        rows = []
        for setting in SETTINGS:
            value = getattr(self.options, setting.name)
            default = getattr(defaults, setting.name)
            note = "" if value == default else f" (default {shown(default)})"
            rows.append(
                (f"  --{setting.flag}", shown(value) + note, setting.short_range, setting.what)
            )
        return out + _table(rows, right_aligned=set())


def configure(
    connection: Connection, slack_id: str, requested: Mapping[str, str], *, actor: str
) -> SettingsChange:
    """Change sync settings (field name -> the value as typed), validated by `SyncOptions`;
    without any, show them."""
    workspace = find_workspace(connection, slack_id)
    stored = stored_settings(workspace)
    before = sync_options(workspace) if not requested else _lenient(stored)
    if not requested:
        return SettingsChange(workspace, before, {})
    unknown = sorted(set(requested) - SETTINGS_BY_NAME.keys())
    if unknown:
        raise AdminError(f"unknown sync setting(s): {', '.join(unknown)}")
    try:
        after = SyncOptions.model_validate({**stored, **requested})
    except ValidationError as error:
        raise AdminError(_setting_error(error, requested, workspace)) from None
    for name in requested:
        value = getattr(after, name)
        if isinstance(value, float) and not math.isfinite(value):
            setting = SETTINGS_BY_NAME[name]
            raise AdminError(f"--{setting.flag} {requested[name]}: {name} takes {setting.allowed}")
    changed = {
        name: (getattr(before, name), getattr(after, name))
        for name in SETTINGS_BY_NAME
        if name in requested and getattr(before, name) != getattr(after, name)
    }
    if changed:
        store.merge_sync_settings(
            connection, workspace.id, {name: new for name, (_, new) in changed.items()}
        )
        record_admin_event(
            connection,
            workspace,
            actor,
            {
                "change": "sync_settings",
                "from": {name: old for name, (old, _) in changed.items()},
                "to": {name: new for name, (_, new) in changed.items()},
            },
        )
    return SettingsChange(workspace, after, changed)


def _lenient(stored: Mapping[str, Any]) -> SyncOptions:
    """The stored settings, those that do not validate replaced by their defaults (so that a
    bad stored value can be corrected)."""
    valid: dict[str, Any] = {}
    for name, value in stored.items():
        try:
            SyncOptions.model_validate({name: value})
        except ValidationError:
            continue
        valid[name] = value
    return SyncOptions.model_validate(valid)


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}"


def _setting_error(
    error: ValidationError, requested: Mapping[str, str], workspace: AdminWorkspace
) -> str:
    """One line naming the setting, what was wrong, and the values it takes."""
    problem = error.errors()[0]
    name = str(problem["loc"][0]) if problem["loc"] else ""
    setting = SETTINGS_BY_NAME.get(name)
    if setting is None:
        return (
            f"the stored sync settings of {workspace.slack_id} hold an unknown key {name!r} "
            f"({problem['msg']})"
        )
    if name not in requested:
        return (
            f"the stored {name} of {workspace.slack_id} is invalid ({problem['msg']}): set it "
            f"with --{setting.flag} ({setting.allowed})"
        )
    return f"--{setting.flag} {requested[name]}: {problem['msg']} ({name} takes {setting.allowed})"


# --- status -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitingWindow:
    """A weekly or monthly analysis window that covers days before the backfill window that
    were never synced. Dagster's automation materializes a window once every day it covers is
    synced: it waits, and nothing syncs those days by itself."""

    frequency: str
    key: str
    """The window's partition key (its first day), as the Dagster UI shows it."""
    missing: list[date]

    def line(self, slack_id: str) -> str:
        first, last = self.missing[0], self.missing[-1]
        days = f"{len(self.missing)} day{'s' if len(self.missing) != 1 else ''}"
        return (
            f"the {self.frequency} analysis {self.key} waits for {days} before the backfill "
            f"window ({first} to {last}): `toban backfill --workspace {slack_id} --start "
            f"{first} --end {last}`"
        )


def waiting_windows(
    connection: Connection,
    slack_ids: list[str],
    window: tuple[date, date],
    first_partition_day: date,
) -> dict[str, list[WaitingWindow]]:
    """Per workspace, the weekly and monthly windows that wait for days before the backfill
    window: only the windows holding its first day can (weeks start on Mondays, months on the
    1st, as in defs/analysis/partitions.py), and only if Dagster has them (they start on or after
    TOBAN_PARTITIONS_START_DATE)."""
    first = window[0]
    starts = {
        "weekly": first - timedelta(days=first.weekday()),
        "monthly": first.replace(day=1),
    }
    starts = {
        frequency: start
        for frequency, start in starts.items()
        if first_partition_day <= start < first
    }
    if not starts or not slack_ids:
        return {}
    earliest = min(starts.values())
    before = first - timedelta(days=1)
    missing = days_to_sync(connection, slack_ids, before, (first - earliest).days)
    return {
        slack_id: [
            WaitingWindow(frequency, start.isoformat(), days)
            for frequency, start in starts.items()
            if (days := [day for day in missing[slack_id] if day >= start])
        ]
        for slack_id in slack_ids
    }


@dataclass(frozen=True)
class WorkspaceStatus:
    workspace: AdminWorkspace
    channels: list[AdminChannel]
    selected: list[AdminChannel]
    unreadable: list[tuple[AdminChannel, str]]
    window: tuple[date, date] | None
    missing_days: list[date]
    pending_events: int
    oldest_event: datetime | None
    analyses: dict[str, int]
    problems: list[str]
    """One line each: what is wrong and what to do."""
    now: datetime
    waiting: list[WaitingWindow] = field(default_factory=list)
    """Analysis windows that wait for days before the backfill window (not a problem: the
    days of the window are analyzed; a line each says how to complete the window)."""

    @property
    def from_export(self) -> bool:
        return self.workspace.source == SOURCE_EXPORT

    def lines(self) -> list[str]:
        ws = self.workspace
        out = [f"{ws.slack_id}  {ws.name}  (team {ws.team_slug}, source {ws.source or 'none'})"]
        rows = [("connection", self._connection())]
        selected = f"{len(self.selected)} selected of {len(self.channels)}"
        if self.unreadable:
            reasons = ", ".join(
                f"#{c.name} ({short_warning(why)})" for c, why in self.unreadable[:3]
            )
            more = len(self.unreadable) - 3
            reasons += f" and {more} more" if more > 0 else ""
            selected += f"; {len(self.unreadable)} cannot be read: {reasons}"
        rows.append(("channels", selected))
        rows.append(("days", self._days()))
        rows.append(("events", self._events()))
        rows.append(("analyses", self._analyses()))
        rows += [("waiting", window.line(ws.slack_id)) for window in self.waiting]
        rows += [("to do", problem) for problem in self.problems]
        out += _table([(f"  {name}", value) for name, value in rows], right_aligned=set())
        return out

    def _connection(self) -> str:
        ws = self.workspace
        if self.from_export:
            return "imported from a Slack export (no token; not synced from Slack)"
        status = ws.integration_status.value if ws.integration_status else "no integration"
        connected = "connected" if ws.is_connected else "not connected"
        detail = f" ({ws.connection_status})" if ws.connection_status else ""
        last = f", last sync {ws.last_sync_at:%Y-%m-%d %H:%M} UTC" if ws.last_sync_at else ""
        return f"{status}, {connected}{detail}{last}"

    def _days(self) -> str:
        if self.window is None:
            return "no backfill window (TOBAN_BACKFILL_DAYS is 0)"
        first, last = self.window
        total = (last - first).days + 1
        synced = total - len(self.missing_days)
        text = f"{synced} of {total} synced ({first} to {last})"
        if self.missing_days:
            text += f"; oldest not synced: {self.missing_days[0]}"
        return text

    def _events(self) -> str:
        if not self.pending_events:
            return "0 pending"
        age = _age(self.now - self.oldest_event) if self.oldest_event else "?"
        return f"{self.pending_events} pending, oldest received {age} ago"

    def _analyses(self) -> str:
        order = ("pending", "running", "failed", "completed", "cancelled")
        counts = [f"{self.analyses[s]} {s}" for s in order if self.analyses.get(s)]
        return ", ".join(counts) if counts else "none"


def _age(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"


def workspace_statuses(
    connection: Connection,
    *,
    slack_id: str | None = None,
    backfill_days: int,
    lag_warn_seconds: int,
    now: datetime | None = None,
    first_partition_day: date | None = None,
    analysis_counts: Callable[[Connection, uuid.UUID], dict[str, int]],
) -> list[WorkspaceStatus]:
    """Every workspace's state (or one's), with a line of what to do about each problem; with
    `first_partition_day` (TOBAN_PARTITIONS_START_DATE), the analysis windows that wait for days
    before the backfill window too. `analysis_counts` is analysis/store.py's
    `analysis_status_counts`, passed in by the caller: slack sits below analysis in the import
    layers, and the analysis tables are that store's (issue 18)."""
    now = now or datetime.now(UTC)
    workspaces = (
        [find_workspace(connection, slack_id)]
        if slack_id is not None
        else store.admin_workspaces(connection)
    )
    window = backfill_window(now.date(), backfill_days)
    missing = (
        days_to_sync(connection, [w.slack_id for w in workspaces], window[1], backfill_days)
        if window and workspaces
        else {}
    )
    syncing = [
        w.slack_id
        for w in workspaces
        if w.source != SOURCE_EXPORT and w.integration_status == IntegrationStatus.ACTIVE
    ]
    waiting = (
        waiting_windows(connection, syncing, window, first_partition_day)
        if window and first_partition_day is not None
        else {}
    )
    statuses = []
    for workspace in workspaces:
        try:
            options = SyncOptions.model_validate(stored_settings(workspace))
        except ValidationError:
            options = SyncOptions()
        channels = store.admin_channels(connection, workspace.id, count_messages=False)
        selected = [c for c in channels if c.is_selected and c.is_supported]
        unreadable = [
            (c, why) for c in _ordered(selected) if (why := channel_warning(c, options)) is not None
        ]
        pending, oldest = store.inbox_status(connection, workspace.slack_id)
        status = WorkspaceStatus(
            workspace=workspace,
            channels=channels,
            selected=selected,
            unreadable=unreadable,
            window=window,
            missing_days=sorted(missing.get(workspace.slack_id, [])),
            pending_events=pending,
            oldest_event=oldest,
            analyses=analysis_counts(connection, workspace.id),
            problems=[],
            now=now,
            waiting=waiting.get(workspace.slack_id, []) if selected else [],
        )
        status.problems.extend(_problems(status, lag_warn_seconds))
        statuses.append(status)
    return statuses


def _problems(status: WorkspaceStatus, lag_warn_seconds: int) -> list[str]:
    ws = status.workspace
    out: list[str] = []
    add = f"`toban slack add --team {ws.team_slug} --token-env VAR`"
    if not status.from_export:
        if ws.integration_status is None:
            out.append(f"no Slack integration: connect the workspace with {add}")
        elif ws.integration_status != IntegrationStatus.ACTIVE:
            out.append(
                f"the integration is {ws.integration_status.value}, so nothing is synced: "
                f"reconnect with a valid bot token, {add}"
            )
        elif not ws.is_connected:
            out.append(
                f"Slack refused the token ({ws.connection_status or 'unknown'}): reconnect with "
                f"a valid bot token, {add}"
            )
    if not status.selected:
        out.append(
            f"no channel selected: pick some with `toban slack select --workspace {ws.slack_id} "
            f"NAME...` (`toban slack channels --workspace {ws.slack_id}` lists them)"
        )
    if status.unreadable:
        names = " ".join(c.name for c, _ in status.unreadable[:NAMES_SHOWN])
        out.append(
            f"{len(status.unreadable)} selected channel(s) cannot be read: invite the app, or "
            f"`toban slack deselect --workspace {ws.slack_id} {names}`"
        )
    yesterday_only = status.window is not None and status.missing_days == [status.window[1]]
    syncing = not status.from_export and ws.integration_status == IntegrationStatus.ACTIVE
    if status.missing_days and status.selected and syncing and not yesterday_only:
        assert status.window is not None
        blocked = (
            " (a selected channel that cannot be read keeps them unsynced)"
            if status.unreadable
            else ""
        )
        out.append(
            f"{len(status.missing_days)} day(s) not synced: the next daily run reads them, or "
            f"`toban backfill --workspace {ws.slack_id} --start {status.missing_days[0]} "
            f"--end {status.window[1]}`{blocked}"
        )
    if (
        status.pending_events
        and status.oldest_event is not None
        and (status.now - status.oldest_event).total_seconds() > lag_warn_seconds
    ):
        out.append(
            f"{status.pending_events} Slack event(s) wait to be applied: check that the Dagster "
            "daemon runs (`toban dev`) and that slack_events_sensor is on"
        )
    failed = status.analyses.get("failed", 0)
    if failed:
        out.append(
            f"{failed} analysis(es) failed: read slack_analysis.error_message or the failed "
            "runs in the Dagster UI, then request them again"
        )
    return out


# --- connecting -------------------------------------------------------------------------------

_TOKEN_REFUSED = {"invalid_auth", "not_authed"}
_TOKEN_DEAD = {"token_revoked", "account_inactive", "app_uninstalled"}


def explain_add_error(error: SlackError, token_env: str, *, bot_token_prefix: bool) -> str:
    """What a Slack refusal at `toban slack add` means and what to check, in one line (never
    the token)."""
    hint = "" if bot_token_prefix else f" (the token in {token_env} does not start with xoxb-)"
    if error.error in _TOKEN_REFUSED:
        return (
            f"Slack refused the token in {token_env} ({error.error}){hint}: check that it is the "
            "app's Bot User OAuth Token (xoxb-...), copied whole, of the workspace you mean, and "
            "that the app is installed in that workspace (Slack app settings, OAuth & Permissions)"
        )
    if error.error == "not_allowed_token_type":
        return (
            f"Slack does not take this kind of token here (not_allowed_token_type){hint}: use the "
            "app's Bot User OAuth Token (xoxb-...), not an app-level (xapp-) or user token"
        )
    if error.error in _TOKEN_DEAD:
        return (
            f"the token in {token_env} no longer works ({error.error}): the app was uninstalled "
            "or its token regenerated; reinstall the app and use its new Bot User OAuth Token"
        )
    if error.error == "token_expired":
        return (
            f"the token in {token_env} expired (token_expired): a rotating token needs its "
            "refresh token (--refresh-token-env VAR); or reinstall the app for a new token"
        )
    if error.error == "missing_scope":
        needed = error.detail.removeprefix("needs ").strip()
        scope = f"the {needed} scope" if needed else "a scope"
        return (
            f"the token lacks {scope} (missing_scope on {error.method}): add it to the "
            "Slack app's Bot Token Scopes (OAuth & Permissions), reinstall the app and use its "
            "new token"
        )
    return str(error)
