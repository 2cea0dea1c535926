"""Slack workspaces as integrations: registering one (from a token or an export), building its
API client from the encrypted credential, and recording a token that stopped working."""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.access import store as access_store
from toban_orchestration.db.enums import CredentialType, IntegrationEventType, IntegrationStatus
from toban_orchestration.db.models import Integration, SlackWorkspace
from toban_orchestration.security.tokens import TokenCipher
from toban_orchestration.slack.client import ClientOptions, SlackApi, SlackAuthError
from toban_orchestration.slack.store import (
    connect_workspace,
    mark_workspace_disconnected,
    store_workspace_token,
    stored_workspace,
)
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration.slack.token_refresh import (
    TokenRefreshConfigError,
    TokenRefreshError,
    refresh_if_due,
)

SOURCE_API = "api"
SOURCE_EXPORT = "export"
PIPELINE_ACTOR = "toban-pipeline"
TOKEN_CREDENTIALS = (
    CredentialType.BOT_TOKEN,
    CredentialType.USER_TOKEN,
    CredentialType.OAUTH_TOKEN,
)
# Slack errors that mean the token was revoked (the rest of the auth errors: it expired).
REVOKED_ERRORS = {"token_revoked", "account_inactive", "app_uninstalled"}
logger = logging.getLogger(__name__)


class WorkspaceNotFoundError(LookupError):
    pass


class WorkspaceAuthError(RuntimeError):
    """The workspace's token no longer works; its integration has been marked."""


@dataclass(frozen=True)
class WorkspaceSource:
    workspace: SlackWorkspace
    integration: Integration | None

    @property
    def metadata(self) -> dict[str, Any]:
        return dict((self.integration.integration_metadata if self.integration else None) or {})

    @property
    def source(self) -> str:
        return str(self.metadata.get("source", SOURCE_API))

    @property
    def export_path(self) -> Path:
        return Path(self.metadata["export_path"])


def load_workspace(session: Session, slack_id: str) -> WorkspaceSource:
    workspace = stored_workspace(session, slack_id)
    if workspace is None:
        raise WorkspaceNotFoundError(
            f"No Slack workspace {slack_id} is registered; add it with `toban slack add` or "
            "`toban slack import`."
        )
    integration = access_store.team_slack_integration(
        session, workspace.team_id, slack_id, first_only=True
    )
    return WorkspaceSource(workspace, integration)


def _upsert_integration(
    session: Session,
    *,
    team_id: uuid.UUID,
    slack_id: str,
    name: str,
    metadata: dict[str, Any],
    actor: str,
) -> tuple[Integration, SlackWorkspace]:
    integration = access_store.team_slack_integration(session, team_id, slack_id)
    event = IntegrationEventType.UPDATED
    if integration is None:
        integration = access_store.add_slack_integration(
            session, name=name, team_id=team_id, slack_id=slack_id, actor=actor
        )
        event = IntegrationEventType.CREATED
    elif integration.status != IntegrationStatus.ACTIVE:
        event = IntegrationEventType.RECONNECTED
    access_store.set_integration_status(integration, IntegrationStatus.ACTIVE)
    access_store.merge_integration_metadata(integration, metadata)
    # Flushes the integration with the workspace, so the event below has its id.
    workspace = connect_workspace(session, team_id=team_id, slack_id=slack_id, name=name)
    access_store.record_integration_event(
        session,
        integration_id=integration.id,
        event_type=event,
        actor=actor,
        team_id=team_id,
        details={"source": metadata.get("source"), "workspace": slack_id},
    )
    return integration, workspace


def register_token_workspace(
    session: Session,
    *,
    team_id: uuid.UUID,
    token: str,
    cipher: TokenCipher,
    base_url: str | None = None,
    actor: str = PIPELINE_ACTOR,
    sync: SyncOptions | None = None,
    refresh_token: str | None = None,
    expires_at: datetime | None = None,
) -> SlackWorkspace:
    """Connect a workspace from a bot token: asks Slack who it is, stores the token encrypted
    (credential and workspace), and records the event. Registering again rotates the token.

    A rotating token (Slack token rotation) comes with its refresh token; without a known
    expiry it is refreshed on first use, which tells us the real one."""
    with SlackApi(token, ClientOptions(base_url=base_url, pacing=False)) as api:
        team = api.call("team.info")["team"]
    metadata: dict[str, Any] = {"source": SOURCE_API}
    if base_url:
        metadata["base_url"] = base_url
    integration, workspace = _upsert_integration(
        session,
        team_id=team_id,
        slack_id=team["id"],
        name=team.get("name") or team["id"],
        metadata=metadata,
        actor=actor,
    )
    encrypted = cipher.encrypt(token)
    encrypted_refresh = cipher.encrypt(refresh_token) if refresh_token else None
    if refresh_token and expires_at is None:
        expires_at = datetime.now(UTC)
    access_store.add_credential(
        session,
        integration_id=integration.id,
        credential_type=CredentialType.BOT_TOKEN,
        encrypted_value=encrypted,
        refresh_token=encrypted_refresh,
        expires_at=expires_at if refresh_token else None,
    )
    store_workspace_token(
        session,
        workspace,
        access_token=encrypted,
        refresh_token=encrypted_refresh,
        expires_at=expires_at if refresh_token else None,
        domain=team.get("domain"),
        sync_settings=sync.model_dump() if sync is not None else None,
    )
    return workspace


def register_export_workspace(
    session: Session,
    *,
    team_id: uuid.UUID,
    slack_id: str,
    name: str,
    export_path: Path,
    actor: str = PIPELINE_ACTOR,
) -> SlackWorkspace:
    """A workspace whose data comes from a Slack export archive (no token)."""
    _, workspace = _upsert_integration(
        session,
        team_id=team_id,
        slack_id=slack_id,
        name=name,
        metadata={"source": SOURCE_EXPORT, "export_path": str(export_path.resolve())},
        actor=actor,
    )
    return workspace


def api_for(session: Session, source: WorkspaceSource, cipher: TokenCipher) -> SlackApi:
    """The workspace's client, with its newest token decrypted (never logged). A rotating
    token that expires soon is refreshed first."""
    if source.integration is None:
        raise WorkspaceNotFoundError(
            f"Slack workspace {source.workspace.slack_id} has no integration to read a token from."
        )
    _refresh_before_use(session, source, cipher)
    encrypted = access_store.newest_token_ciphertext(
        session, source.integration.id, TOKEN_CREDENTIALS
    )
    encrypted = encrypted or source.workspace.access_token
    if not encrypted:
        raise WorkspaceNotFoundError(
            f"Slack workspace {source.workspace.slack_id} has no stored token."
        )
    token = cipher.decrypt(encrypted, what=f"the token of workspace {source.workspace.slack_id}")
    options = SyncOptions.of_workspace(source.workspace)
    return SlackApi(
        token,
        ClientOptions(
            base_url=source.metadata.get("base_url"),
            page_size=options.page_size,
            pacing=options.pacing,
            limited=options.limited,
            retry_backoff_seconds=options.retry_backoff_seconds,
        ),
    )


def _refresh_before_use(session: Session, source: WorkspaceSource, cipher: TokenCipher) -> None:
    """Refresh in a transaction of its own (committed before this session reads the token).
    A refresh that fails for a passing reason, or for want of the app's client secret, leaves
    the current token in use while it is still valid."""
    assert source.integration is not None
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    try:
        refresh_if_due(engine, source.integration.id, cipher)
    except TokenRefreshError as error:
        if error.marked_expired:
            raise WorkspaceAuthError(str(error)) from None
        if not _still_valid(session, source):
            raise
        logger.warning("%s The current token is still valid and is used meanwhile.", error)
    except TokenRefreshConfigError as error:
        if not _still_valid(session, source):
            raise
        logger.warning("%s", error)


def _still_valid(session: Session, source: WorkspaceSource) -> bool:
    assert source.integration is not None
    expires_at = access_store.newest_credential_expiry(session, source.integration.id)
    return expires_at is None or expires_at > datetime.now(UTC)


def record_auth_failure(engine: Engine, slack_id: str, error: SlackAuthError) -> IntegrationStatus:
    """The token stopped working: the integration stops being scheduled (EXPIRED or REVOKED),
    the workspace shows why, and the audit log says when. Its data stays."""
    status = (
        IntegrationStatus.REVOKED if error.error in REVOKED_ERRORS else IntegrationStatus.EXPIRED
    )
    with Session(engine) as session, session.begin():
        source = load_workspace(session, slack_id)
        mark_workspace_disconnected(session, source.workspace.id, error.error)
        if source.integration is not None:
            previous = access_store.set_integration_status(source.integration, status)
            access_store.record_integration_event(
                session,
                integration_id=source.integration.id,
                event_type=IntegrationEventType.STATUS_CHANGED,
                actor=PIPELINE_ACTOR,
                team_id=source.integration.owner_team_id,
                details={
                    "from": previous.value,
                    "to": status.value,
                    "slack_error": error.error,
                    "method": error.method,
                },
            )
    return status
