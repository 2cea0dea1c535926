"""`toban dev`, the README's first command: embedded database up and migrated, Dagster UI on
loopback showing the asset graph, and everything it started gone after a signal."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from toban_orchestration.db.embedded import EmbeddedPostgres
from toban_orchestration_tests.helpers import TOBAN_SCRIPT, TOBAN_VARIABLES, run_toban

STARTUP_TIMEOUT_SECONDS = 120
ASSET_QUERY = "{ assetNodes { assetKey { path } } instance { info } }"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _graphql(port: int, query: str) -> dict[str, object] | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body: dict[str, object] = json.load(response)
            return body
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_dev_serves_the_asset_graph_and_stops_everything_on_a_signal(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = _free_port()
    state_dir = tmp_path / "state"
    environment = {k: v for k, v in os.environ.items() if k not in TOBAN_VARIABLES}
    environment["TOBAN_STATE_DIR"] = str(state_dir)
    log_path = tmp_path / "dev.log"
    with log_path.open("w") as log:
        launcher = subprocess.Popen(
            [str(TOBAN_SCRIPT), "dev", "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        answer = None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while answer is None and time.monotonic() < deadline:
            assert launcher.poll() is None, log_path.read_text()
            answer = _graphql(port, ASSET_QUERY)
            time.sleep(1)
        assert answer is not None, log_path.read_text()
        data = answer["data"]
        assert isinstance(data, dict)
        assert {"path": ["app_database_schema"]} in [n["assetKey"] for n in data["assetNodes"]]
        assert "PostgresRunStorage" in data["instance"]["info"]

        server = EmbeddedPostgres(state_dir / "pgdata")
        assert server.is_running()
        started = psutil.Process(launcher.pid).children(recursive=True)
        assert started, "dagster dev should run as a child of the launcher"

        launcher.send_signal(stop_signal)
        assert launcher.wait(timeout=90) == 0, log_path.read_text()
    finally:
        if launcher.poll() is None:
            launcher.kill()

    _, alive = psutil.wait_procs(started, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]
    assert not server.is_running()
    assert _graphql(port, ASSET_QUERY) is None

    # The next start reuses the data: the schema is still there, at head.
    current = run_toban("db", "current", env={"TOBAN_STATE_DIR": str(state_dir)})
    assert current.returncode == 0, current.stdout + current.stderr
    assert "up to date" in current.stdout
