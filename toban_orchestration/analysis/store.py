"""The reader and writer of the analysis tables (slack_analysis, slack_channel_analysis,
slack_contribution) for what is built on top of the analyses: reports, charts and trends.

Each function takes a SQLAlchemy connection and returns plain rows or dataclasses, so the
rendering above it stays pure. (The analysis runner's own writes still live in `run.py`; they
move here as the layering of issue 18 goes on.)
"""

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Date, and_, cast, distinct, func, or_, select, true, union
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased

from toban_orchestration.access.queries import readable_channels
from toban_orchestration.analysis.window import analyzable, includes_bots
from toban_orchestration.db.enums import AnalysisStatus, ScheduleFrequency
from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannel,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackReaction,
    SlackUser,
    SlackWorkspace,
)

# --- reports and charts (issue 19) ------------------------------------------------------------
# What a window's report shows, read in one go: the analysis and its workspace, each channel's
# stored report, every person's scores (overall and per channel) with the messages that earned
# them, and the activity per day. Everything is read from the stored rows: a report never
# re-runs an analysis.


@dataclass(frozen=True)
class ReportWorkspace:
    slack_id: str
    name: str
    domain: str | None
    """Slack's subdomain (`acme` of acme.slack.com), for message links; None for some imports."""


@dataclass(frozen=True)
class ReportChannel:
    channel_id: uuid.UUID
    slack_id: str
    name: str
    message_count: int
    participant_count: int
    thread_count: int
    reaction_count: int
    summary: str | None
    topics: str | None
    contributor_insights: str | None
    highlights: str | None
    status: str
    error_message: str | None


@dataclass(frozen=True)
class Person:
    user_id: uuid.UUID
    slack_id: str
    handle: str | None
    """The Slack username (`ulla.berg`): what `@` completes to."""
    display_name: str | None
    real_name: str | None


@dataclass(frozen=True)
class NotableMessage:
    channel_slack_id: str
    channel_name: str
    ts: str
    thread_ts: str | None
    text: str
    reason: str


@dataclass(frozen=True)
class PersonScores:
    person: Person
    channel_id: uuid.UUID | None
    """None: the overall row (all channels of the analysis)."""
    problem_solving: float
    knowledge_sharing: float
    team_coordination: float
    engagement: float
    total: float
    message_count: int
    thread_reply_count: int
    reactions_given: int
    reactions_received: int
    insight: str | None
    notable: tuple[NotableMessage, ...] = ()


@dataclass(frozen=True)
class DayActivity:
    day: date
    messages: int
    threads: int
    """Threads with a message that day (the parent or a reply)."""


@dataclass(frozen=True)
class ReportInputs:
    """Everything a window's report, charts and previews are made of."""

    analysis_id: uuid.UUID
    analysis_name: str
    analysis_type: str | None
    start: datetime
    end: datetime
    status: str
    model: str | None
    workspace: ReportWorkspace
    channels: list[ReportChannel] = field(default_factory=list)
    """Ordered by name."""
    overall: list[PersonScores] = field(default_factory=list)
    """Ordered by total, highest first (then by Slack id)."""
    per_channel: list[PersonScores] = field(default_factory=list)
    days: list[DayActivity] = field(default_factory=list)


class AnalysisNotFound(LookupError):
    """No stored analysis matches what was asked for."""


def window_analysis_id(
    connection: Connection, workspace_slack_id: str, analysis_type: str, start: date | None
) -> uuid.UUID:
    """The analysis of a workspace's window (its type and first day; None: the latest window).
    Raises AnalysisNotFound naming the windows that exist, or the workspaces, when there is
    none."""
    workspace_id = connection.execute(
        select(SlackWorkspace.id).where(SlackWorkspace.slack_id == workspace_slack_id)
    ).scalar_one_or_none()
    if workspace_id is None:
        known = connection.execute(
            select(SlackWorkspace.slack_id, SlackWorkspace.name).order_by(SlackWorkspace.slack_id)
        ).all()
        listed = ", ".join(f"{slack_id} ({name})" for slack_id, name in known) or "none"
        raise AnalysisNotFound(
            f"no Slack workspace {workspace_slack_id} is registered (registered: {listed})"
        )
    rows = connection.execute(
        select(SlackAnalysis.id, SlackAnalysis.start_date)
        .where(
            SlackAnalysis.workspace_id == workspace_id,
            SlackAnalysis.analysis_type == analysis_type,
        )
        .order_by(SlackAnalysis.start_date)
    ).all()
    for analysis_id, analysis_start in reversed(rows):
        if start is None or analysis_start.date() == start:
            found: uuid.UUID = analysis_id
            return found
    recent = ", ".join(s.date().isoformat() for _, s in rows[-5:]) or "none yet"
    starting = "" if start is None else f" starting {start.isoformat()}"
    raise AnalysisNotFound(
        f"{workspace_slack_id} has no {analysis_type} analysis{starting} (latest windows: "
        f"{recent}); materialize slack_channel_analyses_{analysis_type} for it first"
    )


def report_inputs(connection: Connection, analysis_id: uuid.UUID) -> ReportInputs:
    analysis = connection.execute(
        select(SlackAnalysis).where(SlackAnalysis.id == analysis_id)
    ).one_or_none()
    if analysis is None:
        raise AnalysisNotFound(f"no slack_analysis row {analysis_id}")
    row = analysis._mapping
    workspace = connection.execute(
        select(SlackWorkspace.slack_id, SlackWorkspace.name, SlackWorkspace.domain).where(
            SlackWorkspace.id == row["workspace_id"]
        )
    ).one()
    channels = _report_channels(connection, analysis_id)
    people = _person_scores(connection, analysis_id)
    return ReportInputs(
        analysis_id=analysis_id,
        analysis_name=row["name"],
        analysis_type=row["analysis_type"],
        start=row["start_date"],
        end=row["end_date"],
        status=row["status"],
        model=row["llm_model"],
        workspace=ReportWorkspace(*workspace),
        channels=channels,
        overall=[p for p in people if p.channel_id is None],
        per_channel=[p for p in people if p.channel_id is not None],
        days=_activity_per_day(
            connection,
            [c.channel_id for c in channels],
            row["start_date"],
            row["end_date"],
            include_bots=includes_bots(row["parameters"]),
        ),
    )


def _report_channels(connection: Connection, analysis_id: uuid.UUID) -> list[ReportChannel]:
    report = SlackChannelAnalysis
    rows = connection.execute(
        select(
            report.channel_id,
            SlackChannel.slack_id,
            SlackChannel.name,
            report.message_count,
            report.participant_count,
            report.thread_count,
            report.reaction_count,
            report.channel_summary.label("summary"),
            report.topic_analysis.label("topics"),
            report.contributor_insights,
            report.key_highlights.label("highlights"),
            report.status,
            report.error_message,
        )
        .join(SlackChannel, SlackChannel.id == report.channel_id)
        .where(report.analysis_id == analysis_id)
        .order_by(SlackChannel.name, SlackChannel.slack_id)
    )
    return [ReportChannel(**r._asdict()) for r in rows]


def _person_scores(connection: Connection, analysis_id: uuid.UUID) -> list[PersonScores]:
    c = SlackContribution
    rows = connection.execute(
        select(
            c.user_id,
            SlackUser.slack_id,
            SlackUser.name,
            SlackUser.display_name,
            SlackUser.real_name,
            c.channel_id,
            c.problem_solving_score,
            c.knowledge_sharing_score,
            c.team_coordination_score,
            c.engagement_score,
            c.total_score,
            c.message_count,
            c.thread_reply_count,
            c.reaction_given_count,
            c.reaction_received_count,
            c.insights,
            c.notable_contributions,
        )
        .join(SlackUser, SlackUser.id == c.user_id)
        .where(c.analysis_id == analysis_id)
        .order_by(c.total_score.desc().nulls_last(), SlackUser.slack_id, c.channel_id)
    ).all()
    # notable_contributions: [{"message_id", "ts", "reason"}] (per-channel rows; see run.py)
    cited = [
        str(item.get("message_id"))
        for r in rows
        for item in r.notable_contributions or []
        if isinstance(item, dict)
    ]
    messages = _notable_messages(connection, cited)
    out: list[PersonScores] = []
    for r in rows:
        notable = tuple(
            replace(messages[str(item.get("message_id"))], reason=str(item.get("reason") or ""))
            for item in r.notable_contributions or []
            if isinstance(item, dict) and str(item.get("message_id")) in messages
        )
        out.append(
            PersonScores(
                person=Person(r.user_id, r.slack_id, r.name, r.display_name, r.real_name),
                channel_id=r.channel_id,
                problem_solving=float(r.problem_solving_score or 0.0),
                knowledge_sharing=float(r.knowledge_sharing_score or 0.0),
                team_coordination=float(r.team_coordination_score or 0.0),
                engagement=float(r.engagement_score or 0.0),
                total=float(r.total_score or 0.0),
                message_count=r.message_count,
                thread_reply_count=r.thread_reply_count,
                reactions_given=r.reaction_given_count,
                reactions_received=r.reaction_received_count,
                insight=r.insights,
                notable=notable,
            )
        )
    return out


def _notable_messages(connection: Connection, message_ids: list[str]) -> dict[str, NotableMessage]:
    """The cited messages that still exist and are not deleted in Slack (a report must not show
    what Slack no longer shows)."""
    ids: list[uuid.UUID] = []
    for message_id in message_ids:
        try:
            ids.append(uuid.UUID(message_id))
        except ValueError:
            continue  # stored by an older model answer: nothing to link
    if not ids:
        return {}
    rows = connection.execute(
        select(
            SlackMessage.id,
            SlackChannel.slack_id,
            SlackChannel.name,
            SlackMessage.slack_ts,
            SlackMessage.thread_ts,
            SlackMessage.is_thread_reply,
            SlackMessage.processed_text,
        )
        .join(SlackChannel, SlackChannel.id == SlackMessage.channel_id)
        .where(SlackMessage.id.in_(ids), SlackMessage.is_deleted.is_(False))
    )
    return {
        str(mid): NotableMessage(channel, name, ts, thread_ts if is_reply else None, text or "", "")
        for mid, channel, name, ts, thread_ts, is_reply, text in rows
    }


def _activity_per_day(
    connection: Connection,
    channel_ids: list[uuid.UUID],
    start: datetime,
    end: datetime,
    *,
    include_bots: bool,
) -> list[DayActivity]:
    """Messages and active threads per UTC day of the window, over the analyzed channels,
    counted as the analysis counts them (`window.analyzable`). Days without a message are 0."""
    counts: dict[date, tuple[int, int]] = {}
    if channel_ids:
        day = cast(func.timezone("UTC", SlackMessage.message_datetime), Date)
        in_thread = or_(SlackMessage.is_thread_reply, SlackMessage.reply_count > 0)
        thread = func.coalesce(SlackMessage.thread_ts, SlackMessage.slack_ts)
        thread_key = func.concat(SlackMessage.channel_id, ":", thread)
        rows = connection.execute(
            select(
                day,
                func.count(),
                func.count(distinct(thread_key)).filter(in_thread),
            )
            .join(SlackUser, SlackUser.id == SlackMessage.user_id)
            .where(
                and_(
                    SlackMessage.channel_id.in_(channel_ids),
                    *analyzable(start, end, include_bots=include_bots),
                )
            )
            .group_by(day)
        )
        counts = {d: (int(m), int(t)) for d, m, t in rows}
    days: list[DayActivity] = []
    current, last = start.date(), (end - timedelta(microseconds=1)).date()
    while current <= last:
        messages, threads = counts.get(current, (0, 0))
        days.append(DayActivity(current, messages, threads))
        current += timedelta(days=1)
    return days


# --- trends (issue 19, people over time) ---------------------------------------------------
# A person's weekly scores come from the per-channel contribution rows of the workspace's weekly
# window analyses (the rows `slack_contributions_weekly` partitions write), read only for the
# channels a team may read; `analysis/trends.py` scores, ranks and draws them. Nothing is stored:
# each materialization reads the current rows, so a re-analyzed week or an erased person shows
# at once.

# Analyses somebody asked for (or a schedule started) may cover other channels than the
# pipeline's own analysis of the same week: trends read only the latter.
_REQUESTED_ANALYSIS_PARAMETERS = ("team_id", "requested_by", "schedule_id")
_FINISHED = (AnalysisStatus.COMPLETED.value, AnalysisStatus.FAILED.value)


@dataclass(frozen=True)
class ChannelWeekRow:
    """One stored per-channel contribution row of a weekly analysis."""

    week: date
    """First day (a Monday, UTC) of the analysis' week."""
    user_id: uuid.UUID
    channel: str
    """The channel's name."""
    total_score: float | None
    """The channel's stored total (with a model, it includes the model's judgement)."""
    signals: Mapping[str, Any] | None
    """`insights_data["signals"]`: what the rubric scores; None in rows stored without it."""


@dataclass(frozen=True)
class TeamWeeks:
    """What one team may see of a workspace's people in some weeks."""

    weeks: list[date]
    analyzed: set[date]
    """The weeks that have a finished window analysis."""
    rows: list[ChannelWeekRow]
    """Per-channel rows of the channels the team may read, nothing else."""
    people: list[Person]
    """The people of those rows."""


def workspace_and_owner(
    connection: Connection, workspace_slack_id: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """The workspace's id and the team that owns it (whose view the pipeline's analyses are)."""
    row = connection.execute(
        select(SlackWorkspace.id, SlackWorkspace.team_id).where(
            SlackWorkspace.slack_id == workspace_slack_id
        )
    ).one_or_none()
    if row is None:
        raise AnalysisNotFound(f"no Slack workspace {workspace_slack_id} is registered")
    return row.id, row.team_id


def weekly_window_analyses(
    connection: Connection, workspace_id: uuid.UUID, weeks: Sequence[date]
) -> dict[uuid.UUID, date]:
    """The finished weekly window analysis of each of these weeks (Monday to Monday, UTC) that
    has one: analysis id -> first day of its week."""
    if not weeks:
        return {}
    starts = [datetime(week.year, week.month, week.day, tzinfo=UTC) for week in weeks]
    a = SlackAnalysis
    rows = connection.execute(
        select(a.id, a.start_date)
        .where(
            a.workspace_id == workspace_id,
            a.analysis_type == ScheduleFrequency.WEEKLY.value,
            a.start_date.in_(starts),
            a.end_date == a.start_date + timedelta(days=7),
            a.status.in_(_FINISHED),
            a.created_by_user_id.is_(None),
            or_(
                a.parameters.is_(None),
                ~a.parameters.has_any(postgresql.array(_REQUESTED_ANALYSIS_PARAMETERS)),
            ),
        )
        # Two rows of one week (should not happen): the one that finished last.
        .ext(postgresql.distinct_on(a.start_date))
        .order_by(a.start_date, a.completion_time.desc().nulls_last(), a.id)
    )
    return {analysis_id: start.astimezone(UTC).date() for analysis_id, start in rows}


def channel_week_rows(
    connection: Connection,
    analyses: Mapping[uuid.UUID, date],
    channel_ids: Collection[uuid.UUID],
) -> list[ChannelWeekRow]:
    """The per-channel contribution rows of these analyses in these channels."""
    if not analyses or not channel_ids:
        return []
    c = SlackContribution
    rows = connection.execute(
        select(c.analysis_id, c.user_id, SlackChannel.name, c.total_score, c.insights_data)
        .join(SlackChannel, SlackChannel.id == c.channel_id)
        .where(c.analysis_id.in_(list(analyses)), c.channel_id.in_(list(channel_ids)))
    )
    return [
        ChannelWeekRow(
            week=analyses[analysis_id],
            user_id=user_id,
            channel=name,
            total_score=total,
            signals=data.get("signals") if isinstance(data, dict) else None,
        )
        for analysis_id, user_id, name, total, data in rows
    ]


def people_by_id(connection: Connection, user_ids: Collection[uuid.UUID]) -> list[Person]:
    if not user_ids:
        return []
    rows = connection.execute(
        select(
            SlackUser.id,
            SlackUser.slack_id,
            SlackUser.name,
            SlackUser.display_name,
            SlackUser.real_name,
        ).where(SlackUser.id.in_(list(user_ids)))
    )
    return [Person(*row) for row in rows]


def window_people(
    connection: Connection,
    channel_ids: Collection[uuid.UUID],
    start: datetime,
    end: datetime,
    *,
    include_bots: bool = False,
) -> list[Person]:
    """Everyone an analysis of these channels over [start, end) names: the authors of the
    messages it counts and who reacted to them (bots only with `include_bots`), as
    `window.load_channel_window` reads them. The analysis runner labels people from them
    before any channel is analyzed, so every channel's text tells the same namesakes apart."""
    if not channel_ids:
        return []
    counted = (
        select(SlackMessage.id, SlackMessage.user_id)
        .join(SlackUser, SlackUser.id == SlackMessage.user_id)
        .where(
            SlackMessage.channel_id.in_(list(channel_ids)),
            *analyzable(start, end, include_bots=include_bots),
        )
        .cte("counted")
    )
    reactor = aliased(SlackUser)
    reactors = (
        select(SlackReaction.user_id)
        .join(counted, counted.c.id == SlackReaction.message_id)
        .join(reactor, reactor.id == SlackReaction.user_id)
        .where(true() if include_bots else reactor.is_bot.is_(False))
    )
    named = union(select(counted.c.user_id), reactors).subquery()
    rows = connection.execute(
        select(
            SlackUser.id,
            SlackUser.slack_id,
            SlackUser.name,
            SlackUser.display_name,
            SlackUser.real_name,
        )
        .where(SlackUser.id.in_(select(named.c.user_id)))
        .order_by(SlackUser.slack_id)
    )
    return [Person(*row) for row in rows]


def team_weeks(
    connection: Connection,
    team_id: uuid.UUID,
    workspace_id: uuid.UUID,
    weeks: Sequence[date],
    at: datetime | None = None,
) -> TeamWeeks:
    """A team's view of the workspace's people in these weeks: the rows of the channels the
    team may read at `at` (default: now, by the rules of `access/queries.py`), and so only the
    people with a contribution in one of them. A team without access sees nobody."""
    with Session(bind=connection) as session:
        readable = readable_channels(session, team_id, workspace_id, at)
    analyses = weekly_window_analyses(connection, workspace_id, weeks)
    rows = channel_week_rows(connection, analyses, readable)
    people = people_by_id(connection, {row.user_id for row in rows})
    return TeamWeeks(list(weeks), set(analyses.values()), rows, people)
