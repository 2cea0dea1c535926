"""Benchmark: a generated Slack export (default 200,000 messages) imported into PostgreSQL end
to end (register, users, channels, every day file). Target: under 30 s.

    uv run python -m benchmarks.slack_export_ingest --channels 50 --days 200 --per-day 20
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from benchmarks.common import fresh_database, machine, make_team, peak_rss_mb
from toban_orchestration.db.models import SlackMessage
from toban_orchestration.slack.ingest import import_export_workspace
from toban_orchestration_tests.test_slack_export import write_generated_export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--per-day", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="toban-export-") as folder:
        export = Path(folder) / "export"
        written = write_generated_export(
            export, channels=args.channels, days=args.days, per_day=args.per_day
        )
        with fresh_database() as engine:
            team_id = make_team(engine)
            started = time.perf_counter()
            result = import_export_workspace(engine, export, team_id, name="Benchmark")
            elapsed = time.perf_counter() - started
            with Session(engine) as session:
                stored = session.scalar(select(func.count()).select_from(SlackMessage)) or 0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"machine: {machine()}")
    print(f"messages in the export: {written:,}   stored: {stored:,}")
    print(f"import time: {elapsed:.1f} s   messages/s: {stored / elapsed:,.0f}   (target: < 30 s)")
    print(f"peak RSS: {peak_rss_mb():.0f} MB   CPU time: {usage.ru_utime + usage.ru_stime:.1f} s")
    print(f"inserted: {result.messages.report.messages.inserted:,}")


if __name__ == "__main__":
    main()
