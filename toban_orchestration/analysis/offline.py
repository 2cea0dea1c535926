"""The offline analyzer: every report field from the data alone (statistics, thread structure,
frequent terms, most-reacted messages), deterministic, no model and no network.

People are named by `labels` from the caller (`report.person_labels` of the analysis' people),
so that namesakes read "Ulla (Ulla Berg)" and "Ulla (@ulla.n)" here as in the HTML report and
the leaderboards. The labels are computed from the people of the whole analysis window, which
one channel's window does not know; someone missing from them is named by the window's
display name."""

import re
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from toban_orchestration.analysis.scoring import RUBRIC_VERSION, Scores
from toban_orchestration.analysis.signals import (
    ChannelCounts,
    UserSignals,
    coordinates,
    is_question,
    shares_knowledge,
)
from toban_orchestration.analysis.window import ChannelWindow, WindowMessage

MODEL_NAME = "toban-offline-analyzer/v1"
_WORD = re.compile(r"[a-zA-Z][a-zA-Z0-9'_-]{2,}")
_STOPWORD_TEXT = (
    "the and for that this with you are have was but not all can what about from they will "
    "there one would our just your out has get like more some when which them then than "
    "also into its been were how any who had did does too yes very here http https com www "
    "think know want need going sure thanks thank let's lets okay yeah hey hello"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
EXCERPT_CHARS = 160


@dataclass(frozen=True)
class ChannelReport:
    channel_summary: str
    topic_analysis: str
    contributor_insights: str
    key_highlights: str
    raw: dict[str, Any]


def excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def frequent_terms(messages: list[WindowMessage], limit: int = 10) -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for message in messages:
        text = re.sub(r"https?://\S+|@\S+|#\S+", " ", message.text)
        counts.update(w.lower() for w in _WORD.findall(text) if w.lower() not in _STOPWORDS)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def reactions_by_message(window: ChannelWindow) -> Counter[uuid.UUID]:
    by_author = {m.id: m.author for m in window.messages}
    return Counter(r.message_id for r in window.reactions if r.user != by_author[r.message_id])


def label_of(user: str, window: ChannelWindow, labels: Mapping[str, str]) -> str:
    """How the report names `user`: their label, else the window's display name, else the id."""
    return labels.get(user) or window.names.get(user) or user


def channel_report(
    window: ChannelWindow,
    counts: ChannelCounts,
    signals: dict[str, UserSignals],
    scores: dict[str, Scores],
    labels: Mapping[str, str],
) -> ChannelReport:
    """`labels`: Slack id -> the name to show (see the module's docstring)."""

    def name(user: str) -> str:
        return label_of(user, window, labels)

    # The window ends before `end` (exclusive): the period names its last day, as the HTML
    # report's title does.
    last_day = (window.end - timedelta(microseconds=1)).date()
    period = f"{window.start:%Y-%m-%d} to {last_day:%Y-%m-%d}"
    if not window.messages:
        empty = f"No messages in #{window.channel_name} from {period}."
        return ChannelReport(empty, "No topics: no messages.", "No contributors.", "None.", {})
    days: Counter[str] = Counter(f"{m.at:%Y-%m-%d}" for m in window.messages)
    busiest_day, busiest = sorted(days.items(), key=lambda d: (-d[1], d[0]))[0]
    writers = sorted(
        ((s.messages, user) for user, s in signals.items() if s.messages),
        key=lambda x: (-x[0], x[1]),
    )
    questions = sum(1 for m in window.messages if not m.is_reply and is_question(m))
    summary = (
        f"#{window.channel_name}, {period}: {counts.message_count} messages from "
        f"{counts.participant_count} participants in {counts.thread_count} threads, with "
        f"{counts.reaction_count} reactions. {questions} questions were asked. The busiest day "
        f"was {busiest_day} ({busiest} messages); the most active writers were "
        + ", ".join(f"{name(u)} ({n})" for n, u in writers[:3])
        + "."
    )
    terms = frequent_terms(window.messages)
    knowledge = sum(1 for m in window.messages if shares_knowledge(m))
    coordination = sum(1 for m in window.messages if coordinates(m))
    topics = (
        ("Most frequent terms: " + ", ".join(f"{t} ({n})" for t, n in terms) + ". ")
        if terms
        else "No recurring terms. "
    ) + (
        f"{knowledge} messages shared links, code or long explanations; {coordination} were "
        "about planning or coordination."
    )
    ranked = sorted(scores.items(), key=lambda item: (-item[1].total, item[0]))
    insights = " ".join(
        f"{name(user)}: total {s.total:.1f} (problem solving {s.problem_solving:.1f}, "
        f"knowledge sharing {s.knowledge_sharing:.1f}, coordination {s.team_coordination:.1f}, "
        f"engagement {s.engagement:.1f})."
        for user, s in ranked[:5]
    )
    reacted = reactions_by_message(window)
    by_id = {m.id: m for m in window.messages}
    top = sorted(reacted.items(), key=lambda item: (-item[1], by_id[item[0]].ts))[:3]
    longest = sorted(
        (m for m in window.messages if not m.is_reply and m.reply_count > 0),
        key=lambda m: (-m.reply_count, m.ts),
    )[:2]
    highlights = [
        f'{n} reactions: {name(by_id[mid].author)} - "{excerpt(by_id[mid].text)}"' for mid, n in top
    ] + [
        f'{m.reply_count}-reply thread started by {name(m.author)}: "{excerpt(m.text)}"'
        for m in longest
    ]
    return ChannelReport(
        channel_summary=summary,
        topic_analysis=topics,
        contributor_insights=insights or "No contributors.",
        key_highlights="\n".join(f"- {h}" for h in highlights) or "No highlights.",
        raw={
            "analyzer": MODEL_NAME,
            "rubric": RUBRIC_VERSION,
            "frequent_terms": terms,
            "busiest_day": busiest_day,
            "most_reacted": [{"ts": by_id[mid].ts, "reactions": n} for mid, n in top],
        },
    )


def notable_contributions(window: ChannelWindow, user: str, limit: int = 3) -> list[dict[str, str]]:
    """Real stored messages of `user`, each with the reason it stands out."""
    reacted = reactions_by_message(window)
    picks: list[tuple[int, str, WindowMessage]] = []
    for message in window.messages:
        if message.author != user:
            continue
        if message.is_reply and message.parent_is_question and message.parent_author != user:
            picks.append((0, "answered a question in a thread", message))
        elif reacted[message.id]:
            picks.append((1, f"received {reacted[message.id]} reactions", message))
        elif shares_knowledge(message):
            picks.append((2, "shared a link, code or a detailed explanation", message))
        elif coordinates(message):
            picks.append((3, "coordinated the team's work", message))
    picks.sort(key=lambda pick: (pick[0], -reacted[pick[2].id], pick[2].ts))
    return [
        {"message_id": str(m.id), "ts": m.ts, "reason": reason, "excerpt": excerpt(m.text)}
        for _, reason, m in picks[:limit]
    ]


def user_insights(name: str, s: UserSignals, scores: Scores) -> str:
    parts = [f"{name} wrote {s.messages} messages ({s.thread_replies} in threads)"]
    if s.answers:
        parts.append(f"answered {s.answers} questions")
    if s.threads_started:
        parts.append(f"started {s.threads_started} threads")
    if s.knowledge_posts:
        parts.append(f"shared {s.knowledge_posts} links, code snippets or explanations")
    if s.coordination_messages:
        parts.append(f"posted {s.coordination_messages} coordination messages")
    if s.reactions_given:
        parts.append(f"gave {s.reactions_given} reactions")
    if s.reactions_received:
        parts.append(f"received {s.reactions_received}")
    return "; ".join(parts) + f". Total score {scores.total:.1f}/10."
