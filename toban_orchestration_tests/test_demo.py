"""`toban demo`, the README's main command without the UI: a generated workspace ingested and
analyzed through Dagster on a fresh embedded database, results printed."""

from pathlib import Path

from toban_orchestration_tests.helpers import run_toban


def test_demo_ingests_analyzes_and_prints_reports_and_a_leaderboard(tmp_path: Path) -> None:
    result = run_toban("demo", "--no-ui", env={"TOBAN_STATE_DIR": str(tmp_path)}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "## #platform" in out
    assert "## Leaderboard (all channels)" in out
    board = out.split("## Leaderboard (all channels)")[1]
    ranking = [
        line.split("|")[2].strip()
        for line in board.splitlines()
        if line.startswith("| ") and line[2].isdigit()
    ]
    assert len(ranking) == 6
    assert set(ranking[:2]) == {"Ana Lima", "Finn Berg"}  # the helpers
    assert ranking[-1] == "Dev Patel"  # only reacts
    assert "toban-offline-analyzer/v1" in out
    # A second run reuses the data and gives the same leaderboard.
    again = run_toban("demo", "--no-ui", env={"TOBAN_STATE_DIR": str(tmp_path)}, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.split("## Leaderboard (all channels)")[1] == board
