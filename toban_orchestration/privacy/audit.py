"""The audit events of retention and deletion: actor and counts, never content."""

from typing import Any

from sqlalchemy.orm import Session

from toban_orchestration.access import store as access_store
from toban_orchestration.db.enums import IntegrationEventType

PIPELINE_ACTOR = "toban-pipeline"


def record(
    session: Session,
    slack_id: str,
    event_type: IntegrationEventType,
    actor: str,
    details: dict[str, Any],
) -> None:
    """One IntegrationEvent about the workspace's integration (or about no integration, for an
    export workspace whose integration is gone: the trail still shows what happened)."""
    integration = access_store.first_slack_integration(session, slack_id)
    access_store.record_integration_event(
        session,
        integration_id=integration.id if integration else None,
        event_type=event_type,
        actor=actor,
        team_id=integration.owner_team_id if integration else None,
        details={"workspace": slack_id, **details},
    )
