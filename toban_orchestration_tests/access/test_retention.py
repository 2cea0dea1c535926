"""Retention and workspace deletion against the real database: row counts before and after, what
is kept, the audit events, the schedule's job and the commands."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from toban_orchestration.cli import main
from toban_orchestration.db.enums import (
    IntegrationEventType,
    IntegrationStatus,
    ResourceType,
)
from toban_orchestration.db.models import (
    Integration,
    IntegrationCredential,
    IntegrationEvent,
    ServiceResource,
    SlackAnalysis,
    SlackChannel,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackReaction,
    SlackSyncDay,
    SlackUser,
    SlackWorkspace,
)
from toban_orchestration.defs.maintenance.jobs import slack_retention_job
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.privacy.retention import (
    RetentionConfigError,
    delete_workspace_data,
    purge_before,
    purge_workspace,
)
from toban_orchestration.settings import get_settings
from toban_orchestration_tests.factories import add_slack_integration
from toban_orchestration_tests.helpers import report_pages
from toban_orchestration_tests.support.partitioned_assets import WEEKLY

NOW = datetime.now(UTC).replace(microsecond=0)
RETENTION = 45
CUTOFF = NOW - timedelta(days=RETENTION)
# Days (ago) with messages: three before the cutoff, three after.
DAYS_AGO = (90, 60, 50, 40, 10, 2)
TABLES = (
    SlackMessage,
    SlackReaction,
    SlackAnalysis,
    SlackChannelAnalysis,
    SlackContribution,
    SlackUser,
    SlackChannel,
    SlackSyncDay,
    SlackWorkspace,
    IntegrationCredential,
    ServiceResource,
)


@dataclass
class Seeded:
    slack_id: str
    integration_id: uuid.UUID
    late_reply_id: uuid.UUID


def seed(engine: Engine, slack_id: str = "TRET", retention_days: int | None = RETENTION) -> Seeded:
    """One channel, two people; each day a parent by U1 that U2 reacts to and a reply by U2; a
    thread whose parent is 50 days old gets a reply 40 days ago. Analyses: one wholly before the
    cutoff, one that straddles it, one recent, and a scheduled definition (kept)."""
    with Session(engine) as session, session.begin():
        team, integration = add_slack_integration(
            session, slack_id, team_name="Retention", team_slug=f"ret-{slack_id.lower()}"
        )
        session.add(
            ServiceResource(
                integration_id=integration.id,
                resource_type=ResourceType.SLACK_CHANNEL,
                external_id="CRET",
                name="general",
            )
        )
        metadata = {"retention_days": retention_days} if retention_days else {}
        workspace = SlackWorkspace(
            team_id=team.id, slack_id=slack_id, name="Ret", workspace_metadata=metadata
        )
        session.add(workspace)
        session.flush()
        channel = SlackChannel(workspace_id=workspace.id, slack_id="CRET", name="general")
        one = SlackUser(workspace_id=workspace.id, slack_id="U1", name="one")
        two = SlackUser(workspace_id=workspace.id, slack_id="U2", name="two")
        session.add_all([channel, one, two])
        session.flush()
        parents: dict[int, SlackMessage] = {}
        for ago in DAYS_AGO:
            at = NOW - timedelta(days=ago)
            parent = SlackMessage(
                channel_id=channel.id,
                user_id=one.id,
                slack_ts=f"{int(at.timestamp())}.000100",
                text=f"parent {ago}",
                message_datetime=at,
                is_thread_parent=True,
                reaction_count=1,
            )
            session.add(parent)
            session.flush()
            parents[ago] = parent
            session.add(SlackReaction(message_id=parent.id, user_id=two.id, emoji_name="eyes"))
            session.add(
                SlackMessage(
                    channel_id=channel.id,
                    user_id=two.id,
                    parent_id=parent.id,
                    slack_ts=f"{int(at.timestamp()) + 60}.000100",
                    thread_ts=parent.slack_ts,
                    is_thread_reply=True,
                    text=f"reply {ago}",
                    message_datetime=at + timedelta(minutes=1),
                )
            )
            session.add(SlackSyncDay(channel_id=channel.id, day=at.date(), complete=True))
        late = SlackMessage(
            channel_id=channel.id,
            user_id=two.id,
            parent_id=parents[50].id,
            slack_ts=f"{int((NOW - timedelta(days=40)).timestamp()) + 120}.000100",
            thread_ts=parents[50].slack_ts,
            is_thread_reply=True,
            text="late reply to an old thread",
            message_datetime=NOW - timedelta(days=40, minutes=-2),
        )
        session.add(late)
        windows = {"old": (80, 73), "straddling": (48, 41), "recent": (14, 7)}
        for name, (start, end) in windows.items():
            analysis = SlackAnalysis(
                workspace_id=workspace.id,
                name=name,
                start_date=NOW - timedelta(days=start),
                end_date=NOW - timedelta(days=end),
                status="completed",
            )
            session.add(analysis)
            session.flush()
            session.add(
                SlackChannelAnalysis(
                    analysis_id=analysis.id,
                    channel_id=channel.id,
                    start_date=analysis.start_date,
                    end_date=analysis.end_date,
                    key_highlights=f'one said "parent {start}"',
                )
            )
            for user in (one, two):
                session.add(SlackContribution(analysis_id=analysis.id, user_id=user.id))
                session.add(
                    SlackContribution(
                        analysis_id=analysis.id, user_id=user.id, channel_id=channel.id
                    )
                )
        session.add(
            SlackAnalysis(
                workspace_id=workspace.id,
                name="every week",
                start_date=NOW - timedelta(days=100),
                end_date=NOW - timedelta(days=93),
                is_scheduled=True,
                schedule_frequency="weekly",
            )
        )
        session.flush()
        return Seeded(slack_id, integration.id, late.id)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            str(model.__tablename__): connection.execute(
                select(func.count()).select_from(model)
            ).scalar_one()
            for model in TABLES
        }


def test_a_purge_removes_old_messages_their_reactions_and_the_analyses_that_read_them(
    migrated_engine: Engine, report_directory: Path
) -> None:
    seeded = seed(migrated_engine)
    # Report pages copy names and messages: the windows that start before the cutoff go too.
    old_day, new_day = (CUTOFF - timedelta(days=1)).date(), (CUTOFF + timedelta(days=1)).date()
    report_pages(
        report_directory, seeded.slack_id, f"daily-{old_day}.html", f"weekly-{new_day}.html"
    )
    before = counts(migrated_engine)
    assert before["slack_message"] == 13  # 6 parents, 6 replies, 1 late reply
    assert before["slack_analysis"] == 4

    dry = purge_workspace(migrated_engine, seeded.slack_id, now=NOW, dry_run=True)
    expected = {
        "messages": 6,  # days 90, 60, 50: parent and reply each
        "reactions": 3,
        "analyses": 2,  # the old and the straddling one
        "channel_reports": 2,
        "contributions": 8,
    }
    assert dry.counts == expected
    assert counts(migrated_engine) == before  # a dry run changes nothing

    report = purge_workspace(migrated_engine, seeded.slack_id, now=NOW)
    assert report.cutoff == CUTOFF
    assert report.counts == {**expected, "report_files": 1}
    assert [p.name for p in (report_directory / seeded.slack_id).iterdir()] == [
        f"weekly-{new_day}.html"
    ]
    after = counts(migrated_engine)
    assert after == {
        **before,
        "slack_message": 7,
        "slack_reaction": 0 + 3,
        "slack_analysis": 2,  # the recent one and the scheduled definition
        "slack_channel_analysis": 1,
        "slack_contribution": 4,
    }
    with Session(migrated_engine) as session:
        oldest = session.scalar(select(func.min(SlackMessage.message_datetime)))
        assert oldest is not None
        assert oldest >= CUTOFF
        late = session.get_one(SlackMessage, seeded.late_reply_id)
        assert late.parent_id is None  # its parent was purged; thread_ts still names the thread
        assert late.thread_ts is not None
        names = set(session.scalars(select(SlackAnalysis.name)))
        assert names == {"recent", "every week"}
        (event,) = session.scalars(
            select(IntegrationEvent).where(
                IntegrationEvent.event_type == IntegrationEventType.DATA_PURGED
            )
        ).all()
    assert event.integration_id == seeded.integration_id
    assert event.actor_user_id == "toban-pipeline"
    assert event.details is not None
    assert {k: event.details[k] for k in expected} == expected
    assert "parent" not in str(event.details)  # counts, never content

    again = purge_workspace(migrated_engine, seeded.slack_id, now=NOW)
    assert set(again.counts.values()) == {0}
    assert counts(migrated_engine) == after


def test_retention_shorter_than_what_a_sync_reads_again_is_refused(
    migrated_engine: Engine,
) -> None:
    seed(migrated_engine, retention_days=7)
    with pytest.raises(RetentionConfigError, match=r"TRET.*7 days.*30 days"):
        purge_workspace(migrated_engine, "TRET", now=NOW)
    # The explicit cutoff (what the command's --days gives) is the operator's decision.
    assert purge_before(migrated_engine, "TRET", NOW - timedelta(days=7)).counts["messages"] == 11


def test_without_a_retention_period_nothing_is_purged(migrated_engine: Engine) -> None:
    seed(migrated_engine, retention_days=None)
    before = counts(migrated_engine)
    report = purge_workspace(migrated_engine, "TRET", now=NOW)
    assert report.cutoff is None
    assert counts(migrated_engine) == before


def test_deleting_a_workspace_removes_every_slack_row_and_its_tokens(
    migrated_engine: Engine, report_directory: Path
) -> None:
    seeded = seed(migrated_engine)
    other = seed(migrated_engine, slack_id="TOTHER")
    report_pages(report_directory, seeded.slack_id, "daily-2026-11-02.html", "analysis-1.html")
    report_pages(report_directory, "TOTHER", "daily-2026-11-02.html")
    before = counts(migrated_engine)
    report = delete_workspace_data(migrated_engine, seeded.slack_id, actor="cli:alice")
    assert report.counts == {
        "channels": 1,
        "users": 2,
        "messages": 13,
        "reactions": 6,
        "sync_days": 6,
        "analyses": 4,
        "channel_reports": 3,
        "contributions": 12,
        "credentials": 1,
        "channel_resources": 1,
        "report_files": 2,
    }
    assert not (report_directory / seeded.slack_id).exists()
    assert (report_directory / "TOTHER" / "daily-2026-11-02.html").exists()
    after = counts(migrated_engine)
    # Exactly half of everything: the other workspace is untouched.
    assert after == {table: n // 2 for table, n in before.items()}
    with Session(migrated_engine) as session:
        integration = session.get_one(Integration, seeded.integration_id)
        assert integration.status == IntegrationStatus.DISCONNECTED
        assert session.get_one(Integration, other.integration_id).status == "ACTIVE"
        (event,) = session.scalars(
            select(IntegrationEvent).where(
                IntegrationEvent.event_type == IntegrationEventType.DATA_ERASED
            )
        ).all()
    assert event.actor_user_id == "cli:alice"
    assert event.details is not None
    assert event.details["scope"] == "workspace"
    assert event.details["messages"] == 13
    assert (event.details["from"], event.details["to"]) == ("ACTIVE", "DISCONNECTED")


def test_the_retention_job_and_the_commands(
    app_environment: dict[str, str], migrated_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(migrated_engine)
    seed(migrated_engine, slack_id="TKEEP", retention_days=None)
    before = counts(migrated_engine)

    assert main(["slack", "purge", "--workspace", "TRET", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "TRET: would purge data before" in out
    assert "6 messages, 3 reactions, 2 analyses" in out
    assert counts(migrated_engine) == before

    with dg.instance_for_test() as instance:
        # A weekly analysis of a window long purged-to-be: its run's metadata holds the report.
        instance.add_dynamic_partitions(workspace_partitions.name or "", ["TRET", "TKEEP"])
        old_day = (NOW - timedelta(days=80)).date()
        old_monday = old_day - timedelta(days=old_day.weekday())
        for slack_id in ("TRET", "TKEEP"):
            key = dg.MultiPartitionKey({"date": old_monday.isoformat(), "workspace": slack_id})
            assert dg.materialize(
                [WEEKLY],
                partition_key=key,
                resources=build_resources(get_settings()),
                instance=instance,
            ).success
        assert len(instance.get_runs()) == 2
        result = slack_retention_job.execute_in_process(
            resources=build_resources(get_settings()), instance=instance
        )
        assert result.success
        # TRET's analysis run is gone with its window; TKEEP keeps everything.
        kept = {r.tags.get("dagster/partition/workspace") for r in instance.get_runs()}
        assert kept == {"TKEEP", None}  # None: the retention job's own run
    assert counts(migrated_engine)["slack_message"] == before["slack_message"] - 6

    assert main(["slack", "delete-workspace", "--workspace", "TRET"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["slack", "delete-workspace", "--workspace", "TRET", "--yes"]) == 0
    assert "Deleted Slack workspace TRET" in capsys.readouterr().out
    assert main(["slack", "erase-user", "--workspace", "TKEEP", "--user", "U1"]) == 0
    assert "Erased Slack user U1 of workspace TKEEP: 6 reactions_on_their_messages" in (
        capsys.readouterr().out
    )
    assert main(["slack", "purge", "--workspace", "TNONE"]) == 1
    assert "No Slack workspace TNONE" in capsys.readouterr().err
    with migrated_engine.connect() as connection:
        left = connection.execute(text("SELECT slack_id FROM slack_workspace")).scalars().all()
        actors = connection.execute(
            text("SELECT actor_user_id FROM integration_event WHERE event_type = 'DATA_ERASED'")
        ).scalars()
        assert all(str(a).startswith("cli") for a in actors)
    assert left == ["TKEEP"]
