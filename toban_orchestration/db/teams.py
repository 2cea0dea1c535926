"""Teams looked up by slug, the handle commands and the demo use."""

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from toban_orchestration.db.models import Team


def team_for_slug(session: Session, slug: str, name: str | None = None) -> uuid.UUID:
    """The team with this slug, created on first use (named `name`, or the slug)."""
    team = session.scalar(select(Team).where(Team.slug == slug))
    if team is None:
        team = Team(name=name or slug, slug=slug)
        session.add(team)
        session.flush()
    return team.id
