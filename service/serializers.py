"""How each object looks on the wire: one marshmallow schema per object shape."""

from __future__ import annotations

import hashlib

from marshmallow import Schema, fields

from service.flags import PUBLIC_USER_FLAGS
from service.net import mask
from service.snowflake import snowflake_time


class SnowflakeField(fields.Field):
    """Snowflakes go out as decimal strings: JavaScript numbers lose 64-bit precision."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class DateTimeField(fields.Field):
    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)


def iso(value):
    return None if value is None else value.isoformat()


def _discriminator(user) -> str:
    return f"{user.discriminator:04d}"


class UserPublicSchema(Schema):
    id = SnowflakeField()
    username = fields.String()
    discriminator = fields.Function(_discriminator)
    global_name = fields.String(allow_none=True)
    avatar = fields.String(allow_none=True)
    avatar_color = fields.Constant(None)
    bot = fields.Boolean()
    system = fields.Boolean()
    flags = fields.Function(lambda user: int(user.flags) & PUBLIC_USER_FLAGS)


class UserPrivateSchema(UserPublicSchema):
    email = fields.String(allow_none=True)
    email_bounced = fields.Constant(False)
    verified = fields.Boolean(attribute="email_verified")
    mfa_enabled = fields.Boolean()
    authenticator_types = fields.Function(lambda user: [0] if user.mfa_enabled else [])
    phone = fields.Constant(None)
    has_verified_phone = fields.Constant(False)
    bio = fields.String(allow_none=True)
    pronouns = fields.String(allow_none=True)
    accent_color = fields.Integer(allow_none=True)
    banner = fields.String(allow_none=True)
    banner_color = fields.Constant(None)
    timezone = fields.String(allow_none=True)
    timezone_privacy_flags = fields.Constant(0)
    mention_flags = fields.Integer()
    is_staff = fields.Function(lambda user: bool(user.flags & 1))
    acls = fields.Constant([])
    traits = fields.Constant([])
    premium_type = fields.Constant(0)
    premium_since = fields.Constant(None)
    premium_until = fields.Constant(None)
    premium_will_cancel = fields.Constant(False)
    premium_billing_cycle = fields.Constant(None)
    premium_lifetime_sequence = fields.Constant(None)
    premium_grace_ends_at = fields.Constant(None)
    premium_discriminator = fields.Constant(False)
    premium_badge_hidden = fields.Constant(False)
    premium_badge_masked = fields.Constant(False)
    premium_badge_timestamp_hidden = fields.Constant(False)
    premium_badge_sequence_hidden = fields.Constant(False)
    premium_purchase_disabled = fields.Constant(False)
    premium_enabled_override = fields.Constant(False)
    premium_perks_disabled = fields.Constant(False)
    force_inbound_phone_verification = fields.Constant(False)
    password_last_changed_at = DateTimeField(attribute="password_changed_at")
    last_voice_activity_sharing_change_at = fields.Constant(None)
    required_actions = fields.Constant(None)
    nsfw_allowed = fields.Constant(True)
    has_dismissed_premium_onboarding = fields.Constant(False)
    has_ever_purchased = fields.Constant(False)
    has_unread_gift_inventory = fields.Constant(False)
    unread_gift_inventory_count = fields.Constant(0)
    pending_bulk_message_deletion = fields.Constant(None)
    age_verified_adult = fields.Constant(False)
    terms_agreed_at = DateTimeField()
    privacy_agreed_at = fields.Function(lambda user: iso(user.terms_agreed_at))  # agreed together


class AuthSessionSchema(Schema):
    id_hash = fields.Function(lambda s: session_id_hash(s.id))
    client_info = fields.Function(
        lambda s: {"platform": s.platform, "os": s.os, "browser": s.browser, "location": None})
    masked_ip = fields.Function(lambda s: mask(s.client_ip))
    approx_last_used_at = DateTimeField(attribute="last_used_at")


class BotSchema(Schema):
    id = SnowflakeField()
    username = fields.String()
    discriminator = fields.Function(_discriminator)
    avatar = fields.String(allow_none=True)
    banner = fields.String(allow_none=True)
    bio = fields.String(allow_none=True)
    mfa_enabled = fields.Constant(False)
    authenticator_types = fields.Constant([])
    flags = fields.Function(lambda user: int(user.flags) & PUBLIC_USER_FLAGS)


class ApplicationSchema(Schema):
    id = SnowflakeField()
    name = fields.String()
    icon = fields.Constant(None)
    redirect_uris = fields.List(fields.String())
    bot_public = fields.Boolean()
    bot_require_code_grant = fields.Boolean()


def session_id_hash(session_id: int) -> str:
    """A stable public handle for a session that reveals nothing about its token."""
    return hashlib.sha256(f"session:{session_id}".encode()).hexdigest()[:16]


user_public = UserPublicSchema()
user_private = UserPrivateSchema()
auth_session = AuthSessionSchema()
bot = BotSchema()
application = ApplicationSchema()


def serialize_session(session_row, current_session_id: int | None) -> dict:
    data = auth_session.dump(session_row)
    data["current"] = session_row.id == current_session_id
    return data


def serialize_application(app_row, bot_user, owner=None, *, bot_token: str | None = None,
                          client_secret: str | None = None) -> dict:
    data = application.dump(app_row)
    data["bot"] = bot.dump(bot_user)
    if bot_token:
        data["bot"]["token"] = bot_token
    if client_secret:
        data["client_secret"] = client_secret
    if owner is not None:
        data["owner"] = user_public.dump(owner)
    return data


# --- Guilds -------------------------------------------------------------------------------


class BitfieldField(fields.Field):
    """Permission bitfields go out as decimal strings, as snowflakes do."""

    def _serialize(self, value, attr, obj, **kwargs):
        return str(int(value or 0))


class GuildSchema(Schema):
    id = SnowflakeField()
    name = fields.String()
    icon = fields.String(allow_none=True)
    banner = fields.String(allow_none=True)
    banner_width = fields.Constant(None)
    banner_height = fields.Constant(None)
    splash = fields.String(allow_none=True)
    splash_width = fields.Constant(None)
    splash_height = fields.Constant(None)
    splash_card_alignment = fields.Integer()
    embed_splash = fields.Constant(None)
    embed_splash_width = fields.Constant(None)
    embed_splash_height = fields.Constant(None)
    vanity_url_code = fields.String(allow_none=True)
    owner_id = SnowflakeField()
    system_channel_id = SnowflakeField()
    system_channel_flags = fields.Integer()
    rules_channel_id = SnowflakeField()
    afk_channel_id = SnowflakeField()
    afk_timeout = fields.Integer()
    features = fields.List(fields.String())
    verification_level = fields.Integer()
    mfa_level = fields.Integer()
    nsfw_level = fields.Integer()
    nsfw = fields.Boolean()
    content_warning_level = fields.Integer()
    content_warning_text = fields.String(allow_none=True)
    explicit_content_filter = fields.Integer()
    default_message_notifications = fields.Integer()
    disabled_operations = fields.Integer()
    message_history_cutoff = DateTimeField()
    member_count = fields.Integer()
    approximate_member_count = fields.Function(lambda guild: guild.member_count)
    # Counting who is online costs a presence lookup per member: only `with_counts` lists pay for it.
    approximate_presence_count = fields.Constant(0)
    online_count = fields.Constant(0)


class ChannelSchema(Schema):
    id = SnowflakeField()
    guild_id = SnowflakeField()
    type = fields.Integer()
    name = fields.String(allow_none=True)
    topic = fields.String(allow_none=True)
    url = fields.String(allow_none=True)
    icon = fields.Constant(None)
    owner_id = fields.Constant(None)
    position = fields.Integer()
    parent_id = SnowflakeField()
    bitrate = fields.Integer(allow_none=True)
    user_limit = fields.Integer(allow_none=True)
    voice_connection_limit = fields.Constant(None)
    rtc_region = fields.String(allow_none=True)
    last_message_id = SnowflakeField()
    last_pin_timestamp = fields.Constant(None)
    nsfw = fields.Boolean()
    nsfw_override = fields.Constant(None)
    content_warning_level = fields.Integer()
    content_warning_text = fields.String(allow_none=True)
    rate_limit_per_user = fields.Integer()


class OverwriteSchema(Schema):
    id = SnowflakeField(attribute="target_id")
    type = fields.Integer()
    allow = BitfieldField()
    deny = BitfieldField()


class RoleSchema(Schema):
    id = SnowflakeField()
    name = fields.String()
    color = fields.Integer()
    position = fields.Integer()
    hoist_position = fields.Integer(allow_none=True)
    permissions = BitfieldField()
    hoist = fields.Boolean()
    mentionable = fields.Boolean()
    unicode_emoji = fields.String(allow_none=True)


class MemberSchema(Schema):
    nick = fields.String(allow_none=True)
    avatar = fields.Constant(None)
    banner = fields.Constant(None)
    accent_color = fields.Constant(None)
    joined_at = DateTimeField()
    mute = fields.Boolean()
    deaf = fields.Boolean()
    communication_disabled_until = DateTimeField()
    profile_flags = fields.Constant(None)
    mention_flags = fields.Constant(None)


class BanSchema(Schema):
    reason = fields.String(allow_none=True)
    moderator_id = SnowflakeField()
    banned_at = DateTimeField()
    expires_at = DateTimeField()


class AuditLogEntrySchema(Schema):
    id = SnowflakeField()
    action_type = fields.Integer()
    user_id = SnowflakeField()
    target_id = SnowflakeField()
    reason = fields.String(allow_none=True)
    options = fields.Dict()
    changes = fields.List(fields.Dict())


class EmojiSchema(Schema):
    id = SnowflakeField()
    name = fields.String()
    animated = fields.Boolean()
    nsfw = fields.Constant(False)


class StickerSchema(Schema):
    id = SnowflakeField()
    name = fields.String()
    description = fields.String()
    tags = fields.List(fields.String())
    animated = fields.Boolean()
    nsfw = fields.Constant(False)


guild = GuildSchema()
emoji = EmojiSchema()
sticker = StickerSchema()
channel = ChannelSchema()
overwrite = OverwriteSchema()
role = RoleSchema()
member = MemberSchema()
ban = BanSchema()
audit_log_entry = AuditLogEntrySchema()


def serialize_channel(channel_row, overwrites) -> dict:
    data = channel.dump(channel_row)
    data["permission_overwrites"] = [overwrite.dump(o) for o in overwrites]
    return data


def serialize_member(member_row, user_row, role_ids) -> dict:
    data = member.dump(member_row)
    data["user"] = user_public.dump(user_row)
    data["roles"] = [str(r) for r in sorted(role_ids)]
    return data


def serialize_ban(ban_row, user_row) -> dict:
    data = ban.dump(ban_row)
    data["user"] = user_public.dump(user_row)
    return data


# --- Messages -----------------------------------------------------------------------------


class MessageSchema(Schema):
    id = SnowflakeField()
    channel_id = SnowflakeField()
    guild_id = SnowflakeField()
    webhook_id = fields.Constant(None)
    type = fields.Integer()
    flags = fields.Integer()
    content = fields.String()
    timestamp = fields.Function(lambda m: iso(snowflake_time(m.id)))
    edited_timestamp = DateTimeField(attribute="edited_at")
    pinned = fields.Function(lambda m: m.pinned_at is not None)
    mention_everyone = fields.Boolean()
    tts = fields.Boolean()
    mention_roles = fields.List(fields.String())
    embeds = fields.List(fields.Dict())
    stickers = fields.Function(lambda m: [{"id": s} for s in m.sticker_ids])
    nonce = fields.String(allow_none=True)


message = MessageSchema()


def iso_id(value) -> str | None:
    return None if value is None else str(value)


def emoji_of_key(key: str) -> dict:
    """A reaction's emoji from its stored key: ``name:id`` for a custom emoji, else the unicode text."""
    name, _, emoji_id = key.rpartition(":")
    if name and emoji_id.isdigit():
        return {"id": emoji_id, "name": name}
    return {"id": None, "name": key}


def dump_attachment(row) -> dict:
    return {"id": str(row.id), "filename": row.filename, "size": row.size, "content_type": row.content_type,
            "width": row.width, "height": row.height, "flags": row.flags, "description": row.description}


# --- DMs and relationships ----------------------------------------------------------------


class PrivateChannelSchema(Schema):
    id = SnowflakeField()
    type = fields.Integer()
    name = fields.String(allow_none=True)
    icon = fields.Constant(None)
    owner_id = SnowflakeField()  # a group DM's owner; null in a DM
    last_message_id = SnowflakeField()
    last_pin_timestamp = fields.Constant(None)


class RelationshipSchema(Schema):
    id = SnowflakeField(attribute="target_id")
    type = fields.Integer()
    since = DateTimeField()
    nickname = fields.String(allow_none=True)
    share_voice_activity = fields.Constant(False)
    # Nobody shares voice activity yet; for anyone but a friend the reference always answers true.
    friend_shares_voice_activity = fields.Function(lambda row: row.type != 1)


private_channel = PrivateChannelSchema()
relationship = RelationshipSchema()


def serialize_private_channel(channel_row, people, viewer_id: int) -> dict:
    """A DM or group DM as ``viewer_id`` sees it: ``recipients`` lists everyone else in it."""
    data = private_channel.dump(channel_row)
    data["recipients"] = [user_public.dump(u) for u in sorted(people, key=lambda u: u.id) if u.id != viewer_id]
    return data


def serialize_relationship(row, target_user) -> dict:
    data = relationship.dump(row)
    data["user"] = user_public.dump(target_user)
    return data
