"""`toban backfill`: the one range run it asks Dagster for, the mistakes it refuses before
asking, and what `--wait` says of a run. The launch and `--wait` against a running webserver
and daemon are in test_end_to_end.py."""

from datetime import UTC, date, datetime, timedelta

import pytest

from toban_orchestration.backfill import (
    BackfillError,
    BackfillRequest,
    RunProgress,
    progress_line,
    result_line,
)
from toban_orchestration.cli import main
from toban_orchestration.slack.sync import channels_done
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


def _event(kind: str, **fields: object) -> dict[str, object]:
    return {"__typename": kind, **fields}


def test_waiting_on_a_run_says_where_it_is_and_why_it_failed() -> None:
    """`toban backfill --wait`'s lines from a run's event log, as Dagster's GraphQL API gives it:
    the op's cost estimate and channel progress while it reads, the days reported after, and
    a failure's first reason."""
    request = BackfillRequest("T0123ABCD", date(2026, 11, 1), date(2026, 11, 3))
    progress = RunProgress(status="QUEUED")
    assert progress_line(progress, 3, now=1_030.0, since=1_000.0).startswith("queued for 30 s")

    progress.status, progress.started_at = "STARTED", 1_040.0
    progress.add_events(
        [
            _event("LogMessageEvent", message="Slack TOTHER: 2 channels over 3 days"),
            _event("LogMessageEvent", message="Slack T0123ABCD: 500 channels over 3 days"),
        ],
        request.workspace,
    )
    assert progress_line(progress, 3, now=1_100.0, since=1_000.0) == (
        "running for 60 s: 500 channels over 3 days"
    )
    line = channels_done(120, 500, elapsed=60.0)
    assert line == "120 of 500 channels read, about 3 min left"
    progress.add_events([_event("LogMessageEvent", message=line)], request.workspace)
    assert progress_line(progress, 3, now=1_100.0, since=1_000.0).endswith(line)

    reported = [
        _event("MaterializationEvent", assetKey={"path": [asset]}, partition=key)
        for key in request.partition_keys[:2]
        for asset in ("slack_messages", "slack_reactions")
    ]
    progress.add_events(reported, request.workspace)
    assert progress_line(progress, 3, now=1_100.0, since=1_000.0).endswith("2 of 3 days reported")

    progress.add_events(
        [
            _event(
                "ExecutionStepFailureEvent",
                message="Execution of step failed.",
                error={"message": "Failure: Slack T0123ABCD: invalid_auth\n  traceback..."},
            ),
            _event("RunFailureEvent", message="Run failed", error=None),
        ],
        request.workspace,
    )
    progress.status, progress.ended_at = "FAILURE", 1_080.0
    assert result_line(progress, 3, since=1_000.0) == (
        "FAILURE after 80 s: Failure: Slack T0123ABCD: invalid_auth"
    )
    done = RunProgress(
        status="SUCCESS", ended_at=1_060.0, days_reported=set(request.partition_keys)
    )
    assert result_line(done, 3, since=1_000.0) == (
        "SUCCESS after 60 s: 3 of 3 days synced and reported"
    )
