"""The Dagster UI as a person sees it, in a real (headless) Chromium: the synced message
partitions of the end-to-end stack and the metadata of one of them, an analysis' charts, and
the HTML report its materialization names. Screenshots go to test-artifacts/ui/."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright
from sqlalchemy import func, select

from toban_orchestration.db.models import SlackChannel, SlackMessage, SlackWorkspace
from toban_orchestration_tests.e2e_support import (
    ARTIFACTS,
    E2EStack,
    completed_analyses,
    e2e_stack,
)

__all__ = ["e2e_stack"]  # the shared session fixture

CHROMIUM = Path("/usr/bin/chromium")
# Playwright's own browser download is not available here: Debian's Chromium, headless.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The UI loads a large bundle and queries the asset's 2,500 days x workspaces of partitions.
UI_TIMEOUT_MS = 60_000
SCREENSHOTS = ARTIFACTS / "ui"
# The analysis automation is evaluated once a minute (test_end_to_end waits for it too).
ANALYSES_TIMEOUT_SECONDS = 420
LOADED_WIDTHS = "images => images.map(image => (image.complete ? image.naturalWidth : 0))"

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing (`apt-get install chromium`; .ci/run installs it)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(UI_TIMEOUT_MS)
    yield page
    page.close()


def _skip_welcome(page: Page) -> None:
    """A fresh instance greets, a moment after the first page shows, with a "Join the Dagster
    community" dialog over the page; a person clicks Skip whenever it appears."""
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"),
        lambda: page.get_by_role("button", name="Skip").click(),
    )


def _screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    print(f"\nscreenshot: {path}")
    return path


def _stored_messages(stack: E2EStack, slack_id: str, day: str) -> int:
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    with stack.app_engine.connect() as connection:
        return connection.execute(
            select(func.count())
            .select_from(SlackMessage)
            .join(SlackChannel, SlackChannel.id == SlackMessage.channel_id)
            .join(SlackWorkspace, SlackWorkspace.id == SlackChannel.workspace_id)
            .where(
                SlackWorkspace.slack_id == slack_id,
                SlackMessage.message_datetime >= start,
                SlackMessage.message_datetime < start + timedelta(days=1),
            )
        ).scalar_one()


def test_the_ui_shows_the_synced_partitions_and_their_row_counts(
    e2e_stack: E2EStack, page: Page
) -> None:
    _skip_welcome(page)
    page.goto(f"{e2e_stack.url}/assets/slack_messages", wait_until="domcontentloaded")
    page.get_by_text("Latest materialization").first.wait_for()
    page.get_by_text("messages_inserted").first.wait_for()
    # The partition of the latest materialization renders after its metadata table.
    partition_key = re.compile(r"(\d{4}-\d{2}-\d{2})\|(T[A-Z0-9]+)")
    page.get_by_text(partition_key).first.wait_for()
    overview = page.inner_text("body")
    latest = partition_key.search(overview)
    assert latest is not None, overview[:2000]
    assert latest.group(2) in e2e_stack.workspaces
    assert latest.group(1) in [day.isoformat() for day in e2e_stack.days]
    _screenshot(page, "slack_messages-overview.png")

    page.get_by_role("tab", name="Partitions").click()
    synced = len(e2e_stack.workspaces) * len(e2e_stack.days)
    page.get_by_text(f"Materialized ({synced})").wait_for()
    day, slack_id = e2e_stack.days[-1].isoformat(), sorted(e2e_stack.workspaces)[0]
    page.get_by_text(day, exact=True).first.click()
    page.get_by_text(slack_id, exact=True).first.click()
    page.get_by_text(f"{day}|{slack_id}").first.wait_for()
    row = page.locator("tr", has_text="dagster/row_count").first
    row.wait_for()
    assert page.locator("tr", has_text="messages_inserted").count() >= 1
    shown = re.search(r"dagster/row_count\s+([\d,]+)", row.inner_text())
    assert shown is not None, row.inner_text()
    assert int(shown.group(1).replace(",", "")) == _stored_messages(e2e_stack, slack_id, day) > 0
    _screenshot(page, "slack_messages-partition.png")


def test_an_analysis_shows_its_charts_and_its_html_report_opens(
    e2e_stack: E2EStack, page: Page
) -> None:
    engine = e2e_stack.app_engine
    expected = len(e2e_stack.workspaces) * len(e2e_stack.days)
    e2e_stack.dagster.wait_until_settled(
        lambda runs: completed_analyses(engine, "daily") == expected,
        ANALYSES_TIMEOUT_SECONDS,
        "the daily analyses of the synced days",
    )
    _skip_welcome(page)
    page.goto(f"{e2e_stack.url}/assets/slack_channel_analyses_daily", wait_until="domcontentloaded")
    page.get_by_text("Latest materialization").first.wait_for()

    def metadata_row(label: str) -> Locator:
        return page.locator("tr").filter(has=page.get_by_text(label, exact=True)).first

    # Long markdown opens in a dialog; its images are the charts, drawn by the browser.
    metadata_row("charts").get_by_text("[Show Markdown]").click()
    charts = page.get_by_role("dialog").locator("img")
    charts.first.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[role=dialog] img')].every("
        "image => image.complete && image.naturalWidth > 0)"
    )
    assert charts.count() == 3
    assert all(width >= 300 for width in charts.evaluate_all(LOADED_WIDTHS))
    _screenshot(page, "analysis-charts.png")
    page.keyboard.press("Escape")

    shown = re.search(r"(/\S+\.html)", metadata_row("report").inner_text())
    assert shown is not None, metadata_row("report").inner_text()
    report = Path(shown.group(1))
    assert report.is_file()
    assert report.parent.name in e2e_stack.workspaces
    page.goto(report.as_uri(), wait_until="load")
    images = page.locator("#charts img")
    assert images.count() >= 2
    assert all(width >= 300 for width in images.evaluate_all(LOADED_WIDTHS))
    assert page.locator("#leaderboard tbody tr").count() > 0
    _screenshot(page, "analysis-report.png")


LAUNCHPAD = "/locations/toban_orchestration.definitions/jobs/slack_configure_sync_job/playground"
# Dagster's config editor is CodeMirror; its API sets the text as a paste would (typing lines
# one by one would meet its auto-indentation).
SET_CONFIG = "text => document.querySelector('.CodeMirror').CodeMirror.setValue(text)"


def test_a_person_changes_a_sync_setting_from_the_launchpad(
    e2e_stack: E2EStack, page: Page
) -> None:
    """Issue 17: without a terminal or SQL, a team lead changes how far back threads are
    looked at, in the Launchpad's typed run config, and sees the run say what changed."""
    slack_id = sorted(e2e_stack.workspaces)[0]
    _skip_welcome(page)
    page.goto(f"{e2e_stack.url}{LAUNCHPAD}", wait_until="domcontentloaded")
    page.locator(".CodeMirror").first.wait_for()
    config = (
        "ops:\n  configure_slack_sync:\n    config:\n"
        f"      workspace: {slack_id}\n      thread_lookback_days: 45\n"
    )
    page.evaluate(SET_CONFIG, config)
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}.*"))
    page.get_by_text("Success", exact=True).first.wait_for()
    _screenshot(page, "launchpad-configure-run.png")

    with e2e_stack.app_engine.connect() as connection:
        metadata = connection.execute(
            select(SlackWorkspace.workspace_metadata).where(SlackWorkspace.slack_id == slack_id)
        ).scalar_one()
    assert (metadata or {})["sync"]["thread_lookback_days"] == 45
    # The run's log says what changed, in words.
    page.get_by_text(re.compile(r"Changed thread_lookback_days: \d+ -> 45")).first.wait_for()
