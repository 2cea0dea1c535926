"""Baseline: the whole schema of shared/SCHEMA.md.

Adds to SCHEMA.md (docs/data-model.md says why): a unique (channel_id, slack_ts) on
slack_message that also serves as its channel/ts index, unique (analysis_id, user_id,
channel_id) on slack_contribution, CHECK constraints on the string vocabularies, indexes on
foreign keys that deletes cascade through, and the updated_at trigger on every table.

Revision ID: 0001
Revises: 
Create Date: 2026-11-25

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from toban_orchestration.db import updated_at

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES_WITH_UPDATED_AT = (
    "team",
    "team_member",
    "integration",
    "integration_credential",
    "service_resource",
    "integration_share",
    "resource_access",
    "integration_event",
    "slack_workspace",
    "slack_channel",
    "slack_user",
    "slack_message",
    "slack_reaction",
    "slack_analysis",
    "slack_contribution",
    "slack_channel_analysis",
)
ENUM_TYPES = (
    "team_member_role",
    "integration_type",
    "integration_status",
    "credential_type",
    "resource_type",
    "share_level",
    "access_level",
    "integration_event_type",
)


def upgrade() -> None:
    op.create_table('team',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('slug', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('avatar_url', sa.String(length=1024), nullable=True),
    sa.Column('team_size', sa.Integer(), nullable=True),
    sa.Column('is_personal', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('team_metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_by_user_id', sa.String(length=255), nullable=True),
    sa.Column('created_by_email', sa.String(length=255), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team')),
    sa.UniqueConstraint('slug', name=op.f('uq_team_slug'))
    )
    op.create_table('integration',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('service_type', sa.Enum('SLACK', 'GITHUB', 'NOTION', 'DISCORD', name='integration_type'), nullable=False),
    sa.Column('status', sa.Enum('ACTIVE', 'DISCONNECTED', 'EXPIRED', 'REVOKED', 'ERROR', name='integration_status'), nullable=False),
    sa.Column('integration_metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('workspace_id', sa.String(length=255), nullable=True),
    sa.Column('owner_team_id', sa.UUID(), nullable=False),
    sa.Column('created_by_user_id', sa.String(length=255), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['owner_team_id'], ['team.id'], name=op.f('fk_integration_owner_team_id_team'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration')),
    sa.UniqueConstraint('owner_team_id', 'workspace_id', 'service_type', name=op.f('uq_integration_owner_team_id_workspace_id_service_type'))
    )
    op.create_table('slack_workspace',
    sa.Column('team_id', sa.UUID(), nullable=False),
    sa.Column('slack_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=True),
    sa.Column('icon_url', sa.String(length=1024), nullable=True),
    sa.Column('team_size', sa.Integer(), nullable=True),
    sa.Column('workspace_metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('is_connected', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('connection_status', sa.String(length=50), nullable=True),
    sa.Column('last_connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('access_token', sa.String(length=1024), nullable=True),
    sa.Column('refresh_token', sa.String(length=1024), nullable=True),
    sa.Column('token_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_slack_workspace_team_id_team'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_workspace')),
    sa.UniqueConstraint('slack_id', name=op.f('uq_slack_workspace_slack_id'))
    )
    op.create_index(op.f('ix_slack_workspace_team_id'), 'slack_workspace', ['team_id'], unique=False)
    op.create_table('team_member',
    sa.Column('team_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('role', sa.Enum('OWNER', 'ADMIN', 'MEMBER', 'VIEWER', name='team_member_role'), nullable=False),
    sa.Column('invitation_status', sa.String(length=50), nullable=True),
    sa.Column('invitation_token', sa.String(length=255), nullable=True),
    sa.Column('invitation_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_active_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_team_member_team_id_team'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_member')),
    sa.UniqueConstraint('team_id', 'user_id', name=op.f('uq_team_member_team_id_user_id'))
    )
    op.create_table('integration_credential',
    sa.Column('integration_id', sa.UUID(), nullable=False),
    sa.Column('credential_type', sa.Enum('OAUTH_TOKEN', 'BOT_TOKEN', 'USER_TOKEN', 'APP_TOKEN', 'PERSONAL_TOKEN', 'API_KEY', name='credential_type'), nullable=False),
    sa.Column('encrypted_value', sa.String(length=2048), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refresh_token', sa.String(length=2048), nullable=True),
    sa.Column('scopes', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_integration_credential_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration_credential'))
    )
    op.create_index(op.f('ix_integration_credential_integration_id'), 'integration_credential', ['integration_id'], unique=False)
    op.create_table('integration_event',
    sa.Column('integration_id', sa.UUID(), nullable=True),
    sa.Column('event_type', sa.Enum('CREATED', 'UPDATED', 'STATUS_CHANGED', 'CONNECTED', 'DISCONNECTED', 'RECONNECTED', 'SHARED', 'UNSHARED', 'ACCESS_GRANTED', 'ACCESS_REVOKED', 'ACCESS_CHANGED', 'TOKEN_REFRESHED', 'TOKEN_REFRESH_FAILED', 'KEY_ROTATED', 'SYNC_COMPLETED', 'SYNC_FAILED', 'DATA_PURGED', 'DATA_ERASED', 'ERROR', name='integration_event_type'), nullable=False),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('actor_user_id', sa.String(length=255), nullable=True),
    sa.Column('affected_team_id', sa.UUID(), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['affected_team_id'], ['team.id'], name=op.f('fk_integration_event_affected_team_id_team'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_integration_event_integration_id_integration'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration_event'))
    )
    op.create_index(op.f('ix_integration_event_affected_team_id'), 'integration_event', ['affected_team_id'], unique=False)
    op.create_index(op.f('ix_integration_event_integration_id'), 'integration_event', ['integration_id'], unique=False)
    op.create_table('integration_share',
    sa.Column('integration_id', sa.UUID(), nullable=False),
    sa.Column('team_id', sa.UUID(), nullable=False),
    sa.Column('share_level', sa.Enum('FULL_ACCESS', 'LIMITED_ACCESS', 'READ_ONLY', name='share_level'), nullable=False),
    sa.Column('status', sa.String(length=50), server_default='active', nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shared_by_user_id', sa.String(length=255), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_integration_share_integration_id_integration'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_integration_share_team_id_team'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration_share')),
    sa.UniqueConstraint('integration_id', 'team_id', name=op.f('uq_integration_share_integration_id_team_id'))
    )
    op.create_index(op.f('ix_integration_share_team_id'), 'integration_share', ['team_id'], unique=False)
    op.create_table('service_resource',
    sa.Column('integration_id', sa.UUID(), nullable=False),
    sa.Column('resource_type', sa.Enum('SLACK_CHANNEL', 'SLACK_USER', 'SLACK_EMOJI', 'GITHUB_REPOSITORY', 'GITHUB_ISSUE', 'GITHUB_PR', 'GITHUB_WEBHOOK', 'NOTION_PAGE', 'NOTION_DATABASE', 'NOTION_BLOCK', 'DISCORD_GUILD', 'DISCORD_CHANNEL', name='resource_type'), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('resource_metadata', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], name=op.f('fk_service_resource_integration_id_integration'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_resource')),
    sa.UniqueConstraint('integration_id', 'resource_type', 'external_id', name=op.f('uq_service_resource_integration_id_resource_type_external_id'))
    )
    op.create_table('slack_analysis',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('created_by_user_id', sa.UUID(), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('start_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('llm_model', sa.String(length=255), nullable=True),
    sa.Column('analysis_type', sa.String(length=50), nullable=True),
    sa.Column('is_scheduled', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('schedule_frequency', sa.String(length=50), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=50), server_default='pending', nullable=False),
    sa.Column('progress', sa.Float(), server_default=sa.text('0'), nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('result_summary', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('completion_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("schedule_frequency IN ('daily', 'weekly', 'monthly')", name=op.f('ck_slack_analysis_schedule_frequency')),
    sa.CheckConstraint("status IN ('pending', 'running', 'completed', 'failed', 'cancelled')", name=op.f('ck_slack_analysis_status')),
    sa.ForeignKeyConstraint(['workspace_id'], ['slack_workspace.id'], name=op.f('fk_slack_analysis_workspace_id_slack_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_analysis'))
    )
    op.create_index(op.f('ix_slack_analysis_workspace_id'), 'slack_analysis', ['workspace_id'], unique=False)
    op.create_table('slack_channel',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('slack_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=50), nullable=False),
    sa.Column('purpose', sa.String(length=1024), nullable=True),
    sa.Column('topic', sa.String(length=1024), nullable=True),
    sa.Column('member_count', sa.Integer(), nullable=True),
    sa.Column('is_archived', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at_ts', sa.String(length=50), nullable=True),
    sa.Column('has_bot', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('bot_joined_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('is_selected_for_analysis', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_supported', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('oldest_synced_ts', sa.String(length=50), nullable=True),
    sa.Column('latest_synced_ts', sa.String(length=50), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("type IN ('public', 'private', 'im', 'mpim')", name=op.f('ck_slack_channel_type')),
    sa.ForeignKeyConstraint(['workspace_id'], ['slack_workspace.id'], name=op.f('fk_slack_channel_workspace_id_slack_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_channel')),
    sa.UniqueConstraint('workspace_id', 'slack_id', name=op.f('uq_slack_channel_workspace_id_slack_id'))
    )
    op.create_table('slack_user',
    sa.Column('workspace_id', sa.UUID(), nullable=False),
    sa.Column('slack_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('real_name', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('title', sa.String(length=255), nullable=True),
    sa.Column('phone', sa.String(length=50), nullable=True),
    sa.Column('timezone', sa.String(length=100), nullable=True),
    sa.Column('timezone_offset', sa.Integer(), nullable=True),
    sa.Column('profile_image_url', sa.String(length=1024), nullable=True),
    sa.Column('is_bot', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_admin', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_deleted', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('profile_data', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['slack_workspace.id'], name=op.f('fk_slack_user_workspace_id_slack_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_user')),
    sa.UniqueConstraint('workspace_id', 'slack_id', name=op.f('uq_slack_user_workspace_id_slack_id'))
    )
    op.create_table('resource_access',
    sa.Column('resource_id', sa.UUID(), nullable=False),
    sa.Column('team_id', sa.UUID(), nullable=False),
    sa.Column('access_level', sa.Enum('READ', 'WRITE', 'ADMIN', name='access_level'), nullable=False),
    sa.Column('granted_by_user_id', sa.String(length=255), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['resource_id'], ['service_resource.id'], name=op.f('fk_resource_access_resource_id_service_resource'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_resource_access_team_id_team'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_access')),
    sa.UniqueConstraint('resource_id', 'team_id', name=op.f('uq_resource_access_resource_id_team_id'))
    )
    op.create_index(op.f('ix_resource_access_team_id'), 'resource_access', ['team_id'], unique=False)
    op.create_table('slack_analysis_channels',
    sa.Column('analysis_id', sa.UUID(), nullable=False),
    sa.Column('channel_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['analysis_id'], ['slack_analysis.id'], name=op.f('fk_slack_analysis_channels_analysis_id_slack_analysis'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['channel_id'], ['slack_channel.id'], name=op.f('fk_slack_analysis_channels_channel_id_slack_channel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('analysis_id', 'channel_id', name=op.f('pk_slack_analysis_channels'))
    )
    op.create_index(op.f('ix_slack_analysis_channels_channel_id'), 'slack_analysis_channels', ['channel_id'], unique=False)
    op.create_table('slack_channel_analysis',
    sa.Column('analysis_id', sa.UUID(), nullable=False),
    sa.Column('channel_id', sa.UUID(), nullable=False),
    sa.Column('start_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('message_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('participant_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('thread_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('reaction_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('channel_summary', sa.Text(), nullable=True),
    sa.Column('topic_analysis', sa.Text(), nullable=True),
    sa.Column('contributor_insights', sa.Text(), nullable=True),
    sa.Column('key_highlights', sa.Text(), nullable=True),
    sa.Column('model_used', sa.String(length=255), nullable=True),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('raw_response', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('status', sa.String(length=50), server_default='pending', nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'running', 'completed', 'failed', 'cancelled')", name=op.f('ck_slack_channel_analysis_status')),
    sa.ForeignKeyConstraint(['analysis_id'], ['slack_analysis.id'], name=op.f('fk_slack_channel_analysis_analysis_id_slack_analysis'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['channel_id'], ['slack_channel.id'], name=op.f('fk_slack_channel_analysis_channel_id_slack_channel'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_channel_analysis')),
    sa.UniqueConstraint('analysis_id', 'channel_id', name=op.f('uq_slack_channel_analysis_analysis_id_channel_id'))
    )
    op.create_index(op.f('ix_slack_channel_analysis_channel_id'), 'slack_channel_analysis', ['channel_id'], unique=False)
    op.create_table('slack_contribution',
    sa.Column('analysis_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('channel_id', sa.UUID(), nullable=True),
    sa.Column('problem_solving_score', sa.Float(), nullable=True),
    sa.Column('knowledge_sharing_score', sa.Float(), nullable=True),
    sa.Column('team_coordination_score', sa.Float(), nullable=True),
    sa.Column('engagement_score', sa.Float(), nullable=True),
    sa.Column('total_score', sa.Float(), nullable=True),
    sa.Column('message_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('thread_reply_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('reaction_given_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('reaction_received_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('notable_contributions', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('insights', sa.Text(), nullable=True),
    sa.Column('insights_data', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['analysis_id'], ['slack_analysis.id'], name=op.f('fk_slack_contribution_analysis_id_slack_analysis'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['channel_id'], ['slack_channel.id'], name=op.f('fk_slack_contribution_channel_id_slack_channel'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['slack_user.id'], name=op.f('fk_slack_contribution_user_id_slack_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_contribution')),
    sa.UniqueConstraint('analysis_id', 'user_id', 'channel_id', name=op.f('uq_slack_contribution_analysis_id_user_id_channel_id'), postgresql_nulls_not_distinct=True)
    )
    op.create_index(op.f('ix_slack_contribution_channel_id'), 'slack_contribution', ['channel_id'], unique=False)
    op.create_index(op.f('ix_slack_contribution_user_id'), 'slack_contribution', ['user_id'], unique=False)
    op.create_table('slack_message',
    sa.Column('channel_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=True),
    sa.Column('parent_id', sa.UUID(), nullable=True),
    sa.Column('slack_id', sa.String(length=255), nullable=True),
    sa.Column('slack_ts', sa.String(length=50), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('processed_text', sa.Text(), nullable=True),
    sa.Column('message_type', sa.String(length=50), nullable=False),
    sa.Column('subtype', sa.String(length=50), nullable=True),
    sa.Column('is_edited', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('edited_ts', sa.String(length=50), nullable=True),
    sa.Column('has_attachments', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('attachments', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('files', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('thread_ts', sa.String(length=50), nullable=True),
    sa.Column('is_thread_parent', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_thread_reply', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('reply_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('reply_users_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('reaction_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('message_datetime', sa.DateTime(timezone=True), nullable=False),
    sa.Column('is_analyzed', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('message_category', sa.String(length=100), nullable=True),
    sa.Column('sentiment_score', sa.Float(), nullable=True),
    sa.Column('analysis_data', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['slack_channel.id'], name=op.f('fk_slack_message_channel_id_slack_channel'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['slack_message.id'], name=op.f('fk_slack_message_parent_id_slack_message'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['slack_user.id'], name=op.f('fk_slack_message_user_id_slack_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_message')),
    sa.UniqueConstraint('channel_id', 'slack_ts', name=op.f('uq_slack_message_channel_id_slack_ts'))
    )
    op.create_index(op.f('ix_slack_message_message_datetime'), 'slack_message', ['message_datetime'], unique=False)
    op.create_index(op.f('ix_slack_message_parent_id'), 'slack_message', ['parent_id'], unique=False)
    op.create_index(op.f('ix_slack_message_thread_ts'), 'slack_message', ['thread_ts'], unique=False)
    op.create_index('ix_slack_message_user_id_slack_ts', 'slack_message', ['user_id', 'slack_ts'], unique=False)
    op.create_table('slack_reaction',
    sa.Column('message_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('emoji_name', sa.String(length=255), nullable=False),
    sa.Column('emoji_code', sa.String(length=255), nullable=True),
    sa.Column('reaction_ts', sa.String(length=50), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['slack_message.id'], name=op.f('fk_slack_reaction_message_id_slack_message'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['slack_user.id'], name=op.f('fk_slack_reaction_user_id_slack_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_reaction')),
    sa.UniqueConstraint('message_id', 'user_id', 'emoji_name', name=op.f('uq_slack_reaction_message_id_user_id_emoji_name'))
    )
    op.create_index(op.f('ix_slack_reaction_user_id'), 'slack_reaction', ['user_id'], unique=False)
    updated_at.create_function(op)
    for table in TABLES_WITH_UPDATED_AT:
        updated_at.create_trigger(op, table)


def downgrade() -> None:
    op.drop_index(op.f('ix_slack_reaction_user_id'), table_name='slack_reaction')
    op.drop_table('slack_reaction')
    op.drop_index('ix_slack_message_user_id_slack_ts', table_name='slack_message')
    op.drop_index(op.f('ix_slack_message_thread_ts'), table_name='slack_message')
    op.drop_index(op.f('ix_slack_message_parent_id'), table_name='slack_message')
    op.drop_index(op.f('ix_slack_message_message_datetime'), table_name='slack_message')
    op.drop_table('slack_message')
    op.drop_index(op.f('ix_slack_contribution_user_id'), table_name='slack_contribution')
    op.drop_index(op.f('ix_slack_contribution_channel_id'), table_name='slack_contribution')
    op.drop_table('slack_contribution')
    op.drop_index(op.f('ix_slack_channel_analysis_channel_id'), table_name='slack_channel_analysis')
    op.drop_table('slack_channel_analysis')
    op.drop_index(op.f('ix_slack_analysis_channels_channel_id'), table_name='slack_analysis_channels')
    op.drop_table('slack_analysis_channels')
    op.drop_index(op.f('ix_resource_access_team_id'), table_name='resource_access')
    op.drop_table('resource_access')
    op.drop_table('slack_user')
    op.drop_table('slack_channel')
    op.drop_index(op.f('ix_slack_analysis_workspace_id'), table_name='slack_analysis')
    op.drop_table('slack_analysis')
    op.drop_table('service_resource')
    op.drop_index(op.f('ix_integration_share_team_id'), table_name='integration_share')
    op.drop_table('integration_share')
    op.drop_index(op.f('ix_integration_event_integration_id'), table_name='integration_event')
    op.drop_index(op.f('ix_integration_event_affected_team_id'), table_name='integration_event')
    op.drop_table('integration_event')
    op.drop_index(op.f('ix_integration_credential_integration_id'), table_name='integration_credential')
    op.drop_table('integration_credential')
    op.drop_table('team_member')
    op.drop_index(op.f('ix_slack_workspace_team_id'), table_name='slack_workspace')
    op.drop_table('slack_workspace')
    op.drop_table('integration')
    op.drop_table('team')
    updated_at.drop_function(op)
    for enum_type in ENUM_TYPES:
        op.execute(f"DROP TYPE IF EXISTS {enum_type}")
