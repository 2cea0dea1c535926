"""Key rotation: every stored secret re-encrypted under the newest key of TOBAN_ENCRYPTION_KEYS.

Put a new key in front of TOBAN_ENCRYPTION_KEYS (the old ones stay behind it, so everything
keeps decrypting while this runs), run `toban keys rotate`, then remove the old keys. Rows are
rotated in short batches, each locked for its own transaction only, so syncs and token refreshes
go on meanwhile; a secret already under the newest key is left alone, so a second run changes
nothing. Counts are reported, never values.

It lives in the Slack package (it was security/rotation.py) because the secrets it rewrites are
the Slack workspaces' tokens, in slack_workspace (slack/store.py) and integration_credential
(access/store.py); the encryption is security/tokens.py's (issue 18: no SQL here).
"""

import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from toban_orchestration.access import store as access_store
from toban_orchestration.db.enums import IntegrationEventType
from toban_orchestration.security.tokens import DecryptionError, TokenCipher
from toban_orchestration.slack import store as slack_store

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class SecretTable:
    """A table holding Fernet ciphertexts, as its store reads and writes them."""

    name: str
    columns: tuple[str, ...]
    lock_batch: Callable[[Session, uuid.UUID | None, int], Sequence[Any]]
    """(session, after id, limit) -> rows of (id, *columns), locked for the transaction."""
    write: Callable[[Session, uuid.UUID, Mapping[str, str]], None]
    integration_of: Callable[[Session, uuid.UUID], uuid.UUID | None]


def _workspace_integration(session: Session, workspace_id: uuid.UUID) -> uuid.UUID | None:
    """The workspace's oldest Slack integration (the one its audit events hang on)."""
    slack_id = slack_store.slack_id_of_workspace(session, workspace_id)
    integration = (
        access_store.first_slack_integration(session, slack_id) if slack_id is not None else None
    )
    return integration.id if integration is not None else None


ENCRYPTED_TABLES = (
    SecretTable(
        access_store.CREDENTIAL_TABLE,
        access_store.CREDENTIAL_SECRET_COLUMNS,
        access_store.lock_credential_secrets,
        access_store.write_credential_secrets,
        access_store.integration_of_credential,
    ),
    SecretTable(
        slack_store.WORKSPACE_TABLE,
        slack_store.WORKSPACE_SECRET_COLUMNS,
        slack_store.lock_workspace_secrets,
        slack_store.write_workspace_secrets,
        _workspace_integration,
    ),
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
    for table in ENCRYPTED_TABLES:
        after: uuid.UUID | None = None
        while True:
            with Session(engine) as session, session.begin():
                # Locked for this batch only: a refresh that writes a new token meanwhile waits
                # for a moment instead of being overwritten with the old one.
                rows = table.lock_batch(session, after, batch_size)
                if not rows:
                    break
                report.batches += 1
                after = rows[-1][0]
                for row in rows:
                    values = _rotated(cipher, table.name, row, table.columns, report)
                    if values:
                        table.write(session, row[0], values)
                        owner = table.integration_of(session, row[0])
                        if owner is not None:
                            per_integration[owner] += len(values)
    if per_integration:
        with Session(engine) as session, session.begin():
            for integration_id, count in per_integration.items():
                access_store.record_integration_event(
                    session,
                    integration_id=integration_id,
                    event_type=IntegrationEventType.KEY_ROTATED,
                    actor=actor,
                    team_id=access_store.integration_owner(session, integration_id),
                    details={"secrets_reencrypted": count},
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
