"""Slack assets: workspace -> users and channels -> messages (with replies) -> reactions."""

from collections.abc import Callable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any

import dagster as dg
from sqlalchemy import Engine

from toban_orchestration.db.assets import app_database_schema
from toban_orchestration.db.resources import AppDatabase
from toban_orchestration.security.tokens import TokenCipher
from toban_orchestration.slack import ingest
from toban_orchestration.slack.client import SlackError
from toban_orchestration.slack.health import day_health
from toban_orchestration.slack.partitions import (
    DATE_DIMENSION,
    WORKSPACE_DIMENSION,
    message_partitions,
    workspace_of_message_partition,
    workspace_partitions,
)
from toban_orchestration.slack.resources import SlackCredentials

SLACK_GROUP = "slack"
# Transient Slack trouble that outlived slack-sdk's own retries (a long outage, a rate limit
# storm) is retried by Dagster with backoff; a dead token is not (see _failure).
SLACK_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL)
# The daily schedules refresh every active workspace once a day: a workspace whose newest sync is
# older than a day and a few hours of slack has missed one.
DAILY_SYNC_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=30), warn_window=timedelta(hours=26)
)


def _metadata(result: ingest.IngestResult, warnings: list[str]) -> dict[str, Any]:
    metadata: dict[str, Any] = dict(result.metadata())
    if warnings:
        metadata["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in warnings))
    return metadata


def _snapshot(
    refresh: Callable[[Engine, TokenCipher | None, str], ingest.IngestResult],
    context: dg.AssetExecutionContext,
    app_database: AppDatabase,
    slack: SlackCredentials,
) -> dg.MaterializeResult[None]:
    """One workspace-partitioned refresh, its failures and its metadata."""
    try:
        result = refresh(app_database.engine(), slack.cipher(), context.partition_key)
    except (ingest.WorkspaceAuthError, SlackError) as error:
        raise _failure(error) from None
    return dg.MaterializeResult(metadata=_metadata(result, result.report.warnings))


def _failure(error: Exception) -> dg.Failure:
    retry = isinstance(error, SlackError) and not isinstance(error, ingest.WorkspaceAuthError)
    return dg.Failure(description=str(error), allow_retries=retry)


@dg.asset(
    partitions_def=workspace_partitions,
    group_name=SLACK_GROUP,
    kinds={"slack", "postgres"},
    deps=[app_database_schema],
    retry_policy=SLACK_RETRY_POLICY,
    freshness_policy=DAILY_SYNC_FRESHNESS,
)
def slack_workspace(
    context: dg.AssetExecutionContext, app_database: AppDatabase, slack: SlackCredentials
) -> dg.MaterializeResult[None]:
    """The workspace's name, domain and connection state (team.info)."""
    return _snapshot(ingest.refresh_workspace, context, app_database, slack)


@dg.asset(
    partitions_def=workspace_partitions,
    group_name=SLACK_GROUP,
    kinds={"slack", "postgres"},
    deps=[slack_workspace],
    retry_policy=SLACK_RETRY_POLICY,
    freshness_policy=DAILY_SYNC_FRESHNESS,
)
def slack_users(
    context: dg.AssetExecutionContext, app_database: AppDatabase, slack: SlackCredentials
) -> dg.MaterializeResult[None]:
    """Every member of the workspace, people and bots (users.list, all pages)."""
    return _snapshot(ingest.refresh_users, context, app_database, slack)


@dg.asset(
    partitions_def=workspace_partitions,
    group_name=SLACK_GROUP,
    kinds={"slack", "postgres"},
    deps=[slack_workspace],
    retry_policy=SLACK_RETRY_POLICY,
    freshness_policy=DAILY_SYNC_FRESHNESS,
)
def slack_channels(
    context: dg.AssetExecutionContext, app_database: AppDatabase, slack: SlackCredentials
) -> dg.MaterializeResult[None]:
    """The workspace's channels (and, only when enabled, DMs), also kept as the integration's
    SLACK_CHANNEL resources."""
    return _snapshot(ingest.refresh_channels, context, app_database, slack)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "slack_messages",
            group_name=SLACK_GROUP,
            kinds={"slack", "postgres"},
            description="Messages and thread replies of the selected channels, by UTC day.",
            freshness_policy=DAILY_SYNC_FRESHNESS,
            deps=[
                dg.AssetDep(slack_users, partition_mapping=workspace_of_message_partition),
                dg.AssetDep(slack_channels, partition_mapping=workspace_of_message_partition),
            ],
        ),
        dg.AssetSpec(
            "slack_reactions",
            group_name=SLACK_GROUP,
            kinds={"slack", "postgres"},
            description="One row per (message, user, emoji), kept in step with the messages.",
            freshness_policy=DAILY_SYNC_FRESHNESS,
            deps=["slack_messages"],
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "replies_have_parents",
            asset="slack_messages",
            description="Every stored reply points at its stored thread parent.",
        ),
        dg.AssetCheckSpec(
            "messages_have_authors",
            asset="slack_messages",
            description="Every message is attributed to a user or a bot (system notices aside).",
        ),
        dg.AssetCheckSpec(
            "day_read_to_last_page",
            asset="slack_messages",
            description="Every selected channel's day was read to its last page (channels the "
            "app cannot read, unsupported or archived without it, aside).",
        ),
        dg.AssetCheckSpec(
            "channels_readable",
            asset="slack_messages",
            description="No selected channel was skipped for its own error (archived, the app "
            "not in it, a missing scope...); a warning that names them and what to do.",
        ),
    ],
    partitions_def=message_partitions,
    retry_policy=SLACK_RETRY_POLICY,
)
def slack_messages_and_reactions(
    context: dg.AssetExecutionContext, app_database: AppDatabase, slack: SlackCredentials
) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
    """Reactions arrive inside the message payloads, so one step reads both."""
    keys = context.partition_key.keys_by_dimension
    day = date.fromisoformat(keys[DATE_DIMENSION])
    try:
        result = ingest.sync_message_days(
            app_database.engine(), slack.cipher(), keys[WORKSPACE_DIMENSION], day, day
        )
    except (ingest.WorkspaceAuthError, SlackError) as error:
        raise _failure(error) from None
    metadata = _metadata(result, result.report.warnings)
    skipped = result.report.channel_errors
    metadata["channels_skipped"] = len(skipped)
    for warning in result.report.warnings:
        context.log.warning(warning)
    yield dg.MaterializeResult(asset_key="slack_messages", metadata=metadata)
    reactions = result.report.reactions
    yield dg.MaterializeResult(
        asset_key="slack_reactions",
        metadata={
            "reactions_inserted": reactions.inserted,
            "reactions_deleted": reactions.deleted,
            "dagster/row_count": result.reaction_row_count,
        },
    )
    health = day_health(app_database.engine(), keys[WORKSPACE_DIMENSION], day)
    for name, bad in (
        ("replies_have_parents", health.orphan_replies),
        ("messages_have_authors", health.authorless_messages),
    ):
        yield dg.AssetCheckResult(
            asset_key="slack_messages",
            check_name=name,
            passed=bad == 0,
            metadata={"failing_rows": bad},
        )
    unread = {
        name: skipped.get(name, "not read to its last page")
        for name in health.incomplete_channel_names
    }
    yield dg.AssetCheckResult(
        asset_key="slack_messages",
        check_name="day_read_to_last_page",
        passed=health.incomplete_channels == 0,
        metadata={"failing_rows": health.incomplete_channels, "channels": _channel_list(unread)},
    )
    yield dg.AssetCheckResult(
        asset_key="slack_messages",
        check_name="channels_readable",
        passed=not skipped,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failing_rows": len(skipped), "channels": _channel_list(skipped)},
    )


def _channel_list(reasons: Mapping[str, str]) -> dg.MetadataValue:
    """Channels and why, one a line: "- #name (slack id): reason"."""
    lines = [f"- {name}: {why}" for name, why in reasons.items()]
    return dg.MetadataValue.md("\n".join(lines) or "none")
