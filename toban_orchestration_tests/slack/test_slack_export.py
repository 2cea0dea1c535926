"""The Slack export reader, on a real 2016 export, a hand-written modern one and broken copies.

Expected figures are computed from the files themselves (with plain `json`), not copied from
the reader, so a reader that skips or double-counts files fails.
"""

import datetime
import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from toban_orchestration.slack import sample
from toban_orchestration.slack.export import (
    ExportChannel,
    ExportFormatError,
    SlackExport,
    open_export,
)
from toban_orchestration.slack.sample import zip_folder
from toban_orchestration_tests.fakes.slack_server import generate_workspace

DATA = Path(__file__).parents[1] / "data"
HOUSTON = DATA / "slack-export-houstondatavis"
MODERN = DATA / "export-modern"
HOUSTON_ZIP_NAME = "Houston Data Vis Slack export Jun 5 2015 - Jul 31 2016.zip"


# ------------------------------------------------------------------------------------------------
# Helpers: copies and zips built in tmp_path.


def copy_tree(source: Path, target: Path) -> Path:
    """A writable copy (the checked-in data is read-only, and copytree would keep that)."""
    for folder, _, files in os.walk(source):
        destination = target / Path(folder).relative_to(source)
        destination.mkdir(parents=True, exist_ok=True)
        for name in files:
            (destination / name).write_bytes((Path(folder) / name).read_bytes())
    return target


def day_files(root: Path) -> dict[str, list[Path]]:
    """Day files per folder, found without the reader."""
    return {
        folder.name: sorted(folder.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].json"))
        for folder in root.iterdir()
        if folder.is_dir()
    }


def all_messages(export: SlackExport) -> Iterator[tuple[ExportChannel, dict[str, Any]]]:
    for channel in export.channels():
        for day in export.days(channel):
            for message in export.messages(channel, day):
                yield channel, message


def snapshot(export: SlackExport) -> dict[str, Any]:
    """Everything the reader yields, for comparing a zip with its folder."""
    return {
        "team_id": export.team_id(),
        "users": list(export.users()),
        "channels": [(c.raw, c.folder, c.kind) for c in export.channels()],
        "days": {
            c.raw["id"]: {d.isoformat(): export.messages(c, d) for d in export.days(c)}
            for c in export.channels()
        },
        "count": export.message_count(),
    }


@pytest.fixture(params=["folder", "zip", "zip-under-folder"])
def houston(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SlackExport]:
    if request.param == "folder":
        path = HOUSTON
    elif request.param == "zip":
        path = zip_folder(HOUSTON, tmp_path / HOUSTON_ZIP_NAME)
    else:
        path = zip_folder(HOUSTON, tmp_path / "houston.zip", top="slack-export-houstondatavis")
    with open_export(path) as export:
        yield export


@pytest.fixture(params=["folder", "zip"])
def as_form(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Path], Path]:
    """Turns a prepared folder into the form under test (itself, or a zip of it)."""

    def convert(folder: Path) -> Path:
        if request.param == "folder":
            return folder
        return zip_folder(folder, tmp_path / f"{folder.name}.zip")

    return convert


# ------------------------------------------------------------------------------------------------
# The real 2016 export.


def test_real_export_users_and_team(houston: SlackExport) -> None:
    expected = json.loads((HOUSTON / "users.json").read_text())
    users = list(houston.users())
    assert len(users) == len(expected) == 71
    assert users == expected
    assert houston.team_id() == "T061A2UFL"


def test_real_export_channels(houston: SlackExport) -> None:
    listed = json.loads((HOUSTON / "channels.json").read_text())
    channels = houston.channels()
    assert len(channels) == len(listed) == 16
    assert [c.raw["id"] for c in channels] == [entry["id"] for entry in listed]
    for channel, entry in zip(channels, listed, strict=True):
        assert isinstance(entry["created"], str)  # the 2016 quirk this reader corrects
        assert channel.raw["created"] == int(entry["created"])
        assert type(channel.raw["created"]) is int
        assert type(channel.raw["topic"]["last_set"]) is int
        assert channel.kind == "public"
        assert channel.folder == entry["name"]
        assert channel.raw["is_channel"] is True
        assert channel.raw["is_private"] is False
        assert channel.raw["is_im"] is channel.raw["is_mpim"] is channel.raw["is_group"] is False
        assert channel.raw["num_members"] == len(entry["members"])
        assert channel.raw["members"] == entry["members"]
        assert channel.raw["is_archived"] == entry["is_archived"]
    assert houston.unlisted_folders() == []


def test_real_export_messages(houston: SlackExport) -> None:
    files = day_files(HOUSTON)
    expected_per_channel = {
        folder: sum(len(json.loads(path.read_text())) for path in paths)
        for folder, paths in files.items()
    }
    assert sum(expected_per_channel.values()) == 1382

    per_channel: dict[str, int] = {}
    with_reactions = edited = 0
    for channel in houston.channels():
        days = houston.days(channel)
        assert days == sorted(days)
        assert [f"{d.isoformat()}.json" for d in days] == [p.name for p in files[channel.folder]]
        for day in days:
            messages = houston.messages(channel, day)
            per_channel[channel.folder] = per_channel.get(channel.folder, 0) + len(messages)
            for message in messages:
                assert isinstance(message["ts"], str)
                with_reactions += "reactions" in message
                edited += "edited" in message
    assert per_channel == expected_per_channel
    assert with_reactions == 89
    assert edited == 37
    assert houston.message_count() == 1382


def test_real_export_messages_are_passed_through_unchanged(houston: SlackExport) -> None:
    general = next(c for c in houston.channels() if c.raw["name"] == "general")
    day = houston.days(general)[0]
    assert houston.messages(general, day) == json.loads(
        (HOUSTON / "general" / f"{day.isoformat()}.json").read_text()
    )


def test_zip_and_folder_give_the_same_payloads(tmp_path: Path) -> None:
    with open_export(HOUSTON) as folder:
        expected = snapshot(folder)
    for archive in (
        zip_folder(HOUSTON, tmp_path / "flat.zip"),
        zip_folder(HOUSTON, tmp_path / "nested.zip", top="Houston export"),
    ):
        with open_export(archive) as zipped:
            assert snapshot(zipped) == expected


def test_team_info_from_the_archive_name(tmp_path: Path) -> None:
    with open_export(HOUSTON) as export:
        assert export.team_info() == {
            "id": "T061A2UFL",
            "name": "slack-export-houstondatavis",
            "domain": "slack-export-houstondatavis",
        }
    archive = zip_folder(HOUSTON, tmp_path / HOUSTON_ZIP_NAME)
    with open_export(archive) as export:
        assert export.team_info() == {
            "id": "T061A2UFL",
            "name": "Houston Data Vis",
            "domain": "houston-data-vis",
        }
    with open_export(str(archive), name="Houston DataVis", domain="houstondatavis") as export:
        assert export.team_info() == {
            "id": "T061A2UFL",
            "name": "Houston DataVis",
            "domain": "houstondatavis",
        }


# ------------------------------------------------------------------------------------------------
# The modern fixture: private channels, DMs, group DMs, threads, org_users.json.


@pytest.fixture
def modern(as_form: Callable[[Path], Path], tmp_path: Path) -> Iterator[SlackExport]:
    with open_export(as_form(copy_tree(MODERN, tmp_path / "export-modern"))) as export:
        yield export


def _by_id(export: SlackExport) -> dict[str, ExportChannel]:
    return {channel.raw["id"]: channel for channel in export.channels()}


def test_modern_conversation_kinds_and_flags(modern: SlackExport) -> None:
    channels = _by_id(modern)
    assert list(channels) == [
        "C01GENERAL",
        "C02RANDOM",
        "C03SECRET",
        "G0LEGACY1",
        "D01ALICEBOB",
        "C04MPIM",
    ]
    flags = ("is_channel", "is_group", "is_im", "is_mpim", "is_private")

    def flags_of(channel_id: str) -> tuple[bool, ...]:
        return tuple(channels[channel_id].raw[flag] for flag in flags)

    assert channels["C01GENERAL"].kind == "public"
    assert flags_of("C01GENERAL") == (True, False, False, False, False)
    assert channels["C03SECRET"].kind == "private"
    assert flags_of("C03SECRET") == (True, False, False, False, True)
    # Private channels from before March 2021 (G ids) are groups in the API.
    assert channels["G0LEGACY1"].kind == "private"
    assert flags_of("G0LEGACY1") == (False, True, False, False, True)
    assert channels["D01ALICEBOB"].kind == "im"
    assert flags_of("D01ALICEBOB") == (False, False, True, False, True)
    assert channels["C04MPIM"].kind == "mpim"
    assert flags_of("C04MPIM") == (False, True, False, True, True)

    assert channels["C02RANDOM"].raw["is_archived"] is True
    assert channels["D01ALICEBOB"].raw["is_archived"] is False
    assert "name" not in channels["D01ALICEBOB"].raw
    assert channels["D01ALICEBOB"].raw["num_members"] == 2
    assert channels["C04MPIM"].raw["num_members"] == 3
    assert all(type(c.raw["created"]) is int for c in channels.values())


def test_modern_folders_by_name_then_by_id(modern: SlackExport) -> None:
    channels = _by_id(modern)
    assert channels["C01GENERAL"].folder == "general"
    assert channels["C03SECRET"].folder == "secret-plans"
    assert channels["G0LEGACY1"].folder == "G0LEGACY1"  # no folder by name: found by id
    assert channels["D01ALICEBOB"].folder == "D01ALICEBOB"
    assert channels["C04MPIM"].folder == "mpdm-alice--bob--carol-1"
    assert channels["C02RANDOM"].folder == "random"  # no folder at all: no days
    assert modern.days(channels["C02RANDOM"]) == []
    assert modern.days(channels["G0LEGACY1"]) == [datetime.date(2017, 7, 14)]
    assert modern.days(channels["C01GENERAL"]) == [
        datetime.date(2024, 3, 1),
        datetime.date(2024, 3, 2),
    ]
    assert modern.unlisted_folders() == []


def test_modern_threads_replies_sit_in_the_day_of_the_reply(modern: SlackExport) -> None:
    general = _by_id(modern)["C01GENERAL"]
    first, second = (modern.messages(general, day) for day in modern.days(general))
    parent = next(m for m in first if m.get("reply_count"))
    assert parent["thread_ts"] == parent["ts"]
    assert parent["reply_count"] == 2
    assert parent["reply_users"] == ["U02BOB", "U03CAROL"]

    replies = [m for m in first + second if m.get("thread_ts") == parent["ts"] and m is not parent]
    assert [r["ts"] for r in replies] == [r["ts"] for r in parent["replies"]]
    assert all(r["parent_user_id"] == parent["user"] for r in replies)
    assert parent["latest_reply"] == max(r["ts"] for r in replies)
    # The late reply is in the file of its own date, not its parent's.
    assert [r in second for r in replies] == [False, True]
    assert replies[1]["subtype"] == "thread_broadcast"


def test_modern_message_content(modern: SlackExport) -> None:
    messages = [message for _, message in all_messages(modern)]
    assert len(messages) == modern.message_count() == 11
    assert sum("reactions" in m for m in messages) == 2
    assert sum("edited" in m for m in messages) == 2
    assert any("\u0000" in m["text"] for m in messages)
    rocket = next(r for m in messages for r in m.get("reactions", []) if r["name"] == "rocket")
    assert rocket == {"name": "rocket", "users": ["U02BOB"], "count": 3}


def test_modern_org_users(modern: SlackExport) -> None:
    users = list(modern.users())
    assert [u["id"] for u in users] == ["U01ALICE", "U02BOB", "U03CAROL", "U04DAVE", "U05BOT"]
    assert users[0]["enterprise_user"]["enterprise_id"] == "E0ORG0001"
    # The guest from another team does not make the export that team's.
    assert modern.team_id() == "T0MODERN1"
    assert modern.team_info()["id"] == "T0MODERN1"


def test_users_json_and_org_users_json_together(tmp_path: Path) -> None:
    root = copy_tree(MODERN, tmp_path / "export")
    local = [
        {"id": "U01ALICE", "team_id": "T0MODERN1", "name": "alice-local"},
        {"id": "U09ONLY", "team_id": "T0MODERN1", "name": "only-here"},
    ]
    (root / "users.json").write_text(json.dumps(local))
    with open_export(root) as export:
        users = {u["id"]: u["name"] for u in export.users()}
    assert list(users) == ["U01ALICE", "U09ONLY", "U02BOB", "U03CAROL", "U04DAVE", "U05BOT"]
    assert users["U01ALICE"] == "alice-local"


def test_other_files_are_ignored(as_form: Callable[[Path], Path], tmp_path: Path) -> None:
    root = copy_tree(MODERN, tmp_path / "export")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "general" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "general" / "notes.txt").write_text("not a day file")
    (root / "general" / "2024-03-01.json.bak").write_text("{broken")
    (root / "general" / "files").mkdir()
    (root / "general" / "files" / "2024-03-05.json").write_text("{broken")
    (root / "__MACOSX" / "general").mkdir(parents=True)
    (root / "__MACOSX" / "general" / "._2024-03-01.json").write_bytes(b"\x00\x05\x16\x07")
    (root / "README.txt").write_text("exported by hand")
    with open_export(as_form(root)) as export:
        assert export.message_count() == 11
        general = _by_id(export)["C01GENERAL"]
        assert len(export.days(general)) == 2
        assert export.unlisted_folders() == []


def test_unlisted_folders_are_reported(tmp_path: Path) -> None:
    root = copy_tree(MODERN, tmp_path / "export")
    (root / "ghost").mkdir()
    (root / "ghost" / "2024-01-01.json").write_text('[{"type": "message", "ts": "1.0"}]')
    (root / "empty-folder").mkdir()
    with open_export(root) as export:
        assert export.unlisted_folders() == ["ghost"]
        assert export.message_count() == 11


def test_messages_for_a_missing_day(modern: SlackExport) -> None:
    general = _by_id(modern)["C01GENERAL"]
    with pytest.raises(LookupError, match=r"general/2020-01-01\.json"):
        modern.messages(general, datetime.date(2020, 1, 1))


def test_a_folder_wrapping_the_export(tmp_path: Path) -> None:
    copy_tree(MODERN, tmp_path / "download" / "Modern Org Slack export Mar 1 2024 - Mar 3 2024")
    with open_export(tmp_path / "download") as export:
        assert export.message_count() == 11


# ------------------------------------------------------------------------------------------------
# Broken exports: the error names the file and the problem.


def _broken(tmp_path: Path, change: Callable[[Path], None]) -> Path:
    root = copy_tree(MODERN, tmp_path / "broken")
    change(root)
    return root


def _write(relative: str, content: str | bytes) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        (root / relative).write_bytes(data)

    return change


def _delete(*relatives: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        for relative in relatives:
            (root / relative).unlink()

    return change


def _edit_json(relative: str, edit: Callable[[Any], Any]) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        path = root / relative
        path.write_text(json.dumps(edit(json.loads(path.read_text())), indent=4))

    return change


def _read_everything(export: SlackExport) -> None:
    list(export.users())
    export.team_id()
    export.message_count()


BAD_DAY = '[\n    {"type": "message", "ts": "1709287200.000100"},\n    {"type": "message" "ts"}\n]'

BROKEN_CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "bad JSON in a day file": (
        _write("general/2024-03-01.json", BAD_DAY),
        "general/2024-03-01.json",
        "bad JSON at line 3 column 24 (Expecting ',' delimiter)",
    ),
    "day file not a list": (
        _write("general/2024-03-02.json", '{"type": "message", "ts": "1.0"}'),
        "general/2024-03-02.json",
        "a day file must be a list, not dict",
    ),
    "message not an object": (
        _write("D01ALICEBOB/2024-03-02.json", '[{"ts": "1.0"}, "hello"]'),
        "D01ALICEBOB/2024-03-02.json",
        "message 1 is a str, not an object",
    ),
    "message without ts": (
        _write("mpdm-alice--bob--carol-1/2024-03-03.json", '[{"type": "message", "text": "x"}]'),
        "mpdm-alice--bob--carol-1/2024-03-03.json",
        "message 0 has no 'ts'",
    ),
    "message with a number as ts": (
        _write("secret-plans/2024-03-01.json", '[{"type": "message", "ts": 1709290000.0005}]'),
        "secret-plans/2024-03-01.json",
        "message 0 has a 'ts' that is not a string: 1709290000.0005",
    ),
    "not UTF-8": (
        _write("general/2024-03-02.json", b'[{"ts": "1.0", "text": "caf\xe9"}]'),  # Latin-1
        "general/2024-03-02.json",
        "not UTF-8 text",
    ),
    "day file named after no date": (
        _write("general/2024-02-30.json", "[]"),
        "general/2024-02-30.json",
        "is named like a day file but is not a date",
    ),
    "missing users.json": (
        _delete("org_users.json"),
        "missing users.json (or org_users.json)",
        "found: PROVENANCE.md, canvases.json, channels.json, dms.json, groups.json",
    ),
    "no conversation list": (
        _delete("channels.json", "groups.json", "dms.json", "mpims.json"),
        "unknown layout",
        "found: PROVENANCE.md, canvases.json, integration_logs.json, org_users.json, D01ALICEBOB/",
    ),
    "bad JSON in users": (
        _write("org_users.json", '[{"id": "U1"'),
        "org_users.json",
        "bad JSON at line 1 column 13",
    ),
    "users not a list": (
        _write("org_users.json", '{"members": []}'),
        "org_users.json",
        "expected a list, not dict",
    ),
    "user without id": (
        _edit_json("org_users.json", lambda users: [*users, {"name": "nobody"}]),
        "org_users.json",
        "entry 5 is not a user with an 'id'",
    ),
    "channels not a list": (
        _write("channels.json", '{"channels": []}'),
        "channels.json",
        "expected a list, not dict",
    ),
    "channel without id": (
        _edit_json("channels.json", lambda entries: [entries[0], {"name": "no-id"}]),
        "channels.json",
        "entry 1 has no 'id'",
    ),
    "private channel without name": (
        _edit_json("groups.json", lambda entries: [{**entries[0], "name": ""}]),
        "groups.json",
        "entry 0 (C03SECRET) has no 'name'",
    ),
    "group DM without name": (
        _edit_json("mpims.json", lambda entries: [{"id": "C04MPIM", "members": []}]),
        "mpims.json",
        "entry 0 (C04MPIM) has no 'name'",
    ),
    "DM not an object": (
        _write("dms.json", '["D01ALICEBOB"]'),
        "dms.json",
        "entry 0 is a str, not an object",
    ),
    "created not a timestamp": (
        _edit_json("channels.json", lambda entries: [{**entries[0], "created": "yesterday"}]),
        "channels.json",
        "entry 0 (C01GENERAL): 'created' is 'yesterday', not an integer",
    ),
    "no team_id": (
        _edit_json("org_users.json", lambda users: [{"id": u["id"]} for u in users]),
        "org_users.json",
        "no user has a 'team_id'",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_CASES))
def test_broken_export(case: str, as_form: Callable[[Path], Path], tmp_path: Path) -> None:
    change, file_name, problem = BROKEN_CASES[case]
    root = _broken(tmp_path, change)
    with pytest.raises(ExportFormatError) as raised, open_export(as_form(root)) as export:
        _read_everything(export)
    message = str(raised.value)
    assert file_name in message
    assert problem in message


def test_bad_json_position_is_the_decoders(tmp_path: Path) -> None:
    with pytest.raises(json.JSONDecodeError) as decoded:
        json.loads(BAD_DAY)
    assert (decoded.value.lineno, decoded.value.colno) == (3, 24)


def test_a_zip_names_the_member_with_its_top_level_folder(tmp_path: Path) -> None:
    root = _broken(tmp_path, _write("general/2024-03-01.json", "[1]"))
    archive = zip_folder(root, tmp_path / "nested.zip", top="Acme export")
    with open_export(archive) as export, pytest.raises(ExportFormatError) as raised:
        export.message_count()
    assert f"Acme export/general/2024-03-01.json in {archive}: message 0 is a int" in str(
        raised.value
    )


def test_a_path_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.zip"
    with pytest.raises(ExportFormatError, match="no such file or folder") as raised:
        open_export(missing)
    assert str(missing) in str(raised.value)


def test_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    text = tmp_path / "export.json"
    text.write_text("[]")
    with pytest.raises(ExportFormatError, match="neither a zip archive nor a folder"):
        open_export(text)


def test_a_truncated_zip(tmp_path: Path) -> None:
    archive = zip_folder(MODERN, tmp_path / "export.zip")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(ExportFormatError, match="corrupt zip archive") as raised:
        open_export(truncated)
    assert "truncated.zip" in str(raised.value)


def test_a_zip_with_a_corrupt_member(tmp_path: Path) -> None:
    archive = zip_folder(MODERN, tmp_path / "export.zip")
    with zipfile.ZipFile(archive) as zipped:
        info = zipped.getinfo("general/2024-03-01.json")
    data = bytearray(archive.read_bytes())
    # Damage the compressed bytes, after the member's 30-byte header, name and extra field.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start + 10, start + 60):
        data[offset] ^= 0xFF
    archive.write_bytes(bytes(data))
    with open_export(archive) as export, pytest.raises(ExportFormatError) as raised:
        export.message_count()
    assert "general/2024-03-01.json" in str(raised.value)
    assert "corrupt zip member" in str(raised.value)


def test_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError, match=r"unknown layout.*found: nothing"):
        open_export(tmp_path)


# ------------------------------------------------------------------------------------------------
# Speed: the reader must not be the bottleneck of an import.


def read_all(path: Path) -> tuple[int, float]:
    """Messages read and seconds spent, going through every day file as an import would."""
    started = time.perf_counter()
    count = 0
    with open_export(path) as export:
        for _ in all_messages(export):
            count += 1
    return count, time.perf_counter() - started


def test_reading_is_fast(tmp_path: Path) -> None:
    workspace = sample.generate(
        channels=20,
        private_channels=0,
        archived=False,
        direct=False,
        days=50,
        messages_per_channel_day=20,
    )
    total = sample.write_export(workspace, tmp_path / "export").messages
    archive = zip_folder(tmp_path / "export", tmp_path / "export.zip")
    for path in (tmp_path / "export", archive):
        count, seconds = read_all(path)
        assert count == total == 20_000
        # About 0.2 s on a 2-core machine; the bound only catches an accidental quadratic.
        assert seconds < 5, f"{path.name}: {count} messages in {seconds:.1f} s"


def test_a_generated_workspace_reads_back_as_the_api_renders_it(tmp_path: Path) -> None:
    """slack.sample's export adapter: every conversation kind in its list file and folder, and
    every message and reply, in the day file of its own date, as the Web API renders it."""
    workspace = generate_workspace(5, days=2, messages_per_channel_day=6)  # the server's view
    written = sample.write_export(workspace, tmp_path / "export", kinds=sample.EXPORT_LISTS)
    assert written.messages == workspace.message_count() == (4 + 2 + 3) * 2 * 6
    with open_export(zip_folder(written.path, tmp_path / "export.zip")) as export:
        assert export.team_id() == workspace.team_id
        assert [u["id"] for u in export.users()] == [u.id for u in workspace.users]
        assert sorted((c.raw["id"], c.kind) for c in export.channels()) == sorted(
            (c.id, c.kind) for c in workspace.channels
        )
        assert export.unlisted_folders() == []
        for channel in export.channels():
            read = [m for day in export.days(channel) for m in export.messages(channel, day)]
            assert read == workspace.message_dicts(channel.raw["id"]), channel.folder


def test_a_zip_under_one_folder_with_strays_beside_it(tmp_path: Path) -> None:
    archive = zip_folder(MODERN, tmp_path / "export.zip", top="Modern Org")
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("README.txt", "made by hand")
        zipped.writestr("__MACOSX/Modern Org/._channels.json", b"\x00\x05\x16\x07")
        zipped.writestr("other/general/2024-03-01.json", "{broken")
    with open_export(archive) as export:
        assert export.message_count() == 11
        assert export.unlisted_folders() == []
