"""Read states: how far each user has read each channel, and when they last looked at its pins.

One row per (user, channel). Automatic acknowledgements only move ``last_message_id`` forwards,
so a late request from a slow client never marks read messages unread again; a ``manual``
acknowledgement (the user's own "mark unread") may move it back. Every write is a single
conditional UPDATE after an insert-if-missing, so concurrent requests cannot lose each other's
progress. Acknowledgement events go to the caller's own sessions only. Recipients keep read
states of their DMs and group DMs as members do of the guild channels they can view.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service import events
from service.access import channel_access, guild_channels_with
from service.auth import Identity
from service.errors import not_found
from service.models import Channel, ChannelRecipient, Message, ReadState
from service.permissions import Permission
from service.users import MAX_SNOWFLAKE, parse_snowflake


def ensure_rows(session, user_id: int, channel_ids: list[int]) -> None:
    """Create the caller's missing read-state rows (never touching existing ones)."""
    if not channel_ids:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = [{"user_id": user_id, "channel_id": c, "mention_count": 0} for c in dict.fromkeys(channel_ids)]
    session.execute(insert(ReadState).values(rows).on_conflict_do_nothing())


def _advance(session, user_id: int, channel_id: int, message_id: int, mention_count: int, manual: bool, *,
             ensure: bool = True) -> ReadState:
    if ensure:
        ensure_rows(session, user_id, [channel_id])
    statement = update(ReadState).where(ReadState.user_id == user_id, ReadState.channel_id == channel_id)
    if not manual:
        statement = statement.where(or_(ReadState.last_message_id.is_(None), ReadState.last_message_id <= message_id))
    session.execute(statement.values(last_message_id=message_id, mention_count=mention_count)
                    .execution_options(synchronize_session=False))
    return session.execute(select(ReadState).where(ReadState.user_id == user_id, ReadState.channel_id == channel_id)
                           .execution_options(populate_existing=True)).scalar_one()


def _publish_ack(session, state: ReadState, manual: bool | None = None) -> None:
    data = {"channel_id": str(state.channel_id), "message_id": str(state.last_message_id),
            "mention_count": state.mention_count}
    if manual is not None:
        data["manual"] = manual
    events.publish(session, "MESSAGE_ACK", data, user_ids=[state.user_id])


def acknowledge_message(session, identity: Identity, channel_id: str, message_id: str, body: dict | None) -> None:
    access = channel_access(session, identity, channel_id, allow_private=True)
    mid = parse_snowflake(message_id, "message", "UNKNOWN_MESSAGE")
    found = session.scalar(select(Message.id).where(Message.id == mid, Message.channel_id == access.channel.id))
    if found is None:
        raise not_found("UNKNOWN_MESSAGE", "message")
    body = body or {}
    manual = bool(body.get("manual"))
    state = _advance(session, identity.user_id, access.channel.id, mid, int(body.get("mention_count") or 0), manual)
    _publish_ack(session, state, manual if "manual" in body else None)
    session.commit()


def clear(session, identity: Identity, channel_id: str) -> None:
    access = channel_access(session, identity, channel_id, allow_private=True)
    session.execute(delete(ReadState).where(ReadState.user_id == identity.user_id,
                                            ReadState.channel_id == access.channel.id))
    session.commit()


def acknowledge_pins(session, user_id: int, channel_id: int, when: datetime) -> None:
    """Record that the user has seen the channel's pins (the caller commits)."""
    ensure_rows(session, user_id, [channel_id])
    session.execute(update(ReadState).where(ReadState.user_id == user_id, ReadState.channel_id == channel_id)
                    .values(last_pin_ack_at=when).execution_options(synchronize_session=False))


# --- Bulk -----------------------------------------------------------------------------------


def _viewable(session, identity: Identity, channel_ids: set[int]) -> set[int]:
    """Which of these channels the caller can view: DMs and group DMs they are in, and guild channels."""
    visible = set(guild_channels_with(session, identity.user_id, Permission.VIEW_CHANNEL, Channel.id.in_(channel_ids)))
    visible.update(session.scalars(select(ChannelRecipient.channel_id).where(
        ChannelRecipient.user_id == identity.user_id, ChannelRecipient.channel_id.in_(channel_ids))))
    return visible


def acknowledge_bulk(session, identity: Identity, body: dict) -> None:
    """Mark channels read up to the given messages. Pairs the caller cannot act on (a channel they
    cannot view, a message not in that channel) are skipped; the rest are applied, the newest
    message per channel winning."""
    pairs = {(int(item["channel_id"]), int(item["message_id"])) for item in body["read_states"]}
    pairs = {(c, m) for c, m in pairs if 0 <= c <= MAX_SNOWFLAKE and 0 <= m <= MAX_SNOWFLAKE}
    visible = _viewable(session, identity, {c for c, _m in pairs}) if pairs else set()
    pairs = {(c, m) for c, m in pairs if c in visible}
    present = set(session.execute(select(Message.channel_id, Message.id).where(
        Message.id.in_({m for _c, m in pairs}))).tuples()) if pairs else set()
    wanted: dict[int, int] = {}
    for channel_id, message_id in pairs & present:
        wanted[channel_id] = max(wanted.get(channel_id, 0), message_id)
    if not wanted:
        return
    ensure_rows(session, identity.user_id, sorted(wanted))
    for channel_id in sorted(wanted):
        state = _advance(session, identity.user_id, channel_id, wanted[channel_id], 0, False, ensure=False)
        _publish_ack(session, state)
    session.commit()
