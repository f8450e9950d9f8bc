"""Guilds: creation with their starting roles and channels, settings, ownership, vanity URL, deletion."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from service import (
    accounts,
    attachments,
    audit,
    channels,
    events,
    expressions,
    images,
    members,
    presence,
    roles,
    serializers,
    storage,
)
from service.access import GuildAccess, guild_access
from service.audit import Action
from service.auth import Identity
from service.errors import APIError, field_error, not_found
from service.models import Channel, Guild, Invite, Member, Message, Role, User
from service.permissions import DEFAULT_EVERYONE, Permission
from service.users import cursor, me, parse_snowflake

# Features a guild's managers may switch themselves; the rest are granted by the instance.
TOGGLEABLE_FEATURES = frozenset({"INVITES_DISABLED"})
VANITY_CODE = re.compile(r"^[a-z0-9-]{2,32}$")
SETTINGS = ("name", "afk_timeout", "default_message_notifications", "verification_level", "nsfw_level", "nsfw",
            "content_warning_level", "content_warning_text", "explicit_content_filter", "splash_card_alignment",
            "system_channel_flags")
CHANNEL_SETTINGS = {"system_channel_id": (channels.TEXT,), "rules_channel_id": (channels.TEXT,),
                    "afk_channel_id": (channels.VOICE,)}


def dump(guild: Guild, *, permissions: int | None = None) -> dict:
    data = serializers.guild.dump(guild)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def full_state(session, access: GuildAccess) -> dict:
    """What a member sees on joining (GUILD_CREATE): the guild with roles, visible channels and expressions."""
    guild = access.guild
    data = dump(guild, permissions=access.permissions)
    data["roles"] = [serializers.role.dump(r) for r in roles.ordered(session, guild.id)]
    data["channels"] = channels.visible(session, access)
    data["emojis"] = expressions.list_emojis_of(session, guild.id)
    data["stickers"] = expressions.list_stickers_of(session, guild.id)
    data["joined_at"] = serializers.iso(access.member.joined_at)
    data["member_count"] = guild.member_count
    return data


def create(rt, session, identity: Identity, body: dict) -> dict:
    owner = me(session, identity)
    if owner.bot:
        raise APIError(403, "BOTS_CANNOT_CREATE_GUILDS", "Bots cannot create guilds")
    guild_id = rt.new_id()
    guild = Guild(id=guild_id, name=body["name"].strip() or "Guild", owner_id=owner.id, member_count=0,
                  features=[], system_channel_flags=0, afk_timeout=300, default_message_notifications=0,
                  verification_level=0, mfa_level=0, nsfw_level=0, nsfw=False, explicit_content_filter=0,
                  content_warning_level=0, splash_card_alignment=0, disabled_operations=0)
    session.add(guild)
    session.flush()  # no ORM relationships, so the guild row must exist before its children
    session.add(Role(id=guild_id, guild_id=guild_id, name="@everyone", position=0, permissions=DEFAULT_EVERYONE,
                     color=0, hoist=False, mentionable=False))
    text_category = Channel(id=rt.new_id(), guild_id=guild_id, type=channels.CATEGORY, name="Text Channels", position=0)
    voice_category = Channel(id=rt.new_id(), guild_id=guild_id, type=channels.CATEGORY, name="Voice Channels", position=1)
    general = Channel(id=rt.new_id(), guild_id=guild_id, type=channels.TEXT, name="general", position=0,
                      parent_id=text_category.id)
    voice = Channel(id=rt.new_id(), guild_id=guild_id, type=channels.VOICE, name="General", position=0,
                    parent_id=voice_category.id, bitrate=channels.DEFAULT_BITRATE, user_limit=0)
    session.add_all([text_category, voice_category, general, voice])
    guild.system_channel_id = general.id
    session.flush()
    members.add(rt, session, guild, owner)
    if body.get("icon"):  # stored once the guild is sure to be made (MAX_GUILDS is checked above)
        guild.icon = images.store_guild_image(rt.storage, guild_id, "icon", body["icon"])
        session.flush()
    session.refresh(guild)
    access = guild_access(session, identity, guild_id)
    state = full_state(session, access)
    events.publish(session, "GUILD_CREATE", state, user_ids=[owner.id])
    session.commit()
    return state


def get(session, identity: Identity, guild_id: str) -> dict:
    access = guild_access(session, identity, guild_id)
    return full_state(session, access)


def list_mine(session, identity: Identity, *, before: str | None, after: str | None, limit: int,
              presence_store=None) -> list[dict]:
    """The caller's guilds; with ``presence_store`` (``with_counts``) each counts its members online."""
    query = select(Guild).join(Member, Member.guild_id == Guild.id).where(Member.user_id == identity.user_id)
    before, after = cursor(before), cursor(after)
    if before is not None:
        query = query.where(Guild.id < before)
    if after is not None:
        query = query.where(Guild.id > after)
    # Ascending ids; with only ``before`` the page nearest to it is wanted, so fetch backwards then flip.
    backwards = before is not None and after is None
    rows = list(session.scalars(query.order_by(Guild.id.desc() if backwards else Guild.id).limit(limit)))
    rows.sort(key=lambda g: g.id)
    result = []
    for guild in rows:
        access = guild_access(session, identity, guild.id)
        data = dump(guild, permissions=access.permissions)
        if presence_store is not None:
            data["approximate_presence_count"] = presence.online_members(session, presence_store, guild.id)
        result.append(data)
    return result


def _channel_setting(session, guild: Guild, key: str, value) -> int | None:
    if value is None:
        return None
    channel = session.get(Channel, parse_snowflake(value, "channel", "UNKNOWN_CHANNEL"))
    if channel is None or channel.guild_id != guild.id or channel.type not in CHANNEL_SETTINGS[key]:
        raise field_error(key, "UNKNOWN_CHANNEL", "Not a suitable channel of this guild")
    return channel.id


def update(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_GUILD)
    guild = access.guild
    before = dump(guild)
    if "mfa_level" in body and body["mfa_level"] != guild.mfa_level:
        if not access.is_owner:
            raise APIError(403, "MISSING_PERMISSIONS", "Only the owner changes the guild's MFA requirement")
        accounts.verify_sudo(rt, session, me(session, identity), body)
        guild.mfa_level = body["mfa_level"]
    for key in SETTINGS:
        if key in body:
            value = body[key]
            if key == "name":
                value = value.strip() or guild.name
            setattr(guild, key, value)
    for key in CHANNEL_SETTINGS:
        if key in body:
            setattr(guild, key, _channel_setting(session, guild, key, body[key]))
    replaced = []
    for kind in images.GUILD_IMAGE_LIMITS:  # icon, banner, splash: an image replaces, null removes
        if kind in body:
            old, value = getattr(guild, kind), body[kind]
            setattr(guild, kind, images.store_guild_image(rt.storage, guild.id, kind, value) if value else None)
            if old and old != getattr(guild, kind):
                replaced.append(images.guild_image_key(guild.id, kind, old))
    if "features" in body:
        requested = set(body["features"]) & TOGGLEABLE_FEATURES
        guild.features = sorted((set(guild.features) - TOGGLEABLE_FEATURES) | requested)
    after = dump(guild)
    changes = audit.diff(before, after)
    if changes:
        audit.record(rt, session, guild.id, access.user_id, Action.GUILD_UPDATE, guild.id, reason=reason,
                     changes=changes)
        events.publish(session, "GUILD_UPDATE", after, guild_id=guild.id)
    storage.delete_after_commit(session, *replaced)  # the old files, once nothing points at them
    session.commit()
    return dump(guild, permissions=access.permissions)


def delete(rt, session, identity: Identity, guild_id: str, body: dict) -> None:
    access = guild_access(session, identity, guild_id)
    if not access.is_owner:
        raise APIError(403, "MISSING_PERMISSIONS", "Only the owner can delete the guild")
    accounts.verify_sudo(rt, session, me(session, identity), body)
    guild = access.guild
    member_ids = list(session.scalars(select(Member.user_id).where(Member.guild_id == guild.id)))
    storage.delete_after_commit(
        session, *expressions.storage_keys_of(session, guild.id),
        *attachments.storage_keys_of(session, Message.guild_id == guild.id),
        *(images.guild_image_key(guild.id, kind, getattr(guild, kind))
          for kind in images.GUILD_IMAGE_LIMITS if getattr(guild, kind)))
    events.publish(session, "GUILD_DELETE", {"id": str(guild.id)}, guild_id=guild.id, user_ids=member_ids)
    session.delete(guild)
    session.commit()


def transfer_ownership(rt, session, identity: Identity, guild_id: str, body: dict) -> dict:
    access = guild_access(session, identity, guild_id)
    if not access.is_owner:
        raise APIError(403, "MISSING_PERMISSIONS", "Only the owner can transfer the guild")
    accounts.verify_sudo(rt, session, me(session, identity), body)
    new_owner_id = parse_snowflake(body["new_owner_id"], "member", "UNKNOWN_MEMBER")
    new_owner = session.get(User, new_owner_id)
    if new_owner is None or session.get(Member, (access.guild.id, new_owner_id)) is None:
        raise not_found("UNKNOWN_MEMBER", "member")
    if new_owner.bot:
        raise APIError(400, "CANNOT_TRANSFER_OWNERSHIP_TO_BOT", "A bot cannot own a guild")
    guild = access.guild
    if new_owner_id != guild.owner_id:
        audit.record(rt, session, guild.id, access.user_id, Action.GUILD_UPDATE, guild.id,
                     changes=[{"key": "owner_id", "old_value": str(guild.owner_id), "new_value": str(new_owner_id)}])
        guild.owner_id = new_owner_id
        events.publish(session, "GUILD_UPDATE", dump(guild), guild_id=guild.id)
    session.commit()
    return dump(guild, permissions=guild_access(session, identity, guild.id).permissions)


def vanity_uses(session, guild: Guild) -> int:
    if guild.vanity_url_code is None:
        return 0
    return session.scalar(select(func.count()).select_from(Member).where(
        Member.guild_id == guild.id, Member.join_invite_code == guild.vanity_url_code))


def get_vanity(session, identity: Identity, guild_id: str) -> dict:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_GUILD)
    return {"code": access.guild.vanity_url_code, "uses": vanity_uses(session, access.guild)}


def update_vanity(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_GUILD)
    guild = access.guild
    code = body.get("code")
    if code is not None:
        code = code.strip().lower()
        if not VANITY_CODE.match(code):
            raise field_error("code", "INVALID_VANITY_URL_CODE", "2-32 lowercase letters, digits or dashes")
        if session.get(Invite, code) is not None:
            raise field_error("code", "ALREADY_TAKEN", "That code is already in use")
    old = guild.vanity_url_code
    if code != old:
        guild.vanity_url_code = code
        audit.record(rt, session, guild.id, access.user_id, Action.GUILD_UPDATE, guild.id, reason=reason,
                     changes=[{"key": "vanity_url_code", "old_value": old, "new_value": code}])
        events.publish(session, "GUILD_UPDATE", dump(guild), guild_id=guild.id)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise field_error("code", "ALREADY_TAKEN", "That code is already in use") from None
    return {"code": guild.vanity_url_code}

