"""Pinned messages: pin, unpin, list a channel's pins newest first, acknowledge them.

Pinning sets the message's ``pinned_at`` and posts a system message (type 6) in the channel,
authored by whoever pinned, whose ``message_reference`` points at the pinned message. Pinning
and unpinning are idempotent and audited (in a guild: DMs have no audit log). Only ordinary
messages and replies can be pinned. A DM's or group DM's recipients may pin there
(``PRIVATE_CHANNEL_PERMISSIONS``), except in a DM where a block either way ends messaging: the
notice would be a message to the other side. ``last_pin_timestamp`` is the newest standing pin's
``pinned_at`` (``channels.last_pin_timestamps``).
"""

from __future__ import annotations

from sqlalchemy import func, select

from service import audit, channels, events, messages, read_states, serializers
from service.access import ChannelAccess, channel_access, missing_permissions
from service.audit import Action
from service.auth import Identity
from service.errors import APIError, limit_reached
from service.models import Channel, Message, utcnow
from service.permissions import Permission
from service.validation import parse_instant

MAX_PINS = 50  # per channel
DEFAULT_LIMIT = 50
PINNED_MESSAGE_TYPE = 6
PINNABLE_TYPES = (messages.DEFAULT_TYPE, messages.REPLY_TYPE)


def _pin_access(session, identity: Identity, channel_id: str) -> ChannelAccess:
    access = channel_access(session, identity, channel_id, allow_private=True)
    if not (access.has(Permission.PIN_MESSAGES) or access.has(Permission.MANAGE_MESSAGES)):
        raise missing_permissions(Permission.PIN_MESSAGES)
    access.require(Permission.READ_MESSAGE_HISTORY)
    return access


def _audit(rt, session, identity: Identity, message: Message, action: Action, reason: str | None) -> None:
    if message.guild_id is not None:  # only guilds keep an audit log
        audit.record(rt, session, message.guild_id, identity.user_id, action, message.id, reason=reason,
                     options={"channel_id": str(message.channel_id), "message_id": str(message.id)})


def _publish_update(session, message: Message, viewer_id: int) -> None:
    data = messages.dump(session, message, viewer_id)
    events.publish(session, "MESSAGE_UPDATE", {**data, "guild_id": serializers.iso_id(message.guild_id)},
                   guild_id=message.guild_id, channel_id=message.channel_id)


def pin(rt, session, identity: Identity, channel_id: str, message_id: str, reason: str | None) -> None:
    access = _pin_access(session, identity, channel_id)
    message = messages.message_in(session, access, message_id)
    if message.type not in PINNABLE_TYPES:
        raise APIError(400, "CANNOT_MODIFY_SYSTEM_WEBHOOK", "System messages cannot be pinned")
    # The notice's id comes with the channel's row lock, held until commit: concurrent pins then see
    # each other, both as "already pinned" and in the count against the limit.
    notice_id = messages.new_message_id(rt, session, access.channel.id)
    session.refresh(message)
    if message.pinned_at is not None:
        session.rollback()
        return
    messages.require_not_blocked(session, access, identity.user_id)
    pinned = session.scalar(select(func.count()).select_from(Message)
                            .where(Message.channel_id == access.channel.id, Message.pinned_at.is_not(None)))
    if pinned >= MAX_PINS:
        raise limit_reached("MAX_PINS_PER_CHANNEL", "pins in this channel", MAX_PINS)
    message.pinned_at = utcnow()
    notice = Message(
        id=notice_id, channel_id=message.channel_id, guild_id=message.guild_id, author_id=identity.user_id,
        type=PINNED_MESSAGE_TYPE, content="", mentions=[], mention_roles=[], embeds=[], sticker_ids=[],
        referenced_message_id=message.id,
    )
    session.add(notice)
    session.execute(Channel.__table__.update().where(Channel.id == access.channel.id)
                    .values(last_message_id=notice.id))
    _audit(rt, session, identity, message, Action.MESSAGE_PIN, reason)
    session.flush()
    channels.publish_pins_update(session, message.channel_id, message.guild_id)
    created = messages.dump(session, notice, identity.user_id)
    events.publish(session, "MESSAGE_CREATE", {**created, "guild_id": serializers.iso_id(notice.guild_id),
                                               "channel_type": access.channel.type},
                   guild_id=notice.guild_id, channel_id=notice.channel_id)
    _publish_update(session, message, identity.user_id)
    session.commit()


def unpin(rt, session, identity: Identity, channel_id: str, message_id: str, reason: str | None) -> None:
    access = _pin_access(session, identity, channel_id)
    message = messages.message_in(session, access, message_id)
    if message.pinned_at is None:
        return
    message.pinned_at = None
    _audit(rt, session, identity, message, Action.MESSAGE_UNPIN, reason)
    session.flush()
    channels.publish_pins_update(session, message.channel_id, message.guild_id)
    _publish_update(session, message, identity.user_id)
    session.commit()


def list_pins(session, identity: Identity, channel_id: str, *, limit: int = DEFAULT_LIMIT,
              before: str | None = None) -> dict:
    access = channel_access(session, identity, channel_id, allow_private=True)
    access.require(Permission.READ_MESSAGE_HISTORY)
    moment = parse_instant(before, "before")
    query = select(Message).where(Message.channel_id == access.channel.id, Message.pinned_at.is_not(None))
    if moment is not None:
        query = query.where(Message.pinned_at < moment)
    rows = list(session.scalars(query.order_by(Message.pinned_at.desc(), Message.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    dumped = messages.dump_many(session, page, identity.user_id)
    items = [{"message": data, "pinned_at": serializers.iso(row.pinned_at)}
             for row, data in zip(page, dumped, strict=True)]
    return {"items": items, "has_more": len(rows) > limit}


def acknowledge(session, identity: Identity, channel_id: str) -> None:
    access = channel_access(session, identity, channel_id, allow_private=True)
    now = utcnow()
    read_states.acknowledge_pins(session, identity.user_id, access.channel.id, now)
    events.publish(session, "CHANNEL_PINS_ACK",
                   {"channel_id": str(access.channel.id), "timestamp": serializers.iso(now)}, user_ids=[identity.user_id])
    session.commit()
