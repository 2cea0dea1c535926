"""Slack assets: workspace -> users and channels -> messages (with replies) -> reactions."""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any

import dagster as dg
from pydantic import Field
from sqlalchemy import Connection, Engine

from toban_orchestration.db.engine import database_now
from toban_orchestration.defs.platform.assets import app_database_schema
from toban_orchestration.defs.platform.resources import AppDatabase
from toban_orchestration.defs.slack import admin_metadata
from toban_orchestration.defs.slack.partitions import (
    DATE_DIMENSION,
    WORKSPACE_DIMENSION,
    message_partitions,
    workspace_of_message_partition,
    workspace_partitions,
)
from toban_orchestration.defs.slack.resources import SlackCredentials, SlackSyncSettings
from toban_orchestration.security.tokens import TokenCipher
from toban_orchestration.slack import ingest
from toban_orchestration.slack.client import SlackError, SlackRefusedError
from toban_orchestration.slack.health import day_health

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
    state: Callable[[Connection, str], Mapping[str, dg.MetadataValue]] | None = None,
) -> dg.MaterializeResult[None]:
    """One workspace-partitioned refresh, its failures and its metadata (with `state`: what
    the workspace now holds, e.g. its selected channels, read after the refresh)."""
    metadata = _snapshot_metadata(
        refresh, app_database.engine(), slack.cipher(), context.partition_key, state
    )
    return dg.MaterializeResult(metadata=metadata)


def _snapshot_metadata(
    refresh: Callable[[Engine, TokenCipher | None, str], ingest.IngestResult],
    engine: Engine,
    cipher: TokenCipher | None,
    slack_id: str,
    state: Callable[[Connection, str], Mapping[str, dg.MetadataValue]] | None = None,
) -> dict[str, Any]:
    """What a snapshot asset's materialization carries, whichever run refreshed it (its own
    asset run, or a new workspace's first range run)."""
    try:
        result = refresh(engine, cipher, slack_id)
    except (ingest.WorkspaceAuthError, SlackError) as error:
        raise _failure(error) from None
    metadata = _metadata(result, result.report.warnings)
    if state is not None:
        with engine.connect() as connection:
            metadata |= state(connection, slack_id)
    return metadata


def _failure(error: Exception) -> dg.Failure:
    """A Dagster failure that is retried only when a retry can help (not a dead token, not a
    refused scope or permission: those wait for a person)."""
    retry = isinstance(error, SlackError) and not isinstance(
        error, ingest.WorkspaceAuthError | SlackRefusedError
    )
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
    context: dg.AssetExecutionContext,
    app_database: AppDatabase,
    slack: SlackCredentials,
    slack_sync: SlackSyncSettings,
) -> dg.MaterializeResult[None]:
    """The workspace's name, domain and connection state (team.info); its metadata shows the
    workspace's sync settings."""
    return _snapshot(
        ingest.refresh_workspace,
        context,
        app_database,
        slack,
        partial(admin_metadata.workspace_settings_metadata, slack_sync=slack_sync),
    )


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
    SLACK_CHANNEL resources. Its metadata lists the channels selected for sync and analysis."""
    return _snapshot(
        ingest.refresh_channels, context, app_database, slack, admin_metadata.channels_metadata
    )


def build_message_assets(partitions_start_date: str) -> dg.AssetsDefinition:
    """`slack_messages` and `slack_reactions` (one step), by UTC day from
    `partitions_start_date` and workspace."""
    return dg.multi_asset(
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
                description="Every message is attributed to a user or a bot (system notices "
                "aside).",
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
        partitions_def=message_partitions(partitions_start_date),
        retry_policy=SLACK_RETRY_POLICY,
    )(slack_messages_and_reactions)


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
    for check in day_checks(app_database.engine(), keys[WORKSPACE_DIMENSION], day, skipped):
        yield dg.AssetCheckResult(
            asset_key="slack_messages",
            check_name=check.name,
            passed=check.passed,
            severity=check.severity,
            metadata=check.metadata,
        )


@dataclass(frozen=True)
class DayCheck:
    name: str
    passed: bool
    severity: dg.AssetCheckSeverity
    metadata: dict[str, Any]


def day_checks(
    engine: Engine, slack_id: str, day: date, skipped: Mapping[str, str]
) -> list[DayCheck]:
    """The checks of one day partition of `slack_messages`, whichever run synced it (a day
    run, or a range run that reports each of its days)."""
    health = day_health(engine, slack_id, day)
    error = dg.AssetCheckSeverity.ERROR
    unread = {
        name: skipped.get(name, "not read to its last page")
        for name in health.incomplete_channel_names
    }
    return [
        DayCheck(
            "replies_have_parents",
            health.orphan_replies == 0,
            error,
            {"failing_rows": health.orphan_replies},
        ),
        DayCheck(
            "messages_have_authors",
            health.authorless_messages == 0,
            error,
            {"failing_rows": health.authorless_messages},
        ),
        DayCheck(
            "day_read_to_last_page",
            health.incomplete_channels == 0,
            error,
            {"failing_rows": health.incomplete_channels, "channels": _channel_list(unread)},
        ),
        DayCheck(
            "channels_readable",
            not skipped,
            dg.AssetCheckSeverity.WARN,
            {"failing_rows": len(skipped), "channels": _channel_list(skipped)},
        ),
    ]


def _channel_list(reasons: Mapping[str, str]) -> dg.MetadataValue:
    """Channels and why, one a line: "- #name (slack id): reason"."""
    lines = [f"- {name}: {why}" for name, why in reasons.items()]
    return dg.MetadataValue.md("\n".join(lines) or "none")


# --- ranges of days in one run -------------------------------------------------------------


class MessageRangeConfig(dg.Config):
    """One workspace's days [first, last] (UTC, inclusive), read in one run."""

    workspace: str = Field(description="The Slack team id (the workspace partition), T...")
    first: str = Field(description="First UTC day, YYYY-MM-DD")
    last: str = Field(description="Last UTC day, YYYY-MM-DD (at most yesterday)")
    snapshot_first: bool = Field(
        default=False,
        description="Refresh the workspace, its users and its channels before the messages, "
        "reported as materializations of slack_workspace, slack_users and slack_channels: a "
        "new workspace's first sync in one run instead of a snapshot run and then this one.",
    )

    def days(self) -> tuple[date, date]:
        try:
            first, last = date.fromisoformat(self.first), date.fromisoformat(self.last)
        except ValueError as error:
            raise dg.Failure(
                description=f"config first/last: {error}", allow_retries=False
            ) from None
        if first > last:
            raise dg.Failure(
                description=f"config first {first} is after last {last}", allow_retries=False
            )
        return first, last


def _report_snapshot(
    context: dg.OpExecutionContext,
    engine: Engine,
    cipher: TokenCipher | None,
    slack_id: str,
    slack_sync: SlackSyncSettings,
) -> None:
    """The snapshot assets' refreshes in their lineage order, each reported as its
    workspace partition's materialization with the metadata its own asset gives. Why in this
    run: a run process takes seconds to start (more on a busy host), and a new workspace's
    messages cannot be read before its channels are stored, so a separate snapshot run put two
    launches before the first history call."""
    steps: list[
        tuple[str, Callable[[Engine, TokenCipher | None, str], ingest.IngestResult], Any]
    ] = [
        (
            "slack_workspace",
            ingest.refresh_workspace,
            partial(admin_metadata.workspace_settings_metadata, slack_sync=slack_sync),
        ),
        ("slack_users", ingest.refresh_users, None),
        ("slack_channels", ingest.refresh_channels, admin_metadata.channels_metadata),
    ]
    for asset, refresh, state in steps:
        metadata = _snapshot_metadata(refresh, engine, cipher, slack_id, state)
        context.log_event(dg.AssetMaterialization(asset, partition=slack_id, metadata=metadata))


def _range_partition(day: date, slack_id: str) -> str:
    return str(
        dg.MultiPartitionKey({DATE_DIMENSION: day.isoformat(), WORKSPACE_DIMENSION: slack_id})
    )


@dg.op(retry_policy=SLACK_RETRY_POLICY, tags={"kind": "slack"})
def sync_slack_message_range(
    context: dg.OpExecutionContext,
    config: MessageRangeConfig,
    app_database: AppDatabase,
    slack: SlackCredentials,
    slack_sync: SlackSyncSettings,
) -> None:
    """Read each selected channel's history over the whole range (one page per `page_size`
    messages, however many days it spans), then report every day of it as a materialization
    of its `slack_messages` and `slack_reactions` partitions, with that day's figures and
    checks, exactly as a day run would. With `snapshot_first`, the workspace, users and
    channels are refreshed (and reported) first, as `slack_workspace_snapshot_job` would."""
    first, last = config.days()
    engine = app_database.engine()
    if config.snapshot_first:
        _report_snapshot(context, engine, slack.cipher(), config.workspace, slack_sync)
    # The database's clock, as created_at/updated_at use it: rows written from now on are
    # this run's.
    began = database_now(engine)
    try:
        result = ingest.sync_message_days(
            engine, slack.cipher(), config.workspace, first, last, progress=context.log.info
        )
    except (ingest.WorkspaceAuthError, SlackError) as error:
        raise _failure(error) from None
    for warning in result.report.warnings:
        context.log.warning(warning)
    skipped = result.report.channel_errors
    summaries = ingest.summarize_days(engine, config.workspace, first, last, began)
    span = f"{first}..{last}"
    for day, summary in sorted(summaries.items()):
        key = _range_partition(day, config.workspace)
        context.log_event(
            dg.AssetMaterialization(
                "slack_messages",
                partition=key,
                metadata={
                    "dagster/row_count": summary.messages,
                    "messages_inserted": summary.messages_inserted,
                    "messages_updated": summary.messages_updated,
                    "channels_synced": summary.channels_synced,
                    "channels_skipped": len(skipped),
                    "api_calls": summary.api_calls,
                    "range": span,
                },
            )
        )
        context.log_event(
            dg.AssetMaterialization(
                "slack_reactions",
                partition=key,
                metadata={"dagster/row_count": summary.reactions, "range": span},
            )
        )
        for check in day_checks(engine, config.workspace, day, skipped):
            # log_event's annotation lists fewer types than it handles: it logs check
            # evaluations too (dagster's OpExecutionContext.log_event).
            context.log_event(
                dg.AssetCheckEvaluation(  # type: ignore[arg-type]
                    asset_key=dg.AssetKey("slack_messages"),
                    check_name=check.name,
                    passed=check.passed,
                    severity=check.severity,
                    metadata=check.metadata,
                    partition=key,
                )
            )
    context.log.info(
        f"{config.workspace} {span}: {len(summaries)} days, "
        f"{result.report.messages.inserted} messages inserted, "
        f"{result.stats.total_calls} Slack calls"
    )


@dg.job(
    description="Messages, replies and reactions of one workspace over a range of days, read "
    "in one run (a backfill, a new workspace's first sync, a catch-up): each day is reported "
    "as its slack_messages/slack_reactions partition.",
    tags={"kind": "slack"},
)
def slack_messages_range_job() -> None:
    sync_slack_message_range()
