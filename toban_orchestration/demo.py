"""The demo: a generated Slack workspace, ingested and analyzed through the real pipeline on the
embedded database, with the reports and the leaderboard printed and shown in the Dagster UI.

The workspace (toban_orchestration.slack.sample's demo workspace) is written as a Slack export
(the modern format) so that it goes through the same ingestion as a real one; its people play
known roles (a helper who answers questions in threads, askers, a coordinator who plans and
mentions people, a reactor who only reacts), and two of them share a first name, which the
printed leaderboard and reports tell apart as every report does."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.access.store import team_for_slug
from toban_orchestration.analysis import report
from toban_orchestration.analysis.offline import MODEL_NAME as OFFLINE_ANALYZER
from toban_orchestration.analysis.store import report_inputs, window_analysis_id
from toban_orchestration.dagster_instance import project_instance
from toban_orchestration.db import migrations
from toban_orchestration.db.engine import DatabaseTargets, forget_app_engine, opened_engine
from toban_orchestration.db.enums import ScheduleFrequency
from toban_orchestration.definitions import build_defs
from toban_orchestration.defs.analysis.partitions import window_partitions
from toban_orchestration.defs.analysis.trend_assets import TRENDS_ASSET
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.assets import (
    slack_channels,
    slack_users,
    slack_workspace,
)
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.progress import Progress, duration, file_handler, python_logs_to
from toban_orchestration.settings import get_settings
from toban_orchestration.slack import sample
from toban_orchestration.slack.sample import DEMO_NAME, DEMO_TEAM_ID
from toban_orchestration.slack.workspaces import register_export_workspace

PEOPLE = sample.DEMO_PEOPLE
CHANNELS = sample.DEMO_CHANNELS

# The runs' job name: the one `dg.materialize` gives its runs (the UI shows them as ad hoc
# materializations).
RUN_JOB_NAME = "__ephemeral_asset_job__"


class DemoError(RuntimeError):
    """A demo run failed; the message names the log file with its events."""


@dataclass(frozen=True)
class RunLogs:
    """Where the Dagster event logs of the demo's runs go: the log file, and the terminal too
    when `verbose`."""

    handler: logging.Handler | None = None
    verbose: bool = True

    def loggers(self) -> dict[str, dg.LoggerDefinition]:
        handler = self.handler

        def file_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
            # Not registered with `logging`: its records reach the file only, not the terminal.
            to_file = logging.Logger("dagster", level=logging.DEBUG)
            if handler is not None:
                to_file.addHandler(handler)
            return to_file

        toban_log_file = dg.LoggerDefinition(
            file_logger, description="The Dagster event logs of the demo's runs, to its log file."
        )
        return {"console": dg.colored_console_logger, "toban_log_file": toban_log_file}

    def run_config(self) -> dict[str, Any]:
        loggers: dict[str, Any] = {}
        if self.handler is not None:
            loggers["toban_log_file"] = {}
        if self.verbose or self.handler is None:
            loggers["console"] = {"config": {"log_level": "DEBUG"}}
        return {"loggers": loggers}


@dataclass(frozen=True)
class DemoExport:
    path: Path
    first_day: date
    last_day: date
    messages: int


def write_demo_export(root: Path, *, days: int = 14, today: date | None = None) -> DemoExport:
    """The demo workspace (slack.sample's) as a Slack export of the `days` days before `today`
    (UTC)."""
    last = (today or datetime.now(UTC).date()) - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    written = sample.write_export(sample.demo_workspace(first, last), root)
    return DemoExport(root, first, last, written.messages)


def run_demo(
    targets: DatabaseTargets,
    *,
    progress: Progress | None = None,
    log_path: Path | None = None,
    verbose: bool = True,
) -> str:
    """Ingest and analyze the demo workspace through Dagster runs on the project's instance
    (so the UI shows them), and return the printable reports and leaderboard.

    `progress` hears a line per phase; with `log_path`, the runs' Dagster event logs (and the
    Python logs of the demo) go to that file, and to the terminal only when `verbose`."""
    settings = get_settings()
    progress = progress or Progress(quiet=True)
    with _logs_to(log_path) as handler, opened_engine(targets.app_url) as engine:
        logs = RunLogs(handler, verbose)
        try:
            return _ingest_and_analyze(
                engine, targets, settings.state_dir / "demo-export", progress, logs
            )
        except dg.DagsterError as error:
            where = f": its events are in {log_path}" if log_path else ""
            raise DemoError(f"a demo run failed ({type(error).__name__}: {error}){where}") from None
        finally:
            forget_app_engine()  # the runs opened it, on the same database


@contextmanager
def _logs_to(log_path: Path | None) -> Iterator[logging.Handler | None]:
    if log_path is None:
        yield None
        return
    handler = file_handler(log_path)
    try:
        with python_logs_to(handler):
            yield handler
    finally:
        handler.close()


def _ingest_and_analyze(
    engine: Engine,
    targets: DatabaseTargets,
    export_folder: Path,
    progress: Progress,
    logs: RunLogs,
) -> str:
    before = migrations.current_revision(engine)
    migrations.upgrade(engine)
    revision = migrations.current_revision(engine)
    progress.line(
        f"Database: schema at revision {revision}"
        + (f" (migrated from {before or 'an empty database'})" if before != revision else "")
    )
    export = write_demo_export(export_folder)
    progress.line(
        f"Export: generated {export.messages} messages of {len(PEOPLE)} people in "
        f"{len(CHANNELS)} channels, {export.first_day} to {export.last_day}, in {export.path}"
    )
    with Session(engine) as session, session.begin():
        register_export_workspace(
            session,
            team_id=team_for_slug(session, "demo", "Demo team"),
            slack_id=DEMO_TEAM_ID,
            name=DEMO_NAME,
            export_path=export.path,
        )
    # The runs below resolve the databases from the environment, like `dagster dev` does.
    os.environ["TOBAN_DATABASE_URL"] = targets.app_url.render_as_string(hide_password=False)
    get_settings.cache_clear()
    forget_app_engine()
    settings = get_settings()
    resources = build_resources(settings)
    built = build_defs(settings)
    messages = built.get_assets_def("slack_messages")
    weekly = built.get_assets_def(f"slack_channel_analyses_{ScheduleFrequency.WEEKLY.value}")
    trends = built.get_assets_def(TRENDS_ASSET)
    weeks = _weeks_overlapping(export.first_day, export.last_day, settings.partitions_start_date)
    days = (export.last_day - export.first_day).days + 1
    with project_instance(targets.dagster_url) as instance:
        instance.add_dynamic_partitions(workspace_partitions.name or "", [DEMO_TEAM_ID])
        _materialize(
            instance, [slack_workspace, slack_users, slack_channels], DEMO_TEAM_ID, resources, logs
        )
        progress.line(
            f"Snapshot: workspace, {len(PEOPLE)} users and {len(CHANNELS)} channels (1 run)"
        )
        steps = progress.steps("Messages: ingesting day partitions", days, "days")
        day = export.first_day
        while day <= export.last_day:
            key = dg.MultiPartitionKey({"date": day.isoformat(), "workspace": DEMO_TEAM_ID})
            _materialize(instance, [messages], key, resources, logs)
            steps.advance()
            day += timedelta(days=1)
        progress.line(
            f"Messages: {days} day partitions, {export.messages} messages "
            f"({days} runs, {duration(steps.elapsed)})"
        )
        steps = progress.steps("Analyses: weekly windows", len(weeks), "weeks")
        report_file = "no week analyzed"
        for week in weeks:
            key = dg.MultiPartitionKey({"date": week, "workspace": DEMO_TEAM_ID})
            analyzed = _materialize(instance, [weekly], key, resources, logs)
            report_file = _report_file(analyzed, weekly.node_def.name)
            # The week's trends (who moved most), so the UI shows them without waiting for
            # the automation sensor's first ticks.
            _materialize(instance, [trends], key, resources, logs)
            steps.advance()
        progress.line(
            f"Analyses: {len(weeks)} weekly windows and their trends "
            f"({2 * len(weeks)} runs, {duration(steps.elapsed)})"
        )
    return _printable(engine, weeks[-1] if weeks else None, export, report_file)


def _materialize(
    instance: dg.DagsterInstance,
    assets: list[dg.AssetsDefinition],
    partition_key: str,
    resources: dict[str, Any],
    logs: RunLogs,
) -> dg.ExecuteInProcessResult:
    """What `dg.materialize` does, with the demo's loggers: the event logs go to the log file,
    and to the terminal only when asked."""
    definitions = dg.Definitions(
        jobs=[dg.define_asset_job(RUN_JOB_NAME)],
        assets=assets,
        resources=resources,
        loggers=logs.loggers(),
    )
    result = definitions.resolve_job_def(RUN_JOB_NAME).execute_in_process(
        run_config=logs.run_config(), instance=instance, partition_key=partition_key
    )
    if not result.success:  # pragma: no cover - execute_in_process raises on failure
        raise DemoError(f"The demo run {partition_key} failed")
    return result


def _report_file(result: dg.ExecuteInProcessResult, node_name: str) -> str:
    """Where the analysis' materialization wrote the window's HTML report (its `report`
    metadata: the path, or why it was not written)."""
    for materialization in result.asset_materializations_for_node(node_name):
        value = materialization.metadata.get("report")
        if isinstance(value, dg.PathMetadataValue):
            return str(value.path)
        if isinstance(value, dg.TextMetadataValue) and value.text:
            return value.text
    return "not written (the analysis recorded no report)"


def _weeks_overlapping(first: date, last: date, start_date: str) -> list[str]:
    """Weekly partition keys (Mondays) of the complete weeks that overlap [first, last], of the
    weekly partitions that begin on `start_date`."""
    definition = window_partitions(ScheduleFrequency.WEEKLY, start_date)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    keys = []
    for key in definition.get_partition_keys():
        window = definition.time_window_for_partition_key(key)
        if window.end > start and window.start < end:
            keys.append(key)
    return keys


def _printable(engine: Engine, week: str | None, export: DemoExport, report_file: str) -> str:
    """The week's channel reports and leaderboard, read from the stored analysis and named as
    the HTML report names them (namesakes told apart, the workspace by its name)."""
    lines = [
        f"Demo workspace {DEMO_NAME} ({DEMO_TEAM_ID}): {export.messages} messages from "
        f"{export.first_day} to {export.last_day}, ingested from a generated Slack export.",
    ]
    if week is None:
        return "\n".join([*lines, "No complete week to analyze yet."])
    with engine.connect() as connection:
        inputs = report_inputs(
            connection,
            window_analysis_id(connection, DEMO_TEAM_ID, "weekly", date.fromisoformat(week)),
        )
    labels = report.person_labels(report.all_people(inputs))
    lines.append(
        f"\n{report.workspace_label(inputs.workspace)}: {report.window_label(inputs)}, "
        f"by {inputs.model}:"
    )
    lines.append(_who_wrote_the_text(inputs.model))
    lines.append(f"The week's HTML report (charts, every score and what earned it): {report_file}")
    lines.append(f"(`toban report --workspace {DEMO_TEAM_ID}` writes it again.)\n")
    for channel in sorted(inputs.channels, key=lambda c: (c.name, c.slack_id)):
        if channel.status != "completed":
            lines += [
                f"## #{channel.name}",
                f"Not analyzed by the model: {channel.error_message}",
                "",
            ]
            continue
        lines += [
            f"## #{channel.name}",
            channel.summary or "",
            channel.topics or "",
            channel.highlights or "",
            "",
        ]
    lines.append("## Leaderboard (all channels)\n")
    lines.append(
        "| # | contributor | total | problem solving | knowledge | coordination | engagement |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for rank, row in enumerate(report.leaderboard(inputs), start=1):
        lines.append(
            f"| {rank} | {labels[row.person.slack_id]} | {row.total:.1f} | "
            f"{row.problem_solving:.1f} | {row.knowledge_sharing:.1f} | "
            f"{row.team_coordination:.1f} | {row.engagement:.1f} |"
        )
    return "\n".join(lines)


def _who_wrote_the_text(model: str | None) -> str:
    """Says plainly whether a model or the offline analyzer wrote the report text below."""
    if model == OFFLINE_ANALYZER:
        return (
            "The text below was written by the offline analyzer (counts, frequent terms, "
            "most-reacted messages; no model). Set TOBAN_LLM_BASE_URL and TOBAN_LLM_MODEL (and "
            "TOBAN_LLM_API_KEY) to any OpenAI-compatible endpoint for a model's summary, "
            "topics, insights and cited highlights."
        )
    return f"The text below was written by the model {model} (TOBAN_LLM_MODEL)."
