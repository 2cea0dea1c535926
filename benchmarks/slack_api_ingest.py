"""Benchmark: a generated workspace synced end to end from the local Slack Web API server (no
rate limiting) into PostgreSQL. Prints messages per second, API calls against the minimum a
perfect sync needs, and the pipeline's peak RSS.

    uv run python -m benchmarks.slack_api_ingest --days 100 --per-day 770   # ~1,000,000 messages
"""

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from datetime import date, timedelta

import psutil
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from benchmarks.common import fresh_database, machine, make_team, peak_rss_mb
from toban_orchestration.db.models import SlackChannel, SlackMessage, SlackReaction
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.slack import ingest
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration.slack.workspaces import register_token_workspace

METHODS = ("conversations.history", "conversations.replies", "reactions.get", "users.list",
           "conversations.list")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=770)
    parser.add_argument("--page-size", type=int, default=200)
    defaults = SyncOptions()
    parser.add_argument("--channel-concurrency", type=int, default=defaults.channel_concurrency)
    parser.add_argument("--fetch-concurrency", type=int, default=defaults.fetch_concurrency)
    parser.add_argument(
        "--server-renders-live",
        action="store_true",
        help="the local Slack server encodes each message when it serves it, on the cores the "
        "pipeline uses, instead of before the clock starts",
    )
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.serve_fake_slack", "--channels", str(args.channels),
         "--days", str(args.days), "--per-day", str(args.per_day),
         "--page-size", str(args.page_size),
         *(["--render-live"] if args.server_renders_live else [])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    assert server.stdin is not None
    info = json.loads(server.stdout.readline())
    cipher = TokenCipher([generate_key()])
    try:
        with fresh_database() as engine:
            with Session(engine) as session, session.begin():
                slack_id = register_token_workspace(
                    session,
                    team_id=make_team(engine),
                    token=info["token"],
                    cipher=cipher,
                    base_url=info["base_url"],
                    sync=SyncOptions(
                        pacing=False,
                        page_size=args.page_size,
                        include_direct_messages=True,
                        channel_concurrency=args.channel_concurrency,
                        fetch_concurrency=args.fetch_concurrency,
                    ),
                ).slack_id
            started = time.perf_counter()
            server_cpu = _cpu_seconds(server.pid)
            wal_start = _wal_position(engine)
            users = ingest.refresh_users(engine, cipher, slack_id)
            channels = ingest.refresh_channels(engine, cipher, slack_id)
            with engine.begin() as connection:
                connection.execute(update(SlackChannel).values(is_selected_for_analysis=True))
            first = date.fromisoformat(info["first_day"])
            result = ingest.sync_message_days(
                engine, cipher, slack_id, first, first + timedelta(info["days"] - 1)
            )
            elapsed = time.perf_counter() - started
            server_cpu = _cpu_seconds(server.pid) - server_cpu
            postgres_cpu = _backend_cpu_seconds(engine)
            wal_bytes = _wal_bytes_since(engine, wal_start)
            with Session(engine) as session:
                stored = session.scalar(select(func.count()).select_from(SlackMessage)) or 0
                reactions = session.scalar(select(func.count()).select_from(SlackReaction)) or 0
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    calls = users.stats.calls + channels.stats.calls + result.stats.calls
    total = sum(calls.values())
    minimum = info["minimum"]
    print(f"machine: {machine()}")
    print(f"messages served: {info['messages']:,}   stored: {stored:,}   reactions: {reactions:,}")
    if args.server_renders_live:
        print("the local Slack server encoded each message when it served it")
    else:
        print(
            f"the local Slack server encoded its messages before the clock started "
            f"({info['prerendered_bytes'] / 1e6:,.0f} MB in {info['prerender_seconds']} s)"
        )
    print(f"wall time: {elapsed:.1f} s   messages/s: {stored / elapsed:,.0f}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"peak RSS of the pipeline process: {peak_rss_mb():.0f} MB   "
        f"its CPU time: {usage.ru_utime + usage.ru_stime:.1f} s"
    )
    print(
        f"CPU during the sync: Slack server {server_cpu:.1f} s, "
        f"PostgreSQL backends {postgres_cpu:.1f} s "
        f"(per message: server {server_cpu / stored * 1e6:.0f} us, "
        f"PostgreSQL {postgres_cpu / stored * 1e6:.0f} us)"
    )
    print(
        f"WAL written during the sync: {wal_bytes / 1e9:.2f} GB "
        f"({wal_bytes / stored:,.0f} bytes a message; the whole server's)"
    )
    print(f"{'method':<24}{'calls':>10}{'minimum':>10}")
    for method in METHODS:
        print(f"{method:<24}{calls[method]:>10,}{minimum.get(method, 0):>10,}")
    floor = sum(minimum.get(m, 0) for m in METHODS)
    print(f"{'total':<24}{total:>10,}{floor:>10,}   ({total / floor - 1:+.1%} against the minimum)")
    print(f"retries: {result.stats.total_retries}")


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _wal_position(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.execute(text("SELECT pg_current_wal_lsn()")).scalar_one())


def _wal_bytes_since(engine: Engine, start: str) -> int:
    """WAL the server wrote since `start`: index maintenance and, after each checkpoint, whole
    page images, which `max_wal_size` decides the frequency of."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:start AS pg_lsn))"),
                {"start": start},
            ).scalar_one()
        )


def _backend_cpu_seconds(engine: Engine) -> float:
    """CPU of the PostgreSQL backends connected to the benchmark's database (the sync's pooled
    connections, alive since they were opened during the sync): other work on the server, and
    its background processes, are left out."""
    with engine.connect() as connection:
        pids = connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ).scalars()
        total = 0.0
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += _cpu_seconds(pid)
    return total


if __name__ == "__main__":
    main()
