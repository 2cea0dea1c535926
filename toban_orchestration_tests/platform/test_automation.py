"""The integration sensor and the daily schedule, through Dagster's test APIs against the
project's PostgreSQL-backed instance."""

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from toban_orchestration.analysis.requests import advance, last_window
from toban_orchestration.db.enums import (
    IntegrationStatus,
    ScheduleFrequency,
)
from toban_orchestration.db.models import (
    Integration,
    IntegrationEvent,
    SlackAnalysis,
    SlackChannel,
    SlackSyncDay,
    SlackWorkspace,
    Team,
    slack_analysis_channels,
)
from toban_orchestration.defs.analysis.sensors import build_analysis_sensors
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.schedules import build_daily_schedules
from toban_orchestration.defs.slack.sensors import build_slack_integration_sensor
from toban_orchestration.settings import get_settings
from toban_orchestration.slack import store as slack_store
from toban_orchestration.slack.planning import days_to_sync, ensure_workspaces
from toban_orchestration_tests.factories import FAKE_CIPHERTEXT, add_slack_integration

# Built as the root definitions build them, with values of the test's own.
slack_integration_sensor = build_slack_integration_sensor(minimum_interval_seconds=30)
daily_slack_sync, daily_slack_snapshot = build_daily_schedules("0 2 * * *", "UTC")
slack_analysis_request_sensor, _ = build_analysis_sensors(minimum_interval_seconds=30)


def _add_integration(engine: Engine, slack_id: str, team_slug: str) -> Integration:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        _, integration = add_slack_integration(
            session, slack_id, team_name=team_slug, team_slug=team_slug
        )
        return integration


def _set_status(engine: Engine, integration: Integration, status: IntegrationStatus) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(Integration).where(Integration.id == integration.id).values(status=status)
        )


def _range_days(requests: Sequence[dg.RunRequest]) -> dict[str, list[str]]:
    """The days the range runs among `requests` cover, per workspace."""
    days: dict[str, list[str]] = {}
    for request in requests:
        if request.job_name != "slack_messages_range_job":
            continue
        config = request.run_config["ops"]["sync_slack_message_range"]["config"]
        first, last = date.fromisoformat(config["first"]), date.fromisoformat(config["last"])
        days.setdefault(config["workspace"], []).extend(
            (first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)
        )
        assert request.tags["slack_workspace"] == config["workspace"]
    return days


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=build_resources(get_settings())
    ) as context:
        result = slack_integration_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_a_new_integration_becomes_a_partition_with_its_runs_and_only_once(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    integration = _add_integration(migrated_engine, "TNEW00001", "acme")
    first = _tick(project_instance, None)
    requests = first.run_requests or []
    jobs = [r.job_name for r in requests]
    backfill = get_settings().backfill_days
    # the whole backfill window in one range run, not one run per day, which refreshes the
    # workspace, users and channels first: no separate snapshot run to launch before it
    assert jobs == ["slack_messages_range_job"]
    config = requests[0].run_config["ops"]["sync_slack_message_range"]["config"]
    assert config["snapshot_first"] is True
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    covered = _range_days(requests)["TNEW00001"]
    assert len(covered) == backfill
    assert covered[-1] == yesterday
    adds = first.dynamic_partitions_requests or []
    assert [list(a.partition_keys) for a in adds] == [["TNEW00001"]]
    with Session(migrated_engine) as session:  # the workspace row is created and linked
        workspace = session.scalars(select(SlackWorkspace)).one()
        assert (workspace.slack_id, workspace.access_token) == ("TNEW00001", FAKE_CIPHERTEXT)

    second = _tick(project_instance, first.cursor)
    assert not second.run_requests
    assert not second.dynamic_partitions_requests

    _set_status(migrated_engine, integration, IntegrationStatus.REVOKED)
    stopped = _tick(project_instance, second.cursor)
    assert not stopped.run_requests
    assert json.loads(stopped.cursor or "{}")[str(integration.id)] == "REVOKED"


def test_reconnecting_resumes_without_refetching_complete_days(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    integration = _add_integration(migrated_engine, "TBACK0001", "beta")
    cursor = _tick(project_instance, None).cursor
    _set_status(migrated_engine, integration, IntegrationStatus.EXPIRED)
    cursor = _tick(project_instance, cursor).cursor
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    with Session(migrated_engine) as session, session.begin():
        workspace = session.scalars(select(SlackWorkspace)).one()
        channel = SlackChannel(
            workspace_id=workspace.id, slack_id="C1", name="general", is_selected_for_analysis=True
        )
        session.add(channel)
        session.flush()
        for n in range(1, 11):  # the ten days before yesterday are complete
            session.add(
                SlackSyncDay(
                    channel_id=channel.id, day=yesterday - timedelta(days=n), complete=True
                )
            )
    _set_status(migrated_engine, integration, IntegrationStatus.ACTIVE)
    resumed = _tick(project_instance, cursor)
    requests = resumed.run_requests or []
    days = sorted(_range_days(requests)["TBACK0001"])
    # two stretches of missing days around the ten complete ones: two range runs, the first
    # of which refreshes the snapshot (the second waits for it: one run per workspace)
    assert [r.job_name for r in requests] == ["slack_messages_range_job"] * 2
    configs = [r.run_config["ops"]["sync_slack_message_range"]["config"] for r in requests]
    assert [c.get("snapshot_first", False) for c in configs] == [True, False]
    assert len(days) == get_settings().backfill_days - 10
    assert yesterday.isoformat() in days
    assert (yesterday - timedelta(days=1)).isoformat() not in days


def test_one_tick_plans_each_new_workspace_from_its_own_synced_days(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    for n in range(3):
        _add_integration(migrated_engine, f"TMANY000{n}", f"many-{n}")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    with Session(migrated_engine) as session, session.begin():
        team = session.scalars(select(Team).where(Team.slug == "many-1")).one()
        workspace = SlackWorkspace(team_id=team.id, slack_id="TMANY0001", name="known")
        session.add(workspace)
        session.flush()
        channel = SlackChannel(
            workspace_id=workspace.id, slack_id="C1", name="general", is_selected_for_analysis=True
        )
        session.add(channel)
        session.flush()
        session.add_all(
            SlackSyncDay(channel_id=channel.id, day=yesterday - timedelta(days=n), complete=True)
            for n in range(1, 11)
        )
    result = _tick(project_instance, None)
    per_workspace = {
        slack_id: len(days) for slack_id, days in _range_days(result.run_requests or []).items()
    }
    backfill = get_settings().backfill_days
    assert per_workspace == {
        "TMANY0000": backfill,
        "TMANY0001": backfill - 10,
        "TMANY0002": backfill,
    }
    with Session(migrated_engine) as session:  # the two missing workspace rows were made, once each
        names = dict(session.execute(select(SlackWorkspace.slack_id, SlackWorkspace.name)).all())
        assert names == {
            "TMANY0000": "Slack TMANY0000",
            "TMANY0001": "known",
            "TMANY0002": "Slack TMANY0002",
        }


def test_a_selected_channel_of_a_type_the_settings_leave_out_is_not_waited_for(
    app_environment: dict[str, str], migrated_engine: Engine
) -> None:
    """A private channel stays selected when `include_private_channels` is turned off, but no
    sync reads it: its days must not stay missing forever (a range run every day for nothing)."""
    _add_integration(migrated_engine, "TTYPE0001", "types")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    with Session(migrated_engine) as session, session.begin():
        team = session.scalars(select(Team).where(Team.slug == "types")).one()
        workspace = SlackWorkspace(
            team_id=team.id,
            slack_id="TTYPE0001",
            name="types",
            workspace_metadata={"sync": {"include_private_channels": False}},
        )
        session.add(workspace)
        session.flush()
        public, private = (
            SlackChannel(
                workspace_id=workspace.id,
                slack_id=slack_id,
                name=slack_id.lower(),
                type=kind,
                is_selected_for_analysis=True,
            )
            for slack_id, kind in (("C1", "public"), ("G1", "private"))
        )
        session.add_all([public, private])
        session.flush()
        session.add_all(
            SlackSyncDay(channel_id=public.id, day=yesterday - timedelta(days=n), complete=True)
            for n in range(3)
        )
    with migrated_engine.connect() as connection:
        missing = days_to_sync(connection, ["TTYPE0001"], yesterday, 5)["TTYPE0001"]
    assert missing == [yesterday - timedelta(days=n) for n in (4, 3)]
    with migrated_engine.begin() as connection:
        connection.execute(
            update(SlackWorkspace)
            .where(SlackWorkspace.slack_id == "TTYPE0001")
            .values(workspace_metadata={"sync": {"include_private_channels": True}})
        )
        missing = days_to_sync(connection, ["TTYPE0001"], yesterday, 5)["TTYPE0001"]
    assert len(missing) == 5  # now the private channel is read, and it has no day yet


def test_the_daily_schedule_syncs_yesterday_for_active_workspaces_only(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    _add_integration(migrated_engine, "TDAY00001", "gamma")
    revoked = _add_integration(migrated_engine, "TOFF00001", "delta")
    _set_status(migrated_engine, revoked, IntegrationStatus.REVOKED)
    when = datetime(2026, 11, 20, 2, tzinfo=UTC)
    with dg.build_schedule_context(
        instance=project_instance,
        scheduled_execution_time=when,
        resources=build_resources(get_settings()),
    ) as context:
        requests = daily_slack_sync(context)
    assert isinstance(requests, list)
    covered = _range_days(requests)
    assert set(covered) == {"TDAY00001"}  # not the revoked workspace
    assert covered["TDAY00001"][-1] == "2026-11-19"
    # nothing synced yet: the month is caught up, in one range run with yesterday, but not
    # before the first day partition (TOBAN_PARTITIONS_START_DATE)
    settings = get_settings()
    assert len(covered["TDAY00001"]) == settings.backfill_days_to(when.date() - timedelta(days=1))
    first = when.date() - timedelta(days=settings.backfill_days)
    assert covered["TDAY00001"][0] == max(first, settings.first_partition_day).isoformat()
    assert len(requests) == 1


def test_the_daily_snapshot_refreshes_channels_and_users_of_active_workspaces_only(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    _add_integration(migrated_engine, "TSNAP0001", "epsilon")
    expired = _add_integration(migrated_engine, "TSNAP0002", "zeta")
    _set_status(migrated_engine, expired, IntegrationStatus.EXPIRED)
    with dg.build_schedule_context(
        instance=project_instance,
        scheduled_execution_time=datetime(2026, 11, 20, 2, tzinfo=UTC),
        resources=build_resources(get_settings()),
    ) as context:
        requests = daily_slack_snapshot(context)
    assert isinstance(requests, list)
    assert [(r.partition_key, r.tags.get("slack_workspace")) for r in requests] == [
        ("TSNAP0001", "TSNAP0001")
    ]
    assert requests[0].run_key == "snapshot:TSNAP0001:2026-11-20"  # once per day


def _request_tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=build_resources(get_settings())
    ) as context:
        result = slack_analysis_request_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _workspace(engine: Engine) -> SlackWorkspace:
    _add_integration(engine, "TANALYSIS", "epsilon")
    with Session(engine, expire_on_commit=False) as session, session.begin():
        workspace = SlackWorkspace(
            team_id=session.scalars(select(Team.id)).one(), slack_id="TANALYSIS", name="A"
        )
        session.add(workspace)
        session.flush()
        session.add(
            SlackChannel(
                workspace_id=workspace.id,
                slack_id="C9",
                name="general",
                is_selected_for_analysis=True,
            )
        )
        return workspace


def test_a_requested_analysis_is_run_once(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    workspace = _workspace(migrated_engine)
    with Session(migrated_engine) as session, session.begin():
        session.add(
            SlackAnalysis(
                workspace_id=workspace.id,
                name="Q4 review",
                start_date=datetime(2026, 10, 1, tzinfo=UTC),
                end_date=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
    first = _request_tick(project_instance, None)
    requests = first.run_requests or []
    assert len(requests) == 1
    config = requests[0].run_config["ops"]["run_requested_analysis"]["config"]
    with Session(migrated_engine) as session:
        assert config["analysis_id"] == str(session.scalars(select(SlackAnalysis.id)).one())
    assert not _request_tick(project_instance, first.cursor).run_requests


def test_a_due_scheduled_analysis_runs_once_and_advances(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    workspace = _workspace(migrated_engine)
    due = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0) - timedelta(days=9)
    with Session(migrated_engine) as session, session.begin():
        schedule = SlackAnalysis(
            workspace_id=workspace.id,
            name="Weekly team report",
            start_date=due,
            end_date=due,
            is_scheduled=True,
            schedule_frequency="weekly",
            next_run_at=due,
        )
        session.add(schedule)
        session.flush()
        schedule_id = schedule.id
    first = _request_tick(project_instance, None)
    assert len(first.run_requests or []) == 1
    with Session(migrated_engine) as session:
        schedule = session.get_one(SlackAnalysis, schedule_id)
        assert schedule.next_run_at == due + timedelta(days=14)  # the next future slot
        run = session.scalars(select(SlackAnalysis).where(SlackAnalysis.id != schedule_id)).one()
        assert (run.start_date, run.end_date) == last_window(ScheduleFrequency.WEEKLY, due)
        assert run.parameters == {"schedule_id": str(schedule_id)}
        linked = session.execute(
            select(slack_analysis_channels.c.channel_id).where(
                slack_analysis_channels.c.analysis_id == run.id
            )
        ).all()
        assert len(linked) == 1
    second = _request_tick(project_instance, first.cursor)
    assert not second.run_requests
    with Session(migrated_engine) as session:
        assert len(session.scalars(select(SlackAnalysis)).all()) == 2


def test_windows_and_advancing_per_frequency() -> None:
    due = datetime(2026, 12, 1, 6, tzinfo=UTC)
    assert last_window(ScheduleFrequency.DAILY, due) == (
        datetime(2026, 11, 30, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert last_window(ScheduleFrequency.MONTHLY, due) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert advance(ScheduleFrequency.MONTHLY, due) == datetime(2027, 1, 1, 6, tzinfo=UTC)
    assert advance(ScheduleFrequency.WEEKLY, due) == due + timedelta(days=7)


def test_ensure_workspaces_creates_the_missing_reconnects_the_active_and_audits_both(
    migrated_engine: Engine,
) -> None:
    # Issue 18 split these statements between access/store.py (integrations, credentials,
    # events) and slack/store.py (workspaces); what the sensor's helper does must not change.
    first = _add_integration(migrated_engine, "TENS00001", "ens-a")
    later = _add_integration(migrated_engine, "TENS00001", "ens-d")  # same workspace, newer
    back = _add_integration(migrated_engine, "TENS00002", "ens-b")
    expired = _add_integration(migrated_engine, "TENS00003", "ens-c")
    _set_status(migrated_engine, expired, IntegrationStatus.EXPIRED)
    with Session(migrated_engine) as session, session.begin():
        for integration in (back, expired):
            session.add(
                SlackWorkspace(
                    team_id=integration.owner_team_id,
                    slack_id=integration.workspace_id,
                    name="stored",
                    is_connected=False,
                    connection_status="token_revoked",
                )
            )
    ids = [first.id, later.id, back.id, expired.id]
    with migrated_engine.begin() as connection:
        assert ensure_workspaces(connection, ids) == 1
    with Session(migrated_engine) as session:
        workspaces = {
            w.slack_id: (w.team_id, w.is_connected, w.connection_status, w.access_token)
            for w in session.scalars(select(SlackWorkspace))
        }
        events = sorted(
            (
                e.event_type.value,
                e.integration_id,
                e.affected_team_id,
                (e.details or {}).get("workspace"),
            )
            for e in session.scalars(select(IntegrationEvent))
        )
    # The first integration connected owns the new workspace and carries its token.
    assert workspaces["TENS00001"] == (first.owner_team_id, True, None, FAKE_CIPHERTEXT)
    assert workspaces["TENS00002"][1:3] == (True, "active")
    assert workspaces["TENS00003"][1:3] == (False, "token_revoked")
    assert events == sorted(
        [
            ("CONNECTED", first.id, first.owner_team_id, "TENS00001"),
            ("RECONNECTED", back.id, back.owner_team_id, "TENS00002"),
        ]
    )


def test_admin_workspaces_show_the_integration_of_the_owning_team_only(
    migrated_engine: Engine,
) -> None:
    # Issue 18 turned one join (workspace, team, integration) into reads of slack/store.py and
    # access/store.py; what the administration commands see must not change.
    owned = _add_integration(migrated_engine, "TADM00001", "adm-a")
    _add_integration(migrated_engine, "TADM00001", "adm-b")  # another team's, not shown
    foreign = _add_integration(migrated_engine, "TADM00002", "adm-d")
    with Session(migrated_engine) as session, session.begin():
        session.get_one(Integration, owned.id).integration_metadata = {"source": "api"}
        other = Team(name="adm-c", slug="adm-c")
        lone = Team(name="adm-e", slug="adm-e")
        session.add_all([other, lone])
        session.flush()
        session.add_all(
            [
                SlackWorkspace(team_id=owned.owner_team_id, slack_id="TADM00001", name="one"),
                SlackWorkspace(team_id=other.id, slack_id="TADM00002", name="two"),
                SlackWorkspace(team_id=lone.id, slack_id="TADM00003", name="three"),
            ]
        )
    with migrated_engine.connect() as connection:
        every = slack_store.admin_workspaces(connection)
        one = slack_store.admin_workspaces(connection, "TADM00002")
        none = slack_store.admin_workspaces(connection, "TNOPE0000")
    shown = [
        (w.slack_id, w.team_slug, w.integration_id, w.integration_status, w.source) for w in every
    ]
    assert shown == [
        ("TADM00001", "adm-a", owned.id, IntegrationStatus.ACTIVE, "api"),
        ("TADM00002", "adm-c", None, None, None),  # adm-d's integration is not the owner's
        ("TADM00003", "adm-e", None, None, None),
    ]
    assert foreign.id not in {w.integration_id for w in every}
    assert [w.slack_id for w in one] == ["TADM00002"]
    assert one[0] == every[1]
    assert none == []
