import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from toban_orchestration.db.engine import opened_engine
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


@contextmanager
def disposing_engine(url: str) -> Iterator[Engine]:
    """An engine on `url`, disposed (its pooled connections closed) when the block ends.

    For databases other than the test's app database, which `migrated_engine` already reaches
    (for example the Dagster storage database of `app_environment`)."""
    with opened_engine(make_url(url)) as engine:
        yield engine


def report_pages(directory: Path, slack_id: str, *names: str) -> None:
    """Report pages of a workspace as the analyses write them (their content does not matter)."""
    (directory / slack_id).mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / slack_id / name).write_text("<html>a copied name</html>")
