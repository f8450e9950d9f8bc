"""Messages in bulk: read several channels' history at once, and delete one's own messages wholesale.

Reading reuses ``messages.list_messages`` window by window, so each channel is checked exactly as
``GET /channels/{id}/messages`` checks it: a channel the caller cannot read fails the whole call
with that channel's error (404 to a stranger), the way the reference does; nobody gets a partial
answer that leaks some channels' messages.

Deleting one's own messages (a channel, a guild, everywhere, or a ban's ``delete_message_seconds``)
goes through ``delete_authored``: it deletes at most ``DELETE_BATCH_SIZE`` messages per transaction
and commits each batch before taking the next, so however many messages match, no transaction grows
large or holds its locks for long. Each batch publishes one MESSAGE_DELETE_BULK per channel it
touched (through ``messages.delete_in_channel``, as the moderator bulk delete does). Only messages
sent before the call began are in scope, so the loop always ends even while the author keeps posting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select

from service import accounts, messages
from service.access import DM, GROUP_DM, channel_access, guild_access
from service.auth import Identity
from service.errors import APIError, FieldError, field_error
from service.models import Channel, ChannelRecipient, Member, Message, utcnow
from service.snowflake import snowflake_from_time
from service.users import MAX_SNOWFLAKE, me
from service.validation import parse_instant

MAX_FETCH_TOTAL = 250  # messages one bulk read may ask for across all its windows, as upstream
DELETE_BATCH_SIZE = 100  # messages per transaction (and at most this many ids per MESSAGE_DELETE_BULK)


# --- Reading --------------------------------------------------------------------------------


def list_many(session, identity: Identity, requests: list[dict]) -> dict:
    """One history window per request, in the order asked; any unreadable channel fails the call."""
    if sum(request["limit"] for request in requests) > MAX_FETCH_TOTAL:
        raise field_error("requests", "BASE_TYPE_BAD_LENGTH",
                          f"The windows may ask for at most {MAX_FETCH_TOTAL} messages in total")
    channels = []
    for index, request in enumerate(requests):
        try:
            found = messages.list_messages(session, identity, request["channel_id"], limit=request["limit"],
                                           before=request.get("before"), after=request.get("after"),
                                           around=request.get("around"))
        except APIError as error:  # name the window a field problem came from
            error.errors = [FieldError(f"requests.{index}.{e.path}", e.code, e.message) for e in error.errors]
            raise
        channels.append({"channel_id": str(request["channel_id"]), "messages": found})
    return {"channels": channels}


# --- Deleting one's own messages ------------------------------------------------------------


def _snowflake_at(moment: datetime) -> int:
    """The smallest id of ``moment``, kept within the ids that can exist (a bound, not an id)."""
    return min(max(snowflake_from_time(moment), 0), MAX_SNOWFLAKE)


def delete_authored(session, author_id: int, *conditions) -> None:
    """Delete ``author_id``'s messages matching ``conditions`` (SQL on Message), a batch per commit.

    See the module docstring for why it works in batches.
    """
    sent_before = _snowflake_at(utcnow() + timedelta(milliseconds=1))  # this whole millisecond included
    batch_query = (select(Message.id, Message.channel_id, Message.guild_id)
                   .where(Message.author_id == author_id, Message.id < sent_before, *conditions)
                   .limit(DELETE_BATCH_SIZE))
    while batch := session.execute(batch_query).all():
        by_channel: dict[tuple[int, int | None], list[int]] = {}
        for message_id, channel_id, guild_id in batch:
            by_channel.setdefault((channel_id, guild_id), []).append(message_id)
        for (channel_id, guild_id), ids in by_channel.items():
            messages.delete_in_channel(session, channel_id, guild_id, ids)
        session.commit()


def delete_recent_in_guild(session, guild_id: int, author_id: int, seconds: int) -> None:
    """A ban's clean-up: the author's messages anywhere in the guild from the last ``seconds``."""
    since = _snowflake_at(utcnow() - timedelta(seconds=seconds))
    delete_authored(session, author_id, Message.guild_id == guild_id, Message.id >= since)


def _require_sudo(rt, session, identity: Identity, body: dict) -> None:
    """Bots have no password or MFA to re-prove: their token is the whole credential (as upstream)."""
    if not identity.is_bot:
        accounts.verify_sudo(rt, session, me(session, identity), body)
        session.commit()  # a TOTP step or backup code used here stays used, even when nothing matches


def delete_mine_in_channel(rt, session, identity: Identity, channel_id: str, body: dict) -> None:
    access = channel_access(session, identity, channel_id, allow_private=True)
    _require_sudo(rt, session, identity, body)
    delete_authored(session, identity.user_id, Message.channel_id == access.channel.id)


def delete_mine_in_guild(rt, session, identity: Identity, guild_id: str, body: dict) -> None:
    access = guild_access(session, identity, guild_id)
    _require_sudo(rt, session, identity, body)
    delete_authored(session, identity.user_id, Message.guild_id == access.guild.id)


def _guild_ids(body: dict, key: str) -> list[int]:
    """The listed guild ids; one beyond 64 bits names no guild, so it is simply left out."""
    return [number for number in map(int, body.get(key, [])) if number <= MAX_SNOWFLAKE]


def _private_channels_of(user_id: int, channel_type: int):
    return (select(ChannelRecipient.channel_id).join(Channel, Channel.id == ChannelRecipient.channel_id)
            .where(ChannelRecipient.user_id == user_id, Channel.type == channel_type))


def _selected_contexts(user_id: int, body: dict) -> list:
    """Where the caller's messages go under ``scope: selected``: one SQL condition per kind of place."""
    contexts = []
    # This server never closes a DM, so every DM is open: include_dms_closed adds nothing to delete.
    if body.get("include_dms", True):
        contexts.append(Message.channel_id.in_(_private_channels_of(user_id, DM)))
    if body.get("include_group_dms", True):
        contexts.append(Message.channel_id.in_(_private_channels_of(user_id, GROUP_DM)))
    if body.get("include_guilds", True):
        guilds = select(Member.guild_id).where(Member.user_id == user_id)
        if body.get("guild_filter_mode", "exclude") == "include_only":
            guilds = guilds.where(Member.guild_id.in_(_guild_ids(body, "included_guild_ids")))
        else:
            guilds = guilds.where(Member.guild_id.not_in(_guild_ids(body, "excluded_guild_ids")))
        contexts.append(Message.guild_id.in_(guilds))
    return contexts


def _inaccessible_contexts(user_id: int) -> list:
    """Guilds the caller has left or was removed from, and group DMs they left (a DM is never left)."""
    return [
        and_(Message.guild_id.is_not(None),
             Message.guild_id.not_in(select(Member.guild_id).where(Member.user_id == user_id))),
        and_(Message.guild_id.is_(None),
             Message.channel_id.not_in(select(ChannelRecipient.channel_id).where(ChannelRecipient.user_id == user_id))),
    ]


def delete_mine(rt, session, identity: Identity, body: dict) -> None:
    selected = body.get("scope", "selected") == "selected"
    if selected and not any(body.get(key, True) for key in
                            ("include_dms", "include_dms_closed", "include_group_dms", "include_guilds")):
        raise field_error("include_dms", "BASE_TYPE_INVALID",
                          "Enable at least one of include_dms, include_dms_closed, include_group_dms and include_guilds")
    start, end = parse_instant(body.get("start_date"), "start_date"), parse_instant(body.get("end_date"), "end_date")
    if start is not None and end is not None and start >= end:
        raise field_error("end_date", "BASE_TYPE_INVALID", "end_date must be later than start_date")
    _require_sudo(rt, session, identity, body)
    contexts = _selected_contexts(identity.user_id, body) if selected else _inaccessible_contexts(identity.user_id)
    if not contexts:  # only include_dms_closed was asked for, and no DM is ever closed
        return
    window = []
    if start is not None:
        window.append(Message.id >= _snowflake_at(start))
    if end is not None:
        window.append(Message.id < _snowflake_at(end))
    delete_authored(session, identity.user_id, or_(*contexts), *window)
