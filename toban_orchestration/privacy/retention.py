"""Retention (messages older than a workspace's period are purged, with what was derived from
them) and deletion of a whole workspace's Slack data.

Retention period: `slack_workspace.workspace_metadata["retention_days"]`, else
TOBAN_RETENTION_DAYS, else none (kept until deleted). It may not be shorter than the days a sync
reads again (TOBAN_BACKFILL_DAYS and the workspace's `thread_lookback_days`): a shorter one
would have the next sync store the purged messages again.

What a purge removes, in one transaction per workspace: messages whose `message_datetime` is
before the cutoff, their reactions, and every analysis (non-scheduled `slack_analysis` row, with
its channel reports, contribution rows and channel links) whose window starts before the cutoff:
those read, counted and may quote the purged messages. Replies newer than the cutoff stay (their
`parent_id` becomes NULL, `thread_ts` still names the thread). Scheduled analysis definitions,
`slack_sync_day` rows (counts only, and what stops the catch-up schedule from fetching purged
days again), users and channels stay.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.access import store as access_store
from toban_orchestration.analysis import store as analysis_store
from toban_orchestration.analysis.report_files import remove_reports
from toban_orchestration.db.enums import IntegrationEventType, IntegrationStatus
from toban_orchestration.db.models import SlackWorkspace
from toban_orchestration.privacy.audit import PIPELINE_ACTOR, record
from toban_orchestration.settings import Settings, get_settings
from toban_orchestration.slack import store as slack_store
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration.slack.workspaces import WorkspaceNotFoundError

RETENTION_KEY = "retention_days"


class RetentionConfigError(ValueError):
    """A retention period that cannot work (names the workspace and the values)."""


@dataclass
class PurgeReport:
    slack_id: str
    cutoff: datetime | None
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    analysis_ids: list[str] = field(default_factory=list)
    """The analyses purged (their Dagster runs hold report previews: see dagster_history)."""

    def line(self) -> str:
        if self.cutoff is None:
            return f"{self.slack_id}: no retention period, nothing purged"
        verb = "would purge" if self.dry_run else "purged"
        parts = ", ".join(f"{n} {what}" for what, n in self.counts.items())
        return f"{self.slack_id}: {verb} data before {self.cutoff:%Y-%m-%d %H:%M} UTC: {parts}"


def retention_days(workspace: SlackWorkspace, settings: Settings | None = None) -> int | None:
    """The workspace's retention period in days (None: kept until deleted), checked."""
    settings = settings or get_settings()
    raw = (workspace.workspace_metadata or {}).get(RETENTION_KEY, settings.retention_days)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise RetentionConfigError(
            f"Slack workspace {workspace.slack_id}: {RETENTION_KEY} must be a whole number of "
            f"days (at least 1), not {raw!r}."
        )
    resync = max(settings.backfill_days, SyncOptions.of_workspace(workspace).thread_lookback_days)
    if raw < resync:
        raise RetentionConfigError(
            f"Slack workspace {workspace.slack_id}: a retention of {raw} days is shorter than "
            f"the {resync} days a sync reads again (TOBAN_BACKFILL_DAYS, thread_lookback_days); "
            "purged messages would come back. Use at least that many days."
        )
    return raw


def purge_all(
    engine: Engine,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: str = PIPELINE_ACTOR,
    settings: Settings | None = None,
) -> list[PurgeReport]:
    """The scheduled purge: every workspace with a retention period."""
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        slack_ids = slack_store.all_workspace_slack_ids(connection)
    return [
        purge_workspace(engine, s, now=now, dry_run=dry_run, actor=actor, settings=settings)
        for s in slack_ids
    ]


def purge_workspace(
    engine: Engine,
    slack_id: str,
    *,
    now: datetime | None = None,
    days: int | None = None,
    dry_run: bool = False,
    actor: str = PIPELINE_ACTOR,
    settings: Settings | None = None,
) -> PurgeReport:
    """Purge one workspace by its retention period (or `days`, for the command's override)."""
    now = now or datetime.now(UTC)
    with Session(engine) as session:
        workspace = _workspace(session, slack_id)
        period = days if days is not None else retention_days(workspace, settings)
    if period is None:
        return PurgeReport(slack_id, None, dry_run)
    return purge_before(
        engine, slack_id, now - timedelta(days=period), dry_run=dry_run, actor=actor
    )


def purge_before(
    engine: Engine,
    slack_id: str,
    cutoff: datetime,
    *,
    dry_run: bool = False,
    actor: str = PIPELINE_ACTOR,
) -> PurgeReport:
    report = PurgeReport(slack_id, cutoff, dry_run)
    with Session(engine) as session, session.begin():
        workspace_id = _workspace(session, slack_id).id
        connection = session.connection()
        report.counts = {
            **slack_store.counts_before(connection, workspace_id, cutoff),
            **analysis_store.counts_of_analyses_before(connection, workspace_id, cutoff),
        }
        report.analysis_ids = analysis_store.ids_of_analyses_before(
            connection, workspace_id, cutoff
        )
        if dry_run:
            return report
        # Reactions and messages, then the analyses (their reports, contributions and channel
        # links cascade).
        slack_store.delete_messages_before(connection, workspace_id, cutoff)
        analysis_store.delete_analyses_before(connection, workspace_id, cutoff)
        record(
            session,
            slack_id,
            IntegrationEventType.DATA_PURGED,
            actor,
            {"reason": "retention", "cutoff": cutoff.isoformat(), **report.counts},
        )
    report.counts["report_files"] = remove_reports(
        get_settings().report_directory,
        slack_id,
        before=cutoff.date(),
        analysis_ids=report.analysis_ids,
    )
    return report


@dataclass
class DeletionReport:
    slack_id: str
    counts: dict[str, int]

    def line(self) -> str:
        parts = ", ".join(f"{n} {what}" for what, n in self.counts.items())
        return f"Deleted Slack workspace {self.slack_id}: {parts}"


def delete_workspace_data(
    engine: Engine, slack_id: str, *, actor: str = PIPELINE_ACTOR
) -> DeletionReport:
    """Every Slack row of the workspace goes (workspace, channels, users, messages, reactions,
    sync days, analyses and their reports and scores), and its tokens with it. The integration
    row stays, DISCONNECTED, so the audit trail has something to hang on, and reconnecting the
    workspace later starts from nothing."""
    with Session(engine) as session, session.begin():
        workspace = _workspace(session, slack_id)
        connection = session.connection()
        counts = {
            **slack_store.workspace_row_counts(connection, workspace.id),
            **analysis_store.workspace_analysis_counts(connection, workspace.id),
        }
        integration = access_store.first_slack_integration(session, slack_id)
        if integration is not None:
            counts["credentials"] = access_store.credential_count(connection, integration.id)
            counts["channel_resources"] = access_store.slack_resource_count(
                connection, integration.id
            )
        # Children first: reactions and messages, the analyses, then the workspace row.
        slack_store.delete_workspace_messages(connection, workspace.id)
        analysis_store.delete_workspace_analyses(connection, workspace.id)
        slack_store.delete_workspace_row(connection, workspace.id)
        if integration is not None:
            access_store.delete_credentials(connection, integration.id)
            access_store.delete_slack_resources(connection, integration.id)
            previous = access_store.set_integration_status(
                integration, IntegrationStatus.DISCONNECTED
            )
            counts_with_status = {**counts, "from": previous.value, "to": "DISCONNECTED"}
        else:
            counts_with_status = dict(counts)
        record(
            session,
            slack_id,
            IntegrationEventType.DATA_ERASED,
            actor,
            {"scope": "workspace", **counts_with_status},
        )
    counts["report_files"] = remove_reports(get_settings().report_directory, slack_id)
    return DeletionReport(slack_id, counts)


def _workspace(session: Session, slack_id: str) -> SlackWorkspace:
    workspace = slack_store.stored_workspace(session, slack_id)
    if workspace is None:
        raise WorkspaceNotFoundError(f"No Slack workspace {slack_id} is registered.")
    return workspace
