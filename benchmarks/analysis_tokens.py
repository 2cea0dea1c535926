"""Benchmark: tokens per analyzed message, prompt overhead over the raw message text, and LLM
calls per channel-window, against the local OpenAI-compatible server with max_tokens enforced
(answers as long as each request allows, so a plan that does not fit shows as cut answers);
then the same windows again, which must make no call (cache).

    uv run python -m benchmarks.analysis_tokens --days 28
"""

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from benchmarks.common import fresh_database, machine, make_team
from toban_orchestration.analysis.llm import ChannelAnalyst
from toban_orchestration.analysis.prompt import CHARS_PER_TOKEN, build_transcript
from toban_orchestration.analysis.run import run_analysis, window_analysis
from toban_orchestration.analysis.store import load_channel_window
from toban_orchestration.demo import write_demo_export
from toban_orchestration.settings import Settings
from toban_orchestration.slack.ingest import import_export_workspace
from toban_orchestration.slack.sample import DEMO_TEAM_ID
from toban_orchestration_tests.fakes.llm_server import FakeLLMServer
from toban_orchestration_tests.llm_answers import thorough_answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=28, help="at least 7: whole weeks are analyzed")
    args = parser.parse_args()
    if args.days < 7:
        parser.error(f"--days {args.days}: the benchmark analyzes whole weeks, give at least 7")
    with tempfile.TemporaryDirectory() as folder, fresh_database() as engine:
        export = write_demo_export(Path(folder) / "export", days=args.days)
        import_export_workspace(engine, export.path, make_team(engine))
        start = datetime(export.first_day.year, export.first_day.month, export.first_day.day,
                         tzinfo=UTC)  # fmt: skip
        windows = [(start + timedelta(days=7 * n), start + timedelta(days=7 * (n + 1)))
                   for n in range(args.days // 7)]  # fmt: skip
        raw_chars = transcript_chars = messages = 0
        with FakeLLMServer(api_key=None) as server:
            server.responder = thorough_answer
            analyst = ChannelAnalyst(Settings(llm_base_url=server.base_url, llm_model="fake-model"))
            started = time.perf_counter()
            analyses = [window_analysis(engine, DEMO_TEAM_ID, "weekly", s, e) for s, e in windows]
            first = [run_analysis(engine, a, analyst) for a in analyses]
            elapsed = time.perf_counter() - started
            second = [run_analysis(engine, a, analyst) for a in analyses]
            truncated = server.count("truncated")
            with engine.connect() as connection:
                for (s, e), analysis in zip(windows, analyses, strict=True):
                    channel_ids = connection.execute(
                        text(
                            "SELECT channel_id FROM slack_analysis_channels WHERE analysis_id = :a"
                        ),
                        {"a": analysis},
                    ).scalars()
                    for channel_id in channel_ids:
                        window = load_channel_window(connection, channel_id, s, e)
                        raw_chars += sum(len(m.text) for m in window.messages)
                        transcript_chars += len(build_transcript(window).text)
                        messages += len(window.messages)
    calls = sum(r.usage.calls for r in first)
    channel_windows = sum(r.channels for r in first)
    prompt_tokens = sum(r.usage.prompt_tokens for r in first)
    print(f"machine: {machine()}")
    print(
        f"windows: {len(windows)} weeks, channel-windows: {channel_windows}, messages: {messages}"
    )
    print(
        f"LLM calls: {calls} ({calls / channel_windows:.2f} per channel-window) in {elapsed:.1f} s"
    )
    print(f"prompt tokens (server's count, system prompt included): {prompt_tokens:,} "
          f"= {prompt_tokens / messages:.1f} per message")  # fmt: skip
    raw_tokens = raw_chars / CHARS_PER_TOKEN
    transcript_tokens = transcript_chars / CHARS_PER_TOKEN
    overhead = transcript_tokens / raw_tokens - 1
    print(f"transcript vs raw message text: {transcript_tokens:,.0f} vs {raw_tokens:,.0f} "
          f"tokens = {overhead:+.0%} overhead (target: at most +40%)")  # fmt: skip
    print(f"answers cut at max_tokens: {truncated} (then asked again in two parts: "
          f"{sum(r.usage.splits for r in first)}); failed channels: "
          f"{sum(len(r.failed_channels) for r in first)}")  # fmt: skip
    print(f"re-run of the same windows: {sum(r.usage.calls for r in second)} calls, "
          f"{sum(r.usage.cache_hits for r in second)} cache hits")  # fmt: skip


if __name__ == "__main__":
    main()
