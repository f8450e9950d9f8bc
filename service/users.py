"""The current user's account, profile, settings and MFA; other users' public profiles."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from service import accounts, events, serializers
from service.auth import Identity
from service.crypto import keyed_hash, new_backup_code, totp_step, valid_totp_secret
from service.errors import APIError, field_error, not_found
from service.models import AuthSession, BackupCode, LoginTicket, User, utcnow

MAX_SNOWFLAKE = (1 << 63) - 1
BACKUP_CODE_COUNT = 10
PROFILE_FIELDS = ("global_name", "bio", "pronouns", "accent_color", "timezone", "mention_flags")
SETTINGS_DEFAULTS = {
    "status": "online", "status_resets_at": None, "status_resets_to": None, "theme": "dark", "locale": "en-US",
    "restricted_guilds": [], "bot_restricted_guilds": [], "default_guilds_restricted": False,
    "bot_default_guilds_restricted": False, "inline_attachment_media": True, "inline_embed_media": True,
    "gif_auto_play": True, "render_embeds": True, "render_reactions": True, "animate_emoji": True,
    "animate_stickers": 0, "render_spoilers": 1, "message_display_compact": False, "friend_source_flags": 7,
    "incoming_call_flags": 0, "group_dm_add_permission_flags": 0, "guild_folders": [], "custom_status": None,
    "afk_timeout": 600, "time_format": 0, "developer_mode": False, "trusted_domains": [],
    "default_hide_muted_channels": False, "sensitive_content_friend_dm_filter": 0,
    "sensitive_content_non_friend_dm_filter": 1, "sensitive_content_guild_filter": 0,
    "suppress_unprivileged_self_mentions": False, "suppress_unprivileged_self_mentions_bypass_user_ids": [],
    "staff_dm_access_user_ids": [], "synced_preferences": None, "profile_privacy": 0,
    "default_share_voice_activity": False,
}


def parse_snowflake(value: str | int, what: str, code: str) -> int:
    """Ids beyond 64 bits cannot exist: answer 404 instead of overflowing the database."""
    number = int(value)
    if not 0 <= number <= MAX_SNOWFLAKE:
        raise not_found(code, what)
    return number


def cursor(value: str | None) -> int | None:
    """A paging bound from a query string; beyond the largest possible id it means "no bound"."""
    return None if value is None else min(int(value), MAX_SNOWFLAKE)


def me(session, identity: Identity) -> User:
    user = session.get(User, identity.user_id)
    if user is None:  # deleted between authentication and now
        raise APIError(401, "UNAUTHORIZED", "Unauthorized")
    return user


def get_public(session, user_id: str) -> dict:
    user = session.get(User, parse_snowflake(user_id, "user", "UNKNOWN_USER"))
    if user is None:
        raise not_found("UNKNOWN_USER", "user")
    return serializers.user_public.dump(user)


def update_me(rt, session, identity: Identity, body: dict) -> dict:
    user = me(session, identity)
    sensitive = any(key in body for key in ("email", "new_password", "username", "discriminator"))
    if sensitive:
        accounts.verify_sudo(rt, session, user, body)
    if "username" in body or "discriminator" in body:
        username = body.get("username", user.username)
        wanted = int(body["discriminator"]) if "discriminator" in body else None
        if username.lower() != user.username_key or (wanted is not None and wanted != user.discriminator):
            user.discriminator = accounts.pick_discriminator(session, username, wanted)
        user.username, user.username_key = username, username.lower()
    if "email" in body:
        email = body["email"].strip().lower()
        if email != user.email:
            user.email, user.email_verified = email, False
    if "new_password" in body:
        user.password_hash = rt.passwords.hash(body["new_password"])
        user.password_changed_at = utcnow()
        # A new password ends every other session, as users expect after a compromise.
        others = list(session.scalars(select(AuthSession.id).where(AuthSession.user_id == user.id,
                                                                   AuthSession.id != identity.session_id)))
        session.execute(delete(AuthSession).where(AuthSession.id.in_(others)))
        events.end_logins(session, user.id, others)
        session.execute(delete(LoginTicket).where(LoginTicket.user_id == user.id))  # half-done logins too
    for key in PROFILE_FIELDS:
        if key in body:
            setattr(user, key, body[key])
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise field_error("email" if "email" in body else "username", "ALREADY_TAKEN",
                          "Already in use by another account") from None
    return serializers.user_private.dump(user)


def get_settings(user: User) -> dict:
    return {**SETTINGS_DEFAULTS, **{k: v for k, v in (user.settings or {}).items() if k in SETTINGS_DEFAULTS}}


def update_settings(session, identity: Identity, body: dict) -> dict:
    user = me(session, identity)
    changes = {k: v for k, v in body.items() if k in SETTINGS_DEFAULTS}
    user.settings = {**(user.settings or {}), **changes}  # a new dict, so SQLAlchemy sees the change
    session.commit()
    return get_settings(user)


def enable_totp(rt, session, identity: Identity, body: dict) -> dict:
    user = me(session, identity)
    if user.bot:
        raise APIError(403, "FORBIDDEN", "Bots cannot use MFA")
    if user.mfa_enabled:
        raise field_error("secret", "ALREADY_ENABLED", "Two-factor authentication is already on")
    accounts.verify_sudo(rt, session, user, body)
    secret = body["secret"].upper().rstrip("=")
    if not valid_totp_secret(secret):
        raise field_error("secret", "INVALID_SECRET", "Not a base32 TOTP secret of at least 80 bits")
    step = totp_step(secret, body["code"])
    if step is None:
        raise field_error("code", "INVALID_MFA_CODE", "Invalid two-factor code")
    user.totp_secret, user.totp_last_step = secret, step
    codes = _replace_backup_codes(rt, session, user)
    session.commit()
    return {"backup_codes": [{"code": code, "consumed": False} for code in codes]}


def disable_totp(rt, session, identity: Identity, body: dict) -> None:
    user = me(session, identity)
    if not user.mfa_enabled:
        raise APIError(400, "TWO_FA_NOT_ENABLED", "Two-factor authentication is not on")
    accounts.verify_sudo(rt, session, user, body)
    if not accounts.check_mfa_code(rt, session, user, body["code"]):
        session.commit()
        raise field_error("code", "INVALID_MFA_CODE", "Invalid two-factor code")
    user.totp_secret = None
    session.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
    session.commit()


def backup_codes(rt, session, identity: Identity, body: dict) -> dict:
    user = me(session, identity)
    if not user.mfa_enabled:
        raise APIError(400, "TWO_FA_NOT_ENABLED", "Two-factor authentication is not on")
    accounts.verify_sudo(rt, session, user, body)
    if not body["regenerate"]:
        raise field_error("regenerate", "BACKUP_CODES_HASHED",
                          "Backup codes are stored hashed and cannot be shown again; regenerate them")
    codes = _replace_backup_codes(rt, session, user)
    session.commit()
    return {"backup_codes": [{"code": code, "consumed": False} for code in codes]}


def _replace_backup_codes(rt, session, user: User) -> list[str]:
    session.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
    codes = [new_backup_code() for _ in range(BACKUP_CODE_COUNT)]
    for code in codes:
        session.add(BackupCode(user_id=user.id, code_hash=keyed_hash(rt.settings.secret_key, code)))
    return codes
