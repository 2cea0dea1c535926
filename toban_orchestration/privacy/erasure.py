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

from sqlalchemy import Column, Connection, Engine, Table, delete, func, select, update
from sqlalchemy.orm import Session

from toban_orchestration.analysis.pseudonyms import Person, Pseudonyms, workspace_key
from toban_orchestration.analysis.report_files import remove_reports
from toban_orchestration.db.enums import IntegrationEventType, ResourceType
from toban_orchestration.db.models import (
    ServiceResource,
    SlackAnalysis,
    SlackChannel,
    SlackChannelAnalysis,
    SlackContribution,
    SlackMessage,
    SlackReaction,
    SlackUser,
    SlackWorkspace,
)
from toban_orchestration.privacy.audit import PIPELINE_ACTOR, record, slack_integration
from toban_orchestration.settings import get_settings
from toban_orchestration.slack.store import ERASED_KEY, forget_user_events

REDACTED = "[erased]"
# The offline analyzer quotes at most this many characters of a message (analysis/offline.py).
EXCERPT_CHARS = 160
# Names shorter than this are too likely to match ordinary words to be replaced blindly.
MIN_NAME_CHARS = 3
QUOTE_MIN_CHARS = 12
REPORT_FIELDS = ("channel_summary", "topic_analysis", "contributor_insights", "key_highlights")


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
        workspace = session.scalar(
            select(SlackWorkspace).where(SlackWorkspace.slack_id == slack_id).with_for_update()
        )
        if workspace is None:
            raise ErasureError(f"No Slack workspace {slack_id} is registered.")
        user = session.scalar(
            select(SlackUser).where(
                SlackUser.workspace_id == workspace.id, SlackUser.slack_id == user_slack_id
            )
        )
        if user is None:
            raise ErasureError(f"Slack workspace {slack_id} has no user {user_slack_id}.")
        connection = session.connection()
        channels = select(SlackChannel.id).where(SlackChannel.workspace_id == workspace.id)
        own_messages = select(SlackMessage.id).where(SlackMessage.user_id == user.id)
        texts = connection.execute(
            select(SlackMessage.text, SlackMessage.processed_text).where(
                SlackMessage.user_id == user.id
            )
        ).all()
        names = [user.name, user.display_name, user.real_name, user.email, user.slack_id]
        redactor = Redactor(
            [n for n in names if n] + [f"@{n}" for n in names if n] + _aliases(workspace, user),
            [q for row in texts for t in row for q in _quotes(t)],
        )
        touched_messages = select(SlackReaction.message_id).where(SlackReaction.user_id == user.id)
        others_reacted = [
            m
            for (m,) in connection.execute(
                touched_messages.where(SlackReaction.message_id.not_in(own_messages))
            )
        ]
        counts = report.counts
        counts["reactions_on_their_messages"] = _rowcount(
            connection, delete(SlackReaction).where(SlackReaction.message_id.in_(own_messages))
        )
        counts["reactions_given"] = _rowcount(
            connection, delete(SlackReaction).where(SlackReaction.user_id == user.id)
        )
        counts["messages"] = _rowcount(
            connection, delete(SlackMessage).where(SlackMessage.user_id == user.id)
        )
        if others_reacted:
            # reaction_count mirrors the message's reaction rows; theirs are gone.
            remaining = (
                select(func.count())
                .where(SlackReaction.message_id == SlackMessage.id)
                .scalar_subquery()
            )
            connection.execute(
                update(SlackMessage)
                .where(SlackMessage.id.in_(others_reacted))
                .values(reaction_count=remaining)
            )
        counts["contributions"] = _rowcount(
            connection, delete(SlackContribution).where(SlackContribution.user_id == user.id)
        )
        analyses = select(SlackAnalysis.id).where(SlackAnalysis.workspace_id == workspace.id)
        counts["channel_reports_redacted"] = _redact_channel_reports(connection, analyses, redactor)
        counts["contributions_redacted"] = _redact_contributions(connection, analyses, redactor)
        counts["analysis_summaries_redacted"] = _redact_summaries(
            connection, workspace.id, user_slack_id, redactor
        )
        counts["mentions_redacted"] = _redact_mentions(
            connection, channels, user_slack_id, redactor
        )
        integration = slack_integration(session, slack_id)
        counts["resources"] = (
            _rowcount(
                connection,
                delete(ServiceResource).where(
                    ServiceResource.integration_id == integration.id,
                    ServiceResource.resource_type == ResourceType.SLACK_USER,
                    ServiceResource.external_id == user_slack_id,
                ),
            )
            if integration is not None
            else 0
        )
        counts["inbox_events"] = forget_user_events(connection, slack_id, user_slack_id)
        connection.execute(delete(SlackUser).where(SlackUser.id == user.id))
        counts["users"] = 1
        metadata = dict(workspace.workspace_metadata or {})
        erased = list(metadata.get(ERASED_KEY) or [])
        if user_slack_id not in erased:
            erased.append(user_slack_id)
        workspace.workspace_metadata = {**metadata, ERASED_KEY: erased}
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


def _rowcount(connection: Connection, statement: Any) -> int:
    return int(connection.execute(statement).rowcount)


def _redact_channel_reports(connection: Connection, analyses: Any, redactor: Redactor) -> int:
    table: Table = SlackChannelAnalysis.__table__  # type: ignore[assignment]
    columns = [table.c[f] for f in REPORT_FIELDS] + [table.c.raw_response]
    return _redact_rows(connection, table, columns, analyses, redactor)


def _redact_contributions(connection: Connection, analyses: Any, redactor: Redactor) -> int:
    table: Table = SlackContribution.__table__  # type: ignore[assignment]
    columns = [table.c.insights, table.c.notable_contributions, table.c.insights_data]
    return _redact_rows(connection, table, columns, analyses, redactor)


def _redact_rows(
    connection: Connection,
    table: Table,
    columns: list[Column[Any]],
    analyses: Any,
    redactor: Redactor,
) -> int:
    """Redact `columns` of the analyses' rows in `table`; returns how many rows changed."""
    changed = 0
    rows = connection.execute(
        select(table.c.id, *columns).where(table.c.analysis_id.in_(analyses))
    ).all()
    for row in rows:
        values = {}
        for column, value in zip(columns, row[1:], strict=True):
            redacted = redactor.value(value)
            if redacted != value:
                values[column.name] = redacted
        if values:
            connection.execute(update(table).where(table.c.id == row[0]).values(values))
            changed += 1
    return changed


def _redact_summaries(
    connection: Connection, workspace_id: Any, user_slack_id: str, redactor: Redactor
) -> int:
    changed = 0
    rows = connection.execute(
        select(SlackAnalysis.id, SlackAnalysis.result_summary).where(
            SlackAnalysis.workspace_id == workspace_id, SlackAnalysis.result_summary.isnot(None)
        )
    ).all()
    for analysis_id, summary in rows:
        kept = dict(summary)
        if isinstance(kept.get("top_contributors"), list):
            kept["top_contributors"] = [
                entry
                for entry in kept["top_contributors"]
                if not (isinstance(entry, dict) and entry.get("slack_id") == user_slack_id)
            ]
        redacted = redactor.value(kept)
        if redacted != summary:
            connection.execute(
                update(SlackAnalysis)
                .where(SlackAnalysis.id == analysis_id)
                .values(result_summary=redacted)
            )
            changed += 1
    return changed


def _redact_mentions(
    connection: Connection, channels: Any, user_slack_id: str, redactor: Redactor
) -> int:
    """Other people's messages that @-mention them render their name in `processed_text`."""
    changed = 0
    rows = connection.execute(
        select(SlackMessage.id, SlackMessage.processed_text).where(
            SlackMessage.channel_id.in_(channels),
            SlackMessage.text.contains(f"<@{user_slack_id}", autoescape=True),
        )
    ).all()
    for message_id, processed in rows:
        redacted = redactor.text(processed) if processed else processed
        if redacted != processed:
            connection.execute(
                update(SlackMessage)
                .where(SlackMessage.id == message_id)
                .values(processed_text=redacted)
            )
            changed += 1
    return changed
