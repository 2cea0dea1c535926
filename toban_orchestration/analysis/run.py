"""Run one analysis (a SlackAnalysis row: a workspace, a window, channels) and store its channel
reports and contribution scores. Used by the partitioned assets and by the ad hoc job."""

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.access.store import analysis_access
from toban_orchestration.analysis import offline, store
from toban_orchestration.analysis.llm import (
    AnalysisFailed,
    ChannelAnalyst,
    ChannelAnswer,
    Judgement,
    Usage,
)
from toban_orchestration.analysis.prompt import PROMPT_VERSION, build_chunks, build_transcript
from toban_orchestration.analysis.pseudonyms import Pseudonyms, load_pseudonyms
from toban_orchestration.analysis.pseudonyms import enabled as pseudonyms_enabled
from toban_orchestration.analysis.report import md_text, person_labels
from toban_orchestration.analysis.scoring import RUBRIC_VERSION, Scores, score
from toban_orchestration.analysis.scoring import total as total_score
from toban_orchestration.analysis.signals import UserSignals, channel_counts, user_signals
from toban_orchestration.analysis.window import ChannelWindow, includes_bots
from toban_orchestration.db.enums import AnalysisStatus
from toban_orchestration.settings import get_settings

# How much the model's judgement counts against the deterministic signals (README, "Scoring").
MODEL_WEIGHT = 0.3


@dataclass
class AnalysisResult:
    analysis_id: uuid.UUID
    channels: int = 0
    messages: int = 0
    participants: int = 0
    failed_channels: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    preview: str = ""
    excluded_channels: list[dict[str, str]] = field(default_factory=list)
    """Requested channels the analysis' team may not read when it runs, with the reason."""
    denied: str | None = None
    """Why the analysis was not run at all (its team or requester may not ask for it)."""

    def leaderboard_markdown(self, limit: int = 10, labels: Mapping[str, str] | None = None) -> str:
        """The top `limit` as a markdown table. `labels`: Slack id -> the name to show
        (`report.person_labels`, which tells namesakes apart); names are escaped markdown."""
        lines = [
            "| # | contributor | total | problem solving | knowledge | coordination | engagement |",
            "|---|---|---|---|---|---|---|",
        ]
        for rank, row in enumerate(self.leaderboard[:limit], start=1):
            name = md_text((labels or {}).get(row["slack_id"], row["name"]))
            lines.append(
                f"| {rank} | {name} | {row['total']:.1f} | {row['problem_solving']:.1f} | "
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
        return store.window_analysis_with_selected_channels(
            session, workspace_slack_id, analysis_type, start, end
        )


def run_analysis(
    engine: Engine, analysis_id: uuid.UUID, analyst: ChannelAnalyst | None = None
) -> AnalysisResult:
    """Analyze every channel of the analysis; status and progress move as channels finish.
    With no `analyst`, the configured model is used if there is one, else the offline
    analyzer."""
    settings = get_settings()
    if analyst is None and settings.llm_configured:
        analyst = ChannelAnalyst(settings)
    with Session(engine) as session, session.begin():
        analysis = store.analysis_row(session, analysis_id)
        start, end = analysis.start_date, analysis.end_date
        include_bots = includes_bots(analysis.parameters)
        channel_ids = store.analysis_channel_ids_by_name(session, analysis_id)
        # Access is decided now, not when the analysis was requested: a share revoked or a
        # grant removed in between leaves those channels out (README, "Who may see what").
        access = analysis_access(session, analysis, channel_ids)
        channel_ids = access.channels
        # Rows an earlier run stored for channels this run may not read go: a report must not
        # keep what its team can no longer see. (The overall rows are rewritten after the run.)
        store.delete_rows_outside_channels(session, analysis_id, channel_ids)
        workspace = store.workspace_row(session, analysis.workspace_id)
        pseudonyms = (
            load_pseudonyms(session.connection(), workspace.id)
            if analyst is not None
            and pseudonyms_enabled(analysis.parameters, workspace.workspace_metadata)
            else None
        )
        model = analyst.model if analyst else offline.MODEL_NAME
        if access.error is not None:
            store.mark_analysis_denied(
                analysis,
                model,
                f"Not analyzed: {access.error}",
                {"channels": 0, "messages": 0, **access.summary()},
            )
            return AnalysisResult(
                analysis_id, excluded_channels=access.excluded, denied=access.error
            )
        # Named from everyone the window names, before any channel is analyzed: each
        # channel's text then tells the same namesakes apart as the window's HTML report.
        labels = person_labels(
            store.window_people(
                session.connection(), channel_ids, start, end, include_bots=include_bots
            )
        )
        store.mark_analysis_running(analysis, model)
    result = AnalysisResult(analysis_id, excluded_channels=access.excluded)
    overall: dict[str, UserSignals] = defaultdict(UserSignals)
    names: dict[str, str] = {}
    user_ids: dict[str, uuid.UUID] = {}
    try:
        for done, channel_id in enumerate(channel_ids, start=1):
            with engine.connect() as connection:
                window = store.load_channel_window(
                    connection, channel_id, start, end, include_bots=include_bots
                )
            signals = user_signals(window)
            _analyze_channel(
                engine, analysis_id, window, signals, result, analyst, labels, pseudonyms
            )
            for user, user_part in signals.items():
                _add(overall[user], user_part)
            names |= window.names
            user_ids |= window.user_ids
            with engine.begin() as connection:
                store.set_analysis_progress(
                    connection, analysis_id, round(100 * done / len(channel_ids), 1)
                )
        scores = {user: score(s) for user, s in overall.items()}
        shown = names | labels
        _store_overall(engine, analysis_id, overall, scores, shown, user_ids)
        result.participants = len(overall)
        result.leaderboard = [
            {"name": shown.get(user, user), "slack_id": user, **asdict(s)}
            for user, s in sorted(scores.items(), key=lambda item: (-item[1].total, item[0]))
        ]
    except Exception as error:
        with engine.begin() as connection:
            store.mark_analysis_failed(connection, analysis_id, str(error))
        raise
    with engine.begin() as connection:
        store.finish_analysis(
            connection,
            analysis_id,
            AnalysisStatus.FAILED if result.failed_channels else AnalysisStatus.COMPLETED,
            "; ".join(result.failed_channels) or None,
            {
                "channels": result.channels,
                "messages": result.messages,
                "participants": result.participants,
                "rubric": RUBRIC_VERSION,
                "llm_calls": result.usage.calls,
                "cache_hits": result.usage.cache_hits,
                "failed_channels": result.failed_channels,
                "top_contributors": result.leaderboard[:5],
                "pseudonymized": pseudonyms is not None,
                **access.summary(),
            },
        )
    return result


def _add(total: UserSignals, part: UserSignals) -> None:
    for f in fields(UserSignals):
        value = getattr(part, f.name)
        if isinstance(value, int):
            setattr(total, f.name, getattr(total, f.name) + value)
        else:
            getattr(total, f.name).extend(value)


@dataclass
class ChannelOutcome:
    """A channel's report and per-person results, from the offline analyzer or a model."""

    sections: dict[str, str | None]
    model_used: str
    raw: dict[str, Any]
    status: str
    error: str | None
    scores: dict[str, Scores]
    notable: dict[str, list[dict[str, str]]]
    insights: dict[str, str]


def offline_outcome(
    window: ChannelWindow,
    signals: dict[str, UserSignals],
    scores: dict[str, Scores],
    labels: Mapping[str, str],
) -> ChannelOutcome:
    """`labels`: Slack id -> the name the text shows (`report.person_labels`)."""
    report = offline.channel_report(window, channel_counts(window), signals, scores, labels)
    return ChannelOutcome(
        sections={
            "channel_summary": report.channel_summary,
            "topic_analysis": report.topic_analysis,
            "contributor_insights": report.contributor_insights,
            "key_highlights": report.key_highlights,
        },
        model_used=offline.MODEL_NAME,
        raw=report.raw,
        status=AnalysisStatus.COMPLETED.value,
        error=None,
        scores=scores,
        notable={user: offline.notable_contributions(window, user) for user in signals},
        insights={
            user: offline.user_insights(
                offline.label_of(user, window, labels), signals[user], scores[user]
            )
            for user in signals
        },
    )


def model_outcome(
    window: ChannelWindow,
    signals: dict[str, UserSignals],
    scores: dict[str, Scores],
    analyst: ChannelAnalyst,
    cached: dict[str, Any] | None,
    usage: Usage,
    labels: Mapping[str, str],
    pseudonyms: Pseudonyms | None = None,
) -> ChannelOutcome:
    """The model's report; its scores move each deterministic score by at most
    MODEL_WEIGHT x 10 points, and its evidence must cite messages of the transcript.
    With `pseudonyms`, the model sees aliases only, and its text gets the names back.
    `labels` name people in the text written without the model (never sent to it)."""
    shown = pseudonyms.window(window) if pseudonyms else window
    aliases = pseudonyms.known_aliases if pseudonyms else frozenset()
    transcript = replace(build_transcript(shown), aliases=aliases)
    restore = pseudonyms.restore if pseudonyms else str
    input_hash = transcript.input_hash(analyst.model)
    budget = analyst.settings.llm_context_tokens
    if cached and cached.get("input_hash") == input_hash and "answer" in cached:
        answer = ChannelAnswer.model_validate(cached["answer"])
        usage.cache_hits += 1
    else:
        try:
            chunks = [
                replace(chunk, aliases=aliases)
                for chunk in (
                    build_chunks(shown, budget) if transcript.estimated_tokens > budget else []
                )
            ]
            llm = analyst.analyze_window(transcript, chunks)
        except AnalysisFailed as failure:
            usage += failure.usage
            outcome = offline_outcome(window, signals, scores, labels)
            outcome.sections = dict.fromkeys(outcome.sections)
            outcome.model_used = analyst.model
            outcome.raw = {"input_hash": None, "prompt_version": PROMPT_VERSION}
            outcome.status = AnalysisStatus.FAILED.value
            outcome.error = f"The model's answers could not be used: {failure}"[:2000]
            return outcome
        usage += llm.usage
        answer = llm.answer
    combined = dict(scores)
    notable: dict[str, list[dict[str, str]]] = {}
    insights: dict[str, str] = {}
    for judgement in answer.contributors:
        user = transcript.author_refs[judgement.author]
        if user not in scores:
            continue
        combined[user] = blend(scores[user], judgement)
        notable[user] = [
            {
                "message_id": str(transcript.message_refs[e.message].id),
                "ts": transcript.message_refs[e.message].ts,
                "reason": restore(e.reason),
            }
            for e in judgement.evidence
            if transcript.message_refs[e.message].author == user
        ]
        insights[user] = restore(judgement.insight)
    return ChannelOutcome(
        sections={
            "channel_summary": restore(answer.summary),
            "topic_analysis": restore(answer.topics),
            "contributor_insights": restore(answer.contributor_insights),
            "key_highlights": restore(answer.highlights),
        },
        model_used=analyst.model,
        raw={
            "input_hash": input_hash,
            "prompt_version": PROMPT_VERSION,
            "answer": answer.model_dump(),
        },
        status=AnalysisStatus.COMPLETED.value,
        error=None,
        scores=combined,
        notable={u: notable.get(u) or offline.notable_contributions(window, u) for u in signals},
        insights={
            u: insights.get(u)
            or offline.user_insights(offline.label_of(u, window, labels), signals[u], combined[u])
            for u in signals
        },
    )


def blend(deterministic: Scores, judgement: Judgement) -> Scores:
    dimensions = {
        name: round(
            (1 - MODEL_WEIGHT) * getattr(deterministic, name)
            + MODEL_WEIGHT * getattr(judgement, name),
            2,
        )
        for name in ("problem_solving", "knowledge_sharing", "team_coordination", "engagement")
    }
    return Scores(**dimensions, total=total_score(dimensions))


def _analyze_channel(
    engine: Engine,
    analysis_id: uuid.UUID,
    window: ChannelWindow,
    signals: dict[str, UserSignals],
    result: AnalysisResult,
    analyst: ChannelAnalyst | None,
    labels: Mapping[str, str],
    pseudonyms: Pseudonyms | None = None,
) -> None:
    """Analyzes one channel's window (`signals`: its `user_signals`, computed once by the
    caller, which also adds them to the overall scores) and stores its report and rows."""
    counts = channel_counts(window)
    scores = {user: score(s) for user, s in signals.items()}
    if analyst is None:
        outcome = offline_outcome(window, signals, scores, labels)
    else:
        with engine.connect() as connection:
            cached = store.completed_channel_response(connection, analysis_id, window.channel_id)
        outcome = model_outcome(
            window, signals, scores, analyst, cached, result.usage, labels, pseudonyms
        )
    now = datetime.now(UTC)
    with engine.begin() as connection:
        store.save_channel_report(
            connection,
            {
                "analysis_id": analysis_id,
                "channel_id": window.channel_id,
                "start_date": window.start,
                "end_date": window.end,
                "message_count": counts.message_count,
                "participant_count": counts.participant_count,
                "thread_count": counts.thread_count,
                "reaction_count": counts.reaction_count,
                **outcome.sections,
                "model_used": outcome.model_used,
                "generated_at": now,
                "raw_response": outcome.raw,
                "status": outcome.status,
                "error_message": outcome.error,
            },
        )
        store.replace_contributions(
            connection,
            analysis_id,
            window.channel_id,
            [
                _contribution_row(
                    analysis_id,
                    window.channel_id,
                    window.user_ids[user],
                    signals[user],
                    outcome.scores[user],
                    outcome.notable[user],
                    outcome.insights[user],
                )
                for user in sorted(signals)
            ],
        )
    result.channels += 1
    result.messages += counts.message_count
    if outcome.error:
        result.failed_channels.append(f"#{window.channel_name}: {outcome.error}")
    if not result.preview and outcome.status == AnalysisStatus.COMPLETED.value:
        result.preview = (
            f"### #{window.channel_name}\n\n{outcome.sections['channel_summary']}\n\n"
            f"**Topics.** {outcome.sections['topic_analysis']}\n\n"
            f"**Highlights**\n{outcome.sections['key_highlights']}"
        )


def _contribution_row(
    analysis_id: uuid.UUID,
    channel_id: uuid.UUID | None,
    user_id: uuid.UUID,
    s: UserSignals,
    scores: Scores,
    notable: list[dict[str, str]],
    insight: str,
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
        "insights": insight,
        "insights_data": {"rubric": RUBRIC_VERSION, "signals": signals},
    }


def _store_overall(
    engine: Engine,
    analysis_id: uuid.UUID,
    signals: dict[str, UserSignals],
    scores: dict[str, Scores],
    names: dict[str, str],
    user_ids: dict[str, uuid.UUID],
) -> None:
    with engine.begin() as connection:
        store.replace_contributions(
            connection,
            analysis_id,
            None,
            [
                _contribution_row(
                    analysis_id,
                    None,
                    user_ids[user],
                    signals[user],
                    scores[user],
                    [],
                    offline.user_insights(names.get(user, user), signals[user], scores[user]),
                )
                for user in sorted(signals)
            ],
        )
