"""Backfills of one Slack workspace over a range of UTC days, launched through the GraphQL API of
a running Dagster webserver (`toban dev`): one run of `slack_messages_range_job`, which reads each
channel's history once for the whole range and reports every day as its own partition of
`slack_messages`/`slack_reactions` (the analyses of those days follow, as after any sync).
"""

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from toban_orchestration.defs.slack.sensors import message_partition_key
from toban_orchestration.settings import get_settings

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
