"""Guild members: joining and leaving, nicknames, roles, voice flags, timeouts, kicks, search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, or_, select, update

from service import audit, events, roles, serializers
from service.access import GuildAccess, guild_access, load_member_access
from service.audit import Action
from service.auth import Identity
from service.db import escape_like, lock_row
from service.errors import APIError, field_error, limit_reached, not_found
from service.models import Ban, Guild, Invite, Member, MemberRole, Role, User, utcnow
from service.permissions import Permission
from service.snowflake import snowflake_from_time
from service.users import MAX_SNOWFLAKE, cursor, parse_snowflake

MAX_GUILDS = 100
MAX_TIMEOUT = timedelta(days=28)
MAX_LIST_LIMIT = 1000


def role_ids_of(session, guild_id: int, user_ids: list[int]) -> dict[int, list[int]]:
    """Each member's role ids, in one query."""
    found: dict[int, list[int]] = {uid: [] for uid in user_ids}
    if user_ids:
        rows = session.execute(select(MemberRole.user_id, MemberRole.role_id)
                               .where(MemberRole.guild_id == guild_id, MemberRole.user_id.in_(user_ids)))
        for user_id, role_id in rows:
            found[user_id].append(role_id)
    return found


def dump(session, member: Member, user: User | None = None, role_ids: list[int] | None = None) -> dict:
    user = user or session.get(User, member.user_id)
    if role_ids is None:
        role_ids = role_ids_of(session, member.guild_id, [member.user_id])[member.user_id]
    return serializers.serialize_member(member, user, role_ids)


def _event_payload(data: dict, guild_id: int) -> dict:
    return {**data, "guild_id": str(guild_id)}


def ban_in_force(now):
    """SQL condition: a ban that still keeps its user out (a temporary one may have run out)."""
    return or_(Ban.expires_at.is_(None), Ban.expires_at > now)


def active_ban(session, guild_id: int, user_id: int) -> Ban | None:
    return session.scalar(select(Ban).where(Ban.guild_id == guild_id, Ban.user_id == user_id,
                                            ban_in_force(utcnow())))


def add(rt, session, guild: Guild, user: User, *, invite_code: str | None = None,
        temporary: bool = False) -> Member | None:
    """Make ``user`` a member of ``guild``; None when they already are. Banned users are refused."""
    if session.get(Member, (guild.id, user.id)) is not None:
        return None
    if active_ban(session, guild.id, user.id) is not None:
        raise APIError(403, "USER_BANNED_FROM_GUILD", "You are banned from this guild")
    lock_row(session, User, user.id)
    joined = session.scalar(select(func.count()).select_from(Member).where(Member.user_id == user.id))
    if joined >= MAX_GUILDS:
        raise limit_reached("MAX_GUILDS", "guilds", MAX_GUILDS)
    member = Member(guild_id=guild.id, user_id=user.id, joined_at=utcnow(), join_invite_code=invite_code,
                    temporary=temporary, mute=False, deaf=False)
    session.add(member)
    session.execute(update(Guild).where(Guild.id == guild.id).values(member_count=Guild.member_count + 1))
    session.flush()
    data = dump(session, member, user, [])
    events.publish(session, "GUILD_MEMBER_ADD", _event_payload(data, guild.id), guild_id=guild.id)
    return member


def remove(rt, session, guild: Guild, user_id: int, actor_id: int | None = None) -> bool:
    """End a membership (leave, kick, ban, a deleted bot); False when there was none."""
    gone = session.execute(delete(Member).where(Member.guild_id == guild.id, Member.user_id == user_id))
    if gone.rowcount == 0:
        return False
    session.execute(delete(MemberRole).where(MemberRole.guild_id == guild.id, MemberRole.user_id == user_id))
    session.execute(update(Guild).where(Guild.id == guild.id).values(member_count=Guild.member_count - 1))
    # A bot's managed role (made when it was added through OAuth2) exists only for that bot: it
    # leaves with it. Only bots own such roles, so people never match here.
    for role in session.scalars(select(Role).where(Role.guild_id == guild.id, Role.bot_user_id == user_id)).all():
        roles.remove_role(rt, session, role, actor_id)
    events.publish(session, "GUILD_MEMBER_REMOVE", {"guild_id": str(guild.id), "user": {"id": str(user_id)}},
                   guild_id=guild.id)
    events.publish(session, "GUILD_DELETE", {"id": str(guild.id)}, user_ids=[user_id])
    return True


def _target(session, access: GuildAccess, user_id: str) -> tuple[Member, User]:
    uid = access.user_id if user_id == "@me" else parse_snowflake(user_id, "member", "UNKNOWN_MEMBER")
    member = session.get(Member, (access.guild.id, uid))
    if member is None:
        raise not_found("UNKNOWN_MEMBER", "member")
    return member, session.get(User, uid)


def require_outranks(session, access: GuildAccess, target: Member) -> None:
    """Moderating someone needs a higher top role than theirs; nobody moderates the owner."""
    if target.user_id == access.guild.owner_id:
        raise APIError(403, "MISSING_PERMISSIONS", "The guild owner cannot be moderated")
    if access.is_owner:
        return
    target_access = load_member_access(session, access.guild, target)
    if target_access.highest_position() >= access.highest_position():
        raise APIError(403, "MISSING_PERMISSIONS", "That member's highest role is at or above yours")


def list_members(session, identity: Identity, guild_id: str, limit: int, after: str | None) -> list[dict]:
    access = guild_access(session, identity, guild_id)
    query = select(Member, User).join(User, User.id == Member.user_id).where(Member.guild_id == access.guild.id)
    if after is not None:
        query = query.where(Member.user_id > cursor(after))
    rows = session.execute(query.order_by(Member.user_id).limit(min(limit, MAX_LIST_LIMIT))).all()
    roles = role_ids_of(session, access.guild.id, [m.user_id for m, _ in rows])
    return [dump(session, m, u, roles[m.user_id]) for m, u in rows]


def get(session, identity: Identity, guild_id: str, user_id: str) -> dict:
    access = guild_access(session, identity, guild_id)
    member, user = _target(session, access, user_id)
    return dump(session, member, user)


def _parse_timeout(value: str | None):
    if value is None:
        return None
    until = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if until.tzinfo is None:
        raise field_error("communication_disabled_until", "INVALID_TIMESTAMP", "The time needs a UTC offset")
    now = utcnow()
    if until <= now:
        return None  # a time in the past lifts the timeout
    if until > now + MAX_TIMEOUT:
        raise field_error("communication_disabled_until", "INVALID_TIMESTAMP", "A timeout lasts at most 28 days")
    return until


def _set_roles(session, access: GuildAccess, member: Member, wanted: set[int]) -> tuple[set[int], set[int]]:
    """Replace the member's roles, touching only roles below the caller's own."""
    current = set(role_ids_of(session, access.guild.id, [member.user_id])[member.user_id])
    added, removed = wanted - current, current - wanted
    for role_id in added | removed:
        role = access.roles.get(role_id)
        if role is None or role_id == access.guild.id:
            raise field_error("roles", "UNKNOWN_ROLE", f"Unknown role {role_id}")
        if role.bot_user_id is not None:
            raise APIError(403, "MISSING_PERMISSIONS", "A bot's managed role cannot be assigned or removed")
        access.require_role_below(role)
    for role_id in added:
        session.execute(insert(MemberRole).values(guild_id=access.guild.id, user_id=member.user_id, role_id=role_id))
    if removed:
        session.execute(delete(MemberRole).where(MemberRole.guild_id == access.guild.id,
                                                 MemberRole.user_id == member.user_id,
                                                 MemberRole.role_id.in_(removed)))
    return added, removed


def update_member(rt, session, identity: Identity, guild_id: str, user_id: str, body: dict,
                  reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    member, user = _target(session, access, user_id)
    is_self = member.user_id == access.user_id
    before = dump(session, member, user)
    if "nick" in body:
        if is_self:
            if not (access.has(Permission.CHANGE_NICKNAME) or access.has(Permission.MANAGE_NICKNAMES)):
                raise APIError(403, "MISSING_PERMISSIONS", "Missing permissions", permissions=["CHANGE_NICKNAME"])
        else:
            access.require(Permission.MANAGE_NICKNAMES)
            require_outranks(session, access, member)
        member.nick = (body["nick"] or "").strip() or None
    for flag in ("mute", "deaf"):
        if flag in body:
            access.require(Permission.MUTE_MEMBERS if flag == "mute" else Permission.DEAFEN_MEMBERS)
            setattr(member, flag, body[flag])
    if "communication_disabled_until" in body:
        access.require(Permission.MODERATE_MEMBERS)
        if is_self:
            raise APIError(403, "MISSING_PERMISSIONS", "You cannot time yourself out")
        require_outranks(session, access, member)
        target_access = load_member_access(session, access.guild, member)
        if target_access.is_admin:
            raise APIError(403, "MISSING_PERMISSIONS", "Administrators cannot be timed out")
        member.communication_disabled_until = _parse_timeout(body["communication_disabled_until"])
    role_change = None
    if body.get("roles") is not None:
        access.require(Permission.MANAGE_ROLES)
        wanted = {parse_snowflake(r, "role", "UNKNOWN_ROLE") for r in body["roles"]}
        role_change = _set_roles(session, access, member, wanted)
    after = dump(session, member, user)
    changes = audit.diff({k: v for k, v in before.items() if k not in ("roles", "user")},
                         {k: v for k, v in after.items() if k not in ("roles", "user")})
    if changes:
        audit.record(rt, session, access.guild.id, access.user_id, Action.MEMBER_UPDATE, member.user_id,
                     reason=reason, changes=changes)
    if role_change and (role_change[0] or role_change[1]):
        audit.record(rt, session, access.guild.id, access.user_id, Action.MEMBER_ROLE_UPDATE, member.user_id,
                     reason=reason, changes=_role_changes(access, *role_change))
    if changes or (role_change and any(role_change)):
        events.publish(session, "GUILD_MEMBER_UPDATE", _event_payload(after, access.guild.id),
                       guild_id=access.guild.id)
    session.commit()
    return after


def _role_changes(access: GuildAccess, added: set[int], removed: set[int]) -> list[dict]:
    def named(ids):
        return [{"id": str(r), "name": access.roles[r].name} for r in sorted(ids)]

    changes = []
    if added:
        changes.append({"key": "$add", "new_value": named(added)})
    if removed:
        changes.append({"key": "$remove", "new_value": named(removed)})
    return changes


def change_role(rt, session, identity: Identity, guild_id: str, user_id: str, role_id: str, *, add_role: bool,
                reason: str | None) -> None:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_ROLES)
    member, user = _target(session, access, user_id)
    rid = parse_snowflake(role_id, "role", "UNKNOWN_ROLE")
    if rid not in access.roles or rid == access.guild.id:
        raise not_found("UNKNOWN_ROLE", "role")
    current = set(role_ids_of(session, access.guild.id, [member.user_id])[member.user_id])
    wanted = current | {rid} if add_role else current - {rid}
    added, removed = _set_roles(session, access, member, wanted)
    if added or removed:
        audit.record(rt, session, access.guild.id, access.user_id, Action.MEMBER_ROLE_UPDATE, member.user_id,
                     reason=reason, changes=_role_changes(access, added, removed))
        events.publish(session, "GUILD_MEMBER_UPDATE", _event_payload(dump(session, member, user), access.guild.id),
                       guild_id=access.guild.id)
    session.commit()


def kick(rt, session, identity: Identity, guild_id: str, user_id: str, reason: str | None) -> None:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.KICK_MEMBERS)
    member, _user = _target(session, access, user_id)
    if member.user_id == access.user_id:
        raise APIError(403, "MISSING_PERMISSIONS", "Leave the guild instead of kicking yourself")
    require_outranks(session, access, member)
    remove(rt, session, access.guild, member.user_id, access.user_id)
    audit.record(rt, session, access.guild.id, access.user_id, Action.MEMBER_KICK, member.user_id, reason=reason)
    session.commit()


def leave(rt, session, identity: Identity, guild_id: str) -> None:
    access = guild_access(session, identity, guild_id)
    if access.is_owner:
        raise APIError(400, "OWNER_CANNOT_LEAVE_GUILD", "Transfer ownership or delete the guild instead")
    remove(rt, session, access.guild, access.user_id)
    session.commit()


def search(session, identity: Identity, guild_id: str, body: dict) -> dict:
    access = guild_access(session, identity, guild_id)
    query = select(Member, User).join(User, User.id == Member.user_id).where(Member.guild_id == access.guild.id)
    text = (body.get("query") or "").strip().lower()
    if text:
        pattern = f"%{escape_like(text)}%"
        query = query.where(or_(User.username_key.like(pattern, escape="\\"),
                                func.lower(User.global_name).like(pattern, escape="\\"),
                                func.lower(Member.nick).like(pattern, escape="\\")))
    for role_id in dict.fromkeys(parse_snowflake(r, "role", "UNKNOWN_ROLE") for r in body.get("role_ids") or []):
        # Every listed role, not any of them.
        query = query.where(Member.user_id.in_(select(MemberRole.user_id).where(
            MemberRole.guild_id == access.guild.id, MemberRole.role_id == role_id)))
    if "is_bot" in body:
        query = query.where(User.bot.is_(bool(body["is_bot"])))
    for key, column, op in (("joined_at_gte", Member.joined_at, "ge"), ("joined_at_lte", Member.joined_at, "le")):
        if key in body:
            moment = datetime.fromtimestamp(body[key] / 1000, tz=UTC)
            query = query.where(column >= moment if op == "ge" else column <= moment)
    for key, op in (("user_created_at_gte", "ge"), ("user_created_at_lte", "le")):
        if key in body:
            # Ids only go up to 2**63-1 (about the year 2084); a later bound must not overflow the column.
            bound = min(snowflake_from_time(datetime.fromtimestamp(body[key] / 1000, tz=UTC)), MAX_SNOWFLAKE)
            query = query.where(User.id >= bound if op == "ge" else User.id <= bound)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    descending = body.get("sort_order", "desc") == "desc"
    order = (Member.joined_at.desc(), Member.user_id.desc()) if descending else (Member.joined_at, Member.user_id)
    limit, offset = body.get("limit", 25), body.get("offset", 0)
    rows = session.execute(query.order_by(*order).offset(offset).limit(limit)).all()
    roles = role_ids_of(session, access.guild.id, [m.user_id for m, _ in rows])
    codes = {m.join_invite_code for m, _ in rows if m.join_invite_code}
    inviters = dict(session.execute(select(Invite.code, Invite.inviter_id).where(Invite.code.in_(codes)))) \
        if codes else {}
    results = [{
        "id": f"{access.guild.id}:{u.id}", "guild_id": str(access.guild.id), "user_id": str(u.id),
        "username": u.username, "discriminator": f"{u.discriminator:04d}", "global_name": u.global_name,
        "nickname": m.nick, "role_ids": [str(r) for r in sorted(roles[m.user_id])],
        "joined_at": int(m.joined_at.timestamp()), "is_bot": u.bot,
        "supplemental": {"source_invite_code": m.join_invite_code,
                         "inviter_id": serializers.iso_id(inviters.get(m.join_invite_code))},
    } for m, u in rows]
    return {"guild_id": str(access.guild.id), "members": results, "page_result_count": len(results),
            "total_result_count": total, "indexing": False}



