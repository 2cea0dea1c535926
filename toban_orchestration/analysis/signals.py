"""Observable signals of a channel window: exact counts for the channel and, per participant,
the behaviours the scoring rubric is built on. Pure functions of a `ChannelWindow`."""

import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from toban_orchestration.analysis.window import ChannelWindow, WindowMessage

_URL = re.compile(r"https?://\S+")
_CODE = re.compile(r"```|`[^`\n]+`")
_MENTION = re.compile(r"(?<![\w@])@\S+")
# Words that announce planning, scheduling or hand-offs.
_COORDINATION = re.compile(
    r"\b(let'?s|schedule|scheduled|meeting|meet|sync|standup|deadline|due|plan|planning|agenda|"
    r"assign|assigned|owner|follow[- ]up|tomorrow|today|next week|eta|release|kick ?off|"
    r"reminder|remind)\b",
    re.IGNORECASE,
)
LONG_EXPLANATION_CHARS = 280


def is_question(message: WindowMessage) -> bool:
    return "?" in message.text


def shares_knowledge(message: WindowMessage) -> bool:
    """A link, code, or a long explanation."""
    return bool(_URL.search(message.text) or _CODE.search(message.text)) or (
        len(message.text) >= LONG_EXPLANATION_CHARS
    )


def coordinates(message: WindowMessage) -> bool:
    return bool(_COORDINATION.search(message.text) or "@here" in message.text)


def mentions_others(message: WindowMessage, own_name: str) -> int:
    return sum(1 for m in _MENTION.findall(message.text) if m.rstrip(".,:;!?") != f"@{own_name}")


@dataclass
class UserSignals:
    messages: int = 0
    thread_replies: int = 0
    threads_started: int = 0
    questions: int = 0
    answers: int = 0
    """Replies in threads that somebody else started with a question."""
    answers_with_reactions: int = 0
    knowledge_posts: int = 0
    coordination_messages: int = 0
    mentions: int = 0
    reactions_given: int = 0
    reactions_received: int = 0
    threads_joined: int = 0
    message_ids: list[str] = field(default_factory=list)


@dataclass
class ChannelCounts:
    message_count: int
    participant_count: int
    thread_count: int
    reaction_count: int


def channel_counts(window: ChannelWindow) -> ChannelCounts:
    threads = {m.thread_ts for m in window.messages if m.is_reply and m.thread_ts} | {
        m.ts for m in window.messages if not m.is_reply and m.reply_count > 0
    }
    participants = {m.author for m in window.messages} | {r.user for r in window.reactions}
    return ChannelCounts(
        message_count=len(window.messages),
        participant_count=len(participants),
        thread_count=len(threads),
        reaction_count=len(window.reactions),
    )


def user_signals(window: ChannelWindow) -> dict[str, UserSignals]:
    """Signals of everyone who wrote or reacted in the window, by Slack id."""
    signals: dict[str, UserSignals] = defaultdict(UserSignals)
    by_id = {m.id: m for m in window.messages}
    received: Counter[uuid.UUID] = Counter()
    for reaction in window.reactions:
        message = by_id[reaction.message_id]
        if reaction.user == message.author:
            continue  # reacting to yourself is not engagement
        signals[reaction.user].reactions_given += 1
        signals[message.author].reactions_received += 1
        received[reaction.message_id] += 1
    threads_by_user: dict[str, set[str]] = defaultdict(set)
    for message in window.messages:
        s = signals[message.author]
        s.messages += 1
        s.message_ids.append(message.ts)
        if message.is_reply:
            s.thread_replies += 1
            if message.thread_ts:
                threads_by_user[message.author].add(message.thread_ts)
            if (
                message.parent_is_question
                and message.parent_author
                and message.parent_author != message.author
            ):
                s.answers += 1
                if received[message.id]:
                    s.answers_with_reactions += 1
        else:
            if message.reply_count > 0:
                s.threads_started += 1
            if is_question(message):
                s.questions += 1
        if shares_knowledge(message):
            s.knowledge_posts += 1
        if coordinates(message):
            s.coordination_messages += 1
        s.mentions += mentions_others(message, window.names.get(message.author, ""))
    for user, threads in threads_by_user.items():
        signals[user].threads_joined = len(threads)
    return dict(signals)
