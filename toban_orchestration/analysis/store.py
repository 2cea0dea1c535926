"""The reader and writer of the analysis tables (slack_analysis, slack_channel_analysis,
slack_contribution, slack_analysis_channels), and of the messages and users an analysis reads:
the one module of the analysis domain that issues SQL (issue 18).

Each function takes the caller's SQLAlchemy connection or session (the caller owns the
transaction) and returns plain rows, dataclasses or model objects, so the state machine,
scoring and rendering above it stay plain code.
"""

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Table,
    and_,
    cast,
    delete,
    distinct,
    func,
    insert,
    or_,
    select,
    true,
    union,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased

from toban_orchestration.access import store as access_store
from toban_orchestration.access.rules import Action, role_may
from toban_orchestration.access.store import readable_channels
from toban_orchestration.analysis.window import (
    ChannelWindow,
    WindowMessage,
    WindowReaction,
    includes_bots,
)
from toban_orchestration.db.enums import AnalysisStatus, MessageKind, ScheduleFrequency
from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannel,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackReaction,
    SlackUser,
    SlackWorkspace,
    slack_analysis_channels,
)
from toban_orchestration.db.upsert import upsert

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


def analyzable(start: datetime, end: datetime, *, include_bots: bool) -> list[ColumnElement[bool]]:
    """The messages an analysis of [start, end) counts (joined with their SlackUser author):
    not deleted, with an author, of kind message (not a system notice), and not a bot's unless
    `include_bots`."""
    conditions = [
        SlackMessage.message_datetime >= start,
        SlackMessage.message_datetime < end,
        SlackMessage.is_deleted.is_(False),
        SlackMessage.user_id.isnot(None),
        SlackMessage.kind == MessageKind.MESSAGE.value,
    ]
    if not include_bots:
        conditions.append(SlackUser.is_bot.is_(False))
    return conditions


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
    team may read at `at` (default: now, by the rules of `access/store.py`), and so only the
    people with a contribution in one of them. A team without access sees nobody."""
    with Session(bind=connection) as session:
        readable = readable_channels(session, team_id, workspace_id, at)
    analyses = weekly_window_analyses(connection, workspace_id, weeks)
    rows = channel_week_rows(connection, analyses, readable)
    people = people_by_id(connection, {row.user_id for row in rows})
    return TeamWeeks(list(weeks), set(analyses.values()), rows, people)


# --- the analysis runner's reads and writes (issue 18) ---------------------------------------
# run.py keeps the state machine and the scoring; it opens the transactions (one per step, so
# progress shows while a run goes on) and hands them to these functions.

channel_analysis_table: Table = SlackChannelAnalysis.__table__  # type: ignore[assignment]
contribution_table: Table = SlackContribution.__table__  # type: ignore[assignment]


def count_analyzable_messages(
    connection: Connection,
    channel_ids: list[uuid.UUID],
    start: datetime,
    end: datetime,
    *,
    include_bots: bool = False,
) -> dict[uuid.UUID, int]:
    """Per channel, how many messages `load_channel_window` would read now."""
    rows = connection.execute(
        select(SlackMessage.channel_id, func.count())
        .join(SlackUser, SlackUser.id == SlackMessage.user_id)
        .where(
            SlackMessage.channel_id.in_(channel_ids),
            *analyzable(start, end, include_bots=include_bots),
        )
        .group_by(SlackMessage.channel_id)
    )
    counts = dict.fromkeys(channel_ids, 0)
    for channel_id, count in rows:
        counts[channel_id] = int(count)
    return counts


def load_channel_window(
    connection: Connection,
    channel_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    include_bots: bool = False,
) -> ChannelWindow:
    """One channel's analyzable messages of [start, end) and their reactions."""
    channel_name = connection.execute(
        select(SlackChannel.name).where(SlackChannel.id == channel_id)
    ).scalar_one()
    window = ChannelWindow(channel_id, channel_name, start, end)
    parent = aliased(SlackMessage)
    parent_user = aliased(SlackUser)
    conditions = [
        SlackMessage.channel_id == channel_id,
        *analyzable(start, end, include_bots=include_bots),
    ]
    rows = connection.execute(
        select(
            SlackMessage.id,
            SlackMessage.slack_ts,
            SlackMessage.message_datetime,
            SlackUser.slack_id,
            SlackUser.id,
            SlackUser.display_label,
            SlackMessage.processed_text,
            SlackMessage.thread_ts,
            SlackMessage.is_thread_reply,
            parent_user.slack_id,
            parent.processed_text.contains("?"),
            SlackMessage.reply_count,
        )
        .join(SlackUser, SlackUser.id == SlackMessage.user_id)
        .outerjoin(
            parent,
            and_(
                parent.channel_id == SlackMessage.channel_id,
                parent.slack_ts == SlackMessage.thread_ts,
                SlackMessage.is_thread_reply,
            ),
        )
        .outerjoin(parent_user, parent_user.id == parent.user_id)
        .where(*conditions)
        .order_by(SlackMessage.slack_ts)
    )
    for row in rows:
        (mid, ts, at, author, author_id, label, text, thread_ts, is_reply, parent_author,
         parent_is_question, reply_count) = row  # fmt: skip
        window.names[author] = label
        window.user_ids[author] = author_id
        window.messages.append(
            WindowMessage(
                id=mid,
                ts=ts,
                at=at,
                author=author,
                text=text or "",
                thread_ts=thread_ts,
                is_reply=is_reply,
                parent_author=parent_author,
                parent_is_question=bool(parent_is_question),
                reply_count=reply_count,
            )
        )
    message_ids = [m.id for m in window.messages]
    if message_ids:
        reactions = connection.execute(
            select(
                SlackReaction.message_id,
                SlackUser.slack_id,
                SlackUser.id,
                SlackUser.display_label,
                SlackReaction.emoji_name,
                SlackUser.is_bot,
            )
            .join(SlackUser, SlackUser.id == SlackReaction.user_id)
            .where(SlackReaction.message_id.in_(message_ids))
            .order_by(SlackReaction.message_id, SlackUser.slack_id, SlackReaction.emoji_name)
        )
        for message_id, user, user_id, label, emoji, is_bot in reactions:
            if is_bot and not include_bots:
                continue
            window.names.setdefault(user, label)
            window.user_ids.setdefault(user, user_id)
            window.reactions.append(WindowReaction(message_id, user, emoji))
    return window


def workspace_user_names(
    connection: Connection, workspace_id: uuid.UUID
) -> list[tuple[str, str | None, str | None, str | None]]:
    """Every user of the workspace as (Slack id, display name, real name, username), by Slack
    id."""
    rows = connection.execute(
        select(SlackUser.slack_id, SlackUser.display_name, SlackUser.real_name, SlackUser.name)
        .where(SlackUser.workspace_id == workspace_id)
        .order_by(SlackUser.slack_id)
    )
    return [(slack_id, display, real, name) for slack_id, display, real, name in rows]


def selected_channel_ids(session: Session, workspace_id: uuid.UUID) -> list[uuid.UUID]:
    """The workspace's channels selected for analysis (and supported)."""
    return list(
        session.scalars(
            select(SlackChannel.id).where(
                SlackChannel.workspace_id == workspace_id,
                SlackChannel.is_selected_for_analysis,
                SlackChannel.is_supported,
            )
        ).all()
    )


def linked_channel_ids(session: Session, analysis_id: uuid.UUID) -> list[uuid.UUID]:
    """The channels linked to an analysis (slack_analysis_channels), in no particular order."""
    return list(
        session.scalars(
            select(slack_analysis_channels.c.channel_id).where(
                slack_analysis_channels.c.analysis_id == analysis_id
            )
        ).all()
    )


def analysis_channel_ids_by_name(session: Session, analysis_id: uuid.UUID) -> list[uuid.UUID]:
    """The channels linked to an analysis, ordered by channel name (the order a run takes)."""
    return list(
        session.scalars(
            select(slack_analysis_channels.c.channel_id)
            .join(SlackChannel, SlackChannel.id == slack_analysis_channels.c.channel_id)
            .where(slack_analysis_channels.c.analysis_id == analysis_id)
            .order_by(SlackChannel.name)
        )
    )


def link_channels(
    session: Session, analysis_id: uuid.UUID, channel_ids: Collection[uuid.UUID]
) -> None:
    """Adds links from the analysis to these channels (none: nothing happens)."""
    if channel_ids:
        session.execute(
            insert(slack_analysis_channels),
            [{"analysis_id": analysis_id, "channel_id": c} for c in channel_ids],
        )


def window_analysis_with_selected_channels(
    session: Session, workspace_slack_id: str, analysis_type: str, start: datetime, end: datetime
) -> uuid.UUID:
    """The id of the SlackAnalysis row of one workspace and window (a partition), created on
    first use, its channel links replaced by the workspace's channels selected for analysis."""
    workspace = session.scalars(
        select(SlackWorkspace).where(SlackWorkspace.slack_id == workspace_slack_id)
    ).one()
    analysis = session.scalars(
        select(SlackAnalysis).where(
            SlackAnalysis.workspace_id == workspace.id,
            SlackAnalysis.analysis_type == analysis_type,
            SlackAnalysis.start_date == start,
            SlackAnalysis.end_date == end,
        )
    ).first()
    if analysis is None:
        analysis = SlackAnalysis(
            workspace_id=workspace.id,
            name=f"{analysis_type} {start:%Y-%m-%d}",
            analysis_type=analysis_type,
            start_date=start,
            end_date=end,
            parameters={},
        )
        add_analysis(session, analysis)
    channels = selected_channel_ids(session, workspace.id)
    session.execute(
        delete(slack_analysis_channels).where(slack_analysis_channels.c.analysis_id == analysis.id)
    )
    link_channels(session, analysis.id, channels)
    return analysis.id


def add_analysis(session: Session, analysis: SlackAnalysis) -> None:
    """Inserts a new analysis row now, so that its id can be linked in the same transaction."""
    session.add(analysis)
    session.flush()


def analysis_row(session: Session, analysis_id: uuid.UUID) -> SlackAnalysis:
    """The analysis, as an object of the session: changes to it are saved when the session's
    transaction commits."""
    return session.get_one(SlackAnalysis, analysis_id)


def workspace_row(session: Session, workspace_id: uuid.UUID) -> SlackWorkspace:
    return session.get_one(SlackWorkspace, workspace_id)


def pending_requests(session: Session, after: datetime | None) -> list[tuple[uuid.UUID, datetime]]:
    """Requested (not scheduled) analyses still pending, created after `after`, oldest first."""
    query = select(SlackAnalysis.id, SlackAnalysis.created_at).where(
        SlackAnalysis.status == AnalysisStatus.PENDING.value,
        SlackAnalysis.is_scheduled.is_(False),
    )
    if after is not None:
        query = query.where(SlackAnalysis.created_at > after)
    return [(i, c) for i, c in session.execute(query.order_by(SlackAnalysis.created_at))]


def due_schedules_locked(session: Session, now: datetime) -> list[SlackAnalysis]:
    """Scheduled analyses due at `now`, locked for the session's transaction; rows another
    transaction holds are skipped, so two ticks never start the same one."""
    return list(
        session.scalars(
            select(SlackAnalysis)
            .where(
                SlackAnalysis.is_scheduled,
                SlackAnalysis.next_run_at.isnot(None),
                SlackAnalysis.next_run_at <= now,
            )
            .with_for_update(skip_locked=True)
        ).all()
    )


def delete_rows_outside_channels(
    session: Session, analysis_id: uuid.UUID, channels: list[uuid.UUID]
) -> None:
    """Deletes the channel reports and per-channel contributions an analysis holds for other
    channels than these; with no channels, every contribution of it (the overall rows too)."""
    session.execute(
        delete(channel_analysis_table).where(
            channel_analysis_table.c.analysis_id == analysis_id,
            channel_analysis_table.c.channel_id.not_in(channels),
        )
    )
    session.execute(
        delete(contribution_table).where(
            contribution_table.c.analysis_id == analysis_id,
            contribution_table.c.channel_id.isnot(None),
            contribution_table.c.channel_id.not_in(channels),
        )
    )
    if not channels:
        session.execute(
            delete(contribution_table).where(contribution_table.c.analysis_id == analysis_id)
        )


def mark_analysis_running(analysis: SlackAnalysis, model: str) -> None:
    """A run starts: status running at no progress, with `model` and no error (saved when the
    analysis' session commits)."""
    analysis.status = AnalysisStatus.RUNNING.value
    analysis.progress = 0.0
    analysis.llm_model = model
    analysis.error_message = None


def mark_analysis_denied(
    analysis: SlackAnalysis, model: str, error: str, summary: dict[str, Any]
) -> None:
    """A run that may not go ahead ends at once: failed with `error` (cut to 2000 characters)
    and `summary` (saved when the analysis' session commits)."""
    analysis.status = AnalysisStatus.FAILED.value
    analysis.llm_model = model
    analysis.error_message = error[:2000]
    analysis.progress = 100.0
    analysis.completion_time = datetime.now(UTC)
    analysis.result_summary = summary


def set_analysis_progress(connection: Connection, analysis_id: uuid.UUID, progress: float) -> None:
    connection.execute(
        update(SlackAnalysis).where(SlackAnalysis.id == analysis_id).values(progress=progress)
    )


def mark_analysis_failed(connection: Connection, analysis_id: uuid.UUID, error: str) -> None:
    """Status failed with `error` (cut to the column's 2000 characters)."""
    connection.execute(
        update(SlackAnalysis)
        .where(SlackAnalysis.id == analysis_id)
        .values(status=AnalysisStatus.FAILED.value, error_message=error[:2000])
    )


def finish_analysis(
    connection: Connection,
    analysis_id: uuid.UUID,
    status: AnalysisStatus,
    error: str | None,
    summary: dict[str, Any],
) -> None:
    """The run's end: its status, error (cut to 2000 characters), summary, full progress and
    completion time."""
    connection.execute(
        update(SlackAnalysis)
        .where(SlackAnalysis.id == analysis_id)
        .values(
            status=status.value,
            error_message=error[:2000] if error else error,
            progress=100.0,
            completion_time=datetime.now(UTC),
            result_summary=summary,
        )
    )


def completed_channel_response(
    connection: Connection, analysis_id: uuid.UUID, channel_id: uuid.UUID
) -> dict[str, Any] | None:
    """The stored raw model response of a channel's completed report (a cache), or None."""
    raw: dict[str, Any] | None = connection.execute(
        select(channel_analysis_table.c.raw_response).where(
            channel_analysis_table.c.analysis_id == analysis_id,
            channel_analysis_table.c.channel_id == channel_id,
            channel_analysis_table.c.status == AnalysisStatus.COMPLETED.value,
        )
    ).scalar_one_or_none()
    return raw


def save_channel_report(connection: Connection, row: Mapping[str, Any]) -> None:
    """Inserts or replaces a channel's report row (keyed by analysis and channel)."""
    upsert(connection, channel_analysis_table, [row], ("analysis_id", "channel_id"))


def replace_contributions(
    connection: Connection,
    analysis_id: uuid.UUID,
    channel_id: uuid.UUID | None,
    rows: list[dict[str, Any]],
) -> None:
    """The contributions of one channel (or the overall ones) become exactly `rows`."""
    channel_filter = (
        contribution_table.c.channel_id.is_(None)
        if channel_id is None
        else contribution_table.c.channel_id == channel_id
    )
    connection.execute(
        delete(contribution_table).where(
            contribution_table.c.analysis_id == analysis_id,
            channel_filter,
            contribution_table.c.user_id.not_in([row["user_id"] for row in rows]),
        )
    )
    upsert(connection, contribution_table, rows, ("analysis_id", "user_id", "channel_id"))


# --- health checks ---------------------------------------------------------------------------


def analysis_window(
    connection: Connection, analysis_id: uuid.UUID
) -> tuple[datetime, datetime, dict[str, Any] | None]:
    """The analysis' start, end and parameters."""
    start, end, parameters = connection.execute(
        select(SlackAnalysis.start_date, SlackAnalysis.end_date, SlackAnalysis.parameters).where(
            SlackAnalysis.id == analysis_id
        )
    ).one()
    return start, end, parameters


def channel_report_message_counts(
    connection: Connection, analysis_id: uuid.UUID
) -> list[tuple[uuid.UUID, str, int | None]]:
    """Each channel report's (channel id, channel name, message_count), by channel name."""
    rows = connection.execute(
        select(
            SlackChannelAnalysis.channel_id,
            SlackChannel.name,
            SlackChannelAnalysis.message_count,
        )
        .join(SlackChannel, SlackChannel.id == SlackChannelAnalysis.channel_id)
        .where(SlackChannelAnalysis.analysis_id == analysis_id)
        .order_by(SlackChannel.name)
    )
    return [(channel_id, name, count) for channel_id, name, count in rows]


def contribution_message_sums(
    connection: Connection, analysis_id: uuid.UUID, channel_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Per channel, the sum of `message_count` over its contribution rows (channels without
    rows are missing)."""
    rows = connection.execute(
        select(
            SlackContribution.channel_id,
            func.coalesce(func.sum(SlackContribution.message_count), 0),
        )
        .where(
            SlackContribution.analysis_id == analysis_id,
            SlackContribution.channel_id.in_(channel_ids),
        )
        .group_by(SlackContribution.channel_id)
    )
    # (The filter on channel_ids leaves out the overall rows, whose channel_id is NULL.)
    return {channel_id: int(total) for channel_id, total in rows if channel_id is not None}


# --- erasure, retention and workspace deletion (privacy/) -------------------------------------
# Privacy decides what goes and how text is redacted, and opens the one transaction; these are
# its statements on the analysis tables, on the caller's connection.

# The columns of a channel report and of a contribution row that may quote or name a person.
CHANNEL_REPORT_TEXT_FIELDS = (
    "channel_summary",
    "topic_analysis",
    "contributor_insights",
    "key_highlights",
    "raw_response",
)
CONTRIBUTION_TEXT_FIELDS = ("insights", "notable_contributions", "insights_data")


def workspace_analysis_ids(connection: Connection, slack_id: str) -> list[str]:
    """The workspace's analyses (to find their ad hoc Dagster runs; read before a deletion)."""
    return [
        str(i)
        for i in connection.execute(
            select(SlackAnalysis.id)
            .join(SlackWorkspace, SlackWorkspace.id == SlackAnalysis.workspace_id)
            .where(SlackWorkspace.slack_id == slack_id)
        ).scalars()
    ]


def delete_user_contributions(connection: Connection, user_id: uuid.UUID) -> int:
    """The user's own contribution rows; returns how many went."""
    return int(
        connection.execute(
            delete(SlackContribution).where(SlackContribution.user_id == user_id)
        ).rowcount
    )


def rewrite_channel_reports(
    connection: Connection, workspace_id: uuid.UUID, rewrite: Callable[[Any], Any]
) -> int:
    """Each text field of the workspace's channel reports through `rewrite`; returns how many
    rows changed."""
    table: Table = SlackChannelAnalysis.__table__  # type: ignore[assignment]
    return _rewrite_rows(
        connection, table, CHANNEL_REPORT_TEXT_FIELDS, _analyses_of(workspace_id), rewrite
    )


def rewrite_contributions(
    connection: Connection, workspace_id: uuid.UUID, rewrite: Callable[[Any], Any]
) -> int:
    """Each text field of the workspace's contribution rows through `rewrite`; returns how many
    rows changed."""
    table: Table = SlackContribution.__table__  # type: ignore[assignment]
    return _rewrite_rows(
        connection, table, CONTRIBUTION_TEXT_FIELDS, _analyses_of(workspace_id), rewrite
    )


def rewrite_result_summaries(
    connection: Connection,
    workspace_id: uuid.UUID,
    rewrite: Callable[[dict[str, Any]], dict[str, Any]],
) -> int:
    """The workspace's analysis summaries through `rewrite`; returns how many changed."""
    changed = 0
    rows = connection.execute(
        select(SlackAnalysis.id, SlackAnalysis.result_summary).where(
            SlackAnalysis.workspace_id == workspace_id, SlackAnalysis.result_summary.isnot(None)
        )
    ).all()
    for analysis_id, summary in rows:
        rewritten = rewrite(summary)
        if rewritten != summary:
            connection.execute(
                update(SlackAnalysis)
                .where(SlackAnalysis.id == analysis_id)
                .values(result_summary=rewritten)
            )
            changed += 1
    return changed


def _analyses_of(workspace_id: uuid.UUID) -> Any:
    return select(SlackAnalysis.id).where(SlackAnalysis.workspace_id == workspace_id)


def _rewrite_rows(
    connection: Connection,
    table: Table,
    fields: Sequence[str],
    analyses: Any,
    rewrite: Callable[[Any], Any],
) -> int:
    """`fields` of the analyses' rows in `table` through `rewrite`, one UPDATE per changed row
    (only the changed columns); returns how many rows changed."""
    columns = [table.c[f] for f in fields]
    changed = 0
    rows = connection.execute(
        select(table.c.id, *columns).where(table.c.analysis_id.in_(analyses))
    ).all()
    for row in rows:
        values = {}
        for column, value in zip(columns, row[1:], strict=True):
            rewritten = rewrite(value)
            if rewritten != value:
                values[column.name] = rewritten
        if values:
            connection.execute(update(table).where(table.c.id == row[0]).values(values))
            changed += 1
    return changed


def _analyses_before(workspace_id: uuid.UUID, cutoff: datetime) -> Any:
    """The workspace's ad hoc analyses whose window starts before `cutoff` (scheduled
    definitions stay)."""
    return select(SlackAnalysis.id).where(
        SlackAnalysis.workspace_id == workspace_id,
        SlackAnalysis.is_scheduled.is_(False),
        SlackAnalysis.start_date < cutoff,
    )


def _analysis_row_counts(connection: Connection, analyses: Any) -> dict[str, int]:
    def count(model: type[Any], condition: Any) -> int:
        return int(
            connection.execute(
                select(func.count()).select_from(model).where(condition)
            ).scalar_one()
        )

    return {
        "analyses": count(SlackAnalysis, SlackAnalysis.id.in_(analyses)),
        "channel_reports": count(
            SlackChannelAnalysis, SlackChannelAnalysis.analysis_id.in_(analyses)
        ),
        "contributions": count(SlackContribution, SlackContribution.analysis_id.in_(analyses)),
    }


def counts_of_analyses_before(
    connection: Connection, workspace_id: uuid.UUID, cutoff: datetime
) -> dict[str, int]:
    """The analyses a purge before `cutoff` removes, with their channel reports and
    contribution rows."""
    return _analysis_row_counts(connection, _analyses_before(workspace_id, cutoff))


def ids_of_analyses_before(
    connection: Connection, workspace_id: uuid.UUID, cutoff: datetime
) -> list[str]:
    return [str(i) for i in connection.execute(_analyses_before(workspace_id, cutoff)).scalars()]


def delete_analyses_before(
    connection: Connection, workspace_id: uuid.UUID, cutoff: datetime
) -> None:
    """Those analyses (their reports, contributions and channel links cascade)."""
    connection.execute(
        delete(SlackAnalysis).where(SlackAnalysis.id.in_(_analyses_before(workspace_id, cutoff)))
    )


def workspace_analysis_counts(connection: Connection, workspace_id: uuid.UUID) -> dict[str, int]:
    """All of the workspace's analyses, channel reports and contribution rows."""
    return _analysis_row_counts(connection, _analyses_of(workspace_id))


def delete_workspace_analyses(connection: Connection, workspace_id: uuid.UUID) -> None:
    """All of the workspace's analyses (their reports, contributions and channel links
    cascade)."""
    connection.execute(delete(SlackAnalysis).where(SlackAnalysis.workspace_id == workspace_id))


# --- analysis counts for `toban status` (moved from slack/store.py, issue 18) ---


def analysis_status_counts(connection: Connection, workspace_id: uuid.UUID) -> dict[str, int]:
    """The workspace's analyses by `slack_analysis.status`. cli.py hands this function to
    slack/admin.py's `workspace_statuses`: slack sits below analysis and may not import it."""
    rows = connection.execute(
        select(SlackAnalysis.status, func.count())
        .where(SlackAnalysis.workspace_id == workspace_id)
        .group_by(SlackAnalysis.status)
    )
    return {status: int(count) for status, count in rows}


# --- who may see an analysis (moved from access/store.py, issue 18) ---


def may_see_analysis(
    session: Session,
    analysis_id: uuid.UUID,
    team_id: uuid.UUID,
    user_id: str | None = None,
    at: datetime | None = None,
) -> bool:
    """A team sees an analysis when it holds the workspace and may read every channel the
    analysis has rows for (READ_ONLY teams see the owner's analyses this way); a user also
    needs a role in that team (VIEWER or above).

    Here rather than in access/store.py (issue 18): the channels an analysis covers are this
    store's rows, and access sits below analysis, so the rule's reads of them belong here; who
    may read what is still access's answer (team_role, workspace_access)."""
    if user_id is not None and not role_may(
        access_store.team_role(session, team_id, user_id), Action.SEE
    ):
        return False
    analysis = session.get_one(SlackAnalysis, analysis_id)
    access = access_store.workspace_access(session, team_id, analysis.workspace_id, at)
    if access.level is None:
        return False
    covered = set(
        session.scalars(
            select(SlackChannelAnalysis.channel_id).where(
                SlackChannelAnalysis.analysis_id == analysis_id
            )
        )
    ) | set(
        session.scalars(
            select(SlackContribution.channel_id).where(
                SlackContribution.analysis_id == analysis_id,
                SlackContribution.channel_id.isnot(None),
            )
        )
    )
    covered.discard(None)
    return covered <= access.readable
