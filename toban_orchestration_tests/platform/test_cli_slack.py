"""`toban slack add`, `toban slack import` and `toban keys generate`, run as a user runs them."""

from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from toban_orchestration.db.models import IntegrationCredential, SlackMessage, SlackWorkspace
from toban_orchestration.security.tokens import TokenCipher
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace
from toban_orchestration_tests.helpers import disposing_engine, run_toban

EXPORT = Path(__file__).parents[1] / "data" / "slack-export-houstondatavis"
TOKEN = "xoxb-cli-test-5550123"
REFRESH = "xoxe-1-refresh-cli-5550199"


def _partition_keys(environment: dict[str, str]) -> list[str]:
    with (
        disposing_engine(environment["TOBAN_DAGSTER_STORAGE_URL"]) as engine,
        engine.connect() as connection,
    ):
        rows = connection.exec_driver_sql(
            "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'slack_workspace'"
        ).scalars()
        return list(rows)


def test_add_stores_the_tokens_encrypted_and_adds_the_partition(
    app_environment: dict[str, str],
    migrated_engine: Engine,
) -> None:
    key = run_toban("keys", "generate", env={}).stdout.strip()
    workspace = generate_workspace(seed=31, days=1)
    with FakeSlackServer(workspace, TOKEN) as server:
        env = {
            **app_environment,
            "TOBAN_ENCRYPTION_KEYS": key,
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_REFRESH": REFRESH,  # a rotating token comes with its refresh token
        }
        result = run_toban(
            "slack", "add", "--team", "acme", "--base-url", server.base_url,
            "--refresh-token-env", "SLACK_REFRESH", env=env,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert workspace.team_id in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert REFRESH not in result.stdout + result.stderr
    assert _partition_keys(app_environment) == [workspace.team_id]
    with Session(migrated_engine) as session:
        credential = session.scalars(select(IntegrationCredential)).one()
        assert TokenCipher([key]).decrypt(credential.encrypted_value) == TOKEN
        assert credential.refresh_token is not None
        assert REFRESH not in credential.refresh_token
        assert TokenCipher([key]).decrypt(credential.refresh_token) == REFRESH


def test_add_refuses_without_a_token_or_without_a_key(app_environment: dict[str, str]) -> None:
    no_token = run_toban("slack", "add", "--team", "acme", env=app_environment)
    assert no_token.returncode == 2
    assert "SLACK_BOT_TOKEN" in no_token.stderr
    no_key = run_toban(
        "slack", "add", "--team", "acme", env={**app_environment, "SLACK_BOT_TOKEN": TOKEN}
    )
    assert no_key.returncode == 1
    assert "TOBAN_ENCRYPTION_KEYS is not set" in no_key.stderr
    assert TOKEN not in no_key.stderr
    no_refresh = run_toban(
        "slack", "add", "--team", "acme", "--refresh-token-env", "SLACK_REFRESH",
        env={**app_environment, "SLACK_BOT_TOKEN": TOKEN},
    )  # fmt: skip
    assert no_refresh.returncode == 2
    assert "SLACK_REFRESH holds no refresh token" in no_refresh.stderr


def test_import_ingests_an_export_and_reports_what_it_did(
    app_environment: dict[str, str], migrated_engine: Engine
) -> None:
    result = run_toban("slack", "import", str(EXPORT), "--team", "houston", env=app_environment)
    assert result.returncode == 0, result.stderr
    assert "1382 messages inserted" in result.stdout
    # A line per phase, with its counts, on standard error.
    phases = [line.split(":")[0] for line in result.stderr.splitlines() if ": " in line]
    assert phases[:4] == ["Export", "Users", "Channels", "Messages"], result.stderr
    # Older than the first day partition: stored whole, and what to set is said.
    assert "the export starts on 2015-06-05, before TOBAN_PARTITIONS_START_DATE" in result.stderr
    assert "TOBAN_PARTITIONS_START_DATE=2015-06-01" in result.stderr
    assert "Traceback" not in result.stderr
    with Session(migrated_engine) as session:
        slack_id = session.scalars(select(SlackWorkspace.slack_id)).one()
        assert len(session.scalars(select(SlackMessage.id)).all()) == 1382
    assert _partition_keys(app_environment) == [slack_id]


def test_import_of_a_broken_export_names_the_file(
    app_environment: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "channels.json").write_text("[]")
    result = run_toban("slack", "import", str(tmp_path), "--team", "t", env=app_environment)
    assert result.returncode == 1
    assert "missing users.json" in result.stderr
    assert "Traceback" not in result.stderr
