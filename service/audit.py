"""The guild audit log: who changed what, when and why, with each field's before and after."""

from __future__ import annotations

import enum
from urllib.parse import unquote

from sqlalchemy import select

from service import serializers
from service.access import guild_access
from service.auth import Identity
from service.models import AuditLogEntry, User
from service.permissions import Permission
from service.users import cursor

MAX_REASON = 512


class Action(enum.IntEnum):
    GUILD_UPDATE = 1
    CHANNEL_CREATE = 10
    CHANNEL_UPDATE = 11
    CHANNEL_DELETE = 12
    CHANNEL_OVERWRITE_CREATE = 13
    CHANNEL_OVERWRITE_UPDATE = 14
    CHANNEL_OVERWRITE_DELETE = 15
    MEMBER_KICK = 20
    MEMBER_PRUNE = 21
    MEMBER_BAN_ADD = 22
    MEMBER_BAN_REMOVE = 23
    MEMBER_UPDATE = 24
    MEMBER_ROLE_UPDATE = 25
    MEMBER_MOVE = 26
    MEMBER_DISCONNECT = 27
    BOT_ADD = 28
    ROLE_CREATE = 30
    ROLE_UPDATE = 31
    ROLE_DELETE = 32
    INVITE_CREATE = 40
    INVITE_UPDATE = 41
    INVITE_DELETE = 42
    WEBHOOK_CREATE = 50
    WEBHOOK_UPDATE = 51
    WEBHOOK_DELETE = 52
    EMOJI_CREATE = 60
    EMOJI_UPDATE = 61
    EMOJI_DELETE = 62
    STICKER_CREATE = 90
    STICKER_UPDATE = 91
    STICKER_DELETE = 92
    MESSAGE_DELETE = 72
    MESSAGE_BULK_DELETE = 73
    MESSAGE_PIN = 74
    MESSAGE_UNPIN = 75


def reason_from_header(value: str | None) -> str | None:
    """``X-Audit-Log-Reason`` arrives percent-encoded (headers are Latin-1); keep it bounded."""
    if not value:
        return None
    return unquote(value)[:MAX_REASON] or None


def diff(before: dict, after: dict) -> list[dict]:
    """Changed keys of two wire-shaped dicts, as the audit log's ``changes`` list (ids never change)."""
    keys = sorted((set(before) | set(after)) - {"id"})
    return [{"key": key, "old_value": before.get(key), "new_value": after.get(key)}
            for key in keys if before.get(key) != after.get(key)]


def record(rt, session, guild_id: int, actor_id: int | None, action: Action, target_id: int | None, *,
           reason: str | None = None, changes: list[dict] | None = None, options: dict | None = None) -> None:
    """Add an entry to the caller's transaction: it is kept exactly when the change is."""
    session.add(AuditLogEntry(id=rt.new_id(), guild_id=guild_id, user_id=actor_id, target_id=target_id,
                              action_type=int(action), reason=reason, changes=changes or [],
                              options=options or {}))


def list_entries(session, identity: Identity, guild_id: str, *, user_id: str | None, action_type: int | None,
                 before: str | None, after: str | None, limit: int) -> dict:
    access = guild_access(session, identity, guild_id)
    access.require(Permission.VIEW_AUDIT_LOG)
    query = select(AuditLogEntry).where(AuditLogEntry.guild_id == access.guild.id)
    if user_id is not None:
        query = query.where(AuditLogEntry.user_id == cursor(user_id))
    if action_type is not None:
        query = query.where(AuditLogEntry.action_type == action_type)
    if before is not None:
        query = query.where(AuditLogEntry.id < cursor(before))
    if after is not None:
        query = query.where(AuditLogEntry.id > cursor(after))
    # Newest first, as clients page backwards with ``before``; ``after`` alone pages forwards.
    order = AuditLogEntry.id.asc() if after is not None and before is None else AuditLogEntry.id.desc()
    rows = list(session.scalars(query.order_by(order).limit(limit)))
    rows.sort(key=lambda row: row.id, reverse=True)
    user_ids = {row.user_id for row in rows if row.user_id} | {row.target_id for row in rows if row.target_id}
    users = session.scalars(select(User).where(User.id.in_(user_ids))) if user_ids else []
    return {
        "audit_log_entries": [_dump_entry(row) for row in rows],
        "users": [serializers.user_public.dump(user) for user in users],
        "webhooks": [],
    }


def _dump_entry(row: AuditLogEntry) -> dict:
    data = serializers.audit_log_entry.dump(row)
    if data["reason"] is None:
        del data["reason"]  # the reference has it only when given
    return data
