"""How each object looks on the wire: one marshmallow schema per object shape."""

from __future__ import annotations

import hashlib

from marshmallow import Schema, fields

from service.flags import PUBLIC_USER_FLAGS
from service.net import mask


class SnowflakeField(fields.Field):
    """Snowflakes go out as decimal strings: JavaScript numbers lose 64-bit precision."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class DateTimeField(fields.Field):
    def _serialize(self, value, attr, obj, **kwargs):
        return _iso(value)


def _iso(value):
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
    privacy_agreed_at = fields.Function(lambda user: _iso(user.terms_agreed_at))  # agreed together


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
