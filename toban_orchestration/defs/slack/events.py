"""Slack events in Dagster: the sensor that applies the inbox, and the inbox as an asset.

The receiver (`toban events`, or `toban dev`) stores Slack's deliveries in `slack_event_inbox`;
this sensor applies them every few seconds (inside the tick: no run per event) and reports a
materialization of each day partition of `slack_messages`/`slack_reactions` they changed, so
the analyses that follow those partitions run again for the windows that changed. The inbox
itself is an external asset whose metadata and `inbox_lag` check show how far behind the
application is.
"""

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from sqlalchemy import Engine

from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack.partitions import (
    DATE_DIMENSION,
    WORKSPACE_DIMENSION,
    workspace_partitions,
)
from toban_orchestration.defs.slack.resources import SlackEventSettings, SlackSyncSettings
from toban_orchestration.slack.apply_events import ApplyReport, apply_all_pending
from toban_orchestration.slack.store import inbox_status, prune_applied_events

EVENTS_SENSOR_INTERVAL_SECONDS = 10
APPLY_BUDGET_SECONDS = 30.0
"""Work per tick; a sensor tick times out after about a minute."""
PRUNE_EVERY = timedelta(hours=1)
HEARTBEAT = timedelta(minutes=10)
"""The inbox is reported at least this often while events flow or wait, even with no change."""
INBOX_CHECK = "inbox_lag"

slack_event_inbox = dg.AssetSpec(
    "slack_event_inbox",
    group_name="slack",
    kinds={"slack", "postgres"},
    description="Slack Events API deliveries waiting to be applied (see docs/slack-events.md). "
    "Its materializations carry the backlog; the inbox_lag check warns when the oldest "
    "unapplied event is older than TOBAN_EVENTS_LAG_WARN_SECONDS.",
)


def _lag(engine: Engine, now: datetime) -> tuple[int, float]:
    with engine.connect() as connection:
        pending, oldest = inbox_status(connection)
    return pending, (now - oldest).total_seconds() if oldest is not None else 0.0


def _lag_evaluation(pending: int, age_seconds: float, limit: int) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=slack_event_inbox.key,
        check_name=INBOX_CHECK,
        passed=age_seconds <= limit,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "pending_events": pending,
            "oldest_pending_age_seconds": round(age_seconds, 1),
            "warn_after_seconds": limit,
        },
    )


@dg.asset_check(
    asset=slack_event_inbox.key,
    name=INBOX_CHECK,
    description="The oldest unapplied Slack event is younger than TOBAN_EVENTS_LAG_WARN_SECONDS "
    "(the events sensor also reports this check as it applies events).",
)
def slack_event_inbox_lag(
    app_database: AppDatabase, slack_events: SlackEventSettings
) -> dg.AssetCheckResult:
    pending, age = _lag(app_database.engine(), datetime.now(UTC))
    evaluation = _lag_evaluation(pending, age, slack_events.lag_warn_seconds)
    return dg.AssetCheckResult(
        passed=evaluation.passed, severity=evaluation.severity, metadata=evaluation.metadata
    )


def _day_materializations(
    context: dg.SensorEvaluationContext,
    reports: dict[str, ApplyReport],
    today: date,
    start: date,
) -> list[dg.AssetMaterialization]:
    """One materialization per changed day partition (from `start`, the first) and asset, for
    partitions that exist."""
    out: list[dg.AssetMaterialization] = []
    for team_id, report in sorted(reports.items()):
        if not report.message_days or not context.instance.has_dynamic_partition(
            workspace_partitions.name or "", team_id
        ):
            continue
        for day in sorted(report.message_days):
            if not start <= day <= today:
                continue
            key = str(
                dg.MultiPartitionKey(
                    {DATE_DIMENSION: day.isoformat(), WORKSPACE_DIMENSION: team_id}
                )
            )
            metadata: dict[str, Any] = {"source": "Slack events", "events_applied": report.applied}
            out += [
                dg.AssetMaterialization("slack_messages", partition=key, metadata=metadata),
                dg.AssetMaterialization("slack_reactions", partition=key, metadata=metadata),
            ]
    return out


@dg.sensor(
    minimum_interval_seconds=EVENTS_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Applies the Slack events the receiver stored (oldest first, through the same "
    "store as the polling sync), reports the day partitions they changed, the inbox backlog "
    "and its inbox_lag check, and prunes applied events after TOBAN_EVENTS_RETENTION_DAYS.",
)
def slack_events_sensor(
    context: dg.SensorEvaluationContext,
    app_database: AppDatabase,
    slack_sync: SlackSyncSettings,
    slack_events: SlackEventSettings,
) -> dg.SensorResult:
    engine = app_database.engine()
    now = datetime.now(UTC)
    cursor: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
    reports = apply_all_pending(engine, budget_seconds=APPLY_BUDGET_SECONDS)
    total = ApplyReport()
    for report in reports.values():
        total.add(report)
    for reason, count in total.reasons.most_common(5):
        context.log.info(f"{count} Slack events not applied: {reason}")
    events: list[dg.AssetMaterialization | dg.AssetCheckEvaluation] = []
    events += _day_materializations(context, reports, now.date(), slack_sync.first_partition_day)
    pending, age = _lag(engine, now)
    evaluation = _lag_evaluation(pending, age, slack_events.lag_warn_seconds)
    last_report = datetime.fromisoformat(cursor.get("reported_at", "1970-01-01T00:00:00+00:00"))
    handled = total.applied + total.dropped + total.failed
    if (
        handled
        or evaluation.passed != cursor.get("lag_ok", True)
        or (pending and now - last_report >= HEARTBEAT)
    ):
        events.append(
            dg.AssetMaterialization(
                slack_event_inbox.key,
                metadata={
                    "pending_events": pending,
                    "oldest_pending_age_seconds": round(age, 1),
                    "applied": total.applied,
                    "dropped": total.dropped,
                    "failed": total.failed,
                    "waiting_for_message": total.waiting,
                    "days_changed": len(total.message_days),
                },
            )
        )
        events.append(evaluation)
        cursor["reported_at"] = now.isoformat()
        cursor["lag_ok"] = evaluation.passed
    last_prune = datetime.fromisoformat(cursor.get("pruned_at", "1970-01-01T00:00:00+00:00"))
    if now - last_prune >= PRUNE_EVERY:
        retention = timedelta(days=slack_events.retention_days)
        with engine.begin() as connection:
            pruned = prune_applied_events(connection, now - retention)
        if pruned:
            context.log.info(f"Pruned {pruned} applied Slack events older than {retention.days}d")
        cursor["pruned_at"] = now.isoformat()
    return dg.SensorResult(asset_events=events, cursor=json.dumps(cursor, sort_keys=True))
