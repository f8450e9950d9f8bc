"""guilds, channels, roles, members, invites, bans, audit log, emojis, stickers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:06:39.738779
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('guilds',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('icon', sa.String(length=64), nullable=True),
    sa.Column('banner', sa.String(length=64), nullable=True),
    sa.Column('splash', sa.String(length=64), nullable=True),
    sa.Column('owner_id', sa.BigInteger(), nullable=False),
    sa.Column('system_channel_id', sa.BigInteger(), nullable=True),
    sa.Column('system_channel_flags', sa.Integer(), nullable=False),
    sa.Column('rules_channel_id', sa.BigInteger(), nullable=True),
    sa.Column('afk_channel_id', sa.BigInteger(), nullable=True),
    sa.Column('afk_timeout', sa.Integer(), nullable=False),
    sa.Column('default_message_notifications', sa.Integer(), nullable=False),
    sa.Column('verification_level', sa.Integer(), nullable=False),
    sa.Column('mfa_level', sa.Integer(), nullable=False),
    sa.Column('nsfw_level', sa.Integer(), nullable=False),
    sa.Column('nsfw', sa.Boolean(), nullable=False),
    sa.Column('explicit_content_filter', sa.Integer(), nullable=False),
    sa.Column('content_warning_level', sa.Integer(), nullable=False),
    sa.Column('content_warning_text', sa.String(length=256), nullable=True),
    sa.Column('splash_card_alignment', sa.Integer(), nullable=False),
    sa.Column('disabled_operations', sa.Integer(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('message_history_cutoff', sa.DateTime(timezone=True), nullable=True),
    sa.Column('vanity_url_code', sa.String(length=32), nullable=True),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('vanity_url_code')
    )
    with op.batch_alter_table('guilds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guilds_owner_id'), ['owner_id'], unique=False)

    op.create_table('audit_log_entries',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('target_id', sa.BigInteger(), nullable=True),
    sa.Column('action_type', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=512), nullable=True),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_log_entries', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_guild_id_id', ['guild_id', 'id'], unique=False)

    op.create_table('bans',
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=512), nullable=True),
    sa.Column('moderator_id', sa.BigInteger(), nullable=False),
    sa.Column('banned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guild_id', 'user_id')
    )
    op.create_table('channels',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=True),
    sa.Column('type', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('topic', sa.String(length=1024), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.BigInteger(), nullable=True),
    sa.Column('bitrate', sa.Integer(), nullable=True),
    sa.Column('user_limit', sa.Integer(), nullable=True),
    sa.Column('nsfw', sa.Boolean(), nullable=False),
    sa.Column('rate_limit_per_user', sa.Integer(), nullable=False),
    sa.Column('rtc_region', sa.String(length=64), nullable=True),
    sa.Column('content_warning_level', sa.Integer(), nullable=False),
    sa.Column('content_warning_text', sa.String(length=256), nullable=True),
    sa.Column('last_message_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channels_guild_id'), ['guild_id'], unique=False)

    op.create_table('emojis',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('animated', sa.Boolean(), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('emojis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_emojis_guild_id'), ['guild_id'], unique=False)

    op.create_table('members',
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('nick', sa.String(length=32), nullable=True),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('mute', sa.Boolean(), nullable=False),
    sa.Column('deaf', sa.Boolean(), nullable=False),
    sa.Column('communication_disabled_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('temporary', sa.Boolean(), nullable=False),
    sa.Column('join_invite_code', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guild_id', 'user_id')
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_user_id'), ['user_id'], unique=False)

    op.create_table('roles',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('color', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('hoist_position', sa.Integer(), nullable=True),
    sa.Column('permissions', sa.BigInteger(), nullable=False),
    sa.Column('hoist', sa.Boolean(), nullable=False),
    sa.Column('mentionable', sa.Boolean(), nullable=False),
    sa.Column('unicode_emoji', sa.String(length=64), nullable=True),
    sa.Column('bot_user_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roles_guild_id'), ['guild_id'], unique=False)

    op.create_table('stickers',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=30), nullable=False),
    sa.Column('description', sa.String(length=100), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('animated', sa.Boolean(), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stickers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stickers_guild_id'), ['guild_id'], unique=False)

    op.create_table('invites',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.Column('inviter_id', sa.BigInteger(), nullable=True),
    sa.Column('max_age', sa.Integer(), nullable=False),
    sa.Column('max_uses', sa.Integer(), nullable=False),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('temporary', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guild_id'], ['guilds.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inviter_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invites_channel_id'), ['channel_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invites_guild_id'), ['guild_id'], unique=False)

    op.create_table('member_roles',
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('role_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['guild_id', 'user_id'], ['members.guild_id', 'members.user_id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('guild_id', 'user_id', 'role_id')
    )
    with op.batch_alter_table('member_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_roles_role_id'), ['role_id'], unique=False)

    op.create_table('permission_overwrites',
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.Column('target_id', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.Integer(), nullable=False),
    sa.Column('allow', sa.BigInteger(), nullable=False),
    sa.Column('deny', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('channel_id', 'target_id')
    )


def downgrade() -> None:
    op.drop_table('permission_overwrites')
    with op.batch_alter_table('member_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_roles_role_id'))

    op.drop_table('member_roles')
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invites_guild_id'))
        batch_op.drop_index(batch_op.f('ix_invites_channel_id'))

    op.drop_table('invites')
    with op.batch_alter_table('stickers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stickers_guild_id'))

    op.drop_table('stickers')
    with op.batch_alter_table('roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roles_guild_id'))

    op.drop_table('roles')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_user_id'))

    op.drop_table('members')
    with op.batch_alter_table('emojis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emojis_guild_id'))

    op.drop_table('emojis')
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channels_guild_id'))

    op.drop_table('channels')
    op.drop_table('bans')
    with op.batch_alter_table('audit_log_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_guild_id_id')

    op.drop_table('audit_log_entries')
    with op.batch_alter_table('guilds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guilds_owner_id'))

    op.drop_table('guilds')
