"""The project's Dagster instance (dagster.yaml, PostgreSQL storage) for commands that run
outside `dagster dev`: registering workspace partitions, the demo's materializations."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from sqlalchemy.engine import URL

from toban_orchestration.settings import PROJECT_ROOT


@contextmanager
def project_instance(dagster_url: URL) -> Iterator[dg.DagsterInstance]:
    os.environ["TOBAN_DAGSTER_STORAGE_URL"] = dagster_url.render_as_string(hide_password=False)
    with dg.DagsterInstance.from_config(str(PROJECT_ROOT)) as instance:
        yield instance
