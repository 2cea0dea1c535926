"""`toban demo`, the README's main command without the UI: a generated workspace ingested and
analyzed through Dagster on a fresh embedded database, results printed."""

import re
from pathlib import Path

from toban_orchestration_tests.helpers import run_toban

# A Dagster event line, as its console logger prints it: "... - dagster - DEBUG - <job> - ..."
DAGSTER_DEBUG = " - dagster - DEBUG - "


def test_demo_ingests_analyzes_and_prints_reports_and_a_leaderboard(tmp_path: Path) -> None:
    result = run_toban("demo", "--no-ui", env={"TOBAN_STATE_DIR": str(tmp_path)}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    # Quiet: progress and the report, no Dagster event; the events are in the log it names.
    terminal = result.stdout + result.stderr
    assert DAGSTER_DEBUG not in terminal
    assert "Traceback" not in terminal
    log = tmp_path / "logs" / "demo.log"
    assert f"Dagster's event logs of these runs: {log} (--verbose prints them here)" in terminal
    events = log.read_text()
    assert events.count(DAGSTER_DEBUG) > 100
    for event in ("RUN_START", "STEP_START", "RESOURCE_INIT_SUCCESS", "ASSET_MATERIALIZATION"):
        assert f" - {event} - " in events, event
    assert "Messages: 14 day partitions" in result.stderr
    assert "weekly windows and their trends" in result.stderr
    assert len(result.stderr.splitlines()) <= 15, result.stderr
    assert len(terminal.splitlines()) <= 60  # a screen
    assert "## #platform" in out
    assert "## Leaderboard (all channels)" in out
    board = out.split("## Leaderboard (all channels)")[1]
    ranking = [
        line.split("|")[2].strip()
        for line in board.splitlines()
        if line.startswith("| ") and line[2].isdigit()
    ]
    assert len(ranking) == 6
    # Display names; the two Anas told apart by their real names, as every report does.
    assert set(ranking[:2]) == {"Ana (Ana Lima)", "Finn"}  # the helpers
    assert "Ana (Ana Rossi)" in ranking
    assert ranking[-1] == "Dev"  # only reacts
    assert "Toban Demo (TDEMO0001): weekly analysis, " in out  # the workspace by its name
    # Where the week's HTML report is, as its materialization wrote it.
    reports = tmp_path / "reports" / "TDEMO0001"
    found = re.search(r"The week's HTML report \(.*\): (\S+\.html)\n", out)
    assert found, out
    page = Path(found.group(1))
    assert page.parent == reports
    assert page.name.startswith("weekly-")
    html = page.read_text()
    assert "<h1>Toban Demo (TDEMO0001)</h1>" in html
    assert "Ana (Ana Rossi)" in html
    assert "toban-offline-analyzer/v1" in out
    assert "The text below was written by the offline analyzer" in out  # and how to get a model
    assert "Set TOBAN_LLM_BASE_URL and TOBAN_LLM_MODEL" in out
    # A second run reuses the data and gives the same leaderboard; --verbose prints the events.
    again = run_toban(
        "demo", "--no-ui", "--verbose", env={"TOBAN_STATE_DIR": str(tmp_path)}, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.split("## Leaderboard (all channels)")[1] == board
    assert again.stderr.count(DAGSTER_DEBUG) > 100
    assert (tmp_path / "logs" / "demo.log.1").read_text() == events  # the first run's, kept
