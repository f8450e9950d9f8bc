"""Reactions on messages: add, remove (one's own, someone else's, one emoji, all), list who reacted.

A reaction is a row (message, emoji key, user). The key is the unicode emoji itself, or
``name:id`` for a custom emoji; messages aggregate the rows into ``reactions: [{emoji, count,
me}]`` (``service.messages.dump_many``). A custom emoji is found by its id whatever name the
path gives, so a renamed emoji keeps adding to the same reaction.

The emoji arrives in the path percent-encoded (``%F0%9F%91%8D``); the server decodes it before
routing, so handlers see the text. Adding validates it (a unicode emoji must look like one, a
custom emoji must exist); removing and listing take any text and simply match nothing.

In DMs and group DMs recipients react, remove their own reactions and list who reacted; nobody
holds MANAGE_MESSAGES there, so nobody removes anyone else's. In a DM, a block either way ends
reacting as it ends sending.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from service import events, messages, serializers
from service.access import ChannelAccess, missing_permissions, timed_out
from service.auth import Identity
from service.errors import APIError, field_error, limit_reached
from service.models import Emoji, Message, Reaction, User, utcnow
from service.permissions import Permission
from service.users import MAX_SNOWFLAKE, cursor, me, parse_snowflake

MAX_REACTIONS = 20  # distinct emoji on one message
DEFAULT_USERS_LIMIT = 25
MAX_UNICODE_LENGTH = 32  # code points; the longest real sequences (ZWJ families, tag flags) are far shorter
CUSTOM_EMOJI = re.compile(r"^(.+):([0-9]{1,20})$", re.DOTALL)
KEYCAP_BASES = frozenset("0123456789#*")
KEYCAP_MARKS = frozenset("\ufe0f\u20e3")
# Emoji that Unicode files under letters or punctuation rather than symbols.
NON_SYMBOL_EMOJI = frozenset("\u203c\u2049\u2139\u3030\u303d")
JOINERS = frozenset("\u200d\ufe0e\ufe0f\u20e3")


@dataclass(frozen=True)
class ParsedEmoji:
    name: str
    id: int | None = None

    @property
    def custom(self) -> bool:
        return self.id is not None


def plausible_unicode_emoji(text: str) -> bool:
    """True for text made only of emoji code points: symbols, with joiners, variation selectors,
    skin-tone modifiers, keycaps and tag sequences. Refuses letters, digits, spaces and punctuation,
    so random text is not taken for an emoji."""
    if not text or len(text) > MAX_UNICODE_LENGTH:
        return False
    has_symbol = False
    for index, char in enumerate(text):
        code = ord(char)
        if char in KEYCAP_BASES:  # 1️⃣, #️⃣: an ASCII base only as the start of a keycap
            if text[index + 1:index + 2] not in KEYCAP_MARKS:
                return False
            has_symbol = True
        elif code < 0x80:
            return False
        elif char in JOINERS or 0xE0020 <= code <= 0xE007F:  # joiners, selectors, keycap, tags
            continue
        elif char in NON_SYMBOL_EMOJI or unicodedata.category(char) in ("So", "Sk", "Sm"):
            has_symbol = True
        else:
            return False
    return has_symbol


def parse(raw: str, *, strict: bool = True) -> ParsedEmoji | None:
    """The emoji a path names: ``name:id`` or unicode. Strictly (for adding), None unless the unicode
    text looks like an emoji; leniently (for removing and listing), any text, which may match nothing."""
    match = CUSTOM_EMOJI.match(raw)
    if match:
        emoji_id = int(match.group(2))
        if emoji_id > MAX_SNOWFLAKE:
            return None
        return ParsedEmoji(match.group(1), emoji_id)
    return ParsedEmoji(raw) if not strict or plausible_unicode_emoji(raw) else None


def _custom_key_filter(emoji_id: int):
    # Unicode keys never contain ASCII, so only custom keys can end in ":<digits>".
    return Reaction.emoji_key.like(f"%:{emoji_id}")


def _key_filter(parsed: ParsedEmoji):
    return _custom_key_filter(parsed.id) if parsed.custom else Reaction.emoji_key == parsed.name


def _existing_key(session, message_id: int, parsed: ParsedEmoji) -> str | None:
    """The key this emoji already has on the message (a custom emoji keeps the name it was added with)."""
    return session.scalar(select(Reaction.emoji_key).where(Reaction.message_id == message_id, _key_filter(parsed))
                          .limit(1))


def event_emoji(key: str, animated: bool | None = None) -> dict:
    """The emoji as gateway payloads carry it: ``id`` (and ``animated``) only for a custom emoji."""
    emoji = serializers.emoji_of_key(key)
    if emoji["id"] is None:
        return {"name": emoji["name"]}
    if animated is not None:
        emoji["animated"] = animated
    return emoji


# --- Shared steps -------------------------------------------------------------------------


def _base_payload(message: Message) -> dict:
    return {"channel_id": str(message.channel_id), "message_id": str(message.id),
            "guild_id": serializers.iso_id(message.guild_id)}


def _publish(session, name: str, message: Message, data: dict) -> None:
    events.publish(session, name, {**_base_payload(message), **data}, guild_id=message.guild_id,
                   channel_id=message.channel_id)


def _require_manage(access: ChannelAccess) -> None:
    access.require(Permission.MANAGE_MESSAGES)


# --- Adding -------------------------------------------------------------------------------


def _new_custom_key(session, access: ChannelAccess, parsed: ParsedEmoji) -> tuple[str, bool]:
    emoji = session.get(Emoji, parsed.id)
    if emoji is None:
        raise field_error("emoji", "UNKNOWN_EMOJI", "Unknown emoji")
    if emoji.guild_id != access.channel.guild_id and not access.has(Permission.USE_EXTERNAL_EMOJIS):
        raise missing_permissions(Permission.USE_EXTERNAL_EMOJIS)
    return f"{emoji.name}:{emoji.id}", bool(emoji.animated)


def add(session, identity: Identity, channel_id: str, message_id: str, raw_emoji: str,
        session_id: str | None = None) -> None:
    access = messages.readable(session, identity, channel_id)
    message = messages.message_in(session, access, message_id)
    if access.guild is not None and timed_out(access.guild.member) and not access.guild.is_admin:
        raise APIError(403, "COMMUNICATION_DISABLED", "You are timed out in this guild")
    messages.require_not_blocked(session, access, identity.user_id)
    parsed = parse(raw_emoji)
    if parsed is None:
        raise field_error("emoji", "NOT_A_VALID_UNICODE_EMOJI", "Not a valid emoji")
    key = _existing_key(session, message.id, parsed)
    animated = None
    if key is not None:  # joining a reaction someone already made needs no more than reading the message
        mine = session.get(Reaction, (message.id, key, identity.user_id))
        if mine is not None:
            return
        if parsed.custom:
            emoji = session.get(Emoji, parsed.id)
            animated = bool(emoji.animated) if emoji is not None else None
    else:
        access.require(Permission.ADD_REACTIONS)
        if parsed.custom:
            key, animated = _new_custom_key(session, access, parsed)
        else:
            key = parsed.name
        distinct = session.scalar(select(func.count(func.distinct(Reaction.emoji_key)))
                                  .where(Reaction.message_id == message.id))
        if distinct >= MAX_REACTIONS:
            raise limit_reached("MAX_REACTIONS", "reactions on this message", MAX_REACTIONS)
    session.add(Reaction(message_id=message.id, emoji_key=key, user_id=identity.user_id, created_at=utcnow()))
    try:
        session.flush()
    except IntegrityError:  # the same reaction, added by a concurrent request of the same user
        session.rollback()
        return
    data = {"emoji": event_emoji(key, animated), "user_id": str(identity.user_id)}
    if access.guild is not None:  # a DM has no members
        data["member"] = serializers.serialize_member(access.guild.member, me(session, identity),
                                                      access.guild.member_role_ids)
    if session_id:
        data["session_id"] = session_id
    _publish(session, "MESSAGE_REACTION_ADD", message, data)
    session.commit()


# --- Removing -----------------------------------------------------------------------------


def _remove_user_reaction(session, message: Message, parsed: ParsedEmoji | None, user_id: int,
                          session_id: str | None) -> None:
    if parsed is None:
        return
    key = session.scalar(select(Reaction.emoji_key).where(Reaction.message_id == message.id,
                                                          Reaction.user_id == user_id, _key_filter(parsed)).limit(1))
    if key is None:
        return
    session.execute(delete(Reaction).where(Reaction.message_id == message.id, Reaction.emoji_key == key,
                                           Reaction.user_id == user_id))
    data = {"emoji": event_emoji(key), "user_id": str(user_id)}
    if session_id:
        data["session_id"] = session_id
    _publish(session, "MESSAGE_REACTION_REMOVE", message, data)
    session.commit()


def remove_own(session, identity: Identity, channel_id: str, message_id: str, raw_emoji: str,
               session_id: str | None = None) -> None:
    access = messages.readable(session, identity, channel_id)
    message = messages.message_in(session, access, message_id)
    _remove_user_reaction(session, message, parse(raw_emoji, strict=False), identity.user_id, session_id)


def remove_user(session, identity: Identity, channel_id: str, message_id: str, raw_emoji: str, target_id: str,
                session_id: str | None = None) -> None:
    access = messages.readable(session, identity, channel_id)
    target = parse_snowflake(target_id, "user", "UNKNOWN_USER")
    if target != identity.user_id:
        _require_manage(access)
    message = messages.message_in(session, access, message_id)
    _remove_user_reaction(session, message, parse(raw_emoji, strict=False), target, session_id)


def remove_emoji(session, identity: Identity, channel_id: str, message_id: str, raw_emoji: str) -> None:
    access = messages.readable(session, identity, channel_id)
    _require_manage(access)
    message = messages.message_in(session, access, message_id)
    parsed = parse(raw_emoji, strict=False)
    key = _existing_key(session, message.id, parsed) if parsed is not None else None
    if key is None:
        return
    session.execute(delete(Reaction).where(Reaction.message_id == message.id, Reaction.emoji_key == key))
    _publish(session, "MESSAGE_REACTION_REMOVE_EMOJI", message, {"emoji": event_emoji(key)})
    session.commit()


def remove_all(session, identity: Identity, channel_id: str, message_id: str) -> None:
    access = messages.readable(session, identity, channel_id)
    _require_manage(access)
    message = messages.message_in(session, access, message_id)
    removed = session.execute(delete(Reaction).where(Reaction.message_id == message.id)).rowcount
    if not removed:
        return
    _publish(session, "MESSAGE_REACTION_REMOVE_ALL", message, {})
    session.commit()


# --- Reading ------------------------------------------------------------------------------


def _users_page(session, identity: Identity, channel_id: str, message_id: str, raw_emoji: str, limit: int,
                after: str | None) -> tuple[list[dict], bool]:
    access = messages.readable(session, identity, channel_id)
    message = messages.message_in(session, access, message_id)
    parsed = parse(raw_emoji, strict=False)
    key = _existing_key(session, message.id, parsed) if parsed is not None else None
    if key is None:
        return [], False
    query = select(User).join(Reaction, Reaction.user_id == User.id) \
        .where(Reaction.message_id == message.id, Reaction.emoji_key == key)
    if after is not None:
        query = query.where(User.id > cursor(after))
    rows = list(session.scalars(query.order_by(User.id).limit(limit + 1)))
    return [serializers.user_public.dump(u) for u in rows[:limit]], len(rows) > limit


def list_users(session, identity: Identity, channel_id: str, message_id: str, raw_emoji: str, *,
               limit: int = DEFAULT_USERS_LIMIT, after: str | None = None) -> list[dict]:
    users, _more = _users_page(session, identity, channel_id, message_id, raw_emoji, limit, after)
    return users


def list_users_page(session, identity: Identity, channel_id: str, message_id: str, raw_emoji: str, *,
                    limit: int = DEFAULT_USERS_LIMIT, after: str | None = None) -> dict:
    users, more = _users_page(session, identity, channel_id, message_id, raw_emoji, limit, after)
    return {"items": users, "has_more": more, "next_after": users[-1]["id"] if more else None}
