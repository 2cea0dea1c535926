"""`toban backfill`: the one range run it asks Dagster for, and the mistakes it refuses before
asking. The launch itself, against a running webserver and daemon, is in test_end_to_end.py."""

from datetime import UTC, date, datetime, timedelta

import pytest

from toban_orchestration.backfill import BackfillError, BackfillRequest
from toban_orchestration.cli import main
from toban_orchestration_tests.e2e_support import free_port


def test_a_request_is_one_range_run_covering_one_partition_per_day() -> None:
    request = BackfillRequest("T0123ABCD", date(2026, 10, 30), date(2026, 11, 1))
    assert request.partition_keys == [
        "2026-10-30|T0123ABCD",
        "2026-10-31|T0123ABCD",
        "2026-11-01|T0123ABCD",
    ]
    assert request.run_config() == {
        "ops": {
            "sync_slack_message_range": {
                "config": {"workspace": "T0123ABCD", "first": "2026-10-30", "last": "2026-11-01"}
            }
        }
    }
    assert {"key": "slack_workspace", "value": "T0123ABCD"} in request.tags()


def test_ranges_that_cannot_be_backfilled_are_refused() -> None:
    with pytest.raises(BackfillError, match="--start 2026-11-02 is after --end 2026-11-01"):
        BackfillRequest("T0123ABCD", date(2026, 11, 2), date(2026, 11, 1))
    today = datetime.now(UTC).date()
    with pytest.raises(BackfillError, match=f"--end {today} is not over yet"):
        BackfillRequest("T0123ABCD", today - timedelta(days=1), today)
    with pytest.raises(BackfillError, match="is not a Slack team id"):
        BackfillRequest("2026-11-01|T0123ABCD", date(2026, 11, 1), date(2026, 11, 1))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--start", "2026-11-31", "--end", "2026-12-01"], "--start '2026-11-31' is not a date"),
        (["--start", "2026-11-03", "--end", "2026-11-01"], "is after --end 2026-11-01"),
        (
            ["--start", "2026-11-01", "--end", "2026-11-02", "--url", "file:///etc/passwd"],
            "not an http",
        ),
    ],
)
def test_the_command_explains_a_wrong_argument_in_one_line(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backfill", "--workspace", "T0123ABCD", *arguments]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_the_command_says_when_no_webserver_answers(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    arguments = ["--workspace", "T0123ABCD", "--start", "2026-11-01", "--end", "2026-11-02"]
    assert main(["backfill", *arguments, "--url", url]) == 1
    error = capsys.readouterr().err
    assert f"Cannot reach the Dagster webserver at {url}" in error
    assert "toban dev" in error
