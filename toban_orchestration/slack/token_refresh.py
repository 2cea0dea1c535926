"""Slack token rotation: a credential with `expires_at` and a refresh token is refreshed through
`oauth.v2.access` (`grant_type=refresh_token`) before it expires.

It runs right before a sync builds its client (`slack.workspaces.api_for`) and from a schedule
that sweeps every ACTIVE workspace, so a quiet workspace does not let its token lapse. The
credential row is locked while it is refreshed: two runs of one workspace never spend the same
refresh token twice, and the second finds the token already fresh. New tokens are stored
encrypted (credential and workspace), an IntegrationEvent records the refresh; a refresh that
Slack refuses marks the integration EXPIRED and the workspace disconnected. No token, refresh
token or client secret is ever logged or put in an error message.

It lives in the Slack package (it was security/token_refresh.py) because it writes the Slack
workspace's copy of the token through slack/store.py; the credential and its audit events are
access/store.py's, the encryption security/tokens.py's (issue 18: no SQL here).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.access import store as access_store
from toban_orchestration.db.enums import CredentialType, IntegrationEventType, IntegrationStatus
from toban_orchestration.db.models import Integration
from toban_orchestration.security.tokens import TokenCipher
from toban_orchestration.settings import Settings, get_settings
from toban_orchestration.slack import store as slack_store

PIPELINE_ACTOR = "toban-pipeline"
REFRESHABLE = (CredentialType.BOT_TOKEN, CredentialType.USER_TOKEN, CredentialType.OAUTH_TOKEN)
# slack-sdk logs request and response bodies at DEBUG (the refresh token goes out, new tokens
# come back): its client gets a logger that never emits below INFO.
_SDK_LOGGER = logging.getLogger("toban.slack.oauth")
_SDK_LOGGER.setLevel(logging.INFO)
# Answers that say nothing about the refresh token (tried again later, the integration stays
# ACTIVE); every other error means the refresh token is dead and a person must reconnect.
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}


class TokenRefreshError(RuntimeError):
    """A token could not be refreshed. Names the workspace and Slack's error, never a token."""

    def __init__(self, slack_id: str, error: str, *, marked_expired: bool) -> None:
        self.slack_id = slack_id
        self.error = error
        self.marked_expired = marked_expired
        then = (
            "the integration is marked EXPIRED and will not be scheduled until it is reconnected"
            if marked_expired
            else "it will be tried again"
        )
        super().__init__(
            f"Slack workspace {slack_id}: refreshing its token failed ({error}); {then}."
        )


class TokenRefreshConfigError(RuntimeError):
    """The Slack app's client id or secret is missing."""


@dataclass(frozen=True)
class RefreshOutcome:
    slack_id: str
    refreshed: bool
    expires_at: datetime | None


def is_due(expires_at: datetime | None, now: datetime, margin: timedelta) -> bool:
    return expires_at is not None and expires_at <= now + margin


def refresh_if_due(
    engine: Engine,
    integration_id: uuid.UUID,
    cipher: TokenCipher,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
    actor: str = PIPELINE_ACTOR,
    trigger: str = "sync",
) -> RefreshOutcome | None:
    """Refresh the integration's newest token if it has a refresh token and expires within the
    margin. None: nothing to refresh (a token that does not rotate)."""
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    margin = timedelta(minutes=settings.token_refresh_margin_minutes)
    failure: TokenRefreshError | None = None
    with Session(engine) as session, session.begin():
        credential = access_store.lock_newest_credential(session, integration_id, REFRESHABLE)
        if credential is None or not credential.refresh_token:
            return None
        integration = access_store.integration_by_id(session, integration_id)
        slack_id = integration.workspace_id or str(integration_id)
        if not is_due(credential.expires_at, now, margin):
            return RefreshOutcome(slack_id, False, credential.expires_at)
        client_id = settings.slack_client_id
        secret_value = settings.slack_client_secret
        secret = secret_value.get_secret_value() if secret_value else ""
        if not client_id or not secret:
            raise TokenRefreshConfigError(
                f"Slack workspace {slack_id} has a rotating token that expires at "
                f"{credential.expires_at:%Y-%m-%d %H:%M} UTC; set TOBAN_SLACK_CLIENT_ID and "
                "TOBAN_SLACK_CLIENT_SECRET (the Slack app's OAuth client) so it can be refreshed."
            )
        refresh_token = cipher.decrypt(
            credential.refresh_token, what=f"the refresh token of workspace {slack_id}"
        )
        base_url = (integration.integration_metadata or {}).get("base_url")
        try:
            answer = _oauth_refresh(base_url, client_id, secret, refresh_token)
        except SlackApiError as error:
            code = _error_code(error)
            if code in TRANSIENT_ERRORS or code.startswith("http_5"):
                raise TokenRefreshError(slack_id, code, marked_expired=False) from None
            _mark_expired(session, integration, code, actor)
            failure = TokenRefreshError(slack_id, code, marked_expired=True)
        except OSError as error:  # connection trouble that outlived the SDK's retries
            raise TokenRefreshError(slack_id, type(error).__name__, marked_expired=False) from None
        else:
            expires_at = now + timedelta(seconds=int(answer.get("expires_in") or 43200))
            access = cipher.encrypt(str(answer["access_token"]))
            refresh = cipher.encrypt(str(answer.get("refresh_token") or refresh_token))
            previous_expiry = credential.expires_at
            access_store.store_refreshed_credential(
                credential, encrypted_value=access, refresh_token=refresh, expires_at=expires_at
            )
            if integration.workspace_id is not None:
                slack_store.mirror_refreshed_token(
                    session,
                    integration.workspace_id,
                    access_token=access,
                    refresh_token=refresh,
                    expires_at=expires_at,
                )
            access_store.record_integration_event(
                session,
                integration_id=integration.id,
                event_type=IntegrationEventType.TOKEN_REFRESHED,
                actor=actor,
                team_id=integration.owner_team_id,
                details={
                    "workspace": slack_id,
                    "trigger": trigger,
                    "previous_expires_at": previous_expiry.isoformat() if previous_expiry else None,
                    "expires_at": expires_at.isoformat(),
                },
            )
            outcome = RefreshOutcome(slack_id, True, expires_at)
    if failure is not None:
        raise failure
    return outcome


def refresh_expiring(
    engine: Engine,
    cipher: TokenCipher,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> tuple[list[RefreshOutcome], list[TokenRefreshError]]:
    """The sweep: every ACTIVE Slack integration whose rotating token expires within the
    margin. One workspace's failure does not stop the others."""
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    margin = timedelta(minutes=settings.token_refresh_margin_minutes)
    with Session(engine) as session:
        due = access_store.active_slack_integrations_expiring(session, now + margin)
    refreshed: list[RefreshOutcome] = []
    failed: list[TokenRefreshError] = []
    for integration_id in due:
        try:
            outcome = refresh_if_due(
                engine, integration_id, cipher, settings=settings, now=now, trigger="schedule"
            )
        except TokenRefreshError as error:
            failed.append(error)
            continue
        if outcome is not None and outcome.refreshed:
            refreshed.append(outcome)
    return refreshed, failed


def _oauth_refresh(
    base_url: str | None, client_id: str, client_secret: str, refresh_token: str
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"base_url": base_url} if base_url else {}
    client = WebClient(
        timeout=30,
        logger=_SDK_LOGGER,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=3),
            ConnectionErrorRetryHandler(max_retry_count=3),
        ],
        **kwargs,
    )
    response = client.oauth_v2_access(
        client_id=client_id,
        client_secret=client_secret,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )
    data = response.data
    assert isinstance(data, dict)
    return data


def _error_code(error: SlackApiError) -> str:
    data = error.response.data
    code = data.get("error") if isinstance(data, dict) else None
    return str(code) if code else f"http_{error.response.status_code}"


def _mark_expired(session: Session, integration: Integration, error: str, actor: str) -> None:
    previous = access_store.set_integration_status(integration, IntegrationStatus.EXPIRED)
    workspace = (
        slack_store.stored_workspace(session, integration.workspace_id)
        if integration.workspace_id is not None
        else None
    )
    if workspace is not None:
        slack_store.mark_workspace_disconnected(session, workspace.id, error)
    access_store.record_integration_event(
        session,
        integration_id=integration.id,
        event_type=IntegrationEventType.TOKEN_REFRESH_FAILED,
        actor=actor,
        team_id=integration.owner_team_id,
        details={
            "workspace": integration.workspace_id,
            "slack_error": error,
            "from": previous.value,
            "to": IntegrationStatus.EXPIRED.value,
        },
    )
