"""Slack export archives read as if they came from the Web API.

A workspace can be loaded from a Slack "Export data" archive instead of the Web API (no token,
no rate limits, history older than the API gives a free plan). The rest of the pipeline
normalizes Web API payloads; this module hands it the same raw shapes, so both sources go
through one code path. It corrects only what an export writes differently from the API
(`created` as a string in 2016-era `channels.json`, `is_*` flags implied by which list file a
conversation comes from) and otherwise passes the JSON through untouched.

An export is a `.zip` or the folder it unzips to, possibly wrapped in one top-level folder:

    users.json | org_users.json          users.list members (org_users.json on Enterprise Grid)
    channels.json                        public channels
    groups.json, dms.json, mpims.json    private channels, DMs, group DMs (full exports only)
    integration_logs.json, canvases.json ... ignored
    <folder>/YYYY-MM-DD.json             one day of one conversation: a list of messages

Channel, private channel and group DM folders are named after the conversation's name, DM
folders after the DM's id; the reader looks for a folder by the expected key, then by the other.
Replies sit in the day file of their own date with `thread_ts` and `parent_user_id`, exactly
as `conversations.replies` returns them.

Archives can hold hundreds of thousands of messages, so nothing is read until asked for and day
files are read one at a time. Several threads may read day files of one export at once.
"""

from __future__ import annotations

import abc
import datetime
import json
import os
import re
import threading
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

__all__ = [
    "CONVERSATION_LISTS",
    "USER_LISTS",
    "ChannelKind",
    "ExportChannel",
    "ExportFormatError",
    "SlackExport",
    "open_export",
]

ChannelKind = Literal["public", "private", "im", "mpim"]

USER_LISTS: Final = ("users.json", "org_users.json")
"""Where an export keeps its users; both are read when both are present (first one wins)."""

CONVERSATION_LISTS: Final[tuple[tuple[str, ChannelKind], ...]] = (
    ("channels.json", "public"),
    ("groups.json", "private"),
    ("dms.json", "im"),
    ("mpims.json", "mpim"),
)

_DAY_FILE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})\.json")
_EXPORT_SUFFIX: Final = re.compile(r"\s+slack export\b.*$", re.IGNORECASE)
_MARKERS: Final = frozenset(USER_LISTS) | {name for name, _ in CONVERSATION_LISTS}
_FOUND_SHOWN: Final = 12


class ExportFormatError(ValueError):
    """Raised for a malformed export.

    The message names the file inside the archive (e.g. 'general/2015-06-05.json') and what is
    wrong with it (bad JSON at line L column C, not a list, a message without 'ts', missing
    users.json, unknown layout...), because an export is usually fixed by hand, by whoever
    produced it, and they need to know where to look.
    """


@dataclass(frozen=True)
class ExportChannel:
    """One conversation of the export.

    `raw` has the `conversations.list` shape (id, name, created as an int, is_channel,
    is_group, is_im, is_mpim, is_private, is_archived, topic, purpose, members, num_members);
    DMs have no name, as in the API. `folder` is relative to the export's root (the same for
    a zip and its unzipped folder); it is the expected name when the archive has no folder for
    the conversation, which then simply has no days.
    """

    raw: dict[str, Any]
    folder: str
    kind: ChannelKind

    @property
    def id(self) -> str:
        return str(self.raw["id"])


# ------------------------------------------------------------------------------------------------
# Sources: where the bytes come from (a zip or a folder). Both name files by their path relative
# to the export's root, with "/" separators.


def _ignored(part: str) -> bool:
    """Finder and macOS zip droppings, and hidden files, are never part of an export."""
    return part.startswith(".") or part == "__MACOSX"


def _parse_day(folder: str, name: str, describe: str) -> datetime.date | None:
    match = _DAY_FILE.fullmatch(name)
    if match is None:
        return None
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as error:
        raise ExportFormatError(
            f"{describe}: {folder}/{name} is named like a day file but is not a date ({error})"
        ) from error


class _Source(abc.ABC):
    """Read access to the files of one export, relative to its root."""

    label: str
    root_files: frozenset[str]
    root_folders: frozenset[str]

    @abc.abstractmethod
    def member(self, relative: str) -> str:
        """The file's name as its producer sees it, for error messages."""

    @abc.abstractmethod
    def read(self, relative: str) -> bytes: ...

    @abc.abstractmethod
    def day_files(self, folder: str) -> dict[datetime.date, str]:
        """Day files by date; listed on first use, since most callers want a few folders."""

    @abc.abstractmethod
    def close(self) -> None: ...


class _ZipSource(_Source):
    def __init__(self, path: Path) -> None:
        self.label = str(path)
        # An import reads several channels at once; ZipFile shares one file between its
        # readers and does not promise to be safe across threads (it counts its open readers
        # without a lock), so reads take turns. A day file is a few KB: they barely wait.
        self._lock = threading.Lock()
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
            raise ExportFormatError(f"{path}: corrupt zip archive ({error})") from error
        try:
            self._index(self._zip.infolist())
        except BaseException:
            self._zip.close()
            raise

    def _index(self, infos: list[zipfile.ZipInfo]) -> None:
        entries: list[tuple[tuple[str, ...], str]] = []
        for info in infos:
            if info.is_dir():
                continue
            parts = tuple(p for p in info.filename.replace("\\", "/").split("/") if p)
            if parts and not any(_ignored(p) for p in parts):
                entries.append((parts, info.filename))

        # A zip made by compressing the unzipped folder holds everything under that folder.
        prefix: tuple[str, ...] = ()
        if not any(len(parts) == 1 and parts[0] in _MARKERS for parts, _ in entries):
            tops = {parts[0] for parts, _ in entries if len(parts) == 2 and parts[1] in _MARKERS}
            if len(tops) == 1:
                prefix = (tops.pop(),)
        self._prefix = "".join(f"{p}/" for p in prefix)

        files: dict[str, str] = {}
        folders: dict[str, dict[str, str]] = {}
        for parts, name in entries:
            if parts[: len(prefix)] != prefix:
                continue
            rest = parts[len(prefix) :]
            if len(rest) == 1:
                files[rest[0]] = name
            elif len(rest) == 2:
                folders.setdefault(rest[0], {})[rest[1]] = name
        self._files = files
        self._folders = folders
        self.root_files = frozenset(files)
        self.root_folders = frozenset(folders)
        self._days: dict[str, dict[datetime.date, str]] = {}

    def member(self, relative: str) -> str:
        folder, _, name = relative.rpartition("/")
        if folder:
            return self._folders.get(folder, {}).get(name, self._prefix + relative)
        return self._files.get(name, self._prefix + relative)

    def read(self, relative: str) -> bytes:
        member = self.member(relative)
        try:
            with self._lock:
                return self._zip.read(member)
        except KeyError as error:
            raise ExportFormatError(f"{member} in {self.label}: no such file") from error
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
            raise ExportFormatError(
                f"{member} in {self.label}: corrupt zip member ({error})"
            ) from error

    def day_files(self, folder: str) -> dict[datetime.date, str]:
        days = self._days.get(folder)
        if days is None:
            days = {}
            for name in self._folders.get(folder, {}):
                day = _parse_day(folder, name, self.label)
                if day is not None:
                    days[day] = f"{folder}/{name}"
            self._days[folder] = days
        return days

    def close(self) -> None:
        self._zip.close()


class _FolderSource(_Source):
    def __init__(self, path: Path) -> None:
        self.label = str(path)
        root = path
        files, folders = self._scan(root)
        if not files & _MARKERS:
            # An unzipped archive that was itself made from a folder: look one level down.
            wrapped = [f for f in folders if any((root / f / m).is_file() for m in _MARKERS)]
            if len(wrapped) == 1:
                root = root / wrapped[0]
                files, folders = self._scan(root)
        self._root = root
        self.root_files = frozenset(files)
        self.root_folders = frozenset(folders)
        self._days: dict[str, dict[datetime.date, str]] = {}

    @staticmethod
    def _scan(directory: Path) -> tuple[set[str], set[str]]:
        files: set[str] = set()
        folders: set[str] = set()
        with os.scandir(directory) as entries:
            for entry in entries:
                if _ignored(entry.name):
                    continue
                if entry.is_dir():
                    folders.add(entry.name)
                elif entry.is_file():
                    files.add(entry.name)
        return files, folders

    def member(self, relative: str) -> str:
        return relative

    def read(self, relative: str) -> bytes:
        try:
            return (self._root / relative).read_bytes()
        except FileNotFoundError as error:
            raise ExportFormatError(f"{relative} in {self.label}: no such file") from error

    def day_files(self, folder: str) -> dict[datetime.date, str]:
        days = self._days.get(folder)
        if days is None:
            days = {}
            if folder in self.root_folders:
                with os.scandir(self._root / folder) as entries:
                    for entry in entries:
                        day = _parse_day(folder, entry.name, self.label)
                        if day is not None and entry.is_file():
                            days[day] = f"{folder}/{entry.name}"
            self._days[folder] = days
        return days

    def close(self) -> None:
        """A folder holds no open file between reads."""


# ------------------------------------------------------------------------------------------------
# Payload checks and the few normalizations.


def _as_int(value: Any, what: str) -> int:
    """2016-era exports write timestamps as decimal strings where the API gives integers."""
    if isinstance(value, bool):
        raise ValueError(f"{what} is a boolean, not a timestamp")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{what} is {value!r}, not an integer")


_FLAGS: Final[dict[ChannelKind, dict[str, bool]]] = {
    "public": {"is_channel": True, "is_group": False, "is_im": False, "is_mpim": False},
    "private": {"is_channel": True, "is_group": False, "is_im": False, "is_mpim": False},
    "im": {"is_channel": False, "is_group": False, "is_im": True, "is_mpim": False},
    "mpim": {"is_channel": False, "is_group": True, "is_im": False, "is_mpim": True},
}


def _channel_payload(entry: dict[str, Any], kind: ChannelKind) -> dict[str, Any]:
    """The `conversations.list` shape of one entry of a conversation list file.

    Raises ValueError with the problem; the caller adds the file's name.
    """
    raw = dict(entry)
    if "created" in raw:
        raw["created"] = _as_int(raw["created"], "'created'")
    for key in ("topic", "purpose"):
        value = raw.get(key)
        if isinstance(value, dict) and "last_set" in value:
            raw[key] = {**value, "last_set": _as_int(value["last_set"], f"'{key}.last_set'")}
    raw.update(_FLAGS[kind])
    if kind == "private" and str(raw["id"]).startswith("G"):
        # The API reports private channels made before March 2021 (G ids) as groups.
        raw["is_channel"], raw["is_group"] = False, True
    raw["is_private"] = kind != "public"
    raw.setdefault("is_archived", False)
    members = raw.get("members")
    if "num_members" not in raw and isinstance(members, list):
        raw["num_members"] = len(members)
    return raw


def _check_messages(data: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise ExportFormatError(f"{where}: a day file must be a list, not {type(data).__name__}")
    for position, message in enumerate(data):
        if type(message) is not dict:
            raise ExportFormatError(
                f"{where}: message {position} is a {type(message).__name__}, not an object"
            )
        ts = message.get("ts")
        if type(ts) is not str:
            problem = "has no 'ts'" if ts is None else f"has a 'ts' that is not a string: {ts!r}"
            raise ExportFormatError(f"{where}: message {position} {problem}")
    return data


def _default_name(path: Path) -> str:
    """'Acme Slack export Jan 1 2020 - Jun 5 2024.zip' is what Slack names the download."""
    stem = path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.name
    return _EXPORT_SUFFIX.sub("", stem).strip() or stem


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# ------------------------------------------------------------------------------------------------


class SlackExport:
    """One opened export; use it as a context manager (a zip keeps its file open)."""

    def __init__(
        self, path: Path, source: _Source, *, name: str | None, domain: str | None
    ) -> None:
        self.path = path
        self._source = source
        self._name = name if name is not None else _default_name(path)
        self._domain = domain if domain is not None else _slug(self._name)
        self._channels: list[ExportChannel] | None = None
        self._message_count: int | None = None
        self._check_layout()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._source.close()

    def __repr__(self) -> str:
        return f"SlackExport({str(self.path)!r})"

    # -- layout ----------------------------------------------------------------------------------

    def _found(self) -> str:
        names = sorted(self._source.root_files) + sorted(f"{f}/" for f in self._source.root_folders)
        if not names:
            return "nothing"
        shown = ", ".join(names[:_FOUND_SHOWN])
        more = len(names) - _FOUND_SHOWN
        return shown + (f" and {more} more" if more > 0 else "")

    def _check_layout(self) -> None:
        files = self._source.root_files
        has_users = any(name in files for name in USER_LISTS)
        has_lists = any(name in files for name, _ in CONVERSATION_LISTS)
        if not has_lists:
            raise ExportFormatError(
                f"{self._source.label}: unknown layout, not a Slack export: no channels.json, "
                f"groups.json, dms.json or mpims.json (found: {self._found()})"
            )
        if not has_users:
            raise ExportFormatError(
                f"{self._source.label}: missing users.json (or org_users.json) "
                f"(found: {self._found()})"
            )

    def _where(self, relative: str) -> str:
        return f"{self._source.member(relative)} in {self._source.label}"

    def _load(self, relative: str) -> Any:
        data = self._source.read(relative)
        try:
            return json.loads(data)
        except json.JSONDecodeError as error:
            raise ExportFormatError(
                f"{self._where(relative)}: bad JSON at line {error.lineno} column {error.colno} "
                f"({error.msg})"
            ) from error
        except UnicodeDecodeError as error:
            raise ExportFormatError(
                f"{self._where(relative)}: not UTF-8 text ({error.reason} at byte {error.start})"
            ) from error

    def _load_list(self, relative: str) -> list[Any]:
        data = self._load(relative)
        if not isinstance(data, list):
            raise ExportFormatError(
                f"{self._where(relative)}: expected a list, not {type(data).__name__}"
            )
        return data

    # -- team and users --------------------------------------------------------------------------

    def users(self) -> Iterator[dict[str, Any]]:
        """Members in the `users.list` shape, from users.json then org_users.json."""
        seen: set[str] = set()
        for file_name in USER_LISTS:
            if file_name not in self._source.root_files:
                continue
            for position, user in enumerate(self._load_list(file_name)):
                if not isinstance(user, dict) or not isinstance(user.get("id"), str):
                    raise ExportFormatError(
                        f"{self._where(file_name)}: entry {position} is not a user with an 'id'"
                    )
                if user["id"] not in seen:
                    seen.add(user["id"])
                    yield user

    def team_id(self) -> str:
        """An export does not say which team it is; its users do (bots and guests included)."""
        counts = Counter[str](
            str(user["team_id"]) for user in self.users() if isinstance(user.get("team_id"), str)
        )
        if not counts:
            users_file = next(f for f in USER_LISTS if f in self._source.root_files)
            raise ExportFormatError(
                f"{self._where(users_file)}: no user has a 'team_id', so the team is unknown"
            )
        return counts.most_common(1)[0][0]

    def team_info(self) -> dict[str, Any]:
        """`team.info`'s team: the name comes from the archive's name unless one was given."""
        return {"id": self.team_id(), "name": self._name, "domain": self._domain}

    # -- conversations ---------------------------------------------------------------------------

    def channels(self) -> list[ExportChannel]:
        """Every conversation of the list files present, in file order, each file in its order."""
        if self._channels is None:
            channels: list[ExportChannel] = []
            for file_name, kind in CONVERSATION_LISTS:
                if file_name in self._source.root_files:
                    channels.extend(self._read_channels(file_name, kind))
            self._channels = channels
        return list(self._channels)

    def _read_channels(self, file_name: str, kind: ChannelKind) -> Iterator[ExportChannel]:
        for position, entry in enumerate(self._load_list(file_name)):
            where = f"{self._where(file_name)}: entry {position}"
            if not isinstance(entry, dict):
                raise ExportFormatError(f"{where} is a {type(entry).__name__}, not an object")
            if not isinstance(entry.get("id"), str) or not entry["id"]:
                raise ExportFormatError(f"{where} has no 'id'")
            name = entry.get("name")
            if kind != "im" and (not isinstance(name, str) or not name):
                raise ExportFormatError(f"{where} ({entry['id']}) has no 'name'")
            try:
                raw = _channel_payload(entry, kind)
            except ValueError as error:
                raise ExportFormatError(f"{where} ({entry['id']}): {error}") from error
            yield ExportChannel(raw=raw, folder=self._folder_of(raw, kind), kind=kind)

    def _folder_of(self, raw: dict[str, Any], kind: ChannelKind) -> str:
        ident, name = raw["id"], raw.get("name")
        keys = [ident, name] if kind == "im" else [name, ident]
        candidates = [key for key in keys if isinstance(key, str) and key]
        for key in candidates:
            if key in self._source.root_folders:
                return str(key)
        return str(candidates[0])

    def unlisted_folders(self) -> list[str]:
        """Folders holding day files that no list file names: messages the export would drop.

        Worth a warning: an export edited by hand, or a conversation list left out.
        """
        listed = {channel.folder for channel in self.channels()}
        return sorted(
            folder
            for folder in self._source.root_folders - listed
            if self._source.day_files(folder)
        )

    # -- messages --------------------------------------------------------------------------------

    def days(self, channel: ExportChannel) -> list[datetime.date]:
        return sorted(self._source.day_files(channel.folder))

    def messages(self, channel: ExportChannel, day: datetime.date) -> list[dict[str, Any]]:
        """The day file's messages, unchanged: the `conversations.history` message shape.

        Replies are in the day file of their own date, with `thread_ts` and `parent_user_id`.
        """
        relative = self._source.day_files(channel.folder).get(day)
        if relative is None:
            raise LookupError(f"{channel.folder}/{day.isoformat()}.json is not in {self.path}")
        return _check_messages(self._load(relative), self._where(relative))

    def message_count(self) -> int:
        """Messages in the day files of the listed conversations, read one file at a time."""
        if self._message_count is None:
            total = 0
            for channel in self.channels():
                for day in self.days(channel):
                    total += len(self.messages(channel, day))
            self._message_count = total
        return self._message_count


def open_export(
    path: str | Path, *, name: str | None = None, domain: str | None = None
) -> SlackExport:
    """Open a Slack export: a `.zip` or the folder it unzips to.

    `name` and `domain` fill `team_info()`, which an export does not hold; by default the name
    is the archive's name without Slack's " Slack export <dates>" suffix and the domain is the
    name in lower case with dashes.
    """
    path = Path(path)
    if path.is_dir():
        source: _Source = _FolderSource(path)
    elif path.is_file():
        if not zipfile.is_zipfile(path):
            with path.open("rb") as file:
                magic = file.read(4)
            if path.suffix.lower() == ".zip" or magic.startswith(b"PK"):
                raise ExportFormatError(f"{path}: corrupt zip archive (no central directory)")
            raise ExportFormatError(f"{path}: neither a zip archive nor a folder")
        source = _ZipSource(path)
    elif path.exists():
        raise ExportFormatError(f"{path}: neither a zip archive nor a folder")
    else:
        raise ExportFormatError(f"{path}: no such file or folder")
    try:
        return SlackExport(path, source, name=name, domain=domain)
    except BaseException:
        source.close()
        raise
