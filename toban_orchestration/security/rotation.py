"""Key rotation: every stored secret re-encrypted under the newest key of TOBAN_ENCRYPTION_KEYS.

Put a new key in front of TOBAN_ENCRYPTION_KEYS (the old ones stay behind it, so everything
keeps decrypting while this runs), run `toban keys rotate`, then remove the old keys. Rows are
rotated in short batches, each locked for its own transaction only, so syncs and token refreshes
go on meanwhile; a secret already under the newest key is left alone, so a second run changes
nothing. Counts are reported, never values.
"""

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, select, update
from sqlalchemy.orm import Session

from toban_orchestration.db.enums import IntegrationEventType, IntegrationType
from toban_orchestration.db.models import (
    Integration,
    IntegrationCredential,
    IntegrationEvent,
    SlackWorkspace,
)
from toban_orchestration.security.tokens import DecryptionError, TokenCipher

DEFAULT_BATCH_SIZE = 500

# (model, columns holding Fernet ciphertexts)
ENCRYPTED_COLUMNS: tuple[tuple[type[Any], tuple[str, ...]], ...] = (
    (IntegrationCredential, ("encrypted_value", "refresh_token")),
    (SlackWorkspace, ("access_token", "refresh_token")),
)


@dataclass
class RotationReport:
    rotated: Counter[str] = field(default_factory=Counter)
    """Secrets re-encrypted, by `table.column`."""
    current: Counter[str] = field(default_factory=Counter)
    """Secrets already under the newest key (left alone)."""
    failed: list[str] = field(default_factory=list)
    """`table.column id` of secrets that no configured key decrypts (left alone)."""
    batches: int = 0

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())

    def lines(self) -> list[str]:
        names = sorted(set(self.rotated) | set(self.current))
        out = [
            f"{name}: {self.rotated[name]} re-encrypted, {self.current[name]} already current"
            for name in names
        ]
        out += [f"cannot decrypt {where} with any configured key" for where in self.failed]
        return out


def rotate_all(
    engine: Engine,
    cipher: TokenCipher,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    actor: str = "toban-pipeline",
) -> RotationReport:
    report = RotationReport()
    per_integration: Counter[uuid.UUID] = Counter()
    for model, columns in ENCRYPTED_COLUMNS:
        table: Table = model.__table__
        after: uuid.UUID | None = None
        while True:
            with Session(engine) as session, session.begin():
                query = select(table.c.id, *(table.c[c] for c in columns)).order_by(table.c.id)
                if after is not None:
                    query = query.where(table.c.id > after)
                # Locked for this batch only: a refresh that writes a new token meanwhile waits
                # for a moment instead of being overwritten with the old one.
                rows = session.execute(query.limit(batch_size).with_for_update()).all()
                if not rows:
                    break
                report.batches += 1
                after = rows[-1][0]
                for row in rows:
                    values = _rotated(cipher, table.name, row, columns, report)
                    if values:
                        session.execute(update(table).where(table.c.id == row[0]).values(values))
                        owner = _integration_of(session, model, row[0])
                        if owner is not None:
                            per_integration[owner] += len(values)
    if per_integration:
        with Session(engine) as session, session.begin():
            for integration_id, count in per_integration.items():
                session.add(
                    IntegrationEvent(
                        integration_id=integration_id,
                        event_type=IntegrationEventType.KEY_ROTATED,
                        actor_user_id=actor,
                        affected_team_id=session.scalar(
                            select(Integration.owner_team_id).where(
                                Integration.id == integration_id
                            )
                        ),
                        details={"secrets_reencrypted": count},
                    )
                )
    return report


def _rotated(
    cipher: TokenCipher,
    table: str,
    row: Any,
    columns: tuple[str, ...],
    report: RotationReport,
) -> dict[str, str]:
    values: dict[str, str] = {}
    for position, column in enumerate(columns, start=1):
        value = row[position]
        if not value:
            continue
        name = f"{table}.{column}"
        if cipher.is_current(value):
            report.current[name] += 1
            continue
        try:
            values[column] = cipher.rotate(value, what=name)
        except DecryptionError:
            report.failed.append(f"{name} {row[0]}")
            continue
        report.rotated[name] += 1
    return values


def _integration_of(session: Session, model: type[Any], row_id: uuid.UUID) -> uuid.UUID | None:
    if model is IntegrationCredential:
        return session.scalar(
            select(IntegrationCredential.integration_id).where(IntegrationCredential.id == row_id)
        )
    return session.scalar(
        select(Integration.id)
        .join(SlackWorkspace, SlackWorkspace.slack_id == Integration.workspace_id)
        .where(SlackWorkspace.id == row_id, Integration.service_type == IntegrationType.SLACK)
        .order_by(Integration.created_at)
        .limit(1)
    )
