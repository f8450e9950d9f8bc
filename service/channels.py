"""Guild channels: create, list, change, reorder, delete, and their permission overwrites."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from service import attachments, audit, events, serializers, storage
from service.access import ChannelAccess, GuildAccess, channel_access, guild_access
from service.audit import Action
from service.auth import Identity
from service.db import lock_row
from service.errors import APIError, field_error, limit_reached, not_found
from service.models import Channel, Guild, Member, Message, PermissionOverwrite
from service.permissions import MEMBER_OVERWRITE, ROLE_OVERWRITE, Permission
from service.roles import parse_permissions
from service.users import parse_snowflake

TEXT, VOICE, CATEGORY, LINK = 0, 2, 4, 998
GUILD_CHANNEL_TYPES = (TEXT, VOICE, CATEGORY, LINK)
MAX_GUILD_CHANNELS = 500
MAX_CATEGORY_CHANNELS = 50
DEFAULT_BITRATE = 64000
SETTINGS = ("topic", "nsfw", "rate_limit_per_user", "bitrate", "user_limit", "rtc_region", "url",
            "content_warning_level", "content_warning_text")
FIELDS_BY_TYPE = {
    TEXT: {"topic", "nsfw", "rate_limit_per_user", "content_warning_level", "content_warning_text"},
    VOICE: {"bitrate", "user_limit", "rtc_region", "nsfw"},
    CATEGORY: {"nsfw"},
    LINK: {"url"},
}


def overwrites_of(session, channel_id: int) -> list[PermissionOverwrite]:
    return list(session.scalars(select(PermissionOverwrite).where(PermissionOverwrite.channel_id == channel_id)
                                .order_by(PermissionOverwrite.type, PermissionOverwrite.target_id)))


def last_pin_timestamps(session, channel_ids) -> dict[int, str]:
    """When each channel's newest standing pin was made (channels without pins are left out); the
    partial index of pins (ix_messages_channel_pinned) answers it without reading other messages."""
    channel_ids = list(channel_ids)
    if not channel_ids:
        return {}
    rows = session.execute(select(Message.channel_id, func.max(Message.pinned_at))
                           .where(Message.channel_id.in_(channel_ids), Message.pinned_at.is_not(None))
                           .group_by(Message.channel_id))
    return {channel_id: serializers.iso(moment) for channel_id, moment in rows}


def publish_pins_update(session, channel_id: int, guild_id: int | None) -> None:
    """CHANNEL_PINS_UPDATE after a pin, an unpin, or the deletion of a pinned message (flushed first)."""
    events.publish(session, "CHANNEL_PINS_UPDATE",
                   {"channel_id": str(channel_id), "guild_id": serializers.iso_id(guild_id),
                    "last_pin_timestamp": last_pin_timestamps(session, [channel_id]).get(channel_id)},
                   guild_id=guild_id, channel_id=channel_id)


def dump(session, channel: Channel) -> dict:
    data = serializers.serialize_channel(channel, overwrites_of(session, channel.id))
    data["last_pin_timestamp"] = last_pin_timestamps(session, [channel.id]).get(channel.id)
    return data


def _publish(session, name: str, data: dict, channel: Channel) -> None:
    events.publish(session, name, data, guild_id=channel.guild_id, channel_id=channel.id)


def _name(kind: int, name: str) -> str:
    name = name.strip()
    if kind == TEXT:  # text channel names read like #this-one
        name = "-".join(name.lower().split())
    if not name:
        raise field_error("name", "BASE_TYPE_REQUIRED", "A channel needs a name")
    return name


def _parent(session, guild: Guild, kind: int, value, channel_id: int | None = None) -> int | None:
    if value is None:
        return None
    parent = session.get(Channel, parse_snowflake(value, "channel", "UNKNOWN_CHANNEL"))
    if parent is None or parent.guild_id != guild.id or parent.type != CATEGORY:
        raise field_error("parent_id", "INVALID_CHANNEL_TYPE", "The parent must be a category of this guild")
    if kind == CATEGORY:
        raise field_error("parent_id", "INVALID_CHANNEL_TYPE", "A category cannot have a parent")
    children = session.scalar(select(func.count()).select_from(Channel).where(Channel.parent_id == parent.id,
                                                                              Channel.id != channel_id))
    if children >= MAX_CATEGORY_CHANNELS:
        raise limit_reached("MAX_CATEGORY_CHANNELS", "channels in this category", MAX_CATEGORY_CHANNELS)
    return parent.id


def _bits(item: dict, path: str = "") -> tuple[int, int]:
    """An overwrite's (allow, deny), refusing bits no permission defines, and ADMINISTRATOR:
    only roles make an administrator, so a channel cannot grant or take it."""
    bits = []
    for key in ("allow", "deny"):
        value = parse_permissions(item.get(key, 0), f"{path}{key}")
        if value & Permission.ADMINISTRATOR:
            raise field_error(f"{path}{key}", "INVALID_PERMISSIONS_INTEGER", "ADMINISTRATOR cannot be set on a channel")
        bits.append(value)
    return bits[0], bits[1]


def _check_overwrite_target(session, access: GuildAccess, target_id: int, kind: int, path: str) -> None:
    if kind == ROLE_OVERWRITE and target_id not in access.roles:
        raise field_error(path, "UNKNOWN_ROLE", "Unknown role")
    if kind == MEMBER_OVERWRITE and session.get(Member, (access.guild.id, target_id)) is None:
        raise field_error(path, "UNKNOWN_MEMBER", "Unknown member")


def _require_overwrite_rights(permissions: int, access: GuildAccess, touched: int) -> None:
    """Overwrites need MANAGE_ROLES there, and only touch bits the caller holds there (owner/admin exempt)."""
    if not permissions & Permission.MANAGE_ROLES:
        raise APIError(403, "MISSING_PERMISSIONS", "Missing permissions", permissions=["MANAGE_ROLES"])
    if not (access.is_owner or access.is_admin) and touched & ~permissions:
        raise APIError(403, "MISSING_PERMISSIONS", "You cannot set permissions you do not have")


def list_channels(session, identity: Identity, guild_id: str) -> list[dict]:
    return visible(session, guild_access(session, identity, guild_id))


def visible(session, access: GuildAccess) -> list[dict]:
    """The guild's channels this member can view, in order; two queries however many channels there are."""
    channels = list(session.scalars(select(Channel).where(Channel.guild_id == access.guild.id)
                                    .order_by(Channel.position, Channel.id)))
    overwrites: dict[int, list[PermissionOverwrite]] = {c.id: [] for c in channels}
    if channels:
        for row in session.scalars(select(PermissionOverwrite).where(PermissionOverwrite.channel_id.in_(overwrites))
                                   .order_by(PermissionOverwrite.type, PermissionOverwrite.target_id)):
            overwrites[row.channel_id].append(row)
    shown = [c for c in channels if access.permissions_under(overwrites[c.id]) & Permission.VIEW_CHANNEL]
    pins = last_pin_timestamps(session, [c.id for c in shown])
    return [{**serializers.serialize_channel(c, overwrites[c.id]), "last_pin_timestamp": pins.get(c.id)} for c in shown]


def create(rt, session, identity: Identity, guild_id: str, body: dict, reason: str | None) -> dict:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_CHANNELS)
    guild = access.guild
    lock_row(session, Guild, guild.id)
    count = session.scalar(select(func.count()).select_from(Channel).where(Channel.guild_id == guild.id))
    if count >= MAX_GUILD_CHANNELS:
        raise limit_reached("MAX_GUILD_CHANNELS", "channels", MAX_GUILD_CHANNELS)
    kind = body["type"]
    if kind == LINK and not body.get("url"):
        raise field_error("url", "BASE_TYPE_REQUIRED", "A link channel needs a url")
    parent_id = _parent(session, guild, kind, body.get("parent_id"))
    siblings = select(func.coalesce(func.max(Channel.position), -1)).where(Channel.guild_id == guild.id)
    siblings = siblings.where(Channel.parent_id == parent_id if parent_id else Channel.parent_id.is_(None))
    channel = Channel(id=rt.new_id(), guild_id=guild.id, type=kind, name=_name(kind, body["name"]),
                      parent_id=parent_id, position=session.scalar(siblings) + 1, nsfw=False,
                      rate_limit_per_user=0, content_warning_level=0)
    for key in FIELDS_BY_TYPE[kind]:
        if body.get(key) is not None:
            setattr(channel, key, body[key])
    if kind == VOICE:
        channel.bitrate = channel.bitrate or DEFAULT_BITRATE
        channel.user_limit = channel.user_limit or 0
    session.add(channel)
    session.flush()
    for index, item in enumerate(body.get("permission_overwrites") or []):
        target, kind_ = parse_snowflake(item["id"], "role", "UNKNOWN_ROLE"), item["type"]
        allow, deny = _bits(item, f"permission_overwrites.{index}.")
        _check_overwrite_target(session, access, target, kind_, f"permission_overwrites.{index}.id")
        _require_overwrite_rights(access.permissions, access, allow | deny)
        session.merge(PermissionOverwrite(channel_id=channel.id, target_id=target, type=kind_, allow=allow, deny=deny))
    session.flush()
    data = dump(session, channel)
    audit.record(rt, session, guild.id, access.user_id, Action.CHANNEL_CREATE, channel.id, reason=reason,
                 changes=audit.diff({}, {k: v for k, v in data.items() if k != "permission_overwrites"}))
    _publish(session, "CHANNEL_CREATE", data, channel)
    session.commit()
    return data


def get(session, identity: Identity, channel_id: str) -> dict:
    access = channel_access(session, identity, channel_id, allow_private=True)
    if access.is_private:  # a DM or group DM the caller is in
        from service import dms  # imported here: dms builds on this module

        return dms.dump(session, access.channel, identity.user_id)
    return dump(session, access.channel)


def update_channel(rt, session, identity: Identity, channel_id: str, body: dict, reason: str | None) -> dict:
    access = channel_access(session, identity, channel_id)
    access.require(Permission.MANAGE_CHANNELS)
    channel = access.channel
    if "type" in body and body["type"] != channel.type:
        raise field_error("type", "INVALID_CHANNEL_TYPE", "A channel's type cannot change")
    before = dump(session, channel)
    if body.get("name") is not None:
        channel.name = _name(channel.type, body["name"])
    for key in SETTINGS:
        if key in body:
            if key not in FIELDS_BY_TYPE[channel.type]:
                raise field_error(key, "INVALID_CHANNEL_TYPE", "Not a setting of this channel type")
            value = body[key]
            if key in ("nsfw", "rate_limit_per_user", "content_warning_level") and value is None:
                continue  # these cannot be null; null means "leave as is"
            setattr(channel, key, value)
    if "parent_id" in body:
        channel.parent_id = _parent(session, access.guild.guild, channel.type, body["parent_id"], channel.id)
    if body.get("position") is not None or "parent_id" in body:
        position = body["position"] if body.get("position") is not None else channel.position
        _renumber(session, channel.guild_id, {channel.id: position})
    if body.get("permission_overwrites") is not None:
        _replace_overwrites(session, access, body["permission_overwrites"])
    session.flush()
    after = dump(session, channel)
    changes = audit.diff(before, after)
    if changes:
        audit.record(rt, session, channel.guild_id, access.guild.user_id, Action.CHANNEL_UPDATE, channel.id,
                     reason=reason, changes=changes)
        _publish(session, "CHANNEL_UPDATE", after, channel)
    session.commit()
    return after


def _replace_overwrites(session, access: ChannelAccess, items: list[dict]) -> None:
    wanted = {}
    for index, item in enumerate(items):
        target = parse_snowflake(item["id"], "role", "UNKNOWN_ROLE")
        allow, deny = _bits(item, f"permission_overwrites.{index}.")
        _check_overwrite_target(session, access.guild, target, item["type"], f"permission_overwrites.{index}.id")
        wanted[target] = (item["type"], allow, deny)
    current = {o.target_id: o for o in overwrites_of(session, access.channel.id)}
    touched = 0
    for target in set(current) | set(wanted):
        old = current.get(target)
        new = wanted.get(target)
        if old and new and (old.type, old.allow, old.deny) == new:
            continue
        touched |= (old.allow | old.deny) if old else 0
        touched |= (new[1] | new[2]) if new else 0
    if touched or set(current) != set(wanted):
        _require_overwrite_rights(access.permissions, access.guild, touched)
    session.execute(delete(PermissionOverwrite).where(PermissionOverwrite.channel_id == access.channel.id))
    for target, (kind, allow, deny) in wanted.items():
        session.add(PermissionOverwrite(channel_id=access.channel.id, target_id=target, type=kind, allow=allow,
                                        deny=deny))


def delete_channel(rt, session, identity: Identity, channel_id: str, reason: str | None) -> None:
    access = channel_access(session, identity, channel_id)
    access.require(Permission.MANAGE_CHANNELS)
    channel, guild = access.channel, access.guild.guild
    data = dump(session, channel)
    if channel.type == CATEGORY:  # its channels stay, without a parent
        session.execute(update(Channel).where(Channel.parent_id == channel.id).values(parent_id=None))
    cleared = [key for key in ("system_channel_id", "rules_channel_id", "afk_channel_id")
               if getattr(guild, key) == channel.id]
    if cleared:  # the guild stops pointing at the channel: a guild change of its own
        for key in cleared:
            setattr(guild, key, None)
        audit.record(rt, session, guild.id, access.guild.user_id, Action.GUILD_UPDATE, guild.id, reason=reason,
                     changes=[{"key": key, "old_value": str(channel.id), "new_value": None} for key in cleared])
        events.publish(session, "GUILD_UPDATE", serializers.guild.dump(guild), guild_id=guild.id)
    audit.record(rt, session, guild.id, access.guild.user_id, Action.CHANNEL_DELETE, channel.id, reason=reason,
                 changes=audit.diff({k: v for k, v in data.items() if k != "permission_overwrites"}, {}))
    _publish(session, "CHANNEL_DELETE", data, channel)
    storage.delete_after_commit(session, *attachments.storage_keys_of(session, Message.channel_id == channel.id))
    session.delete(channel)  # its messages and their attachments go with it (ON DELETE CASCADE)
    session.commit()


def reorder(rt, session, identity: Identity, guild_id: str, items: list[dict], reason: str | None) -> None:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.MANAGE_CHANNELS)
    channels = {c.id: c for c in session.scalars(select(Channel).where(Channel.guild_id == access.guild.id))}
    before = {cid: (c.position, c.parent_id) for cid, c in channels.items()}
    wanted: dict[int, int] = {}
    relocked: list[Channel] = []
    for index, item in enumerate(items):
        channel = channels.get(parse_snowflake(item["id"], "channel", "UNKNOWN_CHANNEL"))
        if channel is None:
            raise field_error(f"{index}.id", "UNKNOWN_CHANNEL", "Not a channel of this guild")
        permissions = access.channel_permissions(session, channel)
        if not permissions & Permission.VIEW_CHANNEL:  # nobody rearranges what they cannot see
            raise APIError(403, "MISSING_ACCESS", "Missing access")
        if "parent_id" in item:
            channel.parent_id = _parent(session, access.guild, channel.type, item["parent_id"], channel.id)
        if item.get("preceding_sibling_id") is not None:
            sibling = channels.get(parse_snowflake(item["preceding_sibling_id"], "channel", "UNKNOWN_CHANNEL"))
            if sibling is None:
                raise field_error(f"{index}.preceding_sibling_id", "UNKNOWN_CHANNEL", "Not a channel of this guild")
            wanted[channel.id] = sibling.position + 1
        elif item.get("position") is not None:
            wanted[channel.id] = item["position"]
        if item.get("lock_permissions") and channel.parent_id:
            # Taking the parent's overwrites is an overwrite change: the same rights as setting them.
            old, new = overwrites_of(session, channel.id), overwrites_of(session, channel.parent_id)
            _require_overwrite_rights(permissions, access, _bits_of(old) | _bits_of(new))
            _copy_overwrites(session, channel.parent_id, channel.id)
            relocked.append(channel)
    _renumber(session, access.guild.id, wanted)
    changed = [c for cid, c in channels.items() if (c.position, c.parent_id) != before[cid] or c in relocked]
    session.flush()
    for channel in changed:
        old_position, old_parent = before[channel.id]
        changes = [{"key": "position", "old_value": old_position, "new_value": channel.position}]
        if old_parent != channel.parent_id:
            changes.append({"key": "parent_id", "old_value": _str(old_parent), "new_value": _str(channel.parent_id)})
        if channel in relocked:
            changes.append({"key": "permission_overwrites", "old_value": None, "new_value": "synced with the parent"})
        audit.record(rt, session, access.guild.id, access.user_id, Action.CHANNEL_UPDATE, channel.id,
                     reason=reason, changes=changes)
    if changed:
        events.publish(session, "CHANNEL_UPDATE_BULK", {"guild_id": str(access.guild.id),
                                                        "channels": [dump(session, c) for c in changed]},
                       guild_id=access.guild.id)
    session.commit()


def _bits_of(overwrites: list[PermissionOverwrite]) -> int:
    bits = 0
    for overwrite in overwrites:
        bits |= overwrite.allow | overwrite.deny
    return bits


def _renumber(session, guild_id: int, wanted: dict[int, int]) -> None:
    """Put the channels in ``wanted`` at their asked-for places and number every parent's children 0..n,
    so no two siblings ever share a position."""
    session.flush()
    groups: dict[int | None, list[Channel]] = {}
    for channel in session.scalars(select(Channel).where(Channel.guild_id == guild_id)):
        groups.setdefault(channel.parent_id, []).append(channel)
    for siblings in groups.values():
        siblings.sort(key=lambda c: (wanted.get(c.id, c.position), c.id not in wanted, c.position, c.id))
        for position, channel in enumerate(siblings):
            channel.position = position


def _str(value):
    return None if value is None else str(value)


def _copy_overwrites(session, source_id: int, target_id: int) -> None:
    session.execute(delete(PermissionOverwrite).where(PermissionOverwrite.channel_id == target_id))
    for o in overwrites_of(session, source_id):
        session.add(PermissionOverwrite(channel_id=target_id, target_id=o.target_id, type=o.type, allow=o.allow,
                                        deny=o.deny))


def set_overwrite(rt, session, identity: Identity, channel_id: str, overwrite_id: str, body: dict,
                  reason: str | None) -> None:
    access = channel_access(session, identity, channel_id)
    target = parse_snowflake(overwrite_id, "overwrite", "UNKNOWN_OVERWRITE")
    kind, (allow, deny) = body["type"], _bits(body)
    _check_overwrite_target(session, access.guild, target, kind, "id")
    existing = session.get(PermissionOverwrite, (access.channel.id, target))
    old = {"type": existing.type, "allow": str(existing.allow), "deny": str(existing.deny)} if existing else {}
    touched = allow | deny | ((existing.allow | existing.deny) if existing else 0)
    _require_overwrite_rights(access.permissions, access.guild, touched)
    if existing is None:
        session.add(PermissionOverwrite(channel_id=access.channel.id, target_id=target, type=kind, allow=allow,
                                        deny=deny))
    else:
        existing.type, existing.allow, existing.deny = kind, allow, deny
    new = {"type": kind, "allow": str(allow), "deny": str(deny)}
    if old != new:
        action = Action.CHANNEL_OVERWRITE_UPDATE if existing else Action.CHANNEL_OVERWRITE_CREATE
        audit.record(rt, session, access.channel.guild_id, access.guild.user_id, action, access.channel.id,
                     reason=reason, changes=audit.diff(old, new), options={"id": str(target), "type": str(kind)})
        session.flush()
        _publish(session, "CHANNEL_UPDATE", dump(session, access.channel), access.channel)
    session.commit()


def delete_overwrite(rt, session, identity: Identity, channel_id: str, overwrite_id: str,
                     reason: str | None) -> None:
    access = channel_access(session, identity, channel_id)
    target = parse_snowflake(overwrite_id, "overwrite", "UNKNOWN_OVERWRITE")
    existing = session.get(PermissionOverwrite, (access.channel.id, target))
    if existing is None:
        access.require(Permission.MANAGE_ROLES)
        raise not_found("UNKNOWN_OVERWRITE", "overwrite")
    _require_overwrite_rights(access.permissions, access.guild, existing.allow | existing.deny)
    audit.record(rt, session, access.channel.guild_id, access.guild.user_id, Action.CHANNEL_OVERWRITE_DELETE,
                 access.channel.id, reason=reason,
                 changes=audit.diff({"type": existing.type, "allow": str(existing.allow),
                                     "deny": str(existing.deny)}, {}),
                 options={"id": str(target), "type": str(existing.type)})
    session.delete(existing)
    session.flush()
    _publish(session, "CHANNEL_UPDATE", dump(session, access.channel), access.channel)
    session.commit()
