import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from toban_orchestration.db.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from toban_orchestration.db.enums import TeamMemberRole
from toban_orchestration.db.types import pg_enum


class Team(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """Organizational unit that owns integrations and receives shares and grants."""

    __tablename__ = "team"

    name: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    avatar_url: Mapped[str | None] = mapped_column(String(1024))
    team_size: Mapped[int | None] = mapped_column(Integer)
    is_personal: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    team_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_by_user_id: Mapped[str | None] = mapped_column(String(255))
    created_by_email: Mapped[str | None] = mapped_column(String(255))


class TeamMember(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A person's membership in a team, with a role."""

    __tablename__ = "team_member"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)

    # A membership means nothing without its team.
    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("team.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[TeamMemberRole] = mapped_column(
        pg_enum(TeamMemberRole, "team_member_role"), default=TeamMemberRole.MEMBER
    )
    invitation_status: Mapped[str | None] = mapped_column(String(50))
    invitation_token: Mapped[str | None] = mapped_column(String(255))
    invitation_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
