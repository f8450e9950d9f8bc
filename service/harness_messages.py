"""Test harness for messages: seed a channel's history in one batch, or empty it. Never in production.

Seeding writes rows the way ``messages.send`` stores them, but in bulk (one executemany),
without events, slowmode or rate limits, so a test can build a long or old history
(several 10-day buckets) in one request and then read it back through the public API.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select, update

from service import attachments, storage
from service.errors import FieldError, invalid_form, not_found
from service.models import Channel, Message, User, utcnow
from service.snowflake import FLUXER_EPOCH_MS, SEQUENCE_BITS, TIMESTAMP_SHIFT, snowflake_time
from service.users import MAX_SNOWFLAKE, parse_snowflake

MAX_SEED = 10_000
BUCKET_MS = 10 * 24 * 60 * 60 * 1000  # 864,000,000 ms: ten days
INDEX_MASK = (1 << SEQUENCE_BITS) - 1
MAX_TIMESTAMP_MS = MAX_SNOWFLAKE >> TIMESTAMP_SHIFT  # the newest moment a signed 64-bit snowflake holds


def bucket_of(message_id: int) -> int:
    """The message's 10-day bucket: milliseconds since the Fluxer epoch, in units of ten days."""
    return (message_id >> TIMESTAMP_SHIFT) // BUCKET_MS


def _channel(session, channel_id) -> Channel:
    channel = session.get(Channel, parse_snowflake(channel_id, "channel", "UNKNOWN_CHANNEL"))
    if channel is None:
        raise not_found("UNKNOWN_CHANNEL", "channel")
    return channel


def _user_id(value, path: str, errors: list[FieldError]) -> int | None:
    if value is None:
        return None
    number = int(value)
    if not 0 <= number <= MAX_SNOWFLAKE:
        errors.append(FieldError(path, "UNKNOWN_USER", "Unknown user"))
        return None
    return number


def _message_id(item: dict, index: int, now: datetime, errors: list[FieldError]) -> int | None:
    if item.get("message_id") is not None:
        number = int(item["message_id"])
        if not 0 < number <= MAX_SNOWFLAKE:
            errors.append(FieldError(f"messages.{index}.message_id", "INVALID_SNOWFLAKE",
                                     f"Must be between 1 and {MAX_SNOWFLAKE}"))
            return None
        return number
    moment = now
    if item.get("timestamp") is not None:
        moment = datetime.fromisoformat(item["timestamp"])
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    ms = int(moment.timestamp() * 1000) - FLUXER_EPOCH_MS
    if not 0 <= ms <= MAX_TIMESTAMP_MS:
        errors.append(FieldError(f"messages.{index}.timestamp", "TIMESTAMP_OUT_OF_RANGE",
                                 "Must be after 2015-01-01T00:00:00Z and fit in a snowflake"))
        return None
    return (ms << TIMESTAMP_SHIFT) | (index & INDEX_MASK)


def seed(session, body: dict) -> dict:
    items = body.get("messages") or []
    if len(items) > MAX_SEED:
        raise invalid_form([FieldError("messages", "BASE_TYPE_BAD_LENGTH", f"Send at most {MAX_SEED} messages")])
    channel = _channel(session, body["channel_id"])
    errors: list[FieldError] = []
    default_author = _user_id(body.get("author_id"), "author_id", errors)
    now = utcnow()
    rows, seen = [], {}
    for index, item in enumerate(items):
        message_id = _message_id(item, index, now, errors)
        if item.get("author_id") is not None:
            author = _user_id(item["author_id"], f"messages.{index}.author_id", errors)
        else:
            author = default_author
            if body.get("author_id") is None:
                errors.append(FieldError(f"messages.{index}.author_id", "BASE_TYPE_REQUIRED",
                                         "Give this message or the request an author_id"))
        if message_id is not None:
            if message_id in seen:
                errors.append(FieldError(f"messages.{index}.message_id", "DUPLICATE_MESSAGE_ID",
                                         f"Same id as messages.{seen[message_id]}"))
            seen.setdefault(message_id, index)
        rows.append({"id": message_id, "author_id": author, "content": item.get("content", f"message {index}")})
    if errors:
        raise invalid_form(errors)

    author_ids = {row["author_id"] for row in rows} | ({default_author} if default_author is not None else set())
    known = set(session.scalars(select(User.id).where(User.id.in_(author_ids)))) if author_ids else set()
    if default_author is not None and default_author not in known:
        errors.append(FieldError("author_id", "UNKNOWN_USER", "Unknown user"))
    for index, (item, row) in enumerate(zip(items, rows, strict=True)):
        if item.get("author_id") is not None and row["author_id"] not in known:
            errors.append(FieldError(f"messages.{index}.author_id", "UNKNOWN_USER", "Unknown user"))
    if errors:
        raise invalid_form(errors)

    before = channel.last_message_id
    try:
        if body.get("clear_existing"):
            storage.delete_after_commit(session, *attachments.storage_keys_of(session, Message.channel_id == channel.id))
            session.execute(delete(Message).where(Message.channel_id == channel.id))
        taken = set(session.scalars(select(Message.id).where(Message.id.in_(list(seen))))) if seen else set()
        if taken:
            raise invalid_form([FieldError(f"messages.{index}.message_id", "MESSAGE_ALREADY_EXISTS",
                                           "A message with this id already exists")
                                for index, row in enumerate(rows) if row["id"] in taken])
        if rows:
            session.execute(insert(Message.__table__), [
                {"id": row["id"], "channel_id": channel.id, "guild_id": channel.guild_id, "author_id": row["author_id"],
                 "type": 0, "content": row["content"], "flags": 0, "tts": False, "nonce": None,
                 "mention_everyone": False, "mentions": [], "mention_roles": [], "embeds": [], "sticker_ids": [],
                 "referenced_message_id": None, "pinned_at": None, "edited_at": None}
                for row in rows
            ])
        after = session.scalar(select(func.max(Message.id)).where(Message.channel_id == channel.id))
        if after != before:
            session.execute(update(Channel).where(Channel.id == channel.id).values(last_message_id=after))
        session.commit()
    except BaseException:
        session.rollback()
        raise

    buckets = sorted({bucket_of(row["id"]) for row in rows}, reverse=True)
    return {
        "messages": [{"message_id": str(row["id"]), "bucket": bucket_of(row["id"]),
                      "timestamp": snowflake_time(row["id"]).isoformat()} for row in rows],
        "buckets_populated": buckets,
        "channel_state_updated": after != before,
    }


def clear(session, channel_id: str) -> dict:
    channel = _channel(session, channel_id)
    storage.delete_after_commit(session, *attachments.storage_keys_of(session, Message.channel_id == channel.id))
    session.execute(delete(Message).where(Message.channel_id == channel.id))
    session.execute(update(Channel).where(Channel.id == channel.id).values(last_message_id=None))
    session.commit()
    return {"channel_id": str(channel.id), "cleared": True}
