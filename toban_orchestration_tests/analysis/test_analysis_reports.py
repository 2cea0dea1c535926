"""Reports people open (issue 19): names that tell namesakes apart, previews of the busiest
channels, charts small enough for Dagster's UI, the HTML report (escaped, linked to Slack,
re-written only when its inputs change) and `toban report`.

One workspace is synced from the local Slack server and analyzed once per module: three people
named Ulla, one person whose name and message are markup, and an empty channel that sorts
first. The report's rows are plain reads, so the module runs on one PostgreSQL backend.
"""

import os
import re
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL

from toban_orchestration.analysis import charts, report
from toban_orchestration.analysis.report_files import stored_digest, write_report
from toban_orchestration.analysis.run import AnalysisResult, run_analysis, window_analysis
from toban_orchestration.analysis.store import (
    Person,
    ReportInputs,
    report_inputs,
)
from toban_orchestration.cli import main
from toban_orchestration.db import migrations
from toban_orchestration.db.engine import DAGSTER_DRIVER, forget_app_engine
from toban_orchestration.defs.analysis.assets import window_metadata
from toban_orchestration.defs.analysis.resources import AnalysisSettings
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import get_settings
from toban_orchestration.slack import ingest
from toban_orchestration_tests.conftest import EXTERNAL_URL_VARIABLE, PostgresServer
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace
from toban_orchestration_tests.support.web_api_sync import Connected, connect

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
END = START + timedelta(days=7)
DOMAIN = "fjord-team"
HOSTILE_NAME = "<img src=x onerror=alert(1)>|**$x^$**"
HOSTILE_TEXT = (
    '<script>alert("x")</script> see [the fix](http://evil.invalid/) '
    "![pixel](http://evil.invalid/p.png) | cell | `code`"
)
NAMESAKES = {"ulla.berg": "Ulla Berg", "ulla.nyman": "Ulla Nyman", "ulla.k": "Ulla"}
# A few hundred kB at most per materialization (Dagster stores it in its event log).
METADATA_BYTES_LIMIT = 300_000


@dataclass(frozen=True)
class Analyzed:
    connected: Connected
    engine: Engine
    url: URL
    result: AnalysisResult
    users: dict[str, str]
    """handle -> Slack id of the people the test added."""
    channels: dict[str, str]
    """name -> Slack id."""
    question_ts: str
    answer_ts: str
    """Ulla Berg's answer in the thread of Ulla K's question, in #support."""


def _ts(day: int, minute: int) -> str:
    return f"{int((START + timedelta(days=day, minutes=minute)).timestamp())}.000{minute:03d}"


@pytest.fixture(scope="module")
def analyzed(postgres_server: PostgresServer) -> Iterator[Analyzed]:
    if postgres_server.name == "embedded" and os.environ.get(EXTERNAL_URL_VARIABLE):
        pytest.skip("one backend is enough: the report reads rows the analysis stored")
    url = postgres_server.create_database()
    engine = create_engine(url)
    migrations.upgrade(engine)
    workspace = generate_workspace(
        seed=19,
        users=4,
        channels=2,
        private_channels=0,
        days=2,
        messages_per_channel_day=5,
        start=START.date(),
        team_name="Fjord & <Co>",
    )
    workspace.domain = DOMAIN
    users = {
        handle: workspace.add_user(handle, real, display_name="Ulla")
        for handle, real in NAMESAKES.items()
    }
    users["mallory"] = workspace.add_user("mallory", "Mallory", display_name=HOSTILE_NAME)
    bot = workspace.bot_user_id
    channels = {
        name: workspace.create_channel(name, creator=bot) for name in ("aaa-empty", "support")
    }
    support = channels["support"]
    for user in users.values():
        workspace.add_member(support, user)
    question = workspace.add_message(
        support, ts=_ts(0, 10), user=users["ulla.k"], text="How do I restart the workers?"
    )
    answer = workspace.add_reply(
        support,
        question,
        ts=_ts(0, 15),
        user=users["ulla.berg"],
        text="Run `toban keys generate`, then see <https://docs.example.invalid/k|the docs>",
    )
    workspace.add_reaction(support, answer, "pray", users["ulla.k"])
    workspace.add_message(
        support,
        ts=_ts(1, 20),
        user=users["ulla.nyman"],
        text="Let's schedule the release planning meeting tomorrow",
    )
    # Slack sends what people type with <, > and & escaped; processed_text decodes them.
    typed = HOSTILE_TEXT.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    workspace.add_message(support, ts=_ts(1, 30), user=users["mallory"], text=typed)
    with FakeSlackServer() as slack:
        connected = connect(engine, slack, workspace, TokenCipher([generate_key()]))
        connected.sync_all(START.date(), START.date() + timedelta(days=1))
        connected.select_all_channels()
        analysis_id = window_analysis(engine, connected.slack_id, "weekly", START, END)
        result = run_analysis(engine, analysis_id)
        yield Analyzed(connected, engine, url, result, users, channels, question, answer)
    engine.dispose()
    postgres_server.drop_database(url)


@pytest.fixture
def inputs(analyzed: Analyzed) -> ReportInputs:
    with analyzed.engine.connect() as connection:
        return report_inputs(connection, analyzed.result.analysis_id)


@pytest.fixture
def reports_dir(
    analyzed: Analyzed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Path]:
    """The code (and `toban report`) pointed at the module's database and a reports folder."""
    directory = tmp_path / "reports"
    dagster = analyzed.url.set(
        database=f"{analyzed.url.database}_dagster", drivername=DAGSTER_DRIVER
    )
    monkeypatch.setenv("TOBAN_DATABASE_URL", analyzed.url.render_as_string(hide_password=False))
    # `toban report` never reaches Dagster's storage; it only has to be another database.
    monkeypatch.setenv("TOBAN_DAGSTER_STORAGE_URL", dagster.render_as_string(hide_password=False))
    monkeypatch.setenv("TOBAN_REPORTS_DIR", str(directory))
    get_settings.cache_clear()
    forget_app_engine()
    yield directory
    get_settings.cache_clear()
    forget_app_engine()


# --- names -------------------------------------------------------------------------------------


def _person(slack_id: str, display: str, real: str | None, handle: str | None) -> Person:
    return Person(uuid.uuid4(), slack_id, handle, display, real)


def test_namesakes_get_the_first_of_real_name_handle_and_id_that_tells_them_apart() -> None:
    people = [
        _person("U1", "Ulla", "Ulla Berg", "ulla.b"),
        _person("U2", "ulla", "Ulla Berg", "ulla.b2"),  # same real name: the handle decides
        _person("U3", "Ulla", None, None),  # nothing else: the Slack id
        _person("U4", "Sam", "Sam Roe", "sam"),
        _person("U5", "", "Kim Lee", "kim"),  # no display name: the real name
    ]
    assert report.person_labels(people) == {
        "U1": "Ulla (@ulla.b)",
        "U2": "ulla (@ulla.b2)",
        "U3": "Ulla (U3)",
        "U4": "Sam",
        "U5": "Kim Lee",
    }


def test_leaderboards_and_previews_name_people_and_show_the_busiest_channels(
    analyzed: Analyzed, inputs: ReportInputs
) -> None:
    labels = report.person_labels(report.all_people(inputs))
    ullas = {labels[analyzed.users[handle]] for handle in NAMESAKES}
    assert ullas == {"Ulla (Ulla Berg)", "Ulla (Ulla Nyman)", "Ulla (@ulla.k)"}
    assert (
        report.workspace_label(inputs.workspace) == f"Fjord & <Co> ({analyzed.connected.slack_id})"
    )

    board = analyzed.result.leaderboard_markdown(labels=labels)
    for label in ullas:
        assert report.md_text(label) in board
    rows = [line for line in board.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == len(analyzed.result.leaderboard[:10])
    # A name's markup stays text: no cell break, no HTML, no emphasis.
    assert all(len(re.findall(r"(?<!\\)\|", row)) == 8 for row in rows), rows
    assert re.search(r"(?<!\\)<img", board) is None
    assert "\\<img" in board

    preview = report.preview_markdown(inputs)
    busiest = sorted(inputs.channels, key=lambda c: -c.message_count)
    assert busiest[0].message_count > 0
    assert f"### \\#{report.md_text(busiest[0].name)}" in preview
    empty = next(c for c in inputs.channels if c.name == "aaa-empty")
    assert empty.message_count == 0
    assert inputs.channels[0] is empty
    assert "aaa" not in preview
    assert "evil.invalid" not in preview.replace("\\", "").replace("(http", "")  # no live link


# --- charts ------------------------------------------------------------------------------------


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_charts_in_the_metadata_stay_small_and_the_report_is_linked(
    analyzed: Analyzed, inputs: ReportInputs, reports_dir: Path
) -> None:
    # The resource is given its folder: no environment variable needed.
    settings = AnalysisSettings(report_directory=str(reports_dir), trend_weeks=12)
    metadata = window_metadata(analyzed.engine, analyzed.result, settings)
    charts_md = metadata.analysis["charts"].md_str
    images = re.findall(r"!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", charts_md)
    assert [title for title, _ in images] == [
        charts.CONTRIBUTORS_TITLE,
        charts.ACTIVITY_TITLE,
        charts.CHANNELS_TITLE,
    ]
    pictures = charts.window_charts(
        report.leaderboard(inputs),
        inputs.days,
        inputs.channels,
        report.person_labels(report.all_people(inputs)),
    )
    for png in pictures.values():
        width, height = _png_size(png)
        assert 300 < width <= 800
        assert 100 < height <= 800
    for entry in (metadata.analysis, metadata.contributions):
        size = sum(len(str(getattr(v, "value", v))) for v in entry.values())
        assert size < METADATA_BYTES_LIMIT, size
    assert charts.CONTRIBUTORS_TITLE in metadata.contributions["charts"].md_str
    assert metadata.analysis["workspace"] == report.workspace_label(inputs.workspace)

    path = Path(metadata.analysis["report"].path)
    assert path == reports_dir / analyzed.connected.slack_id / "weekly-2026-11-02.html"
    assert metadata.analysis["report_url"].url == path.as_uri()
    assert stored_digest(path) == report.inputs_digest(inputs)
    # Materialized again with the same rows: the page is left alone.
    again = window_metadata(analyzed.engine, analyzed.result, settings)
    assert metadata.analysis["report_rewritten"] is True
    assert again.analysis["report_rewritten"] is False


# --- the HTML report ---------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "a":
            self.links.append(values.get("href") or "")
        if tag == "img":
            self.images.append(values.get("src") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_report_is_self_contained_escaped_and_links_to_slack(
    analyzed: Analyzed, inputs: ReportInputs, tmp_path: Path
) -> None:
    written = write_report(tmp_path, inputs)
    source = written.path.read_text()
    page = _Page()
    page.feed(source)
    assert "script" not in page.tags
    assert len(page.images) == 3
    assert all(i.startswith("data:image/png;base64,") for i in page.images)
    text = "".join(page.text)
    assert HOSTILE_TEXT.split(" |")[0] in text  # shown, as text
    assert "<script>" not in source
    assert "&lt;script&gt;" in source
    assert HOSTILE_NAME in text
    assert "<img src=x" not in source
    assert "Fjord & <Co>" in text

    # The answer that earned Ulla Berg her problem-solving score links to its message in Slack.
    support = analyzed.channels["support"]
    workspace = analyzed.connected.workspace
    assert page.links, "no message is linked"
    for link in page.links:
        found = re.fullmatch(
            rf"https://{DOMAIN}\.slack\.com/archives/([A-Z0-9]+)/p(\d+)(\d{{6}})"
            r"(?:\?thread_ts=(\d+\.\d{6})&cid=\1)?",
            link,
        )
        assert found is not None, link
        channel, seconds, micros, thread_ts = found.groups()
        message = workspace.find(channel, f"{seconds}.{micros}")
        assert (message.parent is not None) == (thread_ts is not None)
    assert (
        f"https://{DOMAIN}.slack.com/archives/{support}/p{analyzed.answer_ts.replace('.', '')}"
        f"?thread_ts={analyzed.question_ts}&cid={support}"
    ) in page.links

    # Every person of the leaderboard, with the four dimensions stored for them.
    labels = report.person_labels(report.all_people(inputs))
    table = source.split('<table id="leaderboard">')[1].split("</table>")[0]
    for row in inputs.overall:
        cells = [
            f"{value:.1f}"
            for value in (
                row.total,
                row.problem_solving,
                row.knowledge_sharing,
                row.team_coordination,
                row.engagement,
            )
        ]
        assert ">" + '</td><td class="n">'.join(cells) + "<" in table, row.person.slack_id
        assert report._e(labels[row.person.slack_id]) in table


def test_the_report_is_rewritten_only_when_its_inputs_change(
    analyzed: Analyzed, inputs: ReportInputs, tmp_path: Path
) -> None:
    first = write_report(tmp_path, inputs)
    assert first.written
    stamp = first.path.stat().st_mtime_ns
    assert not write_report(tmp_path, inputs).written
    assert first.path.stat().st_mtime_ns == stamp

    # Ulla Nyman changes her display name in Slack; the next users sync brings it.
    connected = analyzed.connected
    connected.workspace.update_user(analyzed.users["ulla.nyman"], display_name="Ulla N.")
    try:
        ingest.refresh_users(connected.engine, connected.cipher, connected.slack_id)
        with analyzed.engine.connect() as connection:
            renamed = report_inputs(connection, analyzed.result.analysis_id)
        second = write_report(tmp_path, renamed)
        assert second.written
        assert second.digest != first.digest
        assert "Ulla N." in second.path.read_text()
    finally:
        connected.workspace.update_user(analyzed.users["ulla.nyman"], display_name="Ulla")
        ingest.refresh_users(connected.engine, connected.cipher, connected.slack_id)


# --- toban report ------------------------------------------------------------------------------


def test_toban_report_writes_prints_and_names_missing_windows(
    analyzed: Analyzed, reports_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slack_id = analyzed.connected.slack_id
    command = ["report", "--workspace", slack_id, "--window", "weekly"]
    assert main([*command, "--start", "2026-11-02"]) == 0
    out, err = capsys.readouterr()
    path = Path(out.strip())
    assert path == reports_dir / slack_id / "weekly-2026-11-02.html"
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert f"Fjord & <Co> ({slack_id}), weekly analysis, 2026-11-02 to 2026-11-08" in err
    assert err.strip().endswith("written")

    assert main(command) == 0  # the latest window, unchanged
    out, err = capsys.readouterr()
    assert Path(out.strip()) == path
    assert "unchanged" in err

    assert main([*command, "--print"]) == 0
    out, _ = capsys.readouterr()
    assert out == path.read_text()

    assert main([*command, "--start", "2026-11-09"]) == 1
    _, err = capsys.readouterr()
    assert f"{slack_id} has no weekly analysis starting 2026-11-09" in err
    assert "latest windows: 2026-11-02" in err
    assert main(["report", "--workspace", "TNOSUCH", "--window", "daily"]) == 1
    _, err = capsys.readouterr()
    assert f"no Slack workspace TNOSUCH is registered (registered: {slack_id} (" in err
    assert main([*command, "--start", "2 Nov"]) == 1
    assert "--start '2 Nov' is not a date" in capsys.readouterr().err
