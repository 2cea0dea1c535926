"""Checks that would catch an analysis that disagrees with the messages it claims to cover."""

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine

from toban_orchestration.analysis import store
from toban_orchestration.analysis.window import includes_bots


@dataclass(frozen=True)
class CountMismatch:
    channel: str
    stored: int
    """`message_count` of the channel's report."""
    expected: int
    """What the report should say: the messages in the window now, or the sum of the channel's
    contribution rows."""


@dataclass(frozen=True)
class AnalysisHealth:
    stale: list[CountMismatch] = field(default_factory=list)
    """Channel reports whose message count differs from the messages stored for the window now
    (a sync that changed the window after the analysis, or an analysis that skipped rows)."""
    inconsistent: list[CountMismatch] = field(default_factory=list)
    """Channel reports whose message count differs from the sum over their contribution rows."""

    def describe(self) -> str:
        lines = [
            f"#{m.channel}: report counts {m.stored}, {what} {m.expected}"
            for what, mismatches in (
                ("window holds", self.stale),
                ("contributions sum to", self.inconsistent),
            )
            for m in mismatches
        ]
        return "\n".join(lines)


def analysis_health(engine: Engine, analysis_id: uuid.UUID) -> AnalysisHealth:
    with engine.connect() as connection:
        start, end, parameters = store.analysis_window(connection, analysis_id)
        reports = store.channel_report_message_counts(connection, analysis_id)
        channel_ids = [row[0] for row in reports]
        now = store.count_analyzable_messages(
            connection,
            channel_ids,
            start,
            end,
            include_bots=includes_bots(parameters),
        )
        sums = store.contribution_message_sums(connection, analysis_id, channel_ids)
    stale: list[CountMismatch] = []
    inconsistent: list[CountMismatch] = []
    for channel_id, name, stored in reports:
        stored = stored or 0
        if stored != now[channel_id]:
            stale.append(CountMismatch(name, stored, now[channel_id]))
        summed = int(sums.get(channel_id, 0))
        if stored != summed:
            inconsistent.append(CountMismatch(name, stored, summed))
    return AnalysisHealth(stale, inconsistent)
