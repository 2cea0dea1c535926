"""Where a window's HTML report is written, and writing it only when what it shows changed.

One file per workspace and window: `<reports dir>/<workspace Slack id>/<type>-<first day>.html`
(an ad hoc analysis: `analysis-<id>.html`). The page carries the digest of its inputs in a
`<meta>` tag; a re-materialization with the same inputs finds it and leaves the file alone.
"""

import contextlib
import os
import re
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from toban_orchestration.analysis import charts, report
from toban_orchestration.analysis.store import ReportInputs

_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}")
_DIGEST = re.compile(rf'<meta name="{report.DIGEST_META}" content="([0-9a-f]{{64}})">')
# The digest sits in the page's head, within its first kilobytes.
_HEAD_BYTES = 4096


class ReportPathError(ValueError):
    """A workspace id or analysis type that cannot be a file name."""


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    digest: str
    written: bool
    """False: the file already showed these inputs and was left as it was."""


def report_path(directory: Path, inputs: ReportInputs) -> Path:
    workspace = inputs.workspace.slack_id
    if not _SAFE_PART.fullmatch(workspace):
        raise ReportPathError(f"workspace id {workspace!r} cannot name a report folder")
    if inputs.analysis_type is None:
        name = f"analysis-{inputs.analysis_id}"
    elif _SAFE_PART.fullmatch(inputs.analysis_type):
        name = f"{inputs.analysis_type}-{inputs.start:%Y-%m-%d}"
    else:
        raise ReportPathError(f"analysis type {inputs.analysis_type!r} cannot name a report")
    return directory / workspace / f"{name}.html"


def stored_digest(path: Path) -> str | None:
    try:
        with path.open("rb") as page:
            head = page.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    found = _DIGEST.search(head)
    return found.group(1) if found else None


def page_charts(inputs: ReportInputs) -> dict[str, bytes]:
    labels = report.person_labels(report.all_people(inputs))
    return charts.window_charts(report.leaderboard(inputs), inputs.days, inputs.channels, labels)


def write_report(
    directory: Path, inputs: ReportInputs, pictures: Mapping[str, bytes] | None = None
) -> WrittenReport:
    """The window's page, (re-)written unless the file already shows these inputs. The write
    is atomic (a reader never sees half a page). `pictures`: the charts, when the caller drew
    them already (they are drawn from the same inputs)."""
    path = report_path(directory, inputs)
    digest = report.inputs_digest(inputs)
    if stored_digest(path) == digest:
        return WrittenReport(path, digest, written=False)
    page = report.render_html(inputs, page_charts(inputs) if pictures is None else pictures, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.stem}-", delete=False
    ) as partial:
        partial.write(page)
    os.replace(partial.name, path)
    return WrittenReport(path, digest, written=True)


_WINDOW_PAGE = re.compile(r"(?P<type>[A-Za-z0-9_-]+?)-(?P<start>\d{4}-\d{2}-\d{2})\.html")


def remove_reports(
    directory: Path,
    slack_id: str,
    *,
    before: date | None = None,
    analysis_ids: Collection[str] = (),
) -> int:
    """Delete a workspace's report pages: all of them, or (with `before`) the windows that
    start before that day and the ad hoc analyses in `analysis_ids`. A page copies names and
    messages out of the database, so erasure, retention and workspace deletion must reach it
    too; the next materialization (or `toban report`) writes a page again from what is left.
    Returns how many files were removed."""
    if not _SAFE_PART.fullmatch(slack_id):
        raise ReportPathError(f"workspace id {slack_id!r} cannot name a report folder")
    folder = directory / slack_id
    if not folder.is_dir():
        return 0
    removed = 0
    for page in folder.glob("*.html"):
        window = _WINDOW_PAGE.fullmatch(page.name)
        if before is None:
            doomed = True
        elif page.stem.startswith("analysis-"):
            doomed = page.stem.removeprefix("analysis-") in analysis_ids
        else:
            doomed = window is not None and date.fromisoformat(window["start"]) < before
        if doomed:
            page.unlink(missing_ok=True)
            removed += 1
    if before is None:
        for partial in folder.glob(".*"):  # a write interrupted half way (write_report's temp)
            partial.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: someone put another file there
            folder.rmdir()
    return removed
