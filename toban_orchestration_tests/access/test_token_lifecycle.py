"""Tokens at rest and in rotation: key rotation over the stored secrets, and Slack token rotation
(`oauth.v2.access`) against the local Slack server through the real slack-sdk."""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from toban_orchestration.cli import main
from toban_orchestration.db.enums import (
    CredentialType,
    IntegrationEventType,
    IntegrationStatus,
    IntegrationType,
)
from toban_orchestration.db.models import (
    Integration,
    IntegrationCredential,
    IntegrationEvent,
    SlackWorkspace,
    Team,
)
from toban_orchestration.defs.maintenance.jobs import slack_token_refresh_job
from toban_orchestration.defs.resources import build_resources
from toban_orchestration.security.tokens import DecryptionError, TokenCipher, generate_key
from toban_orchestration.settings import get_settings
from toban_orchestration.slack import ingest
from toban_orchestration.slack.client import ClientOptions, SlackApi, SlackAuthError
from toban_orchestration.slack.key_rotation import rotate_all
from toban_orchestration.slack.planning import ensure_workspaces
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration.slack.workspaces import register_token_workspace
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace

TOKEN = "xoxe.xoxb-1-initial-access-5150"
REFRESH = "xoxe-1-initial-refresh-5150"
CLIENT_ID = "1234.5678"
CLIENT_SECRET = "client-secret-8c1f2e"


# --- key rotation ------------------------------------------------------------------------------


def _seed_secrets(engine: Engine, cipher: TokenCipher, integrations: int) -> dict[str, str]:
    """`integrations` Slack integrations, each with a credential (token and refresh token) and
    a workspace row (token and refresh token): 4 secrets each. Returns ciphertext -> plaintext
    of what was stored."""
    stored: dict[str, str] = {}

    def enc(plain: str) -> str:
        value = cipher.encrypt(plain)
        stored[value] = plain
        return value

    with Session(engine) as session, session.begin():
        team = Team(name="Acme", slug="acme")
        session.add(team)
        session.flush()
        for n in range(integrations):
            integration = Integration(
                name=f"Slack {n}",
                service_type=IntegrationType.SLACK,
                owner_team_id=team.id,
                workspace_id=f"TROT{n}",
            )
            session.add(integration)
            session.flush()
            session.add(
                IntegrationCredential(
                    integration_id=integration.id,
                    credential_type=CredentialType.BOT_TOKEN,
                    encrypted_value=enc(f"xoxb-rotation-{n}"),
                    refresh_token=enc(f"xoxe-1-rotation-{n}"),
                )
            )
            session.add(
                SlackWorkspace(
                    team_id=team.id,
                    slack_id=f"TROT{n}",
                    name=f"W{n}",
                    access_token=enc(f"xoxb-rotation-{n}"),
                    refresh_token=enc(f"xoxe-1-rotation-{n}"),
                )
            )
    return stored


def _secrets(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        credentials = connection.execute(
            select(IntegrationCredential.encrypted_value, IntegrationCredential.refresh_token)
        ).all()
        workspaces = connection.execute(
            select(SlackWorkspace.access_token, SlackWorkspace.refresh_token)
        ).all()
    return [value for row in [*credentials, *workspaces] for value in row if value]


def test_key_rotation_re_encrypts_every_secret_in_batches_and_is_idempotent(
    migrated_engine: Engine,
) -> None:
    old_key, new_key = generate_key(), generate_key()
    stored = _seed_secrets(migrated_engine, TokenCipher([old_key]), integrations=3)
    before = _secrets(migrated_engine)
    assert len(before) == 12
    plain_before = sorted(stored[v] for v in before)

    # During the rotation both keys decrypt: syncs keep working ("without downtime").
    both = TokenCipher([new_key, old_key])
    report = rotate_all(migrated_engine, both, batch_size=2)
    assert report.total_rotated == 12
    assert dict(report.rotated) == {
        "integration_credential.encrypted_value": 3,
        "integration_credential.refresh_token": 3,
        "slack_workspace.access_token": 3,
        "slack_workspace.refresh_token": 3,
    }
    assert report.batches == 4  # 3 rows a table, 2 a batch
    assert not report.failed

    after = _secrets(migrated_engine)
    assert len(after) == 12
    assert not set(after) & set(before)
    # The old key removed afterwards: the new one alone decrypts everything, to the same values.
    only_new = TokenCipher([new_key])
    assert sorted(only_new.decrypt(v) for v in after) == plain_before
    with pytest.raises(DecryptionError):
        TokenCipher([old_key]).decrypt(after[0])

    again = rotate_all(migrated_engine, both, batch_size=2)
    assert again.total_rotated == 0
    assert sum(again.current.values()) == 12
    assert _secrets(migrated_engine) == after

    with Session(migrated_engine) as session:
        events = session.scalars(
            select(IntegrationEvent).where(
                IntegrationEvent.event_type == IntegrationEventType.KEY_ROTATED
            )
        ).all()
    assert len(events) == 3  # one per integration, the second run none
    assert {e.details["secrets_reencrypted"] for e in events if e.details} == {4}
    assert all(e.actor_user_id == "toban-pipeline" for e in events)
    for event in events:
        assert not any(p in str(event.details) for p in stored.values())


def test_a_secret_no_key_decrypts_is_reported_not_lost(migrated_engine: Engine) -> None:
    lost_key, new_key = generate_key(), generate_key()
    _seed_secrets(migrated_engine, TokenCipher([lost_key]), integrations=1)
    before = _secrets(migrated_engine)
    report = rotate_all(migrated_engine, TokenCipher([new_key]))
    assert report.total_rotated == 0
    assert len(report.failed) == 4
    assert all("xox" not in line for line in report.lines())
    assert _secrets(migrated_engine) == before  # left as they were, for the right key to read


def test_toban_keys_rotate_reports_counts_never_values(
    app_environment: dict[str, str],
    migrated_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old_key, new_key = generate_key(), generate_key()
    stored = _seed_secrets(migrated_engine, TokenCipher([old_key]), integrations=2)
    monkeypatch.setenv("TOBAN_ENCRYPTION_KEYS", f"{new_key},{old_key}")
    get_settings.cache_clear()
    assert main(["keys", "rotate", "--batch-size", "3"]) == 0
    captured = capsys.readouterr()
    assert "Re-encrypted 8 secrets" in captured.out
    for secret in [*stored.values(), old_key, new_key]:
        assert secret not in captured.out + captured.err
    assert sorted(TokenCipher([new_key]).decrypt(v) for v in _secrets(migrated_engine)) == sorted(
        stored.values()
    )


# --- Slack token rotation ------------------------------------------------------------------------


@pytest.fixture
def oauth_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TOBAN_SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TOBAN_SLACK_CLIENT_SECRET", CLIENT_SECRET)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _connect_rotating(
    engine: Engine, server: FakeSlackServer, cipher: TokenCipher, expires_in: timedelta
) -> str:
    workspace = generate_workspace(seed=5, days=1, messages_per_channel_day=3)
    server.add_workspace(workspace, token=TOKEN)
    server.enable_token_rotation(
        REFRESH, access_token=TOKEN, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    with Session(engine) as session, session.begin():
        team = Team(name="Acme", slug="acme")
        session.add(team)
        session.flush()
        registered = register_token_workspace(
            session,
            team_id=team.id,
            token=TOKEN,
            cipher=cipher,
            base_url=server.base_url,
            sync=SyncOptions(pacing=False),
            refresh_token=REFRESH,
            expires_at=datetime.now(UTC) + expires_in,
        )
        return registered.slack_id


def _credential(engine: Engine) -> IntegrationCredential:
    with Session(engine) as session:
        return session.scalars(select(IntegrationCredential)).one()


def _events(engine: Engine, event_type: IntegrationEventType) -> list[IntegrationEvent]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(IntegrationEvent).where(IntegrationEvent.event_type == event_type)
            )
        )


@pytest.mark.usefixtures("oauth_client")
def test_a_token_about_to_expire_is_refreshed_before_the_sync_and_the_new_one_is_used(
    migrated_engine: Engine,
) -> None:
    cipher = TokenCipher([generate_key()])
    with FakeSlackServer() as server:
        slack_id = _connect_rotating(migrated_engine, server, cipher, timedelta(minutes=10))
        result = ingest.refresh_users(migrated_engine, cipher, slack_id)
        assert server.token_rotations == 1
        # The server expired the replaced token: the users were read with the new one.
        assert result.report.users.inserted > 0
        with (
            SlackApi(TOKEN, ClientOptions(base_url=server.base_url, pacing=False)) as api,
            pytest.raises(SlackAuthError, match="token_expired"),
        ):
            api.call("auth.test")
        credential = _credential(migrated_engine)
        new_token = cipher.decrypt(credential.encrypted_value)
        assert new_token.startswith("xoxe.xoxb-1-rotated-1-")
        assert credential.refresh_token is not None
        new_refresh = cipher.decrypt(credential.refresh_token)
        assert new_refresh.startswith("xoxe-1-refresh-1-")
        assert credential.expires_at is not None
        assert credential.expires_at > datetime.now(UTC) + timedelta(hours=11)
        with Session(migrated_engine) as session:
            workspace = session.scalars(select(SlackWorkspace)).one()
            assert workspace.access_token == credential.encrypted_value
            assert workspace.token_expires_at == credential.expires_at
        # Not due any more: the next sync uses the stored token without refreshing again.
        ingest.refresh_channels(migrated_engine, cipher, slack_id)
        assert server.token_rotations == 1
        assert not server.internal_errors
    (event,) = _events(migrated_engine, IntegrationEventType.TOKEN_REFRESHED)
    assert event.actor_user_id == "toban-pipeline"
    assert event.details is not None
    assert event.details["trigger"] == "sync"
    for secret in (TOKEN, REFRESH, new_token, new_refresh, CLIENT_SECRET):
        assert secret not in str(event.details)


@pytest.mark.usefixtures("oauth_client")
def test_a_refused_refresh_marks_the_integration_expired_without_leaking_tokens(
    migrated_engine: Engine,
) -> None:
    cipher = TokenCipher([generate_key()])
    with FakeSlackServer() as server:
        slack_id = _connect_rotating(migrated_engine, server, cipher, timedelta(minutes=5))
        server.inject("oauth.v2.access", "invalid_refresh_token")
        with pytest.raises(ingest.WorkspaceAuthError) as raised:
            ingest.refresh_users(migrated_engine, cipher, slack_id)
        assert server.calls["users.list"] == 0  # nothing was tried with a token about to die
    message = str(raised.value)
    assert "invalid_refresh_token" in message
    assert slack_id in message
    for secret in (TOKEN, REFRESH, CLIENT_SECRET):
        assert secret not in message
    with Session(migrated_engine) as session:
        integration = session.scalars(select(Integration)).one()
        workspace = session.scalars(select(SlackWorkspace)).one()
    assert integration.status == IntegrationStatus.EXPIRED
    assert (workspace.is_connected, workspace.connection_status) == (
        False,
        "invalid_refresh_token",
    )
    (event,) = _events(migrated_engine, IntegrationEventType.TOKEN_REFRESH_FAILED)
    assert event.details is not None
    assert (event.details["from"], event.details["to"]) == ("ACTIVE", "EXPIRED")
    assert event.details["slack_error"] == "invalid_refresh_token"
    assert not _events(migrated_engine, IntegrationEventType.TOKEN_REFRESHED)


@pytest.mark.usefixtures("oauth_client")
def test_a_passing_refresh_failure_keeps_a_still_valid_token_in_use(
    migrated_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    cipher = TokenCipher([generate_key()])
    with FakeSlackServer() as server:
        slack_id = _connect_rotating(migrated_engine, server, cipher, timedelta(minutes=10))
        server.inject("oauth.v2.access", "internal_error")
        with caplog.at_level(logging.WARNING):
            result = ingest.refresh_users(migrated_engine, cipher, slack_id)
        assert result.report.users.inserted > 0  # read with the current token
        assert server.token_rotations == 0
        # The next sync tries again, and succeeds.
        ingest.refresh_channels(migrated_engine, cipher, slack_id)
        assert server.token_rotations == 1
    assert "internal_error" in caplog.text
    assert TOKEN not in caplog.text
    with Session(migrated_engine) as session:
        assert session.scalars(select(Integration)).one().status == IntegrationStatus.ACTIVE
    assert not _events(migrated_engine, IntegrationEventType.TOKEN_REFRESH_FAILED)


@pytest.mark.usefixtures("oauth_client")
def test_the_refresh_job_sweeps_only_workspaces_whose_token_expires_soon(
    app_environment: dict[str, str], migrated_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key()
    monkeypatch.setenv("TOBAN_ENCRYPTION_KEYS", key)
    get_settings.cache_clear()
    cipher = TokenCipher([key])
    with FakeSlackServer() as server:
        _connect_rotating(migrated_engine, server, cipher, timedelta(minutes=20))
        with dg.instance_for_test() as instance:
            result = slack_token_refresh_job.execute_in_process(
                resources=build_resources(get_settings()),
                instance=instance,
            )
            assert result.success
            assert server.token_rotations == 1
            # A second sweep finds a fresh token (12 h left) and leaves it alone.
            assert slack_token_refresh_job.execute_in_process(
                resources=build_resources(get_settings()),
                instance=instance,
            ).success
        assert server.token_rotations == 1
    (event,) = _events(migrated_engine, IntegrationEventType.TOKEN_REFRESHED)
    assert event.details is not None
    assert event.details["trigger"] == "schedule"
    with migrated_engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(IntegrationCredential)).scalar_one()
            == 1
        )


# --- audit of what the pipeline does to an integration ---------------------------------------


def test_the_sensor_audits_connecting_and_reconnecting_a_workspace(migrated_engine: Engine) -> None:
    with Session(migrated_engine) as session, session.begin():
        team = Team(name="Acme", slug="acme")
        session.add(team)
        session.flush()
        integration = Integration(
            name="Slack", service_type=IntegrationType.SLACK, owner_team_id=team.id,
            workspace_id="TAUDIT",
        )  # fmt: skip
        session.add(integration)
        session.flush()
        integration_id = integration.id
    with migrated_engine.begin() as connection:
        assert ensure_workspaces(connection, [integration_id]) == 1
        assert ensure_workspaces(connection, [integration_id]) == 0  # nothing twice
        connection.execute(
            update(SlackWorkspace).values(is_connected=False, connection_status="token_revoked")
        )
        ensure_workspaces(connection, [integration_id])  # the app made it ACTIVE again
    with Session(migrated_engine) as session:
        workspace = session.scalars(select(SlackWorkspace)).one()
        assert (workspace.is_connected, workspace.connection_status) == (True, "active")
        events = session.scalars(
            select(IntegrationEvent).order_by(IntegrationEvent.created_at)
        ).all()
    assert [e.event_type for e in events] == [
        IntegrationEventType.CONNECTED,
        IntegrationEventType.RECONNECTED,
    ]
    assert all(e.actor_user_id == "toban-pipeline" for e in events)
    assert all(e.integration_id == integration_id for e in events)
