"""People over time without a database: weekly scores from per-channel signals, movers, names
that tell namesakes apart, markdown that Slack names cannot break, and the chart's size."""

import re
import uuid
from dataclasses import replace
from datetime import date

import pytest

from toban_orchestration.analysis.scoring import score
from toban_orchestration.analysis.signals import UserSignals
from toban_orchestration.analysis.store import ChannelWeekRow, Person, TeamWeeks
from toban_orchestration.analysis.trends import (
    chart_markdown,
    compute_trends,
    movers_markdown,
    trend_chart_png,
    trend_weeks,
    trends_of,
    validate_weeks,
    weekly_totals_markdown,
)

THIS_WEEK = date(2026, 11, 16)
WEEKS = trend_weeks(THIS_WEEK, 3)  # 11-02, 11-09, 11-16
ANN, BEN, CAT, DAN = (uuid.UUID(int=n) for n in range(1, 5))
LABELS = {ANN: "ann", BEN: "ben", CAT: "cat", DAN: "dan"}


def row(week: date, user: uuid.UUID, channel: str, **signals: int) -> ChannelWeekRow:
    return ChannelWeekRow(week, user, channel, float(sum(signals.values())), signals)


@pytest.mark.parametrize("weeks", [1, 105, 0, -3, "12", 12.0, True, None])
def test_trend_weeks_must_be_a_whole_number_in_range(weeks: object) -> None:
    with pytest.raises(ValueError, match="trend weeks must be"):
        validate_weeks(weeks)


def test_trend_weeks_are_the_mondays_before_this_one() -> None:
    assert validate_weeks(12) == 12
    weeks = trend_weeks(THIS_WEEK, 12)
    assert (weeks[0], weeks[-1], len(weeks)) == (date(2026, 8, 31), THIS_WEEK, 12)
    assert {week.weekday() for week in weeks} == {0}


def test_a_week_is_scored_on_the_signals_summed_over_channels_as_the_overall_row_is() -> None:
    rows = [
        row(WEEKS[2], ANN, "eng", messages=3, answers=2, thread_replies=2),
        row(WEEKS[2], ANN, "general", messages=4, mentions=3, coordination_messages=1),
        row(WEEKS[1], ANN, "eng", messages=1),
        row(WEEKS[2], BEN, "general", messages=1),
    ]
    trends = compute_trends(WEEKS, WEEKS[1:], rows, LABELS)
    ann = next(p for p in trends.people if p.label == "ann")
    summed = score(
        UserSignals(messages=7, answers=2, thread_replies=2, mentions=3, coordination_messages=1)
    )
    assert ann.latest is not None
    assert ann.latest.total == summed.total
    assert ann.latest.problem_solving == summed.problem_solving
    # The saturating curve makes a sum of channel scores another (wrong) number.
    by_channel = (
        score(UserSignals(messages=3, answers=2, thread_replies=2)).total
        + score(UserSignals(messages=4, mentions=3, coordination_messages=1)).total
    )
    assert ann.latest.total != pytest.approx(by_channel)
    # Week 1 was not analyzed (None, a gap); ben wrote nothing in week 2 (analyzed: 0).
    assert ann.scores[0] is None
    ben = next(p for p in trends.people if p.label == "ben")
    assert ben.scores[0] is None
    assert ben.scores[1] is not None
    assert ben.scores[1].total == 0.0
    assert [name for name, _ in ann.channels] == ["general", "eng"]  # higher stored total first
    assert [p.label for p in trends.people] == ["ann", "ben"]  # by this week's total


def test_rows_outside_the_analyzed_weeks_and_rows_without_signals_are_left_out() -> None:
    stray = row(date(2026, 10, 26), ANN, "eng", messages=50)
    old = replace(row(WEEKS[2], BEN, "eng", messages=5), signals=None)
    trends = compute_trends(WEEKS, WEEKS, [stray, old, row(WEEKS[2], CAT, "eng", messages=1)], {})
    assert [p.user_id for p in trends.people] == [CAT]
    assert trends.rows_without_signals == 1
    assert trends.people[0].label == str(CAT)  # no name known: the id, never nothing


def test_a_signal_that_is_not_a_count_is_named() -> None:
    bad = ChannelWeekRow(WEEKS[2], ANN, "eng", 1.0, {"messages": "7"})
    with pytest.raises(ValueError, match=r"#eng, week of 2026-11-16: signal 'messages' is '7'"):
        compute_trends(WEEKS, WEEKS, [bad], LABELS)


def test_movers_are_the_biggest_rises_and_falls_since_last_week() -> None:
    rows = [
        row(WEEKS[1], ANN, "eng", messages=20, answers=4),
        row(WEEKS[2], ANN, "eng", messages=2),
        row(WEEKS[1], BEN, "eng", messages=2),
        row(WEEKS[2], BEN, "eng", messages=2),  # did not move
        row(WEEKS[2], CAT, "eng", messages=10, answers=3),
        row(WEEKS[2], DAN, "general", messages=3),
    ]
    trends = compute_trends(WEEKS, WEEKS, rows, LABELS)
    rises, falls = trends.movers()
    assert [p.label for p in rises] == ["cat", "dan"]
    assert [p.label for p in falls] == ["ann"]
    assert rises[0].latest is not None
    assert rises[0].change == rises[0].latest.total  # cat wrote nothing last week
    assert trends.movers(limit=1)[0] == rises[:1]
    assert [p.label for p in trends.chart_people(2)] == ["ann", "cat"]  # largest either way
    table = movers_markdown(trends)
    assert table.index("| cat |") < table.index("| dan |") < table.index("| ann |")
    assert "| ben |" not in table
    assert "problem solving -" in table.split("| ann |")[1].splitlines()[0]
    assert "\\#eng" in table


def test_without_last_weeks_analysis_nothing_is_compared() -> None:
    rows = [row(WEEKS[2], ANN, "eng", messages=5)]
    trends = compute_trends(WEEKS, [WEEKS[0], WEEKS[2]], rows, LABELS)
    assert not trends.comparable
    assert trends.movers() == ([], [])
    assert "2026-11-09 was not analyzed" in movers_markdown(trends)
    assert [p.label for p in trends.chart_people()] == ["ann"]  # this week's top instead


def test_a_teams_view_names_people_as_the_reports_do() -> None:
    def person(user: uuid.UUID, handle: str, display: str, real: str) -> Person:
        return Person(user, f"U{user.int}", handle, display, real)

    people = [
        person(ANN, "ann", "ann", "Ann Berg"),
        person(BEN, "alex.kim", "alex", "Alex Kim"),
        person(CAT, "alex.park", "Alex", "Alex Park"),
    ]
    rows = [row(WEEKS[2], user, "eng", messages=1) for user in (ANN, BEN, CAT)]
    trends = trends_of(TeamWeeks(list(WEEKS), set(WEEKS), rows, people))
    assert {p.user_id: p.label for p in trends.people} == {
        ANN: "ann",  # no namesake: the display name alone
        BEN: "alex (Alex Kim)",
        CAT: "Alex (Alex Park)",
    }


def test_slack_names_cannot_break_the_markdown() -> None:
    hostile = "x | y <img src=x onerror=alert(1)> [click](https://evil.invalid) **b**\n# h"
    rows = [row(WEEKS[1], ANN, "eng", messages=1), row(WEEKS[2], ANN, "eng", messages=9)]
    trends = compute_trends(WEEKS, WEEKS, rows, {ANN: hostile})
    unescaped = re.compile(r"(?<!\\)[<>\[\]*`]")
    for table in (movers_markdown(trends), weekly_totals_markdown(trends)):
        lines = table.splitlines()
        line = next(line for line in lines if "onerror" in line)
        header = next(line for line in lines if line.startswith("|---"))
        cells = re.split(r"(?<!\\)\|", line)
        assert len(cells) == header.count("|") + 1  # the name's "|" opens no column
        assert "\\*\\*b\\*\\* \\# h" in line  # the newline in the name did not end the row
        assert unescaped.search(line) is None


def test_the_chart_is_small_multiples_of_a_few_hundred_kilobytes_at_most() -> None:
    people = [uuid.UUID(int=n) for n in range(1, 201)]
    rows = [
        row(week, user, channel, messages=(n * 7 + i * 3) % 11, answers=(n + i) % 4)
        for i, week in enumerate(WEEKS)
        for n, user in enumerate(people)
        for channel in ("eng", "general")
    ]
    labels = {user: f"$\\frac{{{n}}}{{0}}$ person {n}" for n, user in enumerate(people)}
    trends = compute_trends(WEEKS, WEEKS, rows, labels)
    shown = trends.chart_people(9)
    assert len(shown) == 9  # 200 people, 9 panels
    png = trend_chart_png(trends, shown)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < 300_000
    markdown = chart_markdown(png, "top movers")
    assert markdown.startswith("![top movers](data:image/png;base64,")
    with pytest.raises(ValueError, match="at least one person"):
        trend_chart_png(trends, [])
