"""A person's right to erasure: every row that holds one Slack user's content goes or is
redacted, in one transaction, and an IntegrationEvent records the counts.

Removed: the person's own messages (top level and replies; other people's replies to them stay,
with `parent_id` NULL), the reactions they gave and the reactions on their messages, their
contribution rows, their `slack_user` row and their SLACK_USER resource. Redacted in place (the
rest of the analysis stays valid): every mention of their names, handle or Slack id and every
quote of their messages (whole, or the excerpt an offline report shows), and their aliases
from pseudonymized analyses, in channel reports
(`channel_summary`, `topic_analysis`, `contributor_insights`, `key_highlights`, `raw_response`),
in other people's contribution rows (`insights`, `notable_contributions`, `insights_data`), in
analysis summaries (`result_summary`, where their leaderboard entry is dropped) and in the
`processed_text` of other people's messages that @-mention them. Counts that include them
(`message_count`, `participant_count`, ...) are numbers, not content, and stay.

The Slack id is kept in `slack_workspace.workspace_metadata["erased_users"]`, the one thing
needed to keep the person out: later syncs skip that id's profile, messages and reactions.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.access import store as access_store
from toban_orchestration.analysis import store as analysis_store
from toban_orchestration.analysis.pseudonyms import Person, Pseudonyms, workspace_key
from toban_orchestration.analysis.report_files import remove_reports
from toban_orchestration.db.enums import IntegrationEventType
from toban_orchestration.db.models import SlackUser, SlackWorkspace
from toban_orchestration.privacy.audit import PIPELINE_ACTOR, record
from toban_orchestration.settings import get_settings
from toban_orchestration.slack import store as slack_store

REDACTED = "[erased]"
# The offline analyzer quotes at most this many characters of a message (analysis/offline.py).
EXCERPT_CHARS = 160
# Names shorter than this are too likely to match ordinary words to be replaced blindly.
MIN_NAME_CHARS = 3
QUOTE_MIN_CHARS = 12


class ErasureError(LookupError):
    pass


@dataclass
class ErasureReport:
    slack_id: str
    user: str
    counts: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        parts = ", ".join(f"{n} {what}" for what, n in self.counts.items())
        return f"Erased Slack user {self.user} of workspace {self.slack_id}: {parts}"


class Redactor:
    """Replaces quoted texts, then names (as whole words), in any JSON value.

    Quotes are found through an index of their first characters, so the cost is one dictionary
    look-up per character of the text scanned, however many messages the person wrote (a regex
    alternation of 10,000 messages took 120 ms per 2 kB report). Messages shorter than
    QUOTE_MIN_CHARS are not looked for: "ok thanks" would match everyone's words."""

    def __init__(self, names: Iterable[str], quotes: Iterable[str]) -> None:
        words = sorted({n for n in names if n and len(n) >= MIN_NAME_CHARS}, key=len, reverse=True)
        self._names = (
            re.compile("|".join(rf"(?<![\w@.]){re.escape(w)}(?!\w)" for w in words))
            if words
            else None
        )
        self._quotes: dict[str, list[str]] = {}
        for quote in sorted(
            {q for q in quotes if len(q) >= QUOTE_MIN_CHARS}, key=len, reverse=True
        ):
            self._quotes.setdefault(quote[:QUOTE_MIN_CHARS], []).append(quote)

    def text(self, value: str) -> str:
        if self._quotes and len(value) >= QUOTE_MIN_CHARS:
            found: set[str] = set()
            for i in range(len(value) - QUOTE_MIN_CHARS + 1):
                for quote in self._quotes.get(value[i : i + QUOTE_MIN_CHARS], ()):
                    if value.startswith(quote, i):
                        found.add(quote)
                        break  # the longest one starting here
            for quote in sorted(found, key=len, reverse=True):
                value = value.replace(quote, REDACTED)
        if self._names is not None:
            value = self._names.sub(REDACTED, value)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        return value


def _quotes(text: str | None) -> list[str]:
    """A message as reports may quote it: whole, flattened, and cut to an excerpt."""
    if not text:
        return []
    flat = " ".join(text.split())
    out = [text, flat]
    if len(flat) > EXCERPT_CHARS:
        out.append(flat[: EXCERPT_CHARS - 1])
    return out


def erase_user(
    engine: Engine, slack_id: str, user_slack_id: str, *, actor: str = PIPELINE_ACTOR
) -> ErasureReport:
    report = ErasureReport(slack_id, user_slack_id)
    with Session(engine) as session, session.begin():
        workspace = slack_store.lock_workspace(session, slack_id)
        if workspace is None:
            raise ErasureError(f"No Slack workspace {slack_id} is registered.")
        user = slack_store.workspace_user(session, workspace.id, user_slack_id)
        if user is None:
            raise ErasureError(f"Slack workspace {slack_id} has no user {user_slack_id}.")
        connection = session.connection()
        texts = slack_store.user_message_texts(connection, user.id)
        names = [user.name, user.display_name, user.real_name, user.email, user.slack_id]
        redactor = Redactor(
            [n for n in names if n] + [f"@{n}" for n in names if n] + _aliases(workspace, user),
            [q for row in texts for t in row for q in _quotes(t)],
        )
        counts = report.counts
        counts.update(slack_store.delete_user_messages_and_reactions(connection, user.id))
        counts["contributions"] = analysis_store.delete_user_contributions(connection, user.id)
        counts["channel_reports_redacted"] = analysis_store.rewrite_channel_reports(
            connection, workspace.id, redactor.value
        )
        counts["contributions_redacted"] = analysis_store.rewrite_contributions(
            connection, workspace.id, redactor.value
        )
        counts["analysis_summaries_redacted"] = analysis_store.rewrite_result_summaries(
            connection,
            workspace.id,
            lambda summary: _redacted_summary(summary, user_slack_id, redactor),
        )
        counts["mentions_redacted"] = slack_store.rewrite_mentions(
            connection, workspace.id, user_slack_id, redactor.text
        )
        integration = access_store.first_slack_integration(session, slack_id)
        counts["resources"] = (
            access_store.delete_slack_user_resource(connection, integration.id, user_slack_id)
            if integration is not None
            else 0
        )
        counts["inbox_events"] = slack_store.forget_user_events(connection, slack_id, user_slack_id)
        slack_store.delete_user(connection, user.id)
        counts["users"] = 1
        slack_store.remember_erased_user(workspace, user_slack_id)
        record(
            session,
            slack_id,
            IntegrationEventType.DATA_ERASED,
            actor,
            {"scope": "user", "slack_user": user_slack_id, **counts},
        )
    # The workspace's report pages quote the person; they are written again, redacted, by the
    # next materialization of their window (or `toban report`).
    report.counts["report_files"] = remove_reports(get_settings().report_directory, slack_id)
    return report


def _aliases(workspace: SlackWorkspace, user: SlackUser) -> list[str]:
    """The aliases a pseudonymized analysis gave them (`raw_response` keeps the model's answer
    with aliases): the short one, and the longer one used when two short ones collide."""
    key = workspace_key(workspace.id)
    alone = Pseudonyms(key, [Person(user.slack_id, user.slack_id, ())])
    return [alone.alias(user.slack_id), Pseudonyms(key, []).alias(user.slack_id)]


def _redacted_summary(
    summary: dict[str, Any], user_slack_id: str, redactor: Redactor
) -> dict[str, Any]:
    """An analysis summary without the person's leaderboard entry, and redacted."""
    kept = dict(summary)
    if isinstance(kept.get("top_contributors"), list):
        kept["top_contributors"] = [
            entry
            for entry in kept["top_contributors"]
            if not (isinstance(entry, dict) and entry.get("slack_id") == user_slack_id)
        ]
    redacted: dict[str, Any] = redactor.value(kept)
    return redacted
