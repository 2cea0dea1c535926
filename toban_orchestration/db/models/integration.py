import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from toban_orchestration.db.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from toban_orchestration.db.enums import (
    AccessLevel,
    CredentialType,
    IntegrationEventType,
    IntegrationStatus,
    IntegrationType,
    ResourceType,
    ShareLevel,
)
from toban_orchestration.db.types import pg_enum


class Integration(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A team's connection to an external service (one Slack workspace, one GitHub org, ...)."""

    __tablename__ = "integration"
    __table_args__ = (UniqueConstraint("owner_team_id", "workspace_id", "service_type"),)

    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    service_type: Mapped[IntegrationType] = mapped_column(
        pg_enum(IntegrationType, "integration_type")
    )
    status: Mapped[IntegrationStatus] = mapped_column(
        pg_enum(IntegrationStatus, "integration_status"), default=IntegrationStatus.ACTIVE
    )
    integration_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    workspace_id: Mapped[str | None] = mapped_column(String(255))
    # RESTRICT: an integration holds credentials and synced data; deleting a team must not
    # silently take them along. Remove or transfer the integrations first.
    owner_team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("team.id", ondelete="RESTRICT")
    )
    created_by_user_id: Mapped[str | None] = mapped_column(String(255))


class IntegrationCredential(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An encrypted token or key of an integration (never stored in clear)."""

    __tablename__ = "integration_credential"

    integration_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("integration.id", ondelete="CASCADE"), index=True
    )
    credential_type: Mapped[CredentialType] = mapped_column(
        pg_enum(CredentialType, "credential_type")
    )
    encrypted_value: Mapped[str] = mapped_column(String(2048))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refresh_token: Mapped[str | None] = mapped_column(String(2048))
    scopes: Mapped[list[str] | None] = mapped_column(JSONB)


class ServiceResource(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A resource inside an external service (a Slack channel, a repository, ...)."""

    __tablename__ = "service_resource"
    __table_args__ = (UniqueConstraint("integration_id", "resource_type", "external_id"),)

    integration_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("integration.id", ondelete="CASCADE")
    )
    resource_type: Mapped[ResourceType] = mapped_column(pg_enum(ResourceType, "resource_type"))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    resource_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IntegrationShare(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An integration shared with another team at a share level."""

    __tablename__ = "integration_share"
    __table_args__ = (UniqueConstraint("integration_id", "team_id"),)

    integration_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("integration.id", ondelete="CASCADE")
    )
    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("team.id", ondelete="CASCADE"), index=True
    )
    share_level: Mapped[ShareLevel] = mapped_column(
        pg_enum(ShareLevel, "share_level"), default=ShareLevel.READ_ONLY
    )
    status: Mapped[str] = mapped_column(String(50), default="active", server_default="active")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    shared_by_user_id: Mapped[str | None] = mapped_column(String(255))


class ResourceAccess(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A team's grant on one resource (for example one channel of a shared workspace)."""

    __tablename__ = "resource_access"
    __table_args__ = (UniqueConstraint("resource_id", "team_id"),)

    resource_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("service_resource.id", ondelete="CASCADE")
    )
    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("team.id", ondelete="CASCADE"), index=True
    )
    access_level: Mapped[AccessLevel] = mapped_column(
        pg_enum(AccessLevel, "access_level"), default=AccessLevel.READ
    )
    granted_by_user_id: Mapped[str | None] = mapped_column(String(255))


class IntegrationEvent(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """Audit log of what happened to an integration."""

    __tablename__ = "integration_event"

    # SET NULL, not CASCADE: the audit trail must outlive the integration it describes (the
    # event that records a deletion is written about a row that is then gone).
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("integration.id", ondelete="SET NULL"), index=True
    )
    event_type: Mapped[IntegrationEventType] = mapped_column(
        pg_enum(IntegrationEventType, "integration_event_type")
    )
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    actor_user_id: Mapped[str | None] = mapped_column(String(255))
    affected_team_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("team.id", ondelete="SET NULL"), index=True
    )
