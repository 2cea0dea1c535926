"""Backfills of one Slack workspace over a range of UTC days, launched through the GraphQL API of
a running Dagster webserver (`toban dev`): one run of `slack_messages_range_job`, which reads each
channel's history once for the whole range and reports every day as its own partition of
`slack_messages`/`slack_reactions` (the analyses of those days follow, as after any sync).
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from toban_orchestration.defs.slack.sensors import message_partition_key
from toban_orchestration.progress import duration
from toban_orchestration.settings import get_settings
from toban_orchestration.slack.sync import CHANNELS_DONE

DEFAULT_URL = "http://127.0.0.1:3000"
RANGE_JOB = "slack_messages_range_job"
RANGE_OP = "sync_slack_message_range"
# Run states after which nothing more happens (Dagster's DagsterRunStatus).
FINISHED_STATES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

LAUNCH_MUTATION = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""
JOBS_QUERY = """
query Jobs {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
  }
}
"""
WORKSPACES_QUERY = """
query Workspaces {
  assetNodeOrError(assetKey: {path: ["slack_workspace"]}) {
    __typename
    ... on AssetNode { partitionKeys }
  }
}
"""
# The run's state and its events since `after` (a cursor of the run's event log): what
# `follow_run` needs to say how far the run is and, when it fails, why.
PROGRESS_QUERY = """
query RunProgress($id: ID!, $after: String) {
  runOrError(runId: $id) {
    __typename
    ... on Run { status startTime endTime }
    ... on Error { message }
  }
  logsForRun(runId: $id, afterCursor: $after) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message stepKey }
        ... on MaterializationEvent { assetKey { path } partition }
        ... on ErrorEvent { error { message } }
      }
    }
    ... on Error { message }
  }
}
"""
STATUS_QUERY = """
query RunStatus($id: ID!) {
  runOrError(runId: $id) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""


class BackfillError(Exception):
    """A backfill that could not be launched or followed; the message says what to fix."""


@dataclass(frozen=True)
class BackfillRequest:
    workspace: str
    """The Slack team id (the `workspace` partition), e.g. T0123ABCD."""
    start: date
    end: date
    """Inclusive."""
    with_analyses: bool = False
    """Kept for the command line: the analyses of re-synced days always follow them now
    (slack_analysis_automation sees the days' new materializations)."""

    def __post_init__(self) -> None:
        if not self.workspace.strip() or "|" in self.workspace:
            raise BackfillError(f"{self.workspace!r} is not a Slack team id (like T0123ABCD)")
        if self.start > self.end:
            raise BackfillError(f"--start {self.start} is after --end {self.end}")
        today = datetime.now(UTC).date()
        if self.end >= today:
            raise BackfillError(
                f"--end {self.end} is not over yet: the last day partition is yesterday "
                f"({today - timedelta(days=1)}, UTC)"
            )

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(n) for n in range((self.end - self.start).days + 1)]

    @property
    def partition_keys(self) -> list[str]:
        return [message_partition_key(day.isoformat(), self.workspace) for day in self.days]

    def run_config(self) -> dict[str, Any]:
        return {
            "ops": {
                RANGE_OP: {
                    "config": {
                        "workspace": self.workspace,
                        "first": self.start.isoformat(),
                        "last": self.end.isoformat(),
                    }
                }
            }
        }

    def tags(self) -> list[dict[str, str]]:
        # The same tag as the sensor's runs: one run per workspace at a time (dagster.yaml's
        # tag concurrency limits), so a backfill never doubles the request rate.
        return [
            {"key": "slack_workspace", "value": self.workspace},
            {"key": "slack_days", "value": f"{self.start}..{self.end}"},
        ]


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BackfillError(f"{option} {value!r} is not a date like 2026-11-24") from None


def graphql(url: str, query: str, variables: dict[str, Any], timeout: float) -> dict[str, Any]:
    """POST one GraphQL request to the webserver at `url`; its `data`, or a BackfillError."""
    if not url.startswith(("http://", "https://")):
        raise BackfillError(f"--url {url!r} is not an http:// or https:// address")
    endpoint = url.rstrip("/") + "/graphql"
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        endpoint,
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        body = _error_body(error)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise BackfillError(
            f"Cannot reach the Dagster webserver at {url} ({reason}); start it with `toban dev` "
            "or pass --url"
        ) from None
    if body.get("errors"):
        messages = "; ".join(str(e.get("message", e)) for e in body["errors"])
        raise BackfillError(f"Dagster's GraphQL API at {url} refused the request: {messages}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise BackfillError(f"Dagster's GraphQL API at {url} answered without data")
    return data


def _error_body(error: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        body = json.loads(error.read() or b"{}")
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("errors"):
        return body
    raise BackfillError(
        f"Dagster's webserver at {error.url} answered HTTP {error.code} {error.reason}"
    ) from None


def workspace_partitions(url: str, timeout: float = 30.0) -> list[str]:
    """The Slack workspaces the running Dagster instance knows (dynamic partitions)."""
    node = graphql(url, WORKSPACES_QUERY, {}, timeout)["assetNodeOrError"]
    if node.get("__typename") != "AssetNode":
        raise BackfillError(
            f"The Dagster code at {url} has no slack_workspace asset: is it Toban's webserver?"
        )
    return [str(key) for key in node.get("partitionKeys") or []]


def _range_job_selector(url: str, timeout: float) -> dict[str, str]:
    """Where the webserver serves the range job (its code location and repository)."""
    found = graphql(url, JOBS_QUERY, {}, timeout)["repositoriesOrError"]
    for repository in found.get("nodes") or []:
        if any(job["name"] == RANGE_JOB for job in repository.get("jobs") or []):
            return {
                "repositoryLocationName": repository["location"]["name"],
                "repositoryName": repository["name"],
                "jobName": RANGE_JOB,
            }
    raise BackfillError(f"The Dagster code at {url} has no {RANGE_JOB}: is it Toban's webserver?")


def launch_backfill(url: str, request: BackfillRequest, timeout: float = 30.0) -> str:
    """Launch the range run and return its id; the instance's run launcher runs it (after the
    workspace's other runs: one at a time per workspace)."""
    known = workspace_partitions(url, timeout)
    if request.workspace not in known:
        raise BackfillError(
            f"Slack workspace {request.workspace} is not a partition of the Dagster instance at "
            f"{url} (known: {', '.join(sorted(known)) or 'none'}); connect it with "
            "`toban slack add` or wait for the integration sensor"
        )
    first_partition = date.fromisoformat(get_settings().partitions_start_date)
    missing = [
        key
        for day, key in zip(request.days, request.partition_keys, strict=True)
        if day < first_partition
    ]
    if missing:
        raise BackfillError(
            f"Dagster has no partition for {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            + f" (days before TOBAN_PARTITIONS_START_DATE, {first_partition})"
        )
    params = {
        "selector": _range_job_selector(url, timeout),
        "runConfigData": request.run_config(),
        "executionMetadata": {"tags": request.tags()},
    }
    result = graphql(url, LAUNCH_MUTATION, {"params": params}, timeout)["launchRun"]
    kind = result.get("__typename")
    if kind == "LaunchRunSuccess":
        return str(result["run"]["runId"])
    details = result.get("message") or "; ".join(
        str(e.get("message")) for e in result.get("errors") or []
    )
    raise BackfillError(f"Dagster refused the backfill run ({kind}): {details}")


def run_status(url: str, run_id: str, timeout: float = 30.0) -> str:
    """The run's state: QUEUED, STARTING, STARTED while it waits or runs, then SUCCESS, FAILURE
    or CANCELED."""
    result = graphql(url, STATUS_QUERY, {"id": run_id}, timeout)["runOrError"]
    if result.get("__typename") != "Run":
        raise BackfillError(f"No run {run_id} at {url}: {result.get('message', '')}")
    return str(result["status"])


def wait_for_run(url: str, run_id: str, timeout: float, poll_seconds: float = 2.0) -> str:
    """Poll until the run is finished; its final state, or a BackfillError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        status = run_status(url, run_id)
        if status in FINISHED_STATES:
            return status
        if time.monotonic() >= deadline:
            raise BackfillError(
                f"Run {run_id} is still {status} after {timeout:.0f} s; is the Dagster daemon "
                "running?"
            )
        time.sleep(poll_seconds)


# How often `follow_run` asks the webserver, and how often it says how far the run is.
FOLLOW_POLL_SECONDS = 2.0
FOLLOW_REPORT_SECONDS = 10.0
WAITING_STATES = frozenset({"QUEUED", "NOT_STARTED", "STARTING", "MANAGED"})


@dataclass
class RunProgress:
    """What a range run's event log says so far."""

    status: str = "QUEUED"
    started_at: float | None = None
    """When the run started (epoch seconds), as Dagster recorded it."""
    ended_at: float | None = None
    days_reported: set[str] = field(default_factory=set)
    """Partitions of slack_messages the run has materialized."""
    sync_line: str | None = None
    """The op's latest word on the sync: what it will at least cost, then how many channels
    are read and about how long the rest will take."""
    errors: list[str] = field(default_factory=list)
    """Why steps or the run failed, first first."""
    cursor: str | None = None

    def add_events(self, events: list[dict[str, Any]], workspace: str) -> None:
        for event in events:
            kind = event.get("__typename")
            message = str(event.get("message") or "")
            if kind == "MaterializationEvent":
                if (event.get("assetKey") or {}).get("path") == ["slack_messages"]:
                    self.days_reported.add(str(event.get("partition")))
            elif kind == "LogMessageEvent" and (
                message.startswith(f"Slack {workspace}: ") or CHANNELS_DONE.match(message)
            ):
                self.sync_line = message.removeprefix(f"Slack {workspace}: ")
            elif kind in ("ExecutionStepFailureEvent", "RunFailureEvent"):
                error = (event.get("error") or {}).get("message") or message
                if error.strip():
                    self.errors.append(error.strip().splitlines()[0])


def progress_line(progress: RunProgress, total_days: int, now: float, since: float) -> str:
    """One short line: where the run is and, when it can be told, about how long it has left.
    `since`: when the command launched the run (epoch seconds)."""
    if progress.status in WAITING_STATES or progress.started_at is None:
        return (
            f"{progress.status.lower()} for {duration(now - since)} (a workspace's runs go one "
            "at a time)"
        )
    running = duration(now - progress.started_at)
    reported = len(progress.days_reported)
    if reported:
        return f"running for {running}: {reported} of {total_days} days reported"
    return f"running for {running}: " + (progress.sync_line or "reading Slack")


def result_line(progress: RunProgress, total_days: int, since: float) -> str:
    """The run's outcome in one line; for a failure, the first reason Dagster recorded."""
    took = duration((progress.ended_at or time.time()) - since)
    if progress.status == "SUCCESS":
        return (
            f"SUCCESS after {took}: {len(progress.days_reported)} of {total_days} days synced "
            "and reported"
        )
    reason = progress.errors[0] if progress.errors else "no reason recorded in the run's log"
    return f"{progress.status} after {took}: {reason}"


def follow_run(
    url: str,
    run_id: str,
    request: BackfillRequest,
    say: Callable[[str], None],
    *,
    since: float | None = None,
    timeout: float | None = None,
    poll_seconds: float = FOLLOW_POLL_SECONDS,
    report_seconds: float = FOLLOW_REPORT_SECONDS,
) -> RunProgress:
    """Follow the run until it is finished, saying a progress line every `report_seconds`;
    its final state (`status` SUCCESS, FAILURE or CANCELED). A BackfillError when the
    webserver stops answering, or after `timeout` seconds."""
    since = time.time() if since is None else since
    progress = RunProgress()
    said = time.monotonic()
    deadline = None if timeout is None else said + timeout
    while True:
        _poll(url, run_id, request.workspace, progress)
        if progress.status in FINISHED_STATES:
            return progress
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise BackfillError(
                f"Run {run_id} is still {progress.status} after {timeout:.0f} s; is the Dagster "
                "daemon running?"
            )
        if now - said >= report_seconds:
            said = now
            say(progress_line(progress, len(request.days), time.time(), since))
        time.sleep(poll_seconds)


def _poll(url: str, run_id: str, workspace: str, progress: RunProgress) -> None:
    """The run's state and its new events, every page of them."""
    while True:
        data = graphql(url, PROGRESS_QUERY, {"id": run_id, "after": progress.cursor}, 30.0)
        run = data["runOrError"]
        if run.get("__typename") != "Run":
            raise BackfillError(f"No run {run_id} at {url}: {run.get('message', '')}")
        logs = data["logsForRun"]
        if logs.get("__typename") != "EventConnection":
            raise BackfillError(f"Cannot read the log of run {run_id}: {logs.get('message', '')}")
        progress.add_events(logs.get("events") or [], workspace)
        progress.cursor = logs.get("cursor") or progress.cursor
        if not logs.get("hasMore"):
            break
    # The run is resolved before its log in one query: a run seen finished has all its
    # events in the log read after it.
    progress.started_at = run.get("startTime")
    progress.ended_at = run.get("endTime")
    progress.status = str(run["status"])
