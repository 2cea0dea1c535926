"""The local Slack server in a process of its own, so that the benchmark's memory figure is
the pipeline's alone. Prints one JSON line (base URL, token, minimum calls) once serving.

Unless ``--render-live``, every message is encoded before serving starts: Slack renders its
answers on its own machines, while this stand-in shares the benchmark's cores with the pipeline
it measures."""

import argparse
import json
import sys
import time
from datetime import date

from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=770)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--render-live", action="store_true", help="encode messages when served")
    args = parser.parse_args()
    workspace = generate_workspace(
        seed=42,
        channels=args.channels,
        private_channels=0,
        days=args.days,
        messages_per_channel_day=args.per_day,
        start=date(2026, 1, 1),
    )
    token = "xoxb-benchmark"
    started = time.perf_counter()
    prerendered = 0 if args.render_live else workspace.prerender()
    prerender_seconds = time.perf_counter() - started
    with FakeSlackServer(workspace, token, log_params=False) as server:
        minimum = server.minimum_calls(page_size=args.page_size, join_channels=False)
        print(
            json.dumps(
                {
                    "base_url": server.base_url,
                    "token": token,
                    "minimum": minimum,
                    "messages": workspace.message_count(),
                    "first_day": "2026-01-01",
                    "days": args.days,
                    "prerendered_bytes": prerendered,
                    "prerender_seconds": round(prerender_seconds, 1),
                }
            ),
            flush=True,
        )
        sys.stdin.read()  # serve until the benchmark closes our stdin


if __name__ == "__main__":
    main()
