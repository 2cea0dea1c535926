"""The audit events of retention and deletion: actor and counts, never content."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from toban_orchestration.db.enums import IntegrationEventType, IntegrationType
from toban_orchestration.db.models import Integration, IntegrationEvent

PIPELINE_ACTOR = "toban-pipeline"


def slack_integration(session: Session, slack_id: str) -> Integration | None:
    return session.scalar(
        select(Integration)
        .where(
            Integration.service_type == IntegrationType.SLACK,
            Integration.workspace_id == slack_id,
        )
        .order_by(Integration.created_at)
        .limit(1)
    )


def record(
    session: Session,
    slack_id: str,
    event_type: IntegrationEventType,
    actor: str,
    details: dict[str, Any],
) -> None:
    """One IntegrationEvent about the workspace's integration (or about no integration, for an
    export workspace whose integration is gone: the trail still shows what happened)."""
    integration = slack_integration(session, slack_id)
    session.add(
        IntegrationEvent(
            integration_id=integration.id if integration else None,
            event_type=event_type,
            actor_user_id=actor,
            affected_team_id=integration.owner_team_id if integration else None,
            details={"workspace": slack_id, **details},
        )
    )
