"""No secret leaks during a full run with faults.

The Slack assets and an LLM analysis are materialized through Dagster on the project's
PostgreSQL-backed instance, against the local Slack server (rate limits, server errors, a
dropped connection, a rotating token that is refreshed on the way) and the local LLM server
(a rate limit and a server error), then a run fails on a revoked token. Afterwards everything
that was written is scanned for every secret in play: captured logs (all loggers at DEBUG),
captured stdout/stderr, every table of Dagster's storage database (event log, runs with their
config and tags, ...) and the instance's local files, the exceptions raised, and every table of
the app database. The logs, stdout/stderr and exceptions are also scanned for the Slack messages'
text and the prompts sent to the model: content is stored, never logged.
"""

import json
import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from toban_orchestration.db.engine import forget_app_engine
from toban_orchestration.db.models import IntegrationCredential, Team
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.defs.slack.assets import (
    slack_channels,
    slack_users,
    slack_workspace,
)
from toban_orchestration.defs.slack.partitions import workspace_partitions
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import PROJECT_ROOT, get_settings
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration.slack.workspaces import register_token_workspace
from toban_orchestration_tests.fakes.llm_server import FakeLLMServer
from toban_orchestration_tests.fakes.llm_server import Fault as LLMFault
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, Fault, generate_workspace
from toban_orchestration_tests.helpers import disposing_engine
from toban_orchestration_tests.llm_answers import good_answer
from toban_orchestration_tests.support.partitioned_assets import MESSAGES, WEEKLY

DAY = date(2026, 11, 2)  # a Monday: the weekly analysis window starts here
TOKEN = "xoxe.xoxb-1-scan-access-31337"
REFRESH = "xoxe-1-scan-refresh-31337"
CLIENT_ID = "9876.5432"
CLIENT_SECRET = "scan-client-secret-77d1"
LLM_KEY = "sk-scan-llm-key-0451"
DB_PASSWORD = "scan-db-password-6b2c"


def _with_password(url: str) -> str:
    # Both test servers trust local connections, so the password is never checked, only
    # carried: exactly what makes it a secret that must not show up anywhere.
    return make_url(url).set(password=DB_PASSWORD).render_as_string(hide_password=False)


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=LLM_KEY) as server:
        server.responder = good_answer
        yield server


@pytest.fixture
def secret_environment(
    app_environment: dict[str, str],
    llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[tuple[dict[str, str], dg.DagsterInstance]]:
    key = generate_key()
    environment = {
        "TOBAN_DATABASE_URL": _with_password(app_environment["TOBAN_DATABASE_URL"]),
        "TOBAN_DAGSTER_STORAGE_URL": _with_password(app_environment["TOBAN_DAGSTER_STORAGE_URL"]),
        "TOBAN_ENCRYPTION_KEYS": key,
        "TOBAN_SLACK_CLIENT_ID": CLIENT_ID,
        "TOBAN_SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "TOBAN_LLM_BASE_URL": llm.base_url,
        "TOBAN_LLM_MODEL": "fake-model",
        "TOBAN_LLM_API_KEY": LLM_KEY,
        "TOBAN_LLM_TIMEOUT_SECONDS": "10",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    forget_app_engine()
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield environment, instance
    forget_app_engine()
    get_settings.cache_clear()


def _dump_database(url: str) -> str:
    """Every row of every table in the public schema, as JSON text."""
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    chunks: list[str] = []
    with psycopg.connect(libpq) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in tables:
            query = sql.SQL("SELECT row_to_json(t)::text FROM {} t").format(sql.Identifier(table))
            chunks += [row[0] for row in connection.execute(query)]
    assert chunks, f"nothing written in {make_url(url).database}"
    return "\n".join(chunks)


def _dump_files(root: Path) -> str:
    return "\n".join(
        path.read_text(errors="replace") for path in sorted(root.rglob("*")) if path.is_file()
    )


def test_no_secret_appears_anywhere_after_a_full_run_with_faults(
    secret_environment: tuple[dict[str, str], dg.DagsterInstance],
    llm: FakeLLMServer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    environment, instance = secret_environment
    caplog.set_level(logging.DEBUG)
    cipher = TokenCipher.from_settings()
    workspace = generate_workspace(seed=31, days=1, start=DAY, messages_per_channel_day=8)
    errors: list[str] = []
    with (
        disposing_engine(environment["TOBAN_DATABASE_URL"]) as engine,
        FakeSlackServer() as server,
    ):
        server.add_workspace(workspace, token=TOKEN)
        server.enable_token_rotation(
            REFRESH, access_token=TOKEN, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        with Session(engine) as session, session.begin():
            team = Team(name="Scan", slug="scan")
            session.add(team)
            session.flush()
            slack_id = register_token_workspace(
                session,
                team_id=team.id,
                token=TOKEN,
                cipher=cipher,
                base_url=server.base_url,
                sync=SyncOptions(pacing=False, page_size=5),
                refresh_token=REFRESH,
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
            ).slack_id
        instance.add_dynamic_partitions(workspace_partitions.name or "", [slack_id])
        server.inject("users.list", Fault.rate_limited(retry_after=0))
        server.inject("conversations.list", "503")
        server.inject("conversations.history", "500")
        server.inject("conversations.replies", "drop")
        llm.enqueue(LLMFault.rate_limited(retry_after=0.01), LLMFault.server_error(500))

        snapshot = dg.materialize(
            [slack_workspace, slack_users, slack_channels],
            partition_key=slack_id,
            resources=build_resources(get_settings()),
            instance=instance,
        )
        assert snapshot.success
        day_key = dg.MultiPartitionKey({"date": DAY.isoformat(), "workspace": slack_id})
        messages = dg.materialize(
            [MESSAGES],
            partition_key=day_key,
            resources=build_resources(get_settings()),
            instance=instance,
        )
        assert messages.success
        analysis = dg.materialize(
            [WEEKLY],
            partition_key=dg.MultiPartitionKey({"date": DAY.isoformat(), "workspace": slack_id}),
            resources=build_resources(get_settings()),
            instance=instance,
        )
        assert analysis.success
        # The faults really happened, and so did the refresh and the model's calls.
        assert server.token_rotations == 1
        assert server.faults_served >= 4
        assert llm.outcomes[:2] == ["rate_limited", "server_error"]
        assert "reply" in llm.outcomes

        with Session(engine) as session:
            credential = session.scalars(select(IntegrationCredential)).one()
            rotated_token = cipher.decrypt(credential.encrypted_value)
            assert credential.refresh_token is not None
            rotated_refresh = cipher.decrypt(credential.refresh_token)
        assert rotated_token != TOKEN

        # A run that fails: the rotated token is revoked in Slack.
        server.revoke_token(rotated_token)
        failed = dg.materialize(
            [slack_users],
            partition_key=slack_id,
            resources=build_resources(get_settings()),
            instance=instance,
            raise_on_error=False,
        )
        assert not failed.success
        failure = failed.failure_data_for_node("slack_users")
        assert failure is not None
        errors.append(str(failure.error))
        assert "token_revoked" in errors[-1]
        assert not server.internal_errors

    secrets = {
        "access token": TOKEN,
        "rotated access token": rotated_token,
        "refresh token": REFRESH,
        "rotated refresh token": rotated_refresh,
        "client secret": CLIENT_SECRET,
        "LLM API key": LLM_KEY,
        "DB password": DB_PASSWORD,
        "encryption key": environment["TOBAN_ENCRYPTION_KEYS"],
    }
    captured = capfd.readouterr()
    runs = instance.get_runs()
    assert len(runs) == 4
    written = {
        "logs": caplog.text,
        "stdout and stderr": captured.out + captured.err,
        "exceptions": "\n".join(errors),
        "Dagster run config and tags": json.dumps(
            [[r.run_config, r.tags] for r in runs], default=str
        ),
        "Dagster event log": "\n".join(
            str(entry) for r in runs for entry in instance.all_logs(r.run_id)
        ),
        "Dagster storage database": _dump_database(environment["TOBAN_DAGSTER_STORAGE_URL"]),
        "Dagster local files": _dump_files(tmp_path / "dagster"),
        "app database": _dump_database(environment["TOBAN_DATABASE_URL"]),
    }
    # The scan can see: the logs hold the sync's work and the event log the analysis' report.
    assert "slack_users" in written["Dagster event log"]
    assert "leaderboard" in written["Dagster storage database"]
    assert "TOKEN_REFRESHED" in written["app database"]
    leaks = [
        f"{what} in {where}"
        for where, content in written.items()
        for what, secret in secrets.items()
        if secret in content
    ]
    assert leaks == []

    # Slack text and prompts are content, not secrets: they are stored, but never logged.
    texts = [
        str(message.get("text") or "")
        for channel in workspace.channels
        for message in workspace.iter_message_dicts(channel.id)
    ]
    texts = [t for t in texts if len(t) >= 20]
    prompts = [r.prompt_text for r in llm.chat_requests]
    assert texts, "the scan has texts to look for"
    assert prompts, "and prompts"
    assert any(t[:40] in written["app database"] for t in texts)  # and could find it
    logged = written["logs"] + written["stdout and stderr"] + written["exceptions"]
    assert [t for t in texts if t in logged] == []
    assert [p for p in prompts if p[:200] in logged] == []
