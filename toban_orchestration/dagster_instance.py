"""The project's Dagster instance (dagster.yaml, PostgreSQL storage) for commands that run
outside `dagster dev`: registering workspace partitions, the demo's materializations."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.instance.ref import InstanceRef
from sqlalchemy.engine import URL

from toban_orchestration.settings import PROJECT_ROOT


@contextmanager
def project_instance(dagster_url: URL) -> Iterator[dg.DagsterInstance]:
    os.environ["TOBAN_DAGSTER_STORAGE_URL"] = dagster_url.render_as_string(hide_password=False)
    ref = InstanceRef.from_dir(str(PROJECT_ROOT), config_dir=str(PROJECT_ROOT))
    with dg.DagsterInstance.from_ref(ref) as instance:
        yield instance
