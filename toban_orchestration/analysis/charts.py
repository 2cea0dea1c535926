"""A window's charts as small PNGs: contributors' four dimension scores side by side, messages
and threads per day, and the channels compared. Pure: data in, bytes out (matplotlib's Agg
canvas on a Figure of its own, so no global pyplot state is shared between threads).

The PNGs go into Dagster metadata as base64 markdown and into the HTML report as data URIs:
they are kept to a few tens of kB each (small figures, 80 dpi, few colours).
"""

import base64
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from toban_orchestration.analysis.store import DayActivity, PersonScores, ReportChannel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 80
TOP_CONTRIBUTORS = 10
TOP_CHANNELS = 12
LABEL_CHARS = 28
DIMENSION_COLOURS = {
    "problem_solving": ("problem solving", "#4C72B0"),
    "knowledge_sharing": ("knowledge sharing", "#55A868"),
    "team_coordination": ("team coordination", "#C44E52"),
    "engagement": ("engagement", "#8172B2"),
}
CONTRIBUTORS_TITLE = "Contributors: the four dimensions (0-10)"
ACTIVITY_TITLE = "Messages and threads per day"
CHANNELS_TITLE = "Channels compared"


def plain_label(text: str) -> str:
    """A name as matplotlib draws it literally: `$` would start mathtext (and a malformed
    formula in somebody's display name would fail the whole chart)."""
    short = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"
    return short.replace("$", r"\$")


def _figure(width: float, height: float) -> "Figure":
    """A Figure of its own. matplotlib is imported here, not with the module: it takes about a
    second to import, which every Dagster run process (a Slack sync too) paid before its first
    step."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _png(figure: "Figure") -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # No "Software"/date chunks: the same data gives the same bytes.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def contributors_chart(
    leaderboard: Sequence[PersonScores], labels: Mapping[str, str]
) -> bytes | None:
    """Grouped horizontal bars, best total at the top."""
    shown = list(leaderboard[:TOP_CONTRIBUTORS])
    if not shown:
        return None
    figure = _figure(8, 1.2 + 0.55 * len(shown))
    axes = figure.add_subplot()
    height = 0.2
    for offset, (field, (title, colour)) in enumerate(DIMENSION_COLOURS.items()):
        axes.barh(
            [n + (offset - 1.5) * height for n in range(len(shown))],
            [getattr(row, field) for row in shown],
            height=height,
            label=title,
            color=colour,
        )
    axes.set_yticks(
        range(len(shown)),
        [plain_label(labels.get(r.person.slack_id, r.person.slack_id)) for r in shown],
    )
    axes.invert_yaxis()
    axes.set_xlim(0, 10)
    axes.set_xlabel("score")
    axes.legend(loc="lower right", fontsize="small", ncols=2)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def activity_chart(days: Sequence[DayActivity]) -> bytes | None:
    if not days:
        return None
    figure = _figure(8, 3)
    axes = figure.add_subplot()
    positions = range(len(days))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], [d.messages for d in days], width,
             label="messages", color="#4C72B0")  # fmt: skip
    axes.bar([p + width / 2 for p in positions], [d.threads for d in days], width,
             label="threads", color="#DD8452")  # fmt: skip
    step = max(1, len(days) // 10)
    axes.set_xticks(
        list(positions)[::step], [d.day.strftime("%m-%d") for d in days][::step], fontsize="small"
    )
    axes.legend(fontsize="small")
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def channels_chart(channels: Sequence[ReportChannel]) -> bytes | None:
    """Messages, threads and people per channel, the busiest at the top."""
    shown = sorted(channels, key=lambda c: (-c.message_count, c.name))[:TOP_CHANNELS]
    if not shown:
        return None
    figure = _figure(8, 1.2 + 0.45 * len(shown))
    axes = figure.add_subplot()
    height = 0.27
    series = (
        ("messages", "message_count", "#4C72B0"),
        ("threads", "thread_count", "#DD8452"),
        ("people", "participant_count", "#55A868"),
    )
    for offset, (title, field, colour) in enumerate(series):
        axes.barh(
            [n + (offset - 1) * height for n in range(len(shown))],
            [getattr(c, field) for c in shown],
            height=height,
            label=title,
            color=colour,
        )
    axes.set_yticks(range(len(shown)), [plain_label(f"#{c.name}") for c in shown])
    axes.invert_yaxis()
    axes.legend(loc="lower right", fontsize="small")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def window_charts(
    leaderboard: Sequence[PersonScores],
    days: Sequence[DayActivity],
    channels: Sequence[ReportChannel],
    labels: Mapping[str, str],
) -> dict[str, bytes]:
    """Title -> PNG, in the order they are shown; a chart with nothing to draw is left out."""
    charts = {
        CONTRIBUTORS_TITLE: contributors_chart(leaderboard, labels),
        ACTIVITY_TITLE: activity_chart(days),
        CHANNELS_TITLE: channels_chart(channels),
    }
    return {title: png for title, png in charts.items() if png is not None}


def charts_markdown(charts: Mapping[str, bytes]) -> str:
    """Markdown with the images inline (base64 data URIs), as Dagster's UI renders them."""
    if not charts:
        return "Nothing to chart: no message in this window."
    return "\n\n".join(
        f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"
        for title, png in charts.items()
    )
