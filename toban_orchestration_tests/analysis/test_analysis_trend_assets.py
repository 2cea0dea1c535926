"""People over time on the real database: three weeks of a workspace analyzed by the real
analysis (offline analyzer), read back as the owning team sees them (equal to the stored overall
rows), as a team with a grant on one channel sees them (only that channel's people and scores),
and as a team without access sees them (nobody); then the Dagster asset follows the weekly
analysis through its automation condition and shows movers and charts in its metadata."""

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from toban_orchestration.analysis.report import md_text
from toban_orchestration.analysis.run import run_analysis, window_analysis
from toban_orchestration.analysis.store import team_weeks
from toban_orchestration.analysis.trends import PersonTrend, Trends, trend_weeks, trends_of
from toban_orchestration.db.enums import AccessLevel, IntegrationType, ResourceType, ShareLevel
from toban_orchestration.db.models import (
    Integration,
    IntegrationShare,
    ResourceAccess,
    ServiceResource,
    SlackAnalysis,
    SlackChannel,
    SlackContribution,
    SlackUser,
    SlackWorkspace,
    Team,
    slack_analysis_channels,
)
from toban_orchestration.definitions import defs
from toban_orchestration.defs.analysis.trend_assets import TRENDS_ASSET
from toban_orchestration.defs.maintenance.dagster_history import workspace_runs
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.settings import get_settings
from toban_orchestration.slack.normalize import NameLookup, user_row
from toban_orchestration.slack.store import SlackStore
from toban_orchestration.slack.sync import ChannelRef, ChannelSync, SyncReport
from toban_orchestration_tests.support.partitioned_assets import TRENDS, WEEKLY

WORKSPACE = "TTREND"
# The last three complete weeks (Monday to Monday, UTC): a daemon's first evaluation catches up
# only recent weeks, so the test's weeks move with the clock.
_TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
FIRST_WEEK = _TODAY - timedelta(days=_TODAY.weekday(), weeks=3)
WEEKS = [FIRST_WEEK + timedelta(weeks=n) for n in range(3)]
THIS_WEEK = WEEKS[-1].date()
# Slack id -> (handle, display name, real name); two people both go by "alex".
PEOPLE = {
    "UANN": ("ann", "ann", "Ann Berg"),
    "UKIM": ("alex.kim", "alex", "Alex Kim"),
    "UPARK": ("alex.park", "alex", "Alex Park"),
    "UCAT": ("cat", "cat", "Cat Ode"),
}
# channel -> author -> messages in each of the three weeks
WRITING = {
    "general": {"UANN": (6, 5, 1), "UKIM": (2, 2, 2), "UCAT": (0, 0, 2)},
    "eng": {"UPARK": (1, 3, 5), "UCAT": (0, 1, 8)},
}
CHANNEL_IDS = {"general": "CGEN", "eng": "CENG"}


@dataclass
class Seeded:
    engine: Engine
    workspace_id: uuid.UUID
    teams: dict[str, uuid.UUID]
    analyses: dict[date, uuid.UUID]


def _messages(channel: str, authors: dict[str, tuple[int, int, int]]) -> list[dict[str, Any]]:
    """Plain notes, plans (coordination) and links (knowledge), so each dimension moves."""
    out: list[dict[str, Any]] = []
    for week, start in enumerate(WEEKS):
        minute = 60
        for author, counts in authors.items():
            for n in range(counts[week]):
                minute += 11
                ts = f"{int((start + timedelta(minutes=minute)).timestamp())}.000100"
                text = (
                    f"let's schedule the {channel} release tomorrow, <@UANN>"
                    if n % 3 == 1
                    else f"notes: <https://docs.example.invalid/{n}|docs> for {channel}"
                    if n % 3 == 2
                    else f"status {n} in {channel}"
                )
                out.append({"ts": ts, "user": author, "text": text})
    return out


def seed_and_analyze(engine: Engine) -> Seeded:
    """Workspace TTREND of team Owner; team Limited holds a LIMITED_ACCESS share with a grant
    on #eng; team Outsider holds nothing. Three weeks are stored and analyzed."""
    with Session(engine) as session, session.begin():
        teams = {name: Team(name=name, slug=name.lower()) for name in ("Owner", "Limited", "Out")}
        session.add_all(teams.values())
        session.flush()
        workspace = SlackWorkspace(team_id=teams["Owner"].id, slack_id=WORKSPACE, name="Trend")
        integration = Integration(
            name="Trend Slack",
            service_type=IntegrationType.SLACK,
            owner_team_id=teams["Owner"].id,
            workspace_id=WORKSPACE,
        )
        session.add_all([workspace, integration])
        session.flush()
        eng = ServiceResource(
            integration_id=integration.id,
            resource_type=ResourceType.SLACK_CHANNEL,
            external_id=CHANNEL_IDS["eng"],
            name="eng",
        )
        share = IntegrationShare(
            integration_id=integration.id,
            team_id=teams["Limited"].id,
            share_level=ShareLevel.LIMITED_ACCESS,
        )
        session.add_all([eng, share])
        session.flush()
        session.add(
            ResourceAccess(
                resource_id=eng.id, team_id=teams["Limited"].id, access_level=AccessLevel.READ
            )
        )
        workspace_id = workspace.id
        team_ids = {name: team.id for name, team in teams.items()}
    with engine.begin() as connection:
        store = SlackStore(connection, workspace_id)
        store.upsert_users(
            user_row({"id": slack_id, "name": handle, "real_name": real, "profile": {}})
            | {"display_name": display}
            for slack_id, (handle, display, real) in PEOPLE.items()
        )
        store.upsert_channels(
            [
                {"slack_id": slack_id, "name": name, "type": "public", "is_archived": False}
                for name, slack_id in CHANNEL_IDS.items()
            ],
            select_public=True,
            join_public=True,
            from_export=False,
        )
    with Session(engine) as session:
        channels = {
            name: id_ for name, id_ in session.execute(select(SlackChannel.name, SlackChannel.id))
        }
    names = {slack_id: display for slack_id, (_, display, _) in PEOPLE.items()}
    for name, authors in WRITING.items():
        ChannelSync(
            None,
            engine,
            workspace_id,
            ChannelRef(channels[name], CHANNEL_IDS[name], name, "public"),
            NameLookup(users=names, channels={}),
            SyncReport(),
        ).store_page(_messages(name, authors))
    return Seeded(engine, workspace_id, team_ids, {})


def analyze(seeded: Seeded, weeks: list[datetime]) -> None:
    for start in weeks:
        analysis_id = window_analysis(
            seeded.engine, WORKSPACE, "weekly", start, start + timedelta(days=7)
        )
        run_analysis(seeded.engine, analysis_id)
        seeded.analyses[start.date()] = analysis_id


def scheduled_team_analysis(seeded: Seeded, team: str, channel: str) -> uuid.UUID:
    """A team's scheduled weekly analysis of this week over one channel, run after the
    pipeline's own analysis of the same window."""
    start = WEEKS[-1]
    with Session(seeded.engine) as session, session.begin():
        analysis = SlackAnalysis(
            workspace_id=seeded.workspace_id,
            name=f"{team} weekly",
            start_date=start,
            end_date=start + timedelta(days=7),
            analysis_type="weekly",
            parameters={"team_id": str(seeded.teams[team]), "schedule_id": str(uuid.uuid4())},
        )
        session.add(analysis)
        session.flush()
        channel_id = session.scalars(select(SlackChannel.id).where(SlackChannel.name == channel))
        session.execute(
            insert(slack_analysis_channels).values(
                analysis_id=analysis.id, channel_id=channel_id.one()
            )
        )
        analysis_id = analysis.id
    run_analysis(seeded.engine, analysis_id)
    return analysis_id


def _view(seeded: Seeded, team: str, weeks: int = 3) -> Trends:
    with seeded.engine.connect() as connection:
        view = team_weeks(
            connection, seeded.teams[team], seeded.workspace_id, trend_weeks(THIS_WEEK, weeks)
        )
    return trends_of(view)


def _by_label(trends: Trends) -> dict[str, PersonTrend]:
    return {person.label: person for person in trends.people}


def _stored_totals(engine: Engine, analysis_id: uuid.UUID, channel: str | None) -> dict[str, float]:
    """Stored totals of an analysis, per person's Slack id: the overall rows, or one channel's."""
    c = SlackContribution
    query = (
        select(SlackUser.slack_id, c.total_score)
        .join(SlackUser, SlackUser.id == c.user_id)
        .where(c.analysis_id == analysis_id)
    )
    if channel is None:
        query = query.where(c.channel_id.is_(None))
    else:
        query = query.join(SlackChannel, SlackChannel.id == c.channel_id).where(
            SlackChannel.name == channel
        )
    with engine.connect() as connection:
        return {slack_id: float(total or 0.0) for slack_id, total in connection.execute(query)}


SLACK_ID_OF = {
    "ann": "UANN",
    "alex (Alex Kim)": "UKIM",
    "alex (Alex Park)": "UPARK",
    "cat": "UCAT",
}


def test_each_team_sees_the_people_and_scores_of_the_channels_it_may_read(
    db_session: Session,
) -> None:
    engine = db_session.get_bind()
    assert isinstance(engine, Engine)
    seeded = seed_and_analyze(engine)
    analyze(seeded, WEEKS)
    # Finished last, over #eng only: the trends must keep reading the pipeline's own analysis.
    scheduled_team_analysis(seeded, "Limited", "eng")

    owner = _view(seeded, "Owner")
    assert set(_by_label(owner)) == set(SLACK_ID_OF)  # namesakes told apart by real name
    # The owning team reads every analyzed channel: its view is the stored overall rows, week
    # by week (0 for a week someone wrote nothing in).
    for index, week in enumerate(WEEKS):
        stored = _stored_totals(engine, seeded.analyses[week.date()], None)
        seen = {
            SLACK_ID_OF[p.label]: scores.total
            for p in owner.people
            if (scores := p.scores[index]) is not None
        }
        assert seen == {slack_id: stored.get(slack_id, 0.0) for slack_id in SLACK_ID_OF.values()}
    rises, falls = owner.movers()
    assert [p.label for p in rises][:1] == ["cat"]
    assert [p.label for p in falls] == ["ann"]
    cat = _by_label(owner)["cat"]
    assert [name for name, _ in cat.channels] == ["eng", "general"]

    # LIMITED_ACCESS with a grant on #eng: only #eng's people, scored on #eng alone.
    limited = _view(seeded, "Limited")
    # Alex Park's namesake is out of its view: no qualifier hints at somebody it may not see.
    assert set(_by_label(limited)) == {"alex", "cat"}
    on_eng = _stored_totals(engine, seeded.analyses[THIS_WEEK], "eng")
    limited_cat = _by_label(limited)["cat"]
    assert limited_cat.latest is not None
    assert cat.latest is not None
    assert limited_cat.latest.total == on_eng["UCAT"]
    assert limited_cat.latest.total != cat.latest.total  # #general is not in its view
    assert [name for name, _ in limited_cat.channels] == ["eng"]

    # A team that holds nothing of the workspace sees nobody.
    assert _view(seeded, "Out").people == ()


def _requested(instance: dg.DagsterInstance, cursor: Any) -> tuple[set[str], Any]:
    result = dg.evaluate_automation_conditions(
        defs=defs,
        instance=instance,
        asset_selection=dg.AssetSelection.assets(TRENDS_ASSET),
        cursor=cursor,
    )
    requested = {str(k) for k in result.get_requested_partitions(dg.AssetKey(TRENDS_ASSET))}
    return requested, result.cursor


def test_the_asset_follows_the_weekly_analysis_and_shows_movers_and_charts(
    app_environment: dict[str, str], migrated_engine: Engine, project_instance: dg.DagsterInstance
) -> None:
    seeded = seed_and_analyze(migrated_engine)
    analyze(seeded, WEEKS[:2])  # earlier weeks, analyzed before
    project_instance.add_dynamic_partitions(workspace_partitions.name or "", [WORKSPACE])
    key = dg.MultiPartitionKey({"date": THIS_WEEK.isoformat(), "workspace": WORKSPACE})

    requested, cursor = _requested(project_instance, None)
    assert requested == set()  # no weekly scores materialized yet
    analyzed = dg.materialize(
        [WEEKLY], partition_key=key, resources=build_resources(get_settings()),
        instance=project_instance,
    )  # fmt: skip
    assert analyzed.success
    requested, cursor = _requested(project_instance, cursor)
    assert requested == {str(key)}  # this week's trends follow this week's scores
    # A daemon that starts after the scores were made (the demo's UI) asks on its first tick.
    assert _requested(project_instance, None)[0] == {str(key)}

    result = dg.materialize(
        [TRENDS],
        partition_key=key,
        resources=build_resources(get_settings()),
        instance=project_instance,
    )
    assert result.success
    requested, cursor = _requested(project_instance, cursor)
    assert requested == set()  # handled: not asked for twice

    (materialization,) = result.asset_materializations_for_node(TRENDS_ASSET)
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == len(PEOPLE)
    assert metadata["weeks_analyzed"].value == 3
    first = (THIS_WEEK - timedelta(weeks=11)).isoformat()
    assert metadata["weeks"].value == f"{first} to {THIS_WEEK.isoformat()}"
    movers = str(metadata["moved_most_this_week"].value)
    assert "| ▲ | cat |" in movers
    assert "| ▼ | ann |" in movers
    assert "\\#eng" in movers  # in which channel
    totals = str(metadata["weekly_totals"].value)
    assert md_text("alex (Alex Kim)") in totals
    assert md_text("alex (Alex Park)") in totals
    assert totals.count("n/a") == 9 * len(PEOPLE)  # 12 weeks shown, 3 analyzed
    chart = str(metadata["trend_chart"].value)
    encoded = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", chart)
    assert encoded is not None
    png = base64.b64decode(encoded.group(1))
    assert png.startswith(b"\x89PNG")
    assert len(png) < 300_000

    # Its runs hold people's names and scores: erasure and workspace deletion find them.
    assert result.run_id in workspace_runs(project_instance, WORKSPACE, analyses_only=True)
