"""Run one analysis (a SlackAnalysis row: a workspace, a window, channels) and store its channel
reports and contribution scores. Used by the partitioned assets and by the ad hoc job."""

import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy.orm import Session

from toban_orchestration.analysis import offline
from toban_orchestration.analysis.scoring import RUBRIC_VERSION, Scores, score
from toban_orchestration.analysis.signals import UserSignals, channel_counts, user_signals
from toban_orchestration.analysis.window import ChannelWindow, load_channel_window
from toban_orchestration.db.enums import AnalysisStatus
from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannel,
    SlackChannelAnalysis,
    SlackContribution,
    SlackWorkspace,
    slack_analysis_channels,
)
from toban_orchestration.db.upsert import upsert

channel_analysis_table: Table = SlackChannelAnalysis.__table__  # type: ignore[assignment]
contribution_table: Table = SlackContribution.__table__  # type: ignore[assignment]


@dataclass
class AnalysisResult:
    analysis_id: uuid.UUID
    channels: int = 0
    messages: int = 0
    participants: int = 0
    failed_channels: list[str] = field(default_factory=list)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    preview: str = ""

    def leaderboard_markdown(self, limit: int = 10) -> str:
        lines = [
            "| # | contributor | total | problem solving | knowledge | coordination | engagement |",
            "|---|---|---|---|---|---|---|",
        ]
        for rank, row in enumerate(self.leaderboard[:limit], start=1):
            lines.append(
                f"| {rank} | {row['name']} | {row['total']:.1f} | {row['problem_solving']:.1f} | "
                f"{row['knowledge_sharing']:.1f} | {row['team_coordination']:.1f} | "
                f"{row['engagement']:.1f} |"
            )
        return "\n".join(lines)


def window_analysis(
    engine: Engine,
    workspace_slack_id: str,
    analysis_type: str,
    start: datetime,
    end: datetime,
) -> uuid.UUID:
    """The SlackAnalysis row of one workspace and window (a partition), created on first use,
    linked to the workspace's channels selected for analysis."""
    with Session(engine) as session, session.begin():
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
            session.add(analysis)
            session.flush()
        channels = session.scalars(
            select(SlackChannel.id).where(
                SlackChannel.workspace_id == workspace.id,
                SlackChannel.is_selected_for_analysis,
                SlackChannel.is_supported,
            )
        ).all()
        session.execute(
            delete(slack_analysis_channels).where(
                slack_analysis_channels.c.analysis_id == analysis.id
            )
        )
        if channels:
            session.execute(
                insert(slack_analysis_channels),
                [{"analysis_id": analysis.id, "channel_id": c} for c in channels],
            )
        return analysis.id


def run_analysis(engine: Engine, analysis_id: uuid.UUID) -> AnalysisResult:
    """Analyze every channel of the analysis; status and progress move as channels finish."""
    with Session(engine) as session, session.begin():
        analysis = session.get_one(SlackAnalysis, analysis_id)
        start, end = analysis.start_date, analysis.end_date
        include_bots = bool((analysis.parameters or {}).get("include_bots", False))
        channel_ids = list(
            session.scalars(
                select(slack_analysis_channels.c.channel_id)
                .join(SlackChannel, SlackChannel.id == slack_analysis_channels.c.channel_id)
                .where(slack_analysis_channels.c.analysis_id == analysis_id)
                .order_by(SlackChannel.name)
            )
        )
        analysis.status = AnalysisStatus.RUNNING.value
        analysis.progress = 0.0
        analysis.error_message = None
        analysis.llm_model = offline.MODEL_NAME
    result = AnalysisResult(analysis_id)
    overall: dict[str, UserSignals] = defaultdict(UserSignals)
    names: dict[str, str] = {}
    user_ids: dict[str, uuid.UUID] = {}
    try:
        for done, channel_id in enumerate(channel_ids, start=1):
            with engine.connect() as connection:
                window = load_channel_window(
                    connection, channel_id, start, end, include_bots=include_bots
                )
            _analyze_channel(engine, analysis_id, window, result)
            for user, signals in user_signals(window).items():
                _add(overall[user], signals)
            names |= window.names
            user_ids |= window.user_ids
            with engine.begin() as connection:
                connection.execute(
                    update(SlackAnalysis)
                    .where(SlackAnalysis.id == analysis_id)
                    .values(progress=round(100 * done / len(channel_ids), 1))
                )
        scores = {user: score(s) for user, s in overall.items()}
        _store_overall(engine, analysis_id, overall, scores, names, user_ids)
        result.participants = len(overall)
        result.leaderboard = [
            {"name": names.get(user, user), "slack_id": user, **asdict(s)}
            for user, s in sorted(scores.items(), key=lambda item: (-item[1].total, item[0]))
        ]
    except Exception as error:
        with engine.begin() as connection:
            connection.execute(
                update(SlackAnalysis)
                .where(SlackAnalysis.id == analysis_id)
                .values(status=AnalysisStatus.FAILED.value, error_message=str(error)[:2000])
            )
        raise
    with engine.begin() as connection:
        connection.execute(
            update(SlackAnalysis)
            .where(SlackAnalysis.id == analysis_id)
            .values(
                status=AnalysisStatus.COMPLETED.value,
                progress=100.0,
                completion_time=datetime.now(UTC),
                result_summary={
                    "channels": result.channels,
                    "messages": result.messages,
                    "participants": result.participants,
                    "rubric": RUBRIC_VERSION,
                    "top_contributors": result.leaderboard[:5],
                },
            )
        )
    return result


def _add(total: UserSignals, part: UserSignals) -> None:
    for f in fields(UserSignals):
        value = getattr(part, f.name)
        if isinstance(value, int):
            setattr(total, f.name, getattr(total, f.name) + value)
        else:
            getattr(total, f.name).extend(value)


def _analyze_channel(
    engine: Engine, analysis_id: uuid.UUID, window: ChannelWindow, result: AnalysisResult
) -> None:
    counts = channel_counts(window)
    signals = user_signals(window)
    scores = {user: score(s) for user, s in signals.items()}
    report = offline.channel_report(window, counts, signals, scores)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        upsert(
            connection,
            channel_analysis_table,
            [
                {
                    "analysis_id": analysis_id,
                    "channel_id": window.channel_id,
                    "start_date": window.start,
                    "end_date": window.end,
                    "message_count": counts.message_count,
                    "participant_count": counts.participant_count,
                    "thread_count": counts.thread_count,
                    "reaction_count": counts.reaction_count,
                    "channel_summary": report.channel_summary,
                    "topic_analysis": report.topic_analysis,
                    "contributor_insights": report.contributor_insights,
                    "key_highlights": report.key_highlights,
                    "model_used": offline.MODEL_NAME,
                    "generated_at": now,
                    "raw_response": report.raw,
                    "status": AnalysisStatus.COMPLETED.value,
                    "error_message": None,
                }
            ],
            ("analysis_id", "channel_id"),
        )
        _replace_contributions(
            connection,
            analysis_id,
            window.channel_id,
            [
                _contribution_row(
                    analysis_id,
                    window.channel_id,
                    window.user_ids[user],
                    window.names.get(user, user),
                    signals[user],
                    scores[user],
                    offline.notable_contributions(window, user),
                )
                for user in sorted(signals)
            ],
        )
    result.channels += 1
    result.messages += counts.message_count
    if not result.preview:
        result.preview = (
            f"### #{window.channel_name}\n\n{report.channel_summary}\n\n"
            f"**Topics.** {report.topic_analysis}\n\n**Highlights**\n{report.key_highlights}"
        )


def _contribution_row(
    analysis_id: uuid.UUID,
    channel_id: uuid.UUID | None,
    user_id: uuid.UUID,
    name: str,
    s: UserSignals,
    scores: Scores,
    notable: list[dict[str, str]],
) -> dict[str, Any]:
    signals = {f.name: getattr(s, f.name) for f in fields(UserSignals) if f.name != "message_ids"}
    return {
        "analysis_id": analysis_id,
        "user_id": user_id,
        "channel_id": channel_id,
        "problem_solving_score": scores.problem_solving,
        "knowledge_sharing_score": scores.knowledge_sharing,
        "team_coordination_score": scores.team_coordination,
        "engagement_score": scores.engagement,
        "total_score": scores.total,
        "message_count": s.messages,
        "thread_reply_count": s.thread_replies,
        "reaction_given_count": s.reactions_given,
        "reaction_received_count": s.reactions_received,
        "notable_contributions": notable,
        "insights": offline.user_insights(name, s, scores),
        "insights_data": {"rubric": RUBRIC_VERSION, "signals": signals},
    }


def _replace_contributions(
    connection: Any,
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


def _store_overall(
    engine: Engine,
    analysis_id: uuid.UUID,
    signals: dict[str, UserSignals],
    scores: dict[str, Scores],
    names: dict[str, str],
    user_ids: dict[str, uuid.UUID],
) -> None:
    with engine.begin() as connection:
        _replace_contributions(
            connection,
            analysis_id,
            None,
            [
                _contribution_row(
                    analysis_id,
                    None,
                    user_ids[user],
                    names.get(user, user),
                    signals[user],
                    scores[user],
                    [],
                )
                for user in sorted(signals)
            ],
        )
