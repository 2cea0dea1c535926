"""A message's kind and a person's display label, stored for analyses.

Why (issue 18, "shared vocabulary moves down"; docs/data-model.md): what an analysis needs from
ingestion is stored as columns, not recomputed from Slack's payload format. An analysis counted
a message unless its Slack subtype was a system notice, and named people by the sync's rule
(display name, else real name, else username); both rules lived in the Slack domain and the
analysis domain imported them. Now the database derives them at every write, as stored
generated columns: `slack_message.kind` ('message' or 'notice') from `subtype`, and
`slack_user.display_label` from `display_name`, `real_name` and `name`. No writer (the Web API
sync, an export import, an Events API edit or user_change) can leave them stale, and adding
the columns computes them for every stored row (the backfill; it rewrites both tables once).

The SQL below is frozen as of this revision; the models build theirs from db/enums.py's
SYSTEM_NOTICE_SUBTYPES, and test_migrations checks both against the Python rules.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DISPLAY_LABEL = "coalesce(nullif(display_name, ''), nullif(real_name, ''), nullif(name, ''), '')"
MESSAGE_KIND = (
    "CASE WHEN subtype IN ('bot_add', 'bot_remove', 'channel_archive', 'channel_join', "
    "'channel_leave', 'channel_name', 'channel_purpose', 'channel_topic', 'channel_unarchive', "
    "'group_archive', 'group_join', 'group_leave', 'group_name', 'group_purpose', 'group_topic', "
    "'group_unarchive', 'pinned_item', 'tombstone', 'unpinned_item') "
    "THEN 'notice' ELSE 'message' END"
)


def upgrade() -> None:
    op.add_column('slack_user', sa.Column('display_label', sa.String(length=255), sa.Computed(DISPLAY_LABEL, persisted=True), nullable=False))
    op.add_column('slack_message', sa.Column('kind', sa.String(length=20), sa.Computed(MESSAGE_KIND, persisted=True), nullable=False))


def downgrade() -> None:
    op.drop_column('slack_message', 'kind')
    op.drop_column('slack_user', 'display_label')
