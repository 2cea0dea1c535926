"""Backfills of one Slack workspace over a range of UTC days, launched through the GraphQL API of
a running Dagster webserver (`toban dev`); the daemon then runs one run per day.

`DagsterGraphQLClient` cannot launch partition backfills, so this sends the
`launchPartitionBackfill` mutation itself: an asset selection (messages and reactions, and
optionally the daily analyses) with the multi-partition keys `YYYY-MM-DD|TEAM_ID`.
"""

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from toban_orchestration.automation.sensors import message_partition_key

DEFAULT_URL = "http://127.0.0.1:3000"
MESSAGE_ASSETS = ("slack_messages", "slack_reactions")
# One multi-asset each: selecting one of a pair without the other is refused by Dagster.
DAILY_ANALYSIS_ASSETS = ("slack_channel_analyses_daily", "slack_contributions_daily")
# Backfill states after which nothing more happens (Dagster's BulkActionStatus).
FINISHED_STATES = frozenset(
    {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
)
SUCCEEDED_STATES = frozenset({"COMPLETED", "COMPLETED_SUCCESS"})

LAUNCH_MUTATION = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionKeysNotFoundError { partitionKeys }
    ... on Error { message }
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
query BackfillStatus($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions error { message } }
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

    @property
    def asset_keys(self) -> list[str]:
        return [*MESSAGE_ASSETS, *(DAILY_ANALYSIS_ASSETS if self.with_analyses else ())]

    def launch_params(self) -> dict[str, Any]:
        """The mutation's `LaunchBackfillParams`."""
        return {
            "assetSelection": [{"path": [key]} for key in self.asset_keys],
            "partitionNames": self.partition_keys,
            "title": f"Slack {self.workspace} {self.start} to {self.end}",
            # The same tag as the sensor's snapshot runs: one run per workspace at a time
            # (dagster.yaml's tag concurrency limits).
            "tags": [{"key": "slack_workspace", "value": self.workspace}],
        }


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


def launch_backfill(url: str, request: BackfillRequest, timeout: float = 30.0) -> str:
    """Launch the backfill and return its id; the daemon of that instance runs it."""
    known = workspace_partitions(url, timeout)
    if request.workspace not in known:
        raise BackfillError(
            f"Slack workspace {request.workspace} is not a partition of the Dagster instance at "
            f"{url} (known: {', '.join(sorted(known)) or 'none'}); connect it with "
            "`toban slack add` or wait for the integration sensor"
        )
    result = graphql(url, LAUNCH_MUTATION, {"params": request.launch_params()}, timeout)[
        "launchPartitionBackfill"
    ]
    kind = result.get("__typename")
    if kind == "LaunchBackfillSuccess":
        return str(result["backfillId"])
    if kind == "PartitionKeysNotFoundError":
        missing = sorted(result.get("partitionKeys") or [])
        raise BackfillError(
            f"Dagster has no partition for {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            + " (days before TOBAN_PARTITIONS_START_DATE, or a workspace Dagster does not know)"
        )
    raise BackfillError(f"Dagster refused the backfill ({kind}): {result.get('message', '')}")


def backfill_status(url: str, backfill_id: str, timeout: float = 30.0) -> str:
    """The backfill's state: REQUESTED while it runs, then COMPLETED_SUCCESS, COMPLETED_FAILED,
    FAILED or CANCELED."""
    result = graphql(url, STATUS_QUERY, {"id": backfill_id}, timeout)["partitionBackfillOrError"]
    if result.get("__typename") != "PartitionBackfill":
        raise BackfillError(f"No backfill {backfill_id} at {url}: {result.get('message', '')}")
    return str(result["status"])


def wait_for_backfill(url: str, backfill_id: str, timeout: float, poll_seconds: float = 2.0) -> str:
    """Poll until the backfill is finished; its final state, or a BackfillError on timeout.
    The daemon updates a backfill's state every 30 s, so allow at least a minute."""
    deadline = time.monotonic() + timeout
    while True:
        status = backfill_status(url, backfill_id)
        if status in FINISHED_STATES:
            return status
        if time.monotonic() >= deadline:
            raise BackfillError(
                f"Backfill {backfill_id} is still {status} after {timeout:.0f} s; is the Dagster "
                "daemon running?"
            )
        time.sleep(poll_seconds)
