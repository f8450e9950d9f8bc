"""Invites: links that let people join a guild, with an expiry and a use limit.

Taking a use is one conditional UPDATE (``uses = uses + 1`` only while the invite is still
live), so of two people racing for the last use exactly one gets it, on SQLite and on
PostgreSQL alike. A guild's vanity code is accepted wherever an invite code is; it never
expires and has no use limit. ``presence_count`` counts the members online on the gateway when
an invite is looked up by code; lists and newly made invites carry 0 rather than pay for the count.
"""

from __future__ import annotations

import secrets
import string
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from service import audit, events, guilds, members, presence, serializers
from service.access import GuildAccess, channel_access, guild_access, load_member_access
from service.audit import Action
from service.auth import Identity
from service.channels import TEXT, VOICE
from service.db import lock_row
from service.errors import APIError, limit_reached, not_found
from service.models import Channel, Guild, Invite, Member, User, utcnow
from service.permissions import Permission
from service.users import me

MAX_INVITES = 1000  # live invites per guild
CODE_LENGTH = 10
CODE_ALPHABET = string.ascii_letters + string.digits  # 62**10 codes: not guessable
DEFAULT_MAX_AGE = 86400
INVITE_CHANNEL_TYPES = (TEXT, VOICE)
INVITES_DISABLED = "INVITES_DISABLED"
GUILD_INVITE = 0


def _live(now):
    """SQL condition: the invite has neither expired nor run out of uses."""
    return ((Invite.max_uses == 0) | (Invite.uses < Invite.max_uses)) & \
        (Invite.expires_at.is_(None) | (Invite.expires_at > now))


def is_live(invite: Invite, now=None) -> bool:
    now = now or utcnow()
    return (invite.max_uses == 0 or invite.uses < invite.max_uses) and \
        (invite.expires_at is None or invite.expires_at > now)


def _new_code(session) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        # A vanity code is lower-case; an all-lower-case random code could meet one.
        if session.get(Invite, code) is None and session.scalar(
                select(Guild.id).where(Guild.vanity_url_code == code.lower())) is None:
            return code


def _guild_partial(guild: Guild) -> dict:
    data = serializers.guild.dump(guild)
    keys = ("id", "name", "icon", "banner", "banner_width", "banner_height", "splash", "splash_width",
            "splash_height", "splash_card_alignment", "embed_splash", "embed_splash_width", "embed_splash_height",
            "features")
    return {key: data[key] for key in keys}


def _channel_partial(channel: Channel) -> dict:
    return {"id": str(channel.id), "name": channel.name, "type": channel.type}


def dump(session, invite: Invite, *, guild: Guild | None = None, channel: Channel | None = None,
         metadata: bool = False) -> dict:
    guild = guild or session.get(Guild, invite.guild_id)
    channel = channel or session.get(Channel, invite.channel_id)
    inviter = session.get(User, invite.inviter_id) if invite.inviter_id is not None else None
    data = {
        "code": invite.code,
        "type": GUILD_INVITE,
        "guild": _guild_partial(guild),
        "channel": _channel_partial(channel),
        "inviter": serializers.user_public.dump(inviter) if inviter is not None else None,
        "member_count": guild.member_count,
        "presence_count": 0,  # counted only where one invite is looked up (``get``)
        "expires_at": serializers.iso(invite.expires_at),
        "temporary": invite.temporary,
    }
    if metadata:
        data.update({
            "created_at": serializers.iso(invite.created_at),
            "uses": invite.uses,
            "max_uses": invite.max_uses,
            "max_age": invite.max_age,
        })
    return data


def _vanity_channel(session, guild: Guild) -> Channel | None:
    """Where a vanity code leads: the system channel, else the first text or voice channel."""
    if guild.system_channel_id is not None:
        channel = session.get(Channel, guild.system_channel_id)
        if channel is not None:
            return channel
    return session.scalar(select(Channel).where(Channel.guild_id == guild.id, Channel.type.in_(INVITE_CHANNEL_TYPES))
                          .order_by(Channel.type, Channel.position, Channel.id).limit(1))


def _dump_vanity(session, guild: Guild, channel: Channel) -> dict:
    return {
        "code": guild.vanity_url_code, "type": GUILD_INVITE, "guild": _guild_partial(guild),
        "channel": _channel_partial(channel), "inviter": None, "member_count": guild.member_count,
        "presence_count": 0, "expires_at": None, "temporary": False,
    }


def _resolve(session, code: str) -> tuple[Invite | None, Guild, Channel]:
    """The live invite (or vanity guild) behind ``code``; 404 ``UNKNOWN_INVITE`` otherwise."""
    invite = session.get(Invite, code)
    if invite is not None:
        if not is_live(invite):
            raise not_found("UNKNOWN_INVITE", "invite")
        return invite, session.get(Guild, invite.guild_id), session.get(Channel, invite.channel_id)
    guild = session.scalar(select(Guild).where(Guild.vanity_url_code == code.lower()))
    if guild is not None:
        channel = _vanity_channel(session, guild)
        if channel is not None:
            return None, guild, channel
    raise not_found("UNKNOWN_INVITE", "invite")


# --- Reading -------------------------------------------------------------------------------


def get(session, presence_store, code: str) -> dict:
    invite, guild, channel = _resolve(session, code)
    data = _dump_vanity(session, guild, channel) if invite is None else dump(session, invite, guild=guild, channel=channel)
    data["presence_count"] = presence.online_members(session, presence_store, guild.id)
    return data


def _listed(session, query) -> list[dict]:
    rows = session.scalars(query.where(_live(utcnow())).order_by(Invite.created_at, Invite.code))
    return [dump(session, invite, metadata=True) for invite in rows]


def list_for_channel(session, identity: Identity, channel_id: str) -> list[dict]:
    access = channel_access(session, identity, channel_id)
    access.require(Permission.MANAGE_CHANNELS)
    return _listed(session, select(Invite).where(Invite.channel_id == access.channel.id))


def list_for_guild(session, identity: Identity, guild_id: str) -> list[dict]:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_GUILD)
    return _listed(session, select(Invite).where(Invite.guild_id == access.guild.id))


# --- Creating and deleting -----------------------------------------------------------------


def _publish_create(session, data: dict, invite: Invite) -> None:
    events.publish(session, "INVITE_CREATE", data, guild_id=invite.guild_id, channel_id=invite.channel_id)


def create(rt, session, identity: Identity, channel_id: str, body: dict | None, reason: str | None) -> dict:
    body = body or {}
    access = channel_access(session, identity, channel_id)
    access.require(Permission.CREATE_INSTANT_INVITE)
    guild, channel = access.guild.guild, access.channel
    if channel.type not in INVITE_CHANNEL_TYPES:
        raise APIError(400, "INVALID_CHANNEL_TYPE", "Invites lead to text or voice channels")
    if INVITES_DISABLED in (guild.features or []) and not access.guild.has(Permission.MANAGE_GUILD):
        raise APIError(403, INVITES_DISABLED, "Invites are disabled in this guild")
    max_age = DEFAULT_MAX_AGE if body.get("max_age") is None else body["max_age"]
    max_uses = body.get("max_uses") or 0
    temporary = bool(body.get("temporary"))
    now = utcnow()
    if not body.get("unique"):
        existing = session.scalar(select(Invite).where(
            Invite.channel_id == channel.id, Invite.inviter_id == access.guild.user_id, Invite.max_age == max_age,
            Invite.max_uses == max_uses, Invite.temporary.is_(temporary), _live(now),
        ).order_by(Invite.created_at.desc()).limit(1))
        if existing is not None:
            return dump(session, existing, guild=guild, channel=channel, metadata=True)
    lock_row(session, Guild, guild.id)
    live = session.scalar(select(func.count()).select_from(Invite).where(Invite.guild_id == guild.id, _live(now)))
    if live >= MAX_INVITES:
        raise limit_reached("MAX_INVITES", "invites", MAX_INVITES)
    invite = Invite(code=_new_code(session), guild_id=guild.id, channel_id=channel.id,
                    inviter_id=access.guild.user_id, max_age=max_age, max_uses=max_uses, uses=0,
                    temporary=temporary, created_at=now,
                    expires_at=now + timedelta(seconds=max_age) if max_age else None)
    session.add(invite)
    session.flush()
    data = dump(session, invite, guild=guild, channel=channel, metadata=True)
    audit.record(rt, session, guild.id, access.guild.user_id, Action.INVITE_CREATE, None, reason=reason,
                 changes=audit.diff({}, _audit_view(invite)))
    _publish_create(session, data, invite)
    session.commit()
    return data


def _audit_view(invite: Invite) -> dict:
    return {"code": invite.code, "channel_id": str(invite.channel_id),
            "inviter_id": str(invite.inviter_id) if invite.inviter_id is not None else None,
            "max_age": invite.max_age, "max_uses": invite.max_uses, "temporary": invite.temporary,
            "uses": invite.uses}


def _may_delete(session, access: GuildAccess, invite: Invite) -> bool:
    if invite.inviter_id == access.user_id or access.has(Permission.MANAGE_GUILD):
        return True
    channel = session.get(Channel, invite.channel_id)
    return bool(access.channel_permissions(session, channel) & Permission.MANAGE_CHANNELS)


def delete(rt, session, identity: Identity, code: str, reason: str | None) -> None:
    invite = session.get(Invite, code)
    if invite is None:
        raise not_found("UNKNOWN_INVITE", "invite")
    # Outside the guild the invite is as invisible as the guild itself.
    member = session.get(Member, (invite.guild_id, identity.user_id))
    if member is None:
        raise not_found("UNKNOWN_INVITE", "invite")
    access = load_member_access(session, session.get(Guild, invite.guild_id), member)
    if not _may_delete(session, access, invite):
        raise APIError(403, "MISSING_PERMISSIONS", "Missing permissions",
                       permissions=["MANAGE_CHANNELS"])
    audit.record(rt, session, invite.guild_id, access.user_id, Action.INVITE_DELETE, None, reason=reason,
                 changes=audit.diff(_audit_view(invite), {}))
    events.publish(session, "INVITE_DELETE",
                   {"code": invite.code, "channel_id": str(invite.channel_id), "guild_id": str(invite.guild_id)},
                   guild_id=invite.guild_id, channel_id=invite.channel_id)
    session.delete(invite)
    session.commit()


# --- Joining -------------------------------------------------------------------------------


def _take_use(session, code: str) -> bool:
    """Spend one use if the invite is still live; False when someone else took the last one."""
    taken = session.execute(
        update(Invite).where(Invite.code == code, _live(utcnow()))
        .values(uses=Invite.uses + 1).execution_options(synchronize_session=False))
    return taken.rowcount == 1


def accept(rt, session, identity: Identity, code: str) -> dict:
    user = me(session, identity)
    if user.bot:
        raise APIError(403, "BOTS_CANNOT_ACCEPT_INVITES", "Bots join guilds through OAuth2 authorization")
    invite, guild, channel = _resolve(session, code)
    if session.get(Member, (guild.id, user.id)) is not None:  # already in: no use spent
        return get(session, rt.presence, code)
    if members.active_ban(session, guild.id, user.id) is not None:
        raise APIError(403, "USER_BANNED_FROM_GUILD", "You are banned from this guild")
    if INVITES_DISABLED in (guild.features or []):
        raise APIError(403, INVITES_DISABLED, "Invites are disabled in this guild")
    # Spend the use before anything else is written: on SQLite this statement takes the write
    # lock, on PostgreSQL the row lock; the loser of a race re-checks against the winner's count.
    if invite is not None and not _take_use(session, invite.code):
        session.rollback()
        raise not_found("UNKNOWN_INVITE", "invite")
    try:
        member = members.add(rt, session, guild, user, invite_code=invite.code if invite else guild.vanity_url_code,
                             temporary=invite.temporary if invite else False)
        if member is None:  # joined by another request a moment ago: give the use back
            session.rollback()
            return get(session, rt.presence, code)
        session.flush()
    except IntegrityError:  # the same person's concurrent accept inserted the membership first
        session.rollback()
        return get(session, rt.presence, code)
    except APIError:
        session.rollback()
        raise
    session.refresh(guild)
    access = load_member_access(session, guild, member)
    events.publish(session, "GUILD_CREATE", guilds.full_state(session, access), user_ids=[user.id])
    session.commit()
    if invite is not None:
        session.refresh(invite)
        return dump(session, invite, guild=guild, channel=channel)
    return _dump_vanity(session, guild, channel)
