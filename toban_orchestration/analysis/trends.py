"""People over time (issue 19): each person's weekly total and dimension scores over the last N
weeks, who moved most this week, and a small-multiples chart of the top movers.

Pure: the rows come from `analysis/store.py` (`team_weeks`: a team's view, through the access
rules) and the asset that shows the result in Dagster is `defs/analysis/trend_assets.py`. Names and
markdown escaping are the reports' (`analysis/report.py`): a person is called the same there.

A person's week is scored the way `run.py` scores the overall contribution row: the rubric on
the signals summed over the channels of that week. Summing only the channels a team may read
therefore gives that team's view, and a team that reads every analyzed channel gets exactly the
stored overall scores.
"""

import base64
import io
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta

from toban_orchestration.analysis.report import DIMENSIONS as REPORT_DIMENSIONS
from toban_orchestration.analysis.report import md_text, person_labels
from toban_orchestration.analysis.scoring import Scores, score
from toban_orchestration.analysis.signals import UserSignals
from toban_orchestration.analysis.store import ChannelWeekRow, TeamWeeks

DEFAULT_WEEKS = 12
MIN_WEEKS = 2  # a trend needs this week and the one before
MAX_WEEKS = 104  # two years of weekly windows: the chart and the query stay small

DIMENSION_NAMES = dict(REPORT_DIMENSIONS)
DIMENSIONS = tuple(DIMENSION_NAMES)
# The signals a contribution row stores (insights_data["signals"]); message ids are not stored.
SIGNAL_NAMES = frozenset(f.name for f in fields(UserSignals) if f.name != "message_ids")


def validate_weeks(weeks: object) -> int:
    """How many weeks a trend covers: a whole number from MIN_WEEKS to MAX_WEEKS."""
    if isinstance(weeks, bool) or not isinstance(weeks, int):
        raise ValueError(
            f"trend weeks must be a whole number from {MIN_WEEKS} to {MAX_WEEKS}, not {weeks!r}"
        )
    if not MIN_WEEKS <= weeks <= MAX_WEEKS:
        raise ValueError(
            f"trend weeks must be from {MIN_WEEKS} (this week and the one before) to "
            f"{MAX_WEEKS}, not {weeks}"
        )
    return weeks


def trend_weeks(last_week: date, weeks: int) -> list[date]:
    """The first days of the `weeks` weekly windows that end with the one starting on
    `last_week`, oldest first."""
    validate_weeks(weeks)
    return [last_week - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


# --- trends ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekScores:
    total: float
    problem_solving: float
    knowledge_sharing: float
    team_coordination: float
    engagement: float

    @classmethod
    def of(cls, scores: Scores) -> "WeekScores":
        return cls(
            scores.total,
            scores.problem_solving,
            scores.knowledge_sharing,
            scores.team_coordination,
            scores.engagement,
        )

    def dimension(self, name: str) -> float:
        value: float = getattr(self, name)
        return value


NOT_ACTIVE = WeekScores(0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PersonTrend:
    user_id: uuid.UUID
    label: str
    scores: tuple[WeekScores | None, ...]
    """One per week of the trend, oldest first; None: that week was not analyzed."""
    channels: tuple[tuple[str, float], ...] = ()
    """This week's channels with the person's stored total there, highest first."""

    @property
    def latest(self) -> WeekScores | None:
        return self.scores[-1]

    @property
    def previous(self) -> WeekScores | None:
        return self.scores[-2] if len(self.scores) > 1 else None

    @property
    def change(self) -> float | None:
        """This week's total minus last week's; None when either week was not analyzed."""
        if self.latest is None or self.previous is None:
            return None
        return round(self.latest.total - self.previous.total, 2)

    def dimension_changes(self) -> dict[str, float]:
        if self.latest is None or self.previous is None:
            return {}
        return {
            name: round(self.latest.dimension(name) - self.previous.dimension(name), 2)
            for name in DIMENSIONS
        }

    @property
    def mean_total(self) -> float:
        analyzed = [week.total for week in self.scores if week is not None]
        return sum(analyzed) / len(analyzed) if analyzed else 0.0


@dataclass(frozen=True)
class Trends:
    weeks: tuple[date, ...]
    """First day of each week, oldest first; the last is "this week"."""
    analyzed: frozenset[date]
    people: tuple[PersonTrend, ...]
    """Everyone with a contribution in a week of the trend, by this week's total then label."""
    rows_without_signals: int = 0
    """Stored rows without the signals the rubric needs (left out, and said so)."""

    @property
    def this_week(self) -> date:
        return self.weeks[-1]

    @property
    def comparable(self) -> bool:
        """Whether this week and the one before were both analyzed."""
        return len(self.weeks) > 1 and {self.weeks[-1], self.weeks[-2]} <= self.analyzed

    def movers(self, limit: int = 5) -> tuple[list[PersonTrend], list[PersonTrend]]:
        """The biggest rises and the biggest falls of the total since last week (people whose
        total did not move are in neither)."""
        if not self.comparable:
            return [], []
        moved = [p for p in self.people if p.change]
        rises = sorted((p for p in moved if (p.change or 0) > 0), key=lambda p: (-_c(p), p.label))
        falls = sorted((p for p in moved if (p.change or 0) < 0), key=lambda p: (_c(p), p.label))
        return rises[:limit], falls[:limit]

    def chart_people(self, limit: int = 9) -> list[PersonTrend]:
        """Whom the chart shows: the biggest movers either way, or, without a previous week to
        compare with, this week's highest totals."""
        if self.comparable:
            ranked = sorted(
                (p for p in self.people if p.change),
                key=lambda p: (-abs(_c(p)), p.label),
            )
        else:
            ranked = [p for p in self.people if p.mean_total > 0]
        return ranked[:limit]


def _c(person: PersonTrend) -> float:
    return person.change or 0.0


def compute_trends(
    weeks: Sequence[date],
    analyzed: Iterable[date],
    rows: Iterable[ChannelWeekRow],
    labels: Mapping[uuid.UUID, str],
) -> Trends:
    """Each person's scores per week: the rubric on their signals summed over the channels of
    `rows` (the channels the viewer may read). A person with no row in an analyzed week scores
    0 that week; a week that was not analyzed stays None. Rows of other weeks are ignored."""
    weeks = tuple(weeks)
    if not weeks:
        raise ValueError("a trend needs at least one week")
    if len(set(weeks)) != len(weeks) or list(weeks) != sorted(weeks):
        raise ValueError(f"trend weeks must be distinct and oldest first, not {list(weeks)}")
    analyzed_weeks = frozenset(analyzed) & frozenset(weeks)
    summed: dict[tuple[uuid.UUID, date], UserSignals] = defaultdict(UserSignals)
    this_week_channels: dict[uuid.UUID, dict[str, float]] = defaultdict(dict)
    without_signals = 0
    for row in rows:
        if row.week not in analyzed_weeks:
            continue
        if row.signals is None:
            without_signals += 1
            continue
        _add_signals(summed[(row.user_id, row.week)], row)
        if row.week == weeks[-1]:
            this_week_channels[row.user_id][row.channel] = float(row.total_score or 0.0)
    people: list[PersonTrend] = []
    for user_id in {user for user, _ in summed}:
        series = tuple(
            (
                WeekScores.of(score(summed[(user_id, week)]))
                if (user_id, week) in summed
                else NOT_ACTIVE
            )
            if week in analyzed_weeks
            else None
            for week in weeks
        )
        channels = sorted(this_week_channels[user_id].items(), key=lambda item: (-item[1], item[0]))
        label = labels.get(user_id) or str(user_id)
        people.append(PersonTrend(user_id, label, series, tuple(channels)))
    people.sort(key=lambda p: (-(p.latest.total if p.latest else -1.0), p.label, str(p.user_id)))
    return Trends(weeks, analyzed_weeks, tuple(people), without_signals)


def trends_of(view: TeamWeeks) -> Trends:
    """The trends of what one team may see (`store.team_weeks`), people named as the reports
    name them."""
    by_slack_id = person_labels(view.people)
    labels = {person.user_id: by_slack_id[person.slack_id] for person in view.people}
    return compute_trends(sorted(view.weeks), view.analyzed, view.rows, labels)


def _add_signals(total: UserSignals, row: ChannelWeekRow) -> None:
    assert row.signals is not None
    for name, value in row.signals.items():
        if name not in SIGNAL_NAMES:
            continue  # a signal a later rubric added: this one does not score it
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"contribution row of user {row.user_id} in #{row.channel}, week of {row.week}: "
                f"signal {name!r} is {value!r}, not a count"
            )
        setattr(total, name, getattr(total, name) + value)


# --- markdown -------------------------------------------------------------------------------


def _signed(value: float) -> str:
    return f"{value:+.1f}"


def _score(week: WeekScores | None) -> str:
    return "n/a" if week is None else f"{week.total:.1f}"


def _channels(person: PersonTrend, limit: int = 3) -> str:
    shown = ", ".join(
        f"{md_text('#' + name)} {total:.1f}" for name, total in person.channels[:limit]
    )
    more = len(person.channels) - limit
    return shown + (f" and {more} more" if more > 0 else "") if shown else "none"


def _moved_most(person: PersonTrend) -> str:
    changes = person.dimension_changes()
    if not changes:
        return ""
    name, value = max(changes.items(), key=lambda item: (abs(item[1]), item[0]))
    return f"{DIMENSION_NAMES[name]} {_signed(value)}" if value else "none"


def movers_markdown(trends: Trends, limit: int = 5) -> str:
    """The "moved most this week" table: biggest rises, then biggest falls of the total."""
    this_week = trends.this_week
    if not trends.comparable:
        missing = [w for w in trends.weeks[-2:] if w not in trends.analyzed]
        return (
            f"Nothing to compare for the week of {this_week.isoformat()}: the week"
            f"{'s' if len(missing) > 1 else ''} of {', '.join(w.isoformat() for w in missing)} "
            f"{'were' if len(missing) > 1 else 'was'} not analyzed."
        )
    rises, falls = trends.movers(limit)
    if not rises and not falls:
        return f"Nobody's total moved in the week of {this_week.isoformat()}."
    previous = trends.weeks[-2]
    lines = [
        f"Week of {this_week.isoformat()} against the week of {previous.isoformat()} (total, "
        "0-10).",
        "",
        "| | person | last week | this week | change | moved most | channels this week |",
        "|---|---|---|---|---|---|---|",
    ]
    for arrow, people in (("▲", rises), ("▼", falls)):
        for person in people:
            lines.append(
                f"| {arrow} | {md_text(person.label)} | {_score(person.previous)} | "
                f"{_score(person.latest)} | {_signed(_c(person))} | {_moved_most(person)} | "
                f"{_channels(person)} |"
            )
    return "\n".join(lines)


def weekly_totals_markdown(trends: Trends, limit: int = 25) -> str:
    """Everyone's weekly totals, highest this week first ("n/a": the week was not analyzed)."""
    if not trends.people:
        return "Nobody contributed in these weeks."
    header = " | ".join(week.strftime("%m-%d") for week in trends.weeks)
    lines = [
        f"Weekly totals (0-10), weeks starting {trends.weeks[0].isoformat()} to "
        f"{trends.this_week.isoformat()}.",
        "",
        f"| person | {header} | channels this week |",
        "|---|" + "---|" * (len(trends.weeks) + 1),
    ]
    for person in trends.people[:limit]:
        cells = " | ".join(_score(week) for week in person.scores)
        lines.append(f"| {md_text(person.label)} | {cells} | {_channels(person)} |")
    if len(trends.people) > limit:
        lines.append(f"\n{len(trends.people) - limit} more people are not shown.")
    return "\n".join(lines)


# --- the chart ------------------------------------------------------------------------------

_DIMENSION_COLORS = {
    "problem_solving": "#1b9e77",
    "knowledge_sharing": "#d95f02",
    "team_coordination": "#7570b3",
    "engagement": "#e7298a",
}
CHART_COLUMNS = 3


def trend_chart_png(trends: Trends, people: Sequence[PersonTrend], *, dpi: int = 72) -> bytes:
    """Small multiples, one panel per person: the weekly total (bold) and the four dimensions
    (thin) on the 0-10 scale; a week that was not analyzed is a gap. Drawn with Agg on a
    Figure of its own (no pyplot state), so runs in threads do not share a figure."""
    if not people:
        raise ValueError("a trend chart needs at least one person")
    columns = min(CHART_COLUMNS, len(people))
    rows = math.ceil(len(people) / columns)
    # At least two panels wide: the legend's five entries need it.
    width, height = max(3.3 * columns, 6.6), 2.2 * rows + 0.6
    # Imported here: matplotlib takes about a second to import (see charts._figure).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    x = list(range(len(trends.weeks)))
    ticks = x[:: max(1, math.ceil(len(x) / 4))]
    for index, person in enumerate(people):
        axes = figure.add_subplot(rows, columns, index + 1)
        for name in DIMENSIONS:
            axes.plot(
                x,
                [math.nan if w is None else w.dimension(name) for w in person.scores],
                color=_DIMENSION_COLORS[name],
                linewidth=0.9,
                label=DIMENSION_NAMES[name],
            )
        axes.plot(
            x,
            [math.nan if w is None else w.total for w in person.scores],
            color="black",
            linewidth=2.2,
            marker="o",
            markersize=2.5,
            label="total",
        )
        change = f" ({_signed(person.change)})" if person.change is not None else ""
        # Names are Slack text: parse_math off, so a `$` in a name is not read as TeX.
        axes.set_title(f"{person.label[:34]}{change}", fontsize=8, parse_math=False)
        axes.set_ylim(0, 10)
        axes.set_xticks(ticks, [trends.weeks[i].strftime("%m-%d") for i in ticks], fontsize=7)
        axes.tick_params(axis="y", labelsize=7)
        axes.grid(alpha=0.3)
    handles, names = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="upper center", ncols=5, fontsize=7, frameon=False)
    # Fixed margins (inches) instead of tight_layout, which measures every label and took most
    # of the chart's time.
    figure.subplots_adjust(
        left=0.4 / width,
        right=1 - 0.15 / width,
        bottom=0.35 / height,
        top=1 - 0.75 / height,
        wspace=0.25,
        hspace=0.45,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def chart_markdown(png: bytes, description: str) -> str:
    """A PNG inline in Dagster's markdown metadata (a data URI: nothing to host)."""
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{md_text(description)}](data:image/png;base64,{encoded})"


@dataclass(frozen=True)
class TrendSummary:
    """What a materialization reports besides its tables and chart."""

    people: int
    rising: int
    falling: int
    weeks_analyzed: int
    notes: list[str] = field(default_factory=list)


def summarize(trends: Trends) -> TrendSummary:
    rises, falls = trends.movers(limit=len(trends.people))
    notes = []
    if trends.rows_without_signals:
        notes.append(
            f"{trends.rows_without_signals} stored contribution rows carry no rubric signals "
            "(written before the rubric stored them) and are left out: re-materialize their "
            "weeks to include them."
        )
    return TrendSummary(len(trends.people), len(rises), len(falls), len(trends.analyzed), notes)
