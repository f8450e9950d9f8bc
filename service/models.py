"""SQLAlchemy models: storage only, no rules. Secrets are stored as hashes, never as given."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class IdNode(Base):
    """One row per started process: its id, modulo 1024, is the process's snowflake node."""

    __tablename__ = "id_nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("username_key", "discriminator", name="uq_users_tag"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(32))
    username_key: Mapped[str] = mapped_column(String(32), index=True)  # lower-cased for uniqueness
    discriminator: Mapped[int] = mapped_column(Integer)
    global_name: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)  # lower-cased; bots have none
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_of_birth: Mapped[str | None] = mapped_column(String(10))
    bot: Mapped[bool] = mapped_column(Boolean, default=False)
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[int] = mapped_column(BigInteger, default=0)
    suspicious_activity_flags: Mapped[int] = mapped_column(Integer, default=0)
    pending_manual_verification: Mapped[bool] = mapped_column(Boolean, default=False)
    avatar: Mapped[str | None] = mapped_column(String(64))
    banner: Mapped[str | None] = mapped_column(String(64))
    bio: Mapped[str | None] = mapped_column(String(320))
    pronouns: Mapped[str | None] = mapped_column(String(40))
    accent_color: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str | None] = mapped_column(String(64))
    mention_flags: Mapped[int] = mapped_column(Integer, default=0)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The newest 30-second TOTP step accepted; a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    terms_agreed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_secret is not None


class AuthSession(Base):
    """A logged-in device. The token itself is never stored, only its SHA-256."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_ip: Mapped[str | None] = mapped_column(String(45))
    platform: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(64))
    browser: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    bot_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    bot_public: Mapped[bool] = mapped_column(Boolean, default=True)
    bot_require_code_grant: Mapped[bool] = mapped_column(Boolean, default=False)
    client_secret_hash: Mapped[str] = mapped_column(String(64))
    bot_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthorizedIp(Base):
    __tablename__ = "authorized_ips"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginTicket(Base):
    """A half-finished login: waiting for an MFA code, or for an emailed IP authorization."""

    __tablename__ = "login_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "mfa" | "ip"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_ip: Mapped[str | None] = mapped_column(String(45))
    email_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    consumed: Mapped[bool] = mapped_column(Boolean, default=False)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BackupCode(Base):
    __tablename__ = "mfa_backup_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))  # HMAC: a stolen table reveals no code
    consumed: Mapped[bool] = mapped_column(Boolean, default=False)


class OutboxEmail(Base):
    """Every email the service sends; development and test modes read it back."""

    __tablename__ = "outbox_emails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    type: Mapped[str] = mapped_column(String(64))
    metadata_json: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Guilds -------------------------------------------------------------------------------


class Guild(Base):
    __tablename__ = "guilds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))
    icon: Mapped[str | None] = mapped_column(String(64))
    banner: Mapped[str | None] = mapped_column(String(64))
    splash: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    system_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    system_channel_flags: Mapped[int] = mapped_column(Integer, default=0)
    rules_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    afk_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    afk_timeout: Mapped[int] = mapped_column(Integer, default=300)
    default_message_notifications: Mapped[int] = mapped_column(Integer, default=0)
    verification_level: Mapped[int] = mapped_column(Integer, default=0)
    mfa_level: Mapped[int] = mapped_column(Integer, default=0)
    nsfw_level: Mapped[int] = mapped_column(Integer, default=0)
    nsfw: Mapped[bool] = mapped_column(Boolean, default=False)
    explicit_content_filter: Mapped[int] = mapped_column(Integer, default=0)
    content_warning_level: Mapped[int] = mapped_column(Integer, default=0)
    content_warning_text: Mapped[str | None] = mapped_column(String(256))
    splash_card_alignment: Mapped[int] = mapped_column(Integer, default=0)
    disabled_operations: Mapped[int] = mapped_column(Integer, default=0)
    features: Mapped[list] = mapped_column(JSON, default=list)
    message_history_cutoff: Mapped[datetime | None] = mapped_column(UTCDateTime)
    vanity_url_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    member_count: Mapped[int] = mapped_column(Integer, default=0)  # kept by joins and leaves
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int | None] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), index=True)
    type: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(100))
    topic: Mapped[str | None] = mapped_column(String(1024))
    url: Mapped[str | None] = mapped_column(String(2048))
    position: Mapped[int] = mapped_column(Integer, default=0)
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    bitrate: Mapped[int | None] = mapped_column(Integer)
    user_limit: Mapped[int | None] = mapped_column(Integer)
    nsfw: Mapped[bool] = mapped_column(Boolean, default=False)
    rate_limit_per_user: Mapped[int] = mapped_column(Integer, default=0)
    rtc_region: Mapped[str | None] = mapped_column(String(64))
    content_warning_level: Mapped[int] = mapped_column(Integer, default=0)
    content_warning_text: Mapped[str | None] = mapped_column(String(256))
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)
    owner_id: Mapped[int | None] = mapped_column(BigInteger)  # group DMs
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PermissionOverwrite(Base):
    __tablename__ = "permission_overwrites"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    target_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[int] = mapped_column(Integer)  # 0 role, 1 member
    allow: Mapped[int] = mapped_column(BigInteger, default=0)
    deny: Mapped[int] = mapped_column(BigInteger, default=0)


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # @everyone: the guild id
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    color: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)
    hoist_position: Mapped[int | None] = mapped_column(Integer)
    permissions: Mapped[int] = mapped_column(BigInteger, default=0)
    hoist: Mapped[bool] = mapped_column(Boolean, default=False)
    mentionable: Mapped[bool] = mapped_column(Boolean, default=False)
    unicode_emoji: Mapped[str | None] = mapped_column(String(64))
    bot_user_id: Mapped[int | None] = mapped_column(BigInteger)  # set on a bot's managed role


class Member(Base):
    __tablename__ = "members"

    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    nick: Mapped[str | None] = mapped_column(String(32))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    mute: Mapped[bool] = mapped_column(Boolean, default=False)
    deaf: Mapped[bool] = mapped_column(Boolean, default=False)
    communication_disabled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    temporary: Mapped[bool] = mapped_column(Boolean, default=False)
    join_invite_code: Mapped[str | None] = mapped_column(String(32))


class MemberRole(Base):
    __tablename__ = "member_roles"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True)
    __table_args__ = (
        ForeignKeyConstraint(["guild_id", "user_id"], ["members.guild_id", "members.user_id"], ondelete="CASCADE"),
    )


class Invite(Base):
    __tablename__ = "invites"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    inviter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    max_age: Mapped[int] = mapped_column(Integer, default=86400)
    max_uses: Mapped[int] = mapped_column(Integer, default=0)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    temporary: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Ban(Base):
    __tablename__ = "bans"

    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(512))
    moderator_id: Mapped[int] = mapped_column(BigInteger)
    banned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditLogEntry(Base):
    __tablename__ = "audit_log_entries"
    __table_args__ = (Index("ix_audit_log_guild_id_id", "guild_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    action_type: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(512))
    changes: Mapped[list] = mapped_column(JSON, default=list)
    options: Mapped[dict] = mapped_column(JSON, default=dict)


class Emoji(Base):
    __tablename__ = "emojis"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    animated: Mapped[bool] = mapped_column(Boolean, default=False)
    content_type: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Sticker(Base):
    __tablename__ = "stickers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(ForeignKey("guilds.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    animated: Mapped[bool] = mapped_column(Boolean, default=False)
    content_type: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Messages -----------------------------------------------------------------------------


class Message(Base):
    """One message. History reads walk (channel_id, id) backwards: ids are time-ordered snowflakes."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_channel_id_id", "channel_id", "id"),
        Index("ix_messages_channel_nonce", "channel_id", "author_id", "nonce"),
        # Someone's messages newest first: slowmode's last message, deleting one's own, a ban's window.
        Index("ix_messages_author_id_id", "author_id", "id"),
        # A channel's pins (few among many messages): listing them, counting them, the newest pin's time.
        Index("ix_messages_channel_pinned", "channel_id", "pinned_at",
              sqlite_where=text("pinned_at IS NOT NULL"), postgresql_where=text("pinned_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[int] = mapped_column(Integer, default=0)
    content: Mapped[str] = mapped_column(Text, default="")
    flags: Mapped[int] = mapped_column(Integer, default=0)
    tts: Mapped[bool] = mapped_column(Boolean, default=False)
    nonce: Mapped[str | None] = mapped_column(String(64))
    mention_everyone: Mapped[bool] = mapped_column(Boolean, default=False)
    mentions: Mapped[list] = mapped_column(JSON, default=list)  # user ids, as strings
    mention_roles: Mapped[list] = mapped_column(JSON, default=list)  # role ids, as strings
    embeds: Mapped[list] = mapped_column(JSON, default=list)
    sticker_ids: Mapped[list] = mapped_column(JSON, default=list)
    referenced_message_id: Mapped[int | None] = mapped_column(BigInteger)
    pinned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reaction(Base):
    __tablename__ = "reactions"
    __table_args__ = (Index("ix_reactions_message_emoji", "message_id", "emoji_key", "created_at"),)

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    emoji_key: Mapped[str] = mapped_column(String(128), primary_key=True)  # a unicode emoji, or "name:id"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    flags: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str | None] = mapped_column(String(1024))


class ReadState(Base):
    __tablename__ = "read_states"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_pin_ack_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mention_count: Mapped[int] = mapped_column(Integer, default=0)


class ChannelRecipient(Base):
    """Who is in a DM or group DM (channels without a guild)."""

    __tablename__ = "channel_recipients"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class Relationship(Base):
    """One side's view: friend (1), blocked (2), incoming request (3), outgoing request (4)."""

    __tablename__ = "relationships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    type: Mapped[int] = mapped_column(Integer)
    nickname: Mapped[str | None] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserNote(Base):
    __tablename__ = "user_notes"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    note: Mapped[str] = mapped_column(String(256))


class MessageMention(Base):
    """Whom a message mentions: a user, a role, or everyone (``target_id`` is then the guild id,
    which is also the @everyone role's id). Kept in step with the message on send and edit;
    the mentions inbox reads it by target, newest first. The full-text index of messages is
    dialect-specific DDL in migration 0005 and has no model."""

    __tablename__ = "message_mentions"

    target_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    channel_id: Mapped[int] = mapped_column(BigInteger)


class MentionDismissal(Base):
    """A mention someone removed from their own inbox (the message itself stays)."""

    __tablename__ = "mention_dismissals"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
