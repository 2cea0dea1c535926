"""Benchmark: a generated Slack export imported into PostgreSQL end to end (register, users,
channels, every day file).

    uv run python -m benchmarks.slack_export_ingest --channels 50 --days 200 --per-day 20
    uv run python -m benchmarks.slack_export_ingest --archive --export /tmp/archive-export

The default shape (200,000 messages, every channel-day full) targets < 30 s. `--archive` is the
shape of a real community archive (benchmarks/export_archive.py: 70 channels over 3,000 days,
200,000 messages, 25,000 users, most channel-days without a file, threads and reactions);
targets: < 20 s, peak RSS < 500 MB. Either way the stored rows are checked against what was
generated. `--profile` runs the import under cProfile (in every thread it starts: the channels
are read and written in threads of their own) and prints its top entries, all threads
together.

Besides the wall time it prints the CPU of the import's process and of its PostgreSQL backends
(read from /proc through psutil, so the server must run on this machine), in all and per phase:
on a shared host these, not the wall time, are what compare between runs.

The export is generated in a child process, so the peak RSS printed is the import's own;
`--export` keeps it for the next run (the archive takes 40-80 s to write).
"""

import argparse
import contextlib
import cProfile
import dataclasses
import datetime
import io
import json
import os
import pstats
import resource
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import psutil
import psycopg
from sqlalchemy import Engine, text

from benchmarks.common import fresh_database, machine, make_team, peak_rss_mb
from benchmarks.export_archive import ArchiveCounts, describe, write_archive_export
from toban_orchestration.progress import Progress
from toban_orchestration.slack import sample
from toban_orchestration.slack.ingest import ImportResult, import_export_workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=None, help="default: 50, archive 70")
    parser.add_argument("--days", type=int, default=None, help="default: 200, archive 3000")
    parser.add_argument("--per-day", type=int, default=20, help="uniform shape only")
    parser.add_argument("--archive", action="store_true", help="a real archive's shape")
    parser.add_argument("--messages", type=int, default=200_000, help="archive shape only")
    parser.add_argument("--users", type=int, default=25_000, help="archive shape only")
    parser.add_argument("--profile", action="store_true", help="cProfile the import (slower)")
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        help="keep the generated export in this folder and reuse it when it is there already "
        "(generating the archive takes about a minute)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="toban-export-") as folder:
        export = args.export or Path(folder) / "export"
        generating = time.perf_counter()
        # In a child process: peak RSS and CPU time below are then the import's own.
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            written, archive = pool.submit(_generated, export, args).result()
        if archive is not None:
            print(f"export: {describe(archive)}")
        else:
            print(f"export: {written:,} messages")
        print(f"export ready in {time.perf_counter() - generating:.1f} s")
        with fresh_database() as engine:
            team_id = make_team(engine)
            profiler = _ThreadProfiles() if args.profile else None
            backends_before = _backend_cpu(engine)
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            cpu_started = time.process_time()
            if profiler is not None:
                profiler.enable()
            clock = _PhaseClock(engine)
            result = import_export_workspace(
                engine, export, team_id, name="Benchmark", progress=clock
            )
            if profiler is not None:
                profiler.disable()
            elapsed = time.perf_counter() - started
            importer_cpu = time.process_time() - cpu_started
            backends_after = _backend_cpu(engine)
            backend_cpu = sum(
                seconds - backends_before.get(pid, 0.0) for pid, seconds in backends_after.items()
            )
            load_after = os.getloadavg()[0]
            stored = _stored(engine)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"machine: {machine()}")
    print(f"messages in the export: {written:,}   stored: {stored['messages']:,}")
    target = "< 20 s" if args.archive else "< 30 s"
    print(
        f"import time: {elapsed:.1f} s   messages/s: {stored['messages'] / elapsed:,.0f}   "
        f"(target: {target}{', under cProfile' if profiler else ''})"
    )
    print(f"peak RSS: {peak_rss_mb():.0f} MB   CPU time: {usage.ru_utime + usage.ru_stime:.1f} s")
    print(
        f"CPU of the import: importer {importer_cpu:.1f} s, its PostgreSQL backends "
        f"{backend_cpu:.1f} s   (load average {load_before:.1f} before, {load_after:.1f} after)"
    )
    clock.report()
    print(f"inserted: {result.messages.report.messages.inserted:,}")
    problems = _check(stored, written, archive, result)
    print("rows: " + ", ".join(f"{name} {count:,}" for name, count in stored.items()))
    print("complete: yes" if not problems else "INCOMPLETE: " + "; ".join(problems))
    if profiler is not None:
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            profiler.stats(out).sort_stats(order).print_stats(25)
            print(out.getvalue())
    if problems:
        raise SystemExit(1)


def _generated(export: Path, args: argparse.Namespace) -> tuple[int, ArchiveCounts | None]:
    """(messages, the archive's counts), generating the export unless it is kept already."""
    shape = {
        "archive": args.archive,
        "channels": args.channels or (70 if args.archive else 50),
        "days": args.days or (3000 if args.archive else 200),
        "per_day": args.per_day,
        "messages": args.messages,
        "users": args.users,
    }
    record = export.with_name(export.name + ".generated.json")
    if export.exists() and record.exists():
        kept = json.loads(record.read_text())
        if kept["shape"] != shape:
            raise SystemExit(f"{export} holds another shape: {kept['shape']}")
        counts = kept["archive"]
        return kept["messages"], ArchiveCounts(**counts) if counts else None
    if export.exists():
        raise SystemExit(f"{export} exists but was not generated here")
    archive = None
    if args.archive:
        archive = write_archive_export(
            export,
            channels=shape["channels"],
            days=shape["days"],
            messages=args.messages,
            users=args.users,
        )
        written = archive.messages
    else:
        written = write_uniform_export(
            export, channels=shape["channels"], days=shape["days"], per_day=args.per_day
        )
    counts = dataclasses.asdict(archive) if archive else None
    record.write_text(json.dumps({"shape": shape, "messages": written, "archive": counts}))
    return written, archive


def write_uniform_export(path: Path, *, channels: int, days: int, per_day: int) -> int:
    """slack.sample's generated workspace with public channels only, every channel-day full
    (`per_day` messages and replies), as an export; returns its message count."""
    workspace = sample.generate(
        2023,
        users=50,
        channels=channels,
        private_channels=0,
        archived=False,
        direct=False,
        days=days,
        messages_per_channel_day=per_day,
        start=datetime.date(2023, 1, 1),
    )
    return sample.write_export(workspace, path, indent=4).messages


class _ThreadProfiles:
    """cProfile of the calling thread and of every thread started while it is on: the import
    reads and writes its channels in threads of its own."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []

    def _start_in_thread(self, frame: object, event: str, arg: object) -> None:
        profile = cProfile.Profile()
        self.profiles.append(profile)
        profile.enable()  # in place of this hook, for the rest of the new thread

    def enable(self) -> None:
        threading.setprofile(self._start_in_thread)
        self._start_in_thread(None, "call", None)

    def disable(self) -> None:
        threading.setprofile(None)
        self.profiles[0].disable()

    def stats(self, stream: io.StringIO) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0], stream=stream)
        for profile in self.profiles[1:]:
            stats.add(profile)
        return stats


class _PhaseClock(Progress):
    """The import's progress lines, each with the wall time and CPU (the importer's, its
    backends') spent since the one before: the serial phases (users, channels) apart from the
    messages, whose reading and writing overlap."""

    PHASES = ("Export:", "Users:", "Channels:", "Messages: ")

    def __init__(self, engine: Engine) -> None:
        super().__init__(quiet=True)
        self.engine = engine
        self.marks: list[tuple[str, float, float, float]] = [self._mark("start")]

    def _mark(self, text: str) -> tuple[str, float, float, float]:
        backends = sum(_backend_cpu(self.engine).values())
        return text, time.perf_counter(), time.process_time(), backends

    def line(self, text: str) -> None:
        if text.startswith(self.PHASES) and not text.startswith("Messages: reading"):
            self.marks.append(self._mark(text))

    def report(self) -> None:
        print(f"{'phase':<10}{'wall s':>8}{'importer CPU s':>16}{'backends CPU s':>16}")
        for before, (said, wall, cpu, backends) in zip(self.marks, self.marks[1:], strict=False):
            name = "listing" if said.startswith("Export:") else said.split(":")[0].lower()
            print(
                f"{name:<10}{wall - before[1]:>8.1f}{cpu - before[2]:>16.1f}"
                f"{backends - before[3]:>16.1f}"
            )


def _backend_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the benchmark's database,
    by pid. Read on a connection of its own, outside the engine's pool, so that the import's
    pooled connections are all counted (and the server's other work is not); the caller
    subtracts what the pooled connections spent before the import (migrations)."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as connection:
        pids = [
            int(pid)
            for (pid,) in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ]
    seconds: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = psutil.Process(pid).cpu_times()
            seconds[pid] = float(times.user + times.system)
    return seconds


def _stored(engine: Engine) -> dict[str, int]:
    queries = {
        "messages": "SELECT count(*) FROM slack_message",
        "reactions": "SELECT count(*) FROM slack_reaction",
        "users": "SELECT count(*) FROM slack_user",
        "channels": "SELECT count(*) FROM slack_channel",
        "sync days": "SELECT count(*) FROM slack_sync_day",
        "sync day messages": "SELECT coalesce(sum(message_count), 0) FROM slack_sync_day",
        "incomplete days": "SELECT count(*) FROM slack_sync_day WHERE NOT complete",
        "unlinked replies": "SELECT count(*) FROM slack_message "
        "WHERE is_thread_reply AND parent_id IS NULL",
    }
    with engine.connect() as connection:
        return {
            name: int(connection.execute(text(sql)).scalar_one()) for name, sql in queries.items()
        }


def _check(
    stored: dict[str, int], written: int, archive: ArchiveCounts | None, result: ImportResult
) -> list[str]:
    """What differs from the generated export (empty: the import is complete)."""
    expected = {
        "messages": written,
        "sync day messages": written,
        "incomplete days": 0,
        "unlinked replies": 0,
    }
    if archive is not None:
        expected |= {
            "reactions": archive.reactions,
            "users": archive.users,
            "channels": archive.channels,
            "sync days": archive.channel_days,
        }
    elif result.first_day and result.last_day:
        channels = stored["channels"]
        expected["sync days"] = channels * ((result.last_day - result.first_day).days + 1)
    return [
        f"{name}: {stored[name]:,} stored, {count:,} expected"
        for name, count in expected.items()
        if stored[name] != count
    ]


if __name__ == "__main__":
    main()
