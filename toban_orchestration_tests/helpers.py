import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from toban_orchestration.settings import PROJECT_ROOT

# The console script that pyproject.toml declares, installed next to this interpreter.
TOBAN_SCRIPT = Path(sys.executable).parent / "toban"
TOBAN_VARIABLES = ("TOBAN_DATABASE_URL", "TOBAN_DAGSTER_STORAGE_URL", "TOBAN_STATE_DIR")


def run_toban(
    *args: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the `toban` console script as a user would, with exactly these TOBAN_* variables."""
    environment = {k: v for k, v in os.environ.items() if k not in TOBAN_VARIABLES}
    environment.update(env)
    return subprocess.run(
        [str(TOBAN_SCRIPT), *args],
        env=environment,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
