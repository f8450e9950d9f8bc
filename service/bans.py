"""Guild bans: keep someone out of a guild, for good or for a while.

A ban removes the membership and is checked by every way in (``members.add``), so a banned
user cannot come back through any invite, the vanity code included. A temporary ban that
has run out no longer counts anywhere: it is left out of the list and does not block.
``delete_message_seconds`` (or the older ``delete_message_days``) also deletes what the user
wrote anywhere in the guild within that window, up to 7 days. That happens once the ban has
committed, in batches (``message_bulk.delete_recent_in_guild``): the ban is in force at once
and is never rolled back by the clean-up.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service import audit, events, members, message_bulk, serializers
from service.access import guild_access
from service.audit import Action
from service.auth import Identity
from service.errors import APIError, not_found
from service.models import Ban, Member, User, utcnow
from service.permissions import Permission
from service.users import cursor, parse_snowflake

MAX_LIST_LIMIT = 1000
SECONDS_PER_DAY = 86_400


def list_bans(session, identity: Identity, guild_id: str, *, limit: int, before: str | None,
              after: str | None) -> list[dict]:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.BAN_MEMBERS)
    query = (select(Ban, User).join(User, User.id == Ban.user_id)
             .where(Ban.guild_id == access.guild.id, members.ban_in_force(utcnow())))
    if before is not None:
        query = query.where(Ban.user_id < cursor(before))
    if after is not None:
        query = query.where(Ban.user_id > cursor(after))
    # Ascending user ids; with only ``before`` the page nearest to it is wanted, so fetch backwards then flip.
    backwards = before is not None and after is None
    query = query.order_by(Ban.user_id.desc() if backwards else Ban.user_id).limit(min(limit, MAX_LIST_LIMIT))
    rows = sorted(session.execute(query).all(), key=lambda row: row[0].user_id)
    return [serializers.serialize_ban(ban, user) for ban, user in rows]


def _event_payload(guild_id: int, user: User) -> dict:
    return {"guild_id": str(guild_id), "user": serializers.user_public.dump(user)}


def ban(rt, session, identity: Identity, guild_id: str, user_id: str, body: dict | None,
        header_reason: str | None) -> None:
    body = body or {}
    access = guild_access(session, identity, guild_id)
    access.require(Permission.BAN_MEMBERS)
    target = session.get(User, parse_snowflake(user_id, "user", "UNKNOWN_USER"))
    if target is None:
        raise not_found("UNKNOWN_USER", "user")
    if target.id == access.user_id:
        raise APIError(403, "MISSING_PERMISSIONS", "You cannot ban yourself")
    if target.id == access.guild.owner_id:
        raise APIError(403, "MISSING_PERMISSIONS", "The guild owner cannot be banned")
    member = session.get(Member, (access.guild.id, target.id))
    if member is not None:
        members.require_outranks(session, access, member)
    reason = body.get("reason") or header_reason
    duration = body.get("ban_duration_seconds") or 0
    now = utcnow()
    expires_at = now + timedelta(seconds=duration) if duration else None
    existing = session.get(Ban, (access.guild.id, target.id))
    was_active = members.active_ban(session, access.guild.id, target.id) is not None
    if existing is None:
        session.add(Ban(guild_id=access.guild.id, user_id=target.id, reason=reason, moderator_id=access.user_id,
                        banned_at=now, expires_at=expires_at))
        try:
            session.flush()
        except IntegrityError:  # banned by someone else at this very moment: that ban stands
            session.rollback()
            return
    else:  # a new ban replaces the old one, whether it still ran or had run out
        existing.reason, existing.moderator_id = reason, access.user_id
        existing.banned_at, existing.expires_at = now, expires_at
    if member is not None:
        members.remove(rt, session, access.guild, target.id, access.user_id)
    options = {"ban_duration_seconds": str(duration)} if duration else None
    audit.record(rt, session, access.guild.id, access.user_id, Action.MEMBER_BAN_ADD, target.id, reason=reason,
                 options=options)
    if not was_active:
        events.publish(session, "GUILD_BAN_ADD", _event_payload(access.guild.id, target), guild_id=access.guild.id)
    session.commit()
    window = _message_deletion_seconds(body)
    if window:
        message_bulk.delete_recent_in_guild(session, access.guild.id, target.id, window)


def _message_deletion_seconds(body: dict) -> int:
    """How far back the banned user's messages go: seconds win over the older days field."""
    if body.get("delete_message_seconds") is not None:
        return body["delete_message_seconds"]
    return (body.get("delete_message_days") or 0) * SECONDS_PER_DAY


def unban(rt, session, identity: Identity, guild_id: str, user_id: str, reason: str | None) -> None:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.BAN_MEMBERS)
    ban_row = members.active_ban(session, access.guild.id, parse_snowflake(user_id, "ban", "UNKNOWN_BAN"))
    if ban_row is None:
        raise not_found("UNKNOWN_BAN", "ban")
    target = session.get(User, ban_row.user_id)
    session.delete(ban_row)
    audit.record(rt, session, access.guild.id, access.user_id, Action.MEMBER_BAN_REMOVE, ban_row.user_id,
                 reason=reason)
    events.publish(session, "GUILD_BAN_REMOVE", _event_payload(access.guild.id, target), guild_id=access.guild.id)
    session.commit()
