"""Checks that would catch an analysis that disagrees with the messages it claims to cover."""

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from toban_orchestration.analysis.window import count_analyzable_messages, includes_bots
from toban_orchestration.db.models import (
    SlackAnalysis,
    SlackChannel,
    SlackChannelAnalysis,
    SlackContribution,
)


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
        analysis = connection.execute(
            select(
                SlackAnalysis.start_date, SlackAnalysis.end_date, SlackAnalysis.parameters
            ).where(SlackAnalysis.id == analysis_id)
        ).one()
        start, end, parameters = analysis
        reports = connection.execute(
            select(
                SlackChannelAnalysis.channel_id,
                SlackChannel.name,
                SlackChannelAnalysis.message_count,
            )
            .join(SlackChannel, SlackChannel.id == SlackChannelAnalysis.channel_id)
            .where(SlackChannelAnalysis.analysis_id == analysis_id)
            .order_by(SlackChannel.name)
        ).all()
        channel_ids = [row[0] for row in reports]
        now = count_analyzable_messages(
            connection,
            channel_ids,
            start,
            end,
            include_bots=includes_bots(parameters),
        )
        sums = dict(
            connection.execute(
                select(
                    SlackContribution.channel_id,
                    func.coalesce(func.sum(SlackContribution.message_count), 0),
                )
                .where(
                    SlackContribution.analysis_id == analysis_id,
                    SlackContribution.channel_id.in_(channel_ids),
                )
                .group_by(SlackContribution.channel_id)
            ).all()
        )
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
