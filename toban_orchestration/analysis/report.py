"""A window's report, rendered from its stored rows (`store.ReportInputs`): names people
recognise, markdown for Dagster's metadata, and a self-contained HTML page. Pure: no database,
no files, no network (`report_files.py` writes the page).

Everything that came from Slack or from a model (names, channel names, message text, report
sections) is untrusted: markdown gets it with its markup escaped, HTML gets it escaped, and
the page's Content-Security-Policy loads nothing from anywhere (no script, no remote image).
"""

import base64
import hashlib
import html
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from toban_orchestration.analysis.store import (
    NotableMessage,
    Person,
    PersonScores,
    ReportChannel,
    ReportInputs,
    ReportWorkspace,
)

REPORT_FORMAT = "toban-report/v1"
"""Part of the inputs' digest: a change of the page's layout re-writes every report once."""
DIMENSIONS = (
    ("problem_solving", "problem solving"),
    ("knowledge_sharing", "knowledge sharing"),
    ("team_coordination", "team coordination"),
    ("engagement", "engagement"),
)
PREVIEW_CHANNELS = 3
EXCERPT_CHARS = 300
DIGEST_META = "toban-report-inputs"


# --- names -------------------------------------------------------------------------------------


def _base_name(person: Person) -> str:
    for name in (person.display_name, person.real_name, person.handle):
        if name and name.strip():
            return name.strip()
    return person.slack_id


def person_labels(people: Iterable[Person]) -> dict[str, str]:
    """Slack id -> how a report shows the person: their display name, and for namesakes (the
    same name, ignoring case) the first of real name, @handle and Slack id that tells them
    apart, e.g. "Ulla (Ulla Berg)", "Ulla (@ulla.n)"."""
    unique = {person.slack_id: person for person in people}
    groups: dict[str, list[Person]] = defaultdict(list)
    for person in unique.values():
        groups[_base_name(person).casefold()].append(person)
    labels: dict[str, str] = {}
    for group in groups.values():
        if len(group) == 1:
            labels[group[0].slack_id] = _base_name(group[0])
            continue
        for person in group:
            base = _base_name(person)
            labels[person.slack_id] = f"{base} ({_distinguisher(person, group, base)})"
    return labels


def _distinguisher(person: Person, group: list[Person], base: str) -> str:
    def real(p: Person) -> str | None:
        name = (p.real_name or "").strip()
        return name if name and name.casefold() != base.casefold() else None

    def handle(p: Person) -> str | None:
        return f"@{p.handle.strip()}" if p.handle and p.handle.strip() else None

    for qualifier in (real, handle):
        mine = qualifier(person)
        others = [qualifier(p) for p in group if p is not person]
        if mine and mine.casefold() not in {o.casefold() for o in others if o}:
            return mine
    return person.slack_id


def workspace_label(workspace: ReportWorkspace) -> str:
    name = workspace.name.strip()
    return f"{name} ({workspace.slack_id})" if name and name != workspace.slack_id else name


def window_label(inputs: ReportInputs) -> str:
    last = inputs.end.date().toordinal() - 1
    first = inputs.start.date()
    span = (
        first.isoformat()
        if last <= first.toordinal()
        else f"{first.isoformat()} to {first.fromordinal(last).isoformat()}"
    )
    return f"{inputs.analysis_type or 'ad hoc'} analysis, {span} (UTC)"


# --- markdown (Dagster metadata) ---------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~^$=&-])")


def md_text(text: str) -> str:
    """Untrusted text as literal markdown on one line: every markup character escaped (no
    link, image, HTML or table cell break can come through)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def md_block(text: str | None) -> str:
    """A stored report section (lines, some "- " bullets) with its bullets kept and all
    other markup escaped."""
    lines: list[str] = []
    for line in (text or "").splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped[:2] in ("- ", "* "):
            lines.append(f"- {md_text(stripped[2:])}")
        else:
            lines.append(md_text(stripped))
    return "\n".join(lines)


def busiest_channels(
    channels: Iterable[ReportChannel], limit: int = PREVIEW_CHANNELS
) -> list[ReportChannel]:
    """The channels with the most messages, never one without any."""
    active = [c for c in channels if c.message_count > 0]
    return sorted(active, key=lambda c: (-c.message_count, c.name, c.slack_id))[:limit]


def preview_markdown(inputs: ReportInputs, limit: int = PREVIEW_CHANNELS) -> str:
    shown = busiest_channels(inputs.channels, limit)
    if not shown:
        return f"No messages in any of the {len(inputs.channels)} analyzed channels."
    parts = [
        f"**{md_text(workspace_label(inputs.workspace))}**, {md_text(window_label(inputs))}: "
        f"the {len(shown)} busiest of {len(inputs.channels)} channels."
    ]
    for channel in shown:
        parts.append(
            f"### \\#{md_text(channel.name)}\n\n"
            f"{channel.message_count} messages, {channel.thread_count} threads, "
            f"{channel.participant_count} people, {channel.reaction_count} reactions\n\n"
            + (
                f"{md_block(channel.summary)}\n\n**Topics.** {md_block(channel.topics)}\n\n"
                f"**Highlights**\n\n{md_block(channel.highlights)}"
                if channel.summary
                else f"No report: {md_text(channel.error_message or channel.status)}"
            )
        )
    return "\n\n".join(parts)


def leaderboard(inputs: ReportInputs) -> list[PersonScores]:
    """The overall rows, best total first (ties by Slack id, so the order is stable)."""
    return sorted(inputs.overall, key=lambda p: (-p.total, p.person.slack_id))


def all_people(inputs: ReportInputs) -> list[Person]:
    return [p.person for p in (*inputs.overall, *inputs.per_channel)]


# --- permalinks --------------------------------------------------------------------------------

_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_CHANNEL_ID = re.compile(r"[A-Z0-9]{2,32}")
_TS = re.compile(r"\d{1,12}\.\d{6}")


def slack_permalink(domain: str | None, message: NotableMessage) -> str | None:
    """Slack's own permalink form (the one chat.getPermalink returns):
    https://DOMAIN.slack.com/archives/CHANNEL/pTSDIGITS, with ?thread_ts=...&cid=... for a
    reply. None when a part is missing or not of Slack's shape (nothing untrusted is put in a
    URL)."""
    if not (
        domain
        and _DOMAIN.fullmatch(domain)
        and _CHANNEL_ID.fullmatch(message.channel_slack_id)
        and _TS.fullmatch(message.ts)
    ):
        return None
    url = (
        f"https://{domain}.slack.com/archives/{message.channel_slack_id}/"
        f"p{message.ts.replace('.', '')}"
    )
    if message.thread_ts and _TS.fullmatch(message.thread_ts) and message.thread_ts != message.ts:
        url += f"?thread_ts={message.thread_ts}&cid={message.channel_slack_id}"
    return url


# --- the inputs' digest ------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return str(value)


def inputs_digest(inputs: ReportInputs) -> str:
    """A hash of everything the page shows (and of its format): equal digests, equal pages."""
    canonical = json.dumps(
        {"format": REPORT_FORMAT, "inputs": asdict(inputs)},
        sort_keys=True,
        default=_jsonable,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- HTML --------------------------------------------------------------------------------------

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;
background:#f6f6f8}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px}h3{font-size:16px}
.sub{color:#555;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:110px}
.card b{display:block;font-size:20px}
section{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 18px;margin:12px 0}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e3e3;padding:5px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:12px 0;background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px}
figure img{max-width:100%;height:auto}
.handle{color:#666;font-size:13px}
.muted{color:#666}
blockquote{margin:4px 0 10px;padding:4px 10px;border-left:3px solid #ccd;background:#fafafc;
white-space:pre-wrap;word-break:break-word}
"""
# Nothing is loaded from anywhere and nothing runs, whatever a message says.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def _html_block(text: str | None) -> str:
    """A stored section: "- " lines become a list, other lines paragraphs; all escaped."""
    out: list[str] = []
    items: list[str] = []
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped[:2] in ("- ", "* "):
            items.append(f"<li>{_e(stripped[2:])}</li>")
            continue
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if stripped:
            out.append(f"<p>{_e(stripped)}</p>")
    if items:
        out.append("<ul>" + "".join(items) + "</ul>")
    return "".join(out) or '<p class="muted">None.</p>'


def _person_cell(person: Person, labels: Mapping[str, str]) -> str:
    label = labels.get(person.slack_id, _base_name(person))
    handle = f' <span class="handle">@{_e(person.handle)}</span>' if person.handle else ""
    return f'<span title="{_e(person.slack_id)}">{_e(label)}</span>{handle}'


def _scores_cells(scores: PersonScores) -> str:
    values = [scores.total] + [getattr(scores, name) for name, _ in DIMENSIONS]
    return "".join(f'<td class="n">{value:.1f}</td>' for value in values)


def _scores_header() -> str:
    return '<th class="n">total</th>' + "".join(
        f'<th class="n">{_e(title)}</th>' for _, title in DIMENSIONS
    )


def _notable_html(domain: str | None, messages: Iterable[NotableMessage]) -> str:
    items: list[str] = []
    for message in messages:
        link = slack_permalink(domain, message)
        where = f"#{_e(message.channel_name)}"
        anchor = (
            f'<a href="{_e(link)}" rel="noopener noreferrer">{where} {_e(message.ts)}</a>'
            if link
            else f"{where} {_e(message.ts)}"
        )
        reason = f" — {_e(message.reason)}" if message.reason else ""
        items.append(
            f"<li>{anchor}{reason}<blockquote>{_e(_excerpt(message.text))}</blockquote></li>"
        )
    return "<ul>" + "".join(items) + "</ul>" if items else '<p class="muted">None cited.</p>'


def _leaderboard_html(inputs: ReportInputs, labels: Mapping[str, str]) -> str:
    earned: dict[str, list[NotableMessage]] = defaultdict(list)
    for row in inputs.per_channel:
        earned[row.person.slack_id].extend(row.notable)
    rows: list[str] = []
    details: list[str] = []
    for rank, row in enumerate(leaderboard(inputs), start=1):
        person = _person_cell(row.person, labels)
        rows.append(
            f'<tr><td class="n">{rank}</td><td>{person}</td>{_scores_cells(row)}'
            f'<td class="n">{row.message_count}</td><td class="n">{row.thread_reply_count}</td>'
            f'<td class="n">{row.reactions_given}/{row.reactions_received}</td></tr>'
        )
        details.append(
            f"<details><summary>{rank}. {person}: {row.total:.1f}</summary>"
            f"<p>{_e(row.insight or '')}</p>"
            f"{_notable_html(inputs.workspace.domain, earned[row.person.slack_id])}</details>"
        )
    if not rows:
        return '<p class="muted">Nobody wrote or reacted in this window.</p>'
    return (
        '<table id="leaderboard"><thead><tr><th class="n">#</th><th>person</th>'
        f"{_scores_header()}"
        '<th class="n">messages</th><th class="n">replies</th>'
        '<th class="n">reactions given/received</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table><h3>What earned it</h3>"
        + "".join(details)
    )


def _channel_html(
    channel: ReportChannel, contributors: list[PersonScores], labels: Mapping[str, str]
) -> str:
    counts = (
        f"{channel.message_count} messages, {channel.thread_count} threads, "
        f"{channel.participant_count} people, {channel.reaction_count} reactions"
    )
    if channel.summary:
        body = (
            f"{_html_block(channel.summary)}<h4>Topics</h4>{_html_block(channel.topics)}"
            f"<h4>Contributors</h4>{_html_block(channel.contributor_insights)}"
            f"<h4>Highlights</h4>{_html_block(channel.highlights)}"
        )
    else:
        body = f'<p class="muted">No report: {_e(channel.error_message or channel.status)}</p>'
    top = sorted(contributors, key=lambda p: (-p.total, p.person.slack_id))[:5]
    table = (
        "<table><thead><tr><th>person</th>"
        + _scores_header()
        + "</tr></thead><tbody>"
        + "".join(
            f"<tr><td>{_person_cell(p.person, labels)}</td>{_scores_cells(p)}</tr>" for p in top
        )
        + "</tbody></table>"
        if top
        else ""
    )
    return (
        f'<section class="channel"><h3>#{_e(channel.name)}</h3><p class="muted">{counts}</p>'
        f"{body}{table}</section>"
    )


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def render_html(inputs: ReportInputs, charts: Mapping[str, bytes], digest: str) -> str:
    """The whole page: summary, charts, leaderboard with the messages that earned each score,
    then every channel (the busiest first). `charts`: title -> PNG."""
    labels = person_labels(all_people(inputs))
    title = f"{workspace_label(inputs.workspace)}: {window_label(inputs)}"
    totals = {
        "channels": len(inputs.channels),
        "messages": sum(c.message_count for c in inputs.channels),
        "threads": sum(c.thread_count for c in inputs.channels),
        "reactions": sum(c.reaction_count for c in inputs.channels),
        "people": len(inputs.overall),
    }
    cards = "".join(
        f'<div class="card"><b>{value}</b>{_e(name)}</div>' for name, value in totals.items()
    )
    figures = "".join(
        f'<figure><img alt="{_e(name)}" src="{data_uri(png)}"><figcaption>{_e(name)}'
        "</figcaption></figure>"
        for name, png in charts.items()
    )
    by_channel: dict[object, list[PersonScores]] = defaultdict(list)
    for row in inputs.per_channel:
        by_channel[row.channel_id].append(row)
    busiest = busiest_channels(inputs.channels, len(inputs.channels))
    quiet = [c for c in inputs.channels if c not in busiest]
    channels = "".join(
        _channel_html(c, by_channel[c.channel_id], labels) for c in [*busiest, *quiet]
    )
    failed = [c for c in inputs.channels if c.status == "failed"]
    status = (
        f'<p class="muted">Status: {_e(inputs.status)}; model {_e(inputs.model or "none")}'
        + (f"; {len(failed)} channel(s) without a report" if failed else "")
        + ".</p>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f'<meta name="{DIGEST_META}" content="{_e(digest)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body><main>"
        f"<h1>{_e(workspace_label(inputs.workspace))}</h1>"
        f'<p class="sub">{_e(window_label(inputs))}</p>'
        f'<div class="cards">{cards}</div>{status}'
        f'<h2>Charts</h2><div id="charts">{figures or "<p>No data to chart.</p>"}</div>'
        f"<h2>Leaderboard</h2>{_leaderboard_html(inputs, labels)}"
        f'<h2>Channels</h2><div id="channels">{channels or "<p>No channel analyzed.</p>"}</div>'
        "</main></body></html>\n"
    )
