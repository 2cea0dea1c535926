"""Sync state per channel-day, and deleted messages kept but flagged.

Why (docs/data-model.md): the Slack ingestion issue needs to detect messages deleted in
Slack without losing what analyses already cited (slack_message.is_deleted/deleted_at), to fetch
replies only for threads whose latest reply changed (slack_message.latest_reply_ts), and to know
which channel-days were read to their last page and when their threads were last checked
(slack_sync_day).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

from toban_orchestration.db import updated_at


revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('slack_sync_day',
    sa.Column('channel_id', sa.UUID(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('threads_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('api_calls', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('complete', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['slack_channel.id'], name=op.f('fk_slack_sync_day_channel_id_slack_channel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_sync_day')),
    sa.UniqueConstraint('channel_id', 'day', name=op.f('uq_slack_sync_day_channel_id_day'))
    )
    op.add_column('slack_message', sa.Column('is_deleted', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('slack_message', sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('slack_message', sa.Column('latest_reply_ts', sa.String(length=50), nullable=True))
    updated_at.create_trigger(op, "slack_sync_day")


def downgrade() -> None:
    op.drop_column('slack_message', 'latest_reply_ts')
    op.drop_column('slack_message', 'deleted_at')
    op.drop_column('slack_message', 'is_deleted')
    op.drop_table('slack_sync_day')
