"""Messages in guild text channels, DMs and group DMs: send, read history, edit, delete, bulk delete, typing.

History is read newest first by walking the (channel_id, id) index: snowflake ids grow with
time, so "the 50 before X" is one index range scan however long the channel is. Everything a
page shows (authors, reactions, attachments, replied-to messages) is loaded in one query per
kind, never one per message.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, delete, func, select

from service import audit, events, mentions, relationships, serializers
from service.access import DM, GROUP_DM, ChannelAccess, channel_access
from service.attachments import Upload, attachment_json, storage_key, storage_keys_of, store_files
from service.audit import Action
from service.auth import Identity
from service.channels import TEXT, publish_pins_update
from service.db import id_in, lock_row
from service.errors import APIError, field_error, not_found
from service.models import Attachment, Channel, Member, Message, Reaction, Role, Sticker, User, utcnow
from service.permissions import Permission
from service.snowflake import snowflake_from_time, snowflake_time
from service.storage import PendingFiles, delete_after_commit
from service.users import MAX_SNOWFLAKE, cursor, me, parse_snowflake

MAX_CONTENT = 2000
MAX_BOT_CONTENT = 4000
DEFAULT_LIMIT = 50
BULK_DELETE_MAX_AGE = timedelta(days=14)
TEXT_CHANNEL_TYPES = (TEXT, DM, GROUP_DM)
DEFAULT_TYPE, REPLY_TYPE = 0, 19
SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS = 1 << 2, 1 << 12
SETTABLE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS
USER_MENTION = re.compile(r"<@!?(\d{1,20})>")
ROLE_MENTION = re.compile(r"<@&(\d{1,20})>")
EVERYONE_MENTION = re.compile(r"@(everyone|here)\b")


# --- Reading --------------------------------------------------------------------------------


def readable(session, identity: Identity, channel_id: str) -> ChannelAccess:
    """The caller's access to a channel whose history they may read (403 otherwise)."""
    access = channel_access(session, identity, channel_id, allow_private=True)
    access.require(Permission.READ_MESSAGE_HISTORY)
    return access


def message_in(session, access: ChannelAccess, message_id: str) -> Message:
    """The message ``message_id`` of the channel ``access`` is for; 404 ``UNKNOWN_MESSAGE`` otherwise."""
    message = session.get(Message, parse_snowflake(message_id, "message", "UNKNOWN_MESSAGE"))
    if message is None or message.channel_id != access.channel.id:
        raise not_found("UNKNOWN_MESSAGE", "message")
    return message


def _wire(message: Message) -> dict:
    """``serializers.message.dump(message)``, field for field, without marshmallow's per-field work.

    A page is 50 of these; through the schema they took about a sixth of a page's CPU
    (README, "Benchmark"). tests/test_messages_wire.py holds the two to the same output.
    """
    guild_id, edited = message.guild_id, message.edited_at
    return {
        "id": str(message.id), "channel_id": str(message.channel_id),
        "guild_id": None if guild_id is None else str(guild_id), "webhook_id": None,
        "type": message.type, "flags": message.flags, "content": message.content,
        "timestamp": snowflake_time(message.id).isoformat(),
        "edited_timestamp": None if edited is None else edited.isoformat(),
        "pinned": message.pinned_at is not None, "mention_everyone": message.mention_everyone, "tts": message.tts,
        "mention_roles": [str(r) for r in message.mention_roles], "embeds": [dict(e) for e in message.embeds],
        "stickers": [{"id": s} for s in message.sticker_ids], "nonce": message.nonce,
    }


def dump_many(session, messages: list[Message], viewer_id: int, *, fresh: bool = False,
              known_users: dict[int, User] | None = None) -> list[dict]:
    """Wire form of a page of messages, with every related row loaded in batches.

    ``messages`` are ``Message`` objects or plain rows of the messages table: only their columns are read.

    ``fresh`` messages were created in this transaction, so they have no reactions or
    attachments to look up; ``known_users`` are rows the caller already holds.
    """
    if not messages:
        return []
    ids = [m.id for m in messages]
    referenced_ids = {m.referenced_message_id for m in messages if m.referenced_message_id}
    referenced = {m.id: m for m in session.execute(
        select(*Message.__table__.c).where(id_in(session, Message.id, referenced_ids)))} if referenced_ids else {}
    people = {m.author_id for m in [*messages, *referenced.values()]}
    for m in [*messages, *referenced.values()]:
        people.update(int(u) for u in m.mentions)
    users = dict(known_users or {})
    if people - users.keys():
        users.update((u.id, u) for u in session.scalars(select(User).where(id_in(session, User.id, people - users.keys()))))
    reactions: dict[int, dict[str, list]] = {}
    attachments: dict[int, list[Attachment]] = {}
    if not fresh:
        rows = session.execute(
            select(Reaction.message_id, Reaction.emoji_key, func.count(),
                   func.max(case((Reaction.user_id == viewer_id, 1), else_=0)), func.min(Reaction.created_at))
            .where(id_in(session, Reaction.message_id, ids)).group_by(Reaction.message_id, Reaction.emoji_key))
        for message_id, emoji_key, count, mine, first in rows:
            reactions.setdefault(message_id, {})[emoji_key] = [count, bool(mine), first]
        for attachment in session.scalars(select(Attachment).where(id_in(session, Attachment.message_id, ids))
                                          .order_by(Attachment.id)):
            attachments.setdefault(attachment.message_id, []).append(attachment)
    public: dict[int, dict] = {}  # each person serialized once per page, however often they appear

    def person(user_id: int) -> dict:
        if user_id not in public:
            public[user_id] = serializers.user_public.dump(users[user_id])
        return dict(public[user_id])

    def one(message: Message, nested: bool) -> dict:
        data = _wire(message)
        data["author"] = person(message.author_id)
        data["mentions"] = [person(int(u)) for u in message.mentions if int(u) in users]
        data["attachments"] = [attachment_json(a, message.channel_id) for a in attachments.get(message.id, [])]
        ordered = sorted(reactions.get(message.id, {}).items(), key=lambda item: item[1][2])
        data["reactions"] = [{"emoji": serializers.emoji_of_key(key), "count": count, "me": mine}
                             for key, (count, mine, _first) in ordered]
        if message.referenced_message_id:
            data["message_reference"] = {"message_id": str(message.referenced_message_id),
                                         "channel_id": str(message.channel_id),
                                         "guild_id": serializers.iso_id(message.guild_id)}
            target = referenced.get(message.referenced_message_id)
            data["referenced_message"] = one(target, True) if target is not None and not nested else None
        return data

    return [one(m, False) for m in messages]


def dump(session, message: Message, viewer_id: int) -> dict:
    return dump_many(session, [message], viewer_id)[0]


_PAGE_BOUNDS = {
    None: None,
    "before": Message.id < bindparam("cursor"),
    "after": Message.id > bindparam("cursor"),
    "from": Message.id >= bindparam("cursor"),
}


@functools.cache
def _page(bound: str | None, newest_first: bool):
    """The statement for one page of a channel's messages, as plain rows, built once per shape.

    The channel is matched as a range (``BETWEEN id AND id``), not with ``=``, and the order
    names it too: then only the (channel_id, id) index yields rows in that order. With ``=``,
    PostgreSQL may walk the primary key backwards instead, skipping every newer message of other
    channels: cheap in its estimate for a channel holding much of the table, ruinous when that
    channel is quiet and others are busy.
    """
    channel = bindparam("channel_id")
    query = select(*Message.__table__.c).where(Message.channel_id.between(channel, channel))
    if _PAGE_BOUNDS[bound] is not None:
        query = query.where(_PAGE_BOUNDS[bound])
    order = (Message.channel_id.desc(), Message.id.desc()) if newest_first else (Message.channel_id, Message.id)
    return query.order_by(*order).limit(bindparam("limit"))


def _read_page(session, channel_id: int, bound: str | None, cursor_id: int | None, *, newest_first: bool,
               limit: int) -> list:
    return session.execute(_page(bound, newest_first),
                           {"channel_id": channel_id, "cursor": cursor_id, "limit": limit}).all()


def list_messages(session, identity: Identity, channel_id: str, *, limit: int, before: str | None,
                  after: str | None, around: str | None) -> list[dict]:
    if sum(value is not None for value in (before, after, around)) > 1:
        raise field_error("before", "INVALID_QUERY", "Send at most one of before, after and around")
    access = readable(session, identity, channel_id)
    channel = access.channel.id
    if around is not None:  # the message itself and those on either side, newest first
        pivot = cursor(around)
        newer = _read_page(session, channel, "from", pivot, newest_first=False, limit=limit - limit // 2)
        older = _read_page(session, channel, "before", pivot, newest_first=True, limit=limit - len(newer))
        rows = newer[::-1] + older
    elif after is not None:
        rows = _read_page(session, channel, "after", cursor(after), newest_first=False, limit=limit)
        rows.reverse()
    elif before is not None:
        rows = _read_page(session, channel, "before", cursor(before), newest_first=True, limit=limit)
    else:
        rows = _read_page(session, channel, None, None, newest_first=True, limit=limit)
    return dump_many(session, rows, identity.user_id)


def get(session, identity: Identity, channel_id: str, message_id: str) -> dict:
    access = readable(session, identity, channel_id)
    return dump(session, message_in(session, access, message_id), identity.user_id)


# --- Sending --------------------------------------------------------------------------------


def _mentioned_ids(pattern: re.Pattern, content: str) -> list[int]:
    """The distinct ids ``pattern`` finds, in order; digits beyond any snowflake mention nobody."""
    return [i for i in dict.fromkeys(int(found) for found in pattern.findall(content)) if i <= MAX_SNOWFLAKE]


def _mentions(session, access: ChannelAccess, content: str, allowed: dict | None,
              reply_author: int | None) -> tuple[list[int], list[int], bool]:
    """(user ids, role ids, everyone) that this content really mentions, as allowed_mentions permits."""
    guild_id = access.channel.guild_id
    parse = set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
    allowed_users = {int(u) for u in (allowed or {}).get("users", [])}
    allowed_roles = {int(r) for r in (allowed or {}).get("roles", [])}
    users = [u for u in _mentioned_ids(USER_MENTION, content) if "users" in parse or u in allowed_users]
    if reply_author is not None and (allowed is None or allowed.get("replied_user", True)):
        users.append(reply_author)
    if users:  # only people who can see the channel: a guild's members, a DM's recipients
        present = set(access.recipient_ids) if access.is_private else set(session.scalars(
            select(Member.user_id).where(Member.guild_id == guild_id, Member.user_id.in_(users))))
        users = [u for u in dict.fromkeys(users) if u in present]
    roles = [r for r in _mentioned_ids(ROLE_MENTION, content) if "roles" in parse or r in allowed_roles]
    if roles:
        can_ping_all = access.has(Permission.MENTION_EVERYONE)
        rows = session.execute(select(Role.id, Role.mentionable).where(Role.guild_id == guild_id, Role.id.in_(roles)))
        mentionable = {role_id for role_id, flag in rows if flag or can_ping_all}
        roles = [r for r in roles if r in mentionable and r != guild_id]
    everyone = bool(EVERYONE_MENTION.search(content)) and "everyone" in parse \
        and access.has(Permission.MENTION_EVERYONE)
    return users, roles, everyone


def _check_stickers(session, access: ChannelAccess, sticker_ids: list) -> list[str]:
    ids = [parse_snowflake(s, "sticker", "UNKNOWN_STICKER") for s in sticker_ids]
    if not ids:
        return []
    found = set(session.scalars(select(Sticker.id).where(Sticker.id.in_(ids))))
    local = set(session.scalars(select(Sticker.id).where(Sticker.id.in_(ids),
                                                         Sticker.guild_id == access.channel.guild_id)))
    for index, sticker_id in enumerate(ids):
        if sticker_id not in found:
            raise field_error(f"sticker_ids.{index}", "UNKNOWN_STICKER", "Unknown sticker")
        if sticker_id not in local and not access.has(Permission.USE_EXTERNAL_STICKERS):
            raise APIError(403, "MISSING_PERMISSIONS", "Missing permissions", permissions=["USE_EXTERNAL_STICKERS"])
    return [str(i) for i in ids]


def _bypasses_slowmode(access: ChannelAccess) -> bool:
    return access.has(Permission.BYPASS_SLOWMODE) or access.has(Permission.MANAGE_MESSAGES) \
        or access.has(Permission.MANAGE_CHANNELS)


def _slowmode_wait(session, access: ChannelAccess, author_id: int, now: datetime) -> float:
    """Seconds until slowmode lets ``author_id`` send in this channel again; 0 when they may now."""
    seconds = access.channel.rate_limit_per_user or 0
    if not seconds or _bypasses_slowmode(access):
        return 0.0
    last = session.scalar(select(func.max(Message.id)).where(Message.channel_id == access.channel.id,
                                                             Message.author_id == author_id))
    if last is None:
        return 0.0
    return max(0.0, (snowflake_time(last) + timedelta(seconds=seconds) - now).total_seconds())


def slowmode_state(session, identity: Identity, channel_id: str) -> dict:
    """The caller's slowmode countdown in a channel, so each of their devices can show the same one."""
    access = channel_access(session, identity, channel_id, allow_private=True)
    now = utcnow()
    wait = _slowmode_wait(session, access, identity.user_id, now)
    return {"rate_limit_per_user": access.channel.rate_limit_per_user or 0,
            "retry_after_ms": math.ceil(wait * 1000),
            "next_send_allowed_at": (now + timedelta(seconds=wait)).isoformat() if wait else None,
            "can_bypass": _bypasses_slowmode(access)}


def _slowmode(session, access: ChannelAccess, author_id: int) -> None:
    wait = _slowmode_wait(session, access, author_id, utcnow())
    if wait > 0:
        retry = round(wait, 3)
        raise APIError(429, "SLOWMODE_RATE_LIMITED", "This channel is in slowmode", retry_after=retry, **{"global": False},
                       headers={"Retry-After": str(max(1, int(wait + 0.999)))})


def require_not_blocked(session, access: ChannelAccess, user_id: int) -> None:
    """In a DM, a block either way ends sending (and typing)."""
    if access.channel.type != DM:
        return
    other = next((r for r in access.recipient_ids if r != user_id), None)
    if other is not None and relationships.blocked_between(session, user_id, other):
        raise APIError(403, "CANNOT_SEND_MESSAGES_TO_USER", "You cannot send messages to this user")


def new_message_id(rt, session, channel_id: int) -> int:
    """An id for a new message in this channel, drawn while holding the channel's row lock (kept until
    commit): messages then commit in id order, so a client following the channel with ``after`` never
    skips one that committed after it had seen a larger id, and ``last_message_id`` only grows. Within
    one process, that is: another process draws from its own generator."""
    lock_row(session, Channel, channel_id)
    return rt.new_id()


def send(rt, session, identity: Identity, channel_id: str, body: dict, uploads: Sequence[Upload] = ()) -> dict:
    """Send ``body`` (the JSON form, or a multipart form's payload_json) with the multipart form's files."""
    access = channel_access(session, identity, channel_id, allow_private=True)
    if access.channel.type not in TEXT_CHANNEL_TYPES:
        raise APIError(400, "CANNOT_SEND_MESSAGES_IN_NON_TEXT_CHANNEL", "Messages go to text channels")
    access.require(Permission.SEND_MESSAGES)
    if uploads:
        access.require(Permission.ATTACH_FILES)
    require_not_blocked(session, access, identity.user_id)
    author = me(session, identity)
    content = body.get("content") or ""
    limit = MAX_BOT_CONTENT if author.bot else MAX_CONTENT
    if len(content) > limit:
        raise field_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length")
    embeds = body.get("embeds") or []
    if embeds:
        access.require(Permission.EMBED_LINKS)
    sticker_ids = _check_stickers(session, access, body.get("sticker_ids") or [])
    if not content.strip() and not embeds and not sticker_ids and not uploads:
        raise APIError(400, "CANNOT_SEND_EMPTY_MESSAGE", "Cannot send an empty message")
    nonce = None if body.get("nonce") is None else str(body["nonce"])
    enforce_nonce = nonce is not None and bool(body.get("enforce_nonce"))
    # The nonce and slowmode checks run under the channel's lock (taken with the id), so two racing
    # sends cannot both pass them; otherwise the lock waits until the files are stored.
    message_id = new_message_id(rt, session, access.channel.id) \
        if enforce_nonce or (access.channel.rate_limit_per_user and not _bypasses_slowmode(access)) else None
    if enforce_nonce:
        earlier = session.scalar(select(Message).where(Message.channel_id == access.channel.id,
                                                       Message.author_id == author.id, Message.nonce == nonce)
                                 .order_by(Message.id).limit(1))
        if earlier is not None:
            return dump(session, earlier, author.id)
    _slowmode(session, access, author.id)
    reference, reply_author = None, None
    if body.get("message_reference"):
        reference = session.get(Message, parse_snowflake(body["message_reference"]["message_id"], "message",
                                                         "UNKNOWN_MESSAGE"))
        if reference is None or reference.channel_id != access.channel.id:
            raise field_error("message_reference.message_id", "UNKNOWN_MESSAGE", "Unknown message")
        access.require(Permission.READ_MESSAGE_HISTORY)
        reply_author = reference.author_id
    users, roles, everyone = _mentions(session, access, content, body.get("allowed_mentions"), reply_author)
    with PendingFiles(rt.storage) as pending:  # stored files are removed again unless the message commits
        # Files are read, checked and stored before the message takes the channel's lock where it can.
        described = body.get("attachments") or []
        files = store_files(rt, pending, access.channel.id, uploads, described) if uploads or described else []
        if message_id is None:
            message_id = new_message_id(rt, session, access.channel.id)
        message = Message(
            id=message_id, channel_id=access.channel.id, guild_id=access.channel.guild_id, author_id=author.id,
            type=REPLY_TYPE if reference else DEFAULT_TYPE, content=content,
            flags=int(body.get("flags") or 0) & SETTABLE_FLAGS,
            tts=bool(body.get("tts")) and access.has(Permission.SEND_TTS_MESSAGES), nonce=nonce,
            mention_everyone=everyone, mentions=[str(u) for u in users], mention_roles=[str(r) for r in roles],
            embeds=embeds, sticker_ids=sticker_ids, referenced_message_id=reference.id if reference else None,
        )
        session.add(message)
        session.execute(Channel.__table__.update().where(Channel.id == access.channel.id)
                        .values(last_message_id=message.id))
        for attachment in files:
            attachment.message_id = message.id
        session.add_all(files)
        session.flush()
        mentions.record(session, message)
        # A new message has no reactions yet, and its author and files are at hand: no queries for them.
        data = dump_many(session, [message], author.id, fresh=True, known_users={author.id: author})[0]
        data["attachments"] = [attachment_json(a, message.channel_id) for a in files]
        events.publish(session, "MESSAGE_CREATE", {**data, "guild_id": serializers.iso_id(message.guild_id),
                                                   "channel_type": access.channel.type},
                       guild_id=message.guild_id, channel_id=message.channel_id)
        session.commit()
    return data


# --- Changing -------------------------------------------------------------------------------


def edit(session, identity: Identity, channel_id: str, message_id: str, body: dict) -> dict:
    access = channel_access(session, identity, channel_id, allow_private=True)
    message = message_in(session, access, message_id)
    if message.author_id != identity.user_id:
        # Others may only hide a message's embeds, with MANAGE_MESSAGES; nothing else.
        if set(body) - {"flags"} or not access.has(Permission.MANAGE_MESSAGES):
            raise APIError(403, "CANNOT_EDIT_OTHER_USER_MESSAGE", "You can only edit your own messages")
        message.flags = (message.flags & ~SUPPRESS_EMBEDS) | (int(body.get("flags") or 0) & SUPPRESS_EMBEDS)
    else:
        if "content" in body:
            content = body["content"] or ""
            limit = MAX_BOT_CONTENT if me(session, identity).bot else MAX_CONTENT
            if len(content) > limit:
                raise field_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length")
            message.content = content
            users, roles, everyone = _mentions(session, access, content, body.get("allowed_mentions"), None)
            message.mentions, message.mention_roles = [str(u) for u in users], [str(r) for r in roles]
            message.mention_everyone = everyone
            mentions.rerecord(session, message)
        if "embeds" in body:
            if body["embeds"]:
                access.require(Permission.EMBED_LINKS)
            message.embeds = body["embeds"] or []
        if body.get("flags") is not None:
            message.flags = int(body["flags"]) & SETTABLE_FLAGS
        if not message.content.strip() and not message.embeds and not message.sticker_ids:
            raise APIError(400, "CANNOT_SEND_EMPTY_MESSAGE", "Cannot send an empty message")
    message.edited_at = utcnow()
    session.flush()
    data = dump(session, message, identity.user_id)
    events.publish(session, "MESSAGE_UPDATE", {**data, "guild_id": serializers.iso_id(message.guild_id)},
                   guild_id=message.guild_id, channel_id=message.channel_id)
    session.commit()
    return data


def remove(rt, session, identity: Identity, channel_id: str, message_id: str, reason: str | None) -> None:
    access = channel_access(session, identity, channel_id, allow_private=True)
    message = message_in(session, access, message_id)
    if message.author_id != identity.user_id:
        access.require(Permission.MANAGE_MESSAGES)
        audit.record(rt, session, message.guild_id, identity.user_id, Action.MESSAGE_DELETE, message.author_id,
                     reason=reason, options={"channel_id": str(message.channel_id), "count": "1"})
    delete_after_commit(session, *storage_keys_of(session, Message.id == message.id))
    session.delete(message)
    events.publish(session, "MESSAGE_DELETE", {"id": str(message.id), "channel_id": str(message.channel_id),
                                               "guild_id": serializers.iso_id(message.guild_id)},
                   guild_id=message.guild_id, channel_id=message.channel_id)
    if message.pinned_at is not None:  # its pin went with it
        session.flush()
        publish_pins_update(session, message.channel_id, message.guild_id)
    session.commit()


def delete_attachment(rt, session, identity: Identity, channel_id: str, message_id: str, attachment_id: str) -> None:
    """Take one file off a message. Its author may, anyone else needs MANAGE_MESSAGES; a message
    that would be left with nothing to show is refused (delete the message instead)."""
    access = channel_access(session, identity, channel_id, allow_private=True)
    message = message_in(session, access, message_id)
    if message.author_id != identity.user_id:
        access.require(Permission.MANAGE_MESSAGES)
    attachment = session.get(Attachment, parse_snowflake(attachment_id, "attachment", "NOT_FOUND"))
    if attachment is None or attachment.message_id != message.id:
        raise not_found("NOT_FOUND", "attachment")
    lock_row(session, Message, message.id)  # two deletes racing for the last two files must not both pass
    others = session.scalar(select(func.count()).select_from(Attachment)
                            .where(Attachment.message_id == message.id, Attachment.id != attachment.id))
    if not others and not message.content.strip() and not message.embeds and not message.sticker_ids:
        raise APIError(400, "CANNOT_SEND_EMPTY_MESSAGE", "The message would be empty; delete the message instead")
    session.delete(attachment)
    delete_after_commit(session, storage_key(message.channel_id, attachment.id))
    message.edited_at = utcnow()
    session.flush()
    data = dump(session, message, identity.user_id)
    events.publish(session, "MESSAGE_UPDATE", {**data, "guild_id": serializers.iso_id(message.guild_id)},
                   guild_id=message.guild_id, channel_id=message.channel_id)
    session.commit()


def bulk_delete(rt, session, identity: Identity, channel_id: str, body: dict, reason: str | None) -> None:
    access = channel_access(session, identity, channel_id, allow_private=True)
    access.require(Permission.MANAGE_MESSAGES)
    ids = list(dict.fromkeys(parse_snowflake(m, "message", "UNKNOWN_MESSAGE") for m in body["messages"]))
    if len(ids) < 2:
        raise field_error("messages", "BASE_TYPE_BAD_LENGTH", "Send 2 to 100 distinct message ids")
    oldest = snowflake_from_time(utcnow() - BULK_DELETE_MAX_AGE)
    for index, message_id in enumerate(ids):
        if message_id < oldest:
            raise field_error(f"messages.{index}", "MESSAGE_TOO_OLD", "Messages older than 14 days cannot be bulk deleted")
    found = list(session.scalars(select(Message.id).where(Message.id.in_(ids),
                                                          Message.channel_id == access.channel.id)))
    if found:
        delete_in_channel(session, access.channel.id, access.channel.guild_id, found)
        audit.record(rt, session, access.channel.guild_id, identity.user_id, Action.MESSAGE_BULK_DELETE,
                     access.channel.id, reason=reason, options={"count": str(len(found))})
    session.commit()


def delete_in_channel(session, channel_id: int, guild_id: int | None, ids: list[int]) -> None:
    """Delete these messages of one channel and announce them in one MESSAGE_DELETE_BULK (on commit),
    and in CHANNEL_PINS_UPDATE when pinned ones were among them."""
    these = id_in(session, Message.id, ids)
    delete_after_commit(session, *storage_keys_of(session, these))
    pinned_at = session.execute(delete(Message).where(these).returning(Message.pinned_at)).scalars().all()
    events.publish(session, "MESSAGE_DELETE_BULK",
                   {"ids": [str(i) for i in sorted(ids)], "channel_id": str(channel_id),
                    "guild_id": serializers.iso_id(guild_id)},
                   guild_id=guild_id, channel_id=channel_id)
    if any(moment is not None for moment in pinned_at):
        publish_pins_update(session, channel_id, guild_id)


def typing(session, identity: Identity, channel_id: str) -> None:
    access = channel_access(session, identity, channel_id, allow_private=True)
    access.require(Permission.SEND_MESSAGES)
    require_not_blocked(session, access, identity.user_id)
    payload = {"channel_id": str(access.channel.id), "user_id": str(identity.user_id),
               "timestamp": int(utcnow().timestamp()), "guild_id": serializers.iso_id(access.channel.guild_id)}
    events.publish(session, "TYPING_START", payload, guild_id=access.channel.guild_id, channel_id=access.channel.id)
    session.commit()
