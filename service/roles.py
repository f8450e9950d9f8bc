"""Guild roles: create, change, reorder, delete, under the role hierarchy.

Positions count up from @everyone at 0; a higher position outranks a lower one. After any
reorder the other roles are renumbered 1..n, so no two roles share a position.
"""

from __future__ import annotations

from sqlalchemy import delete as delete_rows
from sqlalchemy import func, select, update

from service import audit, events, serializers
from service.access import GuildAccess, guild_access
from service.audit import Action
from service.auth import Identity
from service.db import lock_row
from service.errors import APIError, field_error, limit_reached, not_found
from service.models import Guild, PermissionOverwrite, Role
from service.permissions import ALL, ROLE_OVERWRITE, Permission
from service.users import parse_snowflake

MAX_GUILD_ROLES = 250
EDITABLE = ("color", "hoist", "mentionable", "unicode_emoji", "hoist_position")


def parse_permissions(value, field: str = "permissions") -> int:
    number = int(value)
    if number & ~ALL:
        raise field_error(field, "INVALID_PERMISSIONS_INTEGER", "Unknown permission bits")
    return number


def ordered(session, guild_id: int) -> list[Role]:
    return list(session.scalars(select(Role).where(Role.guild_id == guild_id).order_by(Role.position, Role.id)))


def _role(access: GuildAccess, role_id: str) -> Role:
    role = access.roles.get(parse_snowflake(role_id, "role", "UNKNOWN_ROLE"))
    if role is None:
        raise not_found("UNKNOWN_ROLE", "role")
    return role


def add_lowest(rt, session, guild_id: int, **fields) -> Role:
    """A new role just above @everyone (the others move up one), within MAX_GUILD_ROLES."""
    lock_row(session, Guild, guild_id)
    if session.scalar(select(func.count()).select_from(Role).where(Role.guild_id == guild_id)) >= MAX_GUILD_ROLES:
        raise limit_reached("MAX_GUILD_ROLES", "roles", MAX_GUILD_ROLES)
    session.execute(update(Role).where(Role.guild_id == guild_id, Role.id != guild_id)
                    .values(position=Role.position + 1))
    role = Role(id=rt.new_id(), guild_id=guild_id, position=1, **fields)
    session.add(role)
    session.flush()
    return role


def list_roles(session, identity: Identity, guild_id: str) -> list[dict]:
    access = guild_access(session, identity, guild_id)
    return [serializers.role.dump(r) for r in ordered(session, access.guild.id)]


def create(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_ROLES)
    guild_id_int = access.guild.id
    permissions = parse_permissions(body.get("permissions", 0))
    access.require_grantable(permissions)
    role = add_lowest(rt, session, guild_id_int, name=(body.get("name") or "").strip() or "new role",
                      color=body.get("color", 0), permissions=permissions, hoist=body.get("hoist", False),
                      mentionable=body.get("mentionable", False), unicode_emoji=body.get("unicode_emoji"))
    data = serializers.role.dump(role)
    audit.record(rt, session, guild_id_int, access.user_id, Action.ROLE_CREATE, role.id, reason=reason,
                 changes=audit.diff({}, data))
    events.publish(session, "GUILD_ROLE_CREATE", {"guild_id": str(guild_id_int), "role": data}, guild_id=guild_id_int)
    session.commit()
    return data


def update_role(rt, session, identity: Identity, guild_id: str, role_id: str, body: dict,
                reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_ROLES)
    role = _role(access, role_id)
    is_everyone = role.id == access.guild.id
    if not is_everyone:
        access.require_role_below(role)
    before = serializers.role.dump(role)
    for key in EDITABLE:
        if key in body:
            setattr(role, key, body[key])
    if "name" in body:
        role.name = "@everyone" if is_everyone else body["name"].strip() or before["name"]
    if "permissions" in body:
        permissions = parse_permissions(body["permissions"])
        access.require_grantable(permissions ^ role.permissions)  # what changes, added or taken
        role.permissions = permissions
    after = serializers.role.dump(role)
    changes = audit.diff(before, after)
    if changes:
        audit.record(rt, session, access.guild.id, access.user_id, Action.ROLE_UPDATE, role.id, reason=reason,
                     changes=changes)
        events.publish(session, "GUILD_ROLE_UPDATE", {"guild_id": str(access.guild.id), "role": after},
                       guild_id=access.guild.id)
    session.commit()
    return after


def delete(rt, session, identity: Identity, guild_id: str, role_id: str, reason: str | None) -> None:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_ROLES)
    role = _role(access, role_id)
    if role.id == access.guild.id:
        raise APIError(400, "INVALID_ROLE", "The @everyone role cannot be deleted")
    if role.bot_user_id is not None:
        raise APIError(403, "MISSING_PERMISSIONS", "A bot's managed role goes when the bot leaves")
    access.require_role_below(role)
    remove_role(rt, session, role, access.user_id, reason)
    session.commit()


def remove_role(rt, session, role: Role, actor_id: int | None, reason: str | None = None) -> None:
    """Delete a role with everything that names it: members' grants, channel overwrites, audit, event."""
    audit.record(rt, session, role.guild_id, actor_id, Action.ROLE_DELETE, role.id, reason=reason,
                 changes=audit.diff(serializers.role.dump(role), {}))
    session.execute(delete_rows(PermissionOverwrite).where(PermissionOverwrite.target_id == role.id,
                                                      PermissionOverwrite.type == ROLE_OVERWRITE))
    session.delete(role)
    # Close the gap, so positions stay 1..n and a client's numbers mean what ours do.
    session.execute(update(Role).where(Role.guild_id == role.guild_id, Role.position > role.position)
                    .values(position=Role.position - 1))
    events.publish(session, "GUILD_ROLE_DELETE", {"guild_id": str(role.guild_id), "role_id": str(role.id)},
                   guild_id=role.guild_id)


def reorder(rt, session, identity: Identity, guild_id: str, items: list[dict], reason: str | None) -> None:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_ROLES)
    wanted: dict[int, int] = {}
    for index, item in enumerate(items):
        role = _role(access, item["id"])
        if role.id == access.guild.id:
            raise field_error(f"{index}.id", "INVALID_ROLE", "@everyone always stays at the bottom")
        if "position" in item:
            access.require_role_below(role)
            wanted[role.id] = item["position"]
    roles = [r for r in ordered(session, access.guild.id) if r.id != access.guild.id]
    before = {r.id: r.position for r in roles}
    order = _place(roles, wanted)
    if not access.is_owner:
        _require_same_roles_above(access, roles, order)
    changed = []
    for position, role in enumerate(order, start=1):
        if role.position != position:
            role.position = position
            changed.append(role)
    _publish_bulk(rt, session, access, changed, before, "position", reason)
    session.commit()


def _require_same_roles_above(access: GuildAccess, old_order: list[Role], new_order: list[Role]) -> None:
    """A reorder may shuffle only what lies below the caller's top role: the roles above it stay above.

    Compared as sets of roles, not as position numbers, so gaps left by deleted roles change nothing.
    """
    mine = set(access.member_role_ids)
    top = max((r for r in old_order if r.id in mine), key=lambda r: (r.position, r.id), default=None)
    if top is None:  # no role of one's own: nothing is below, so nothing may move
        raise APIError(403, "MISSING_PERMISSIONS", "That role is at or above your highest role")

    def above(order: list[Role]) -> set[int]:
        index = next(i for i, r in enumerate(order) if r.id == top.id)
        return {r.id for r in order[index + 1:]}

    if above(sorted(old_order, key=lambda r: (r.position, r.id))) != above(new_order):
        raise APIError(403, "MISSING_PERMISSIONS", "A role cannot move to or above your highest role")


def _place(roles: list[Role], wanted: dict[int, int]) -> list[Role]:
    """Moved roles land exactly where asked (clamped to 1..n); the rest keep their order around them."""
    slots: dict[int, Role] = {}
    for role in sorted((r for r in roles if r.id in wanted), key=lambda r: (wanted[r.id], r.position)):
        position = min(max(wanted[role.id], 1), len(roles))
        while position in slots:  # two roles asked for one place: the next free one above
            position = position + 1 if position < len(roles) else 1
        slots[position] = role
    rest = iter(r for r in roles if r.id not in wanted)
    return [slots.get(position) or next(rest) for position in range(1, len(roles) + 1)]


def set_hoist_positions(rt, session, identity: Identity, guild_id: str, items: list[dict] | None,
                        reason: str | None) -> None:
    """Set each listed role's place in the member list, or with ``items`` None reset them all."""
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_ROLES)
    roles = ordered(session, access.guild.id)
    before = {r.id: r.hoist_position for r in roles}
    if items is None:  # a reset touches only the roles the caller outranks
        targets = {r.id: None for r in roles if access.outranks_role(r)}
    else:
        targets = {}
        for item in items:
            role = _role(access, item["id"])
            access.require_role_below(role)
            targets[role.id] = item["hoist_position"]
    changed = []
    for role in roles:
        if role.id in targets and role.hoist_position != targets[role.id]:
            role.hoist_position = targets[role.id]
            changed.append(role)
    _publish_bulk(rt, session, access, changed, before, "hoist_position", reason)
    session.commit()


def _publish_bulk(rt, session, access: GuildAccess, changed: list[Role], before: dict, key: str,
                  reason: str | None) -> None:
    if not changed:
        return
    for role in changed:
        audit.record(rt, session, access.guild.id, access.user_id, Action.ROLE_UPDATE, role.id, reason=reason,
                     changes=[{"key": key, "old_value": before[role.id], "new_value": getattr(role, key)}])
    events.publish(session, "GUILD_ROLE_UPDATE_BULK",
                   {"guild_id": str(access.guild.id), "roles": [serializers.role.dump(r) for r in changed]},
                   guild_id=access.guild.id)
