"""The mentions inbox (GET /users/@me/mentions): recent messages that mention the caller.

Sending or editing a message records whom it mentions in ``message_mentions``, with one bulk
INSERT and only when it mentions anyone: users by their id, roles by theirs, and @everyone and
@here by the guild's id (the @everyone role's id). A role or everyone mention is one row per
message, never one per member, so pinging a guild of 10,000 costs one row; whom it reaches is
worked out when an inbox is read, from the reader's roles and guilds at that moment. An inbox
lists, newest first, the messages whose rows target the reader, one of their roles or one of
their guilds, in channels they may read now (``service.search``), written by someone else and
not dismissed by the reader (``mention_dismissals``). Deleting a message deletes its rows
(foreign keys, ON DELETE CASCADE).
"""

from __future__ import annotations

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service import events, messages, search
from service.auth import Identity
from service.models import Member, MemberRole, MentionDismissal, Message, MessageMention
from service.users import MAX_SNOWFLAKE, cursor

# --- Keeping the table in step with messages ------------------------------------------------


def record(session, message: Message) -> None:
    """Store whom a new message mentions (its ``mentions``, ``mention_roles``, ``mention_everyone``)."""
    targets = [int(u) for u in message.mentions] + [int(r) for r in message.mention_roles]
    if message.mention_everyone and message.guild_id is not None:
        targets.append(message.guild_id)
    if targets:
        session.execute(insert(MessageMention), [
            {"target_id": target, "message_id": message.id, "channel_id": message.channel_id}
            for target in dict.fromkeys(targets)])


def rerecord(session, message: Message) -> None:
    """After an edit of the content, whom the message mentions may have changed."""
    session.execute(delete(MessageMention).where(MessageMention.message_id == message.id))
    record(session, message)


# --- The inbox ------------------------------------------------------------------------------


def _targets(session, user_id: int, *, roles: bool, everyone: bool) -> list[int]:
    """Whom a mention of ``user_id`` may name: them, and (as asked) their roles and their guilds."""
    targets = [user_id]
    if roles:
        targets += session.scalars(select(MemberRole.role_id).where(MemberRole.user_id == user_id))
    if everyone:
        targets += session.scalars(select(Member.guild_id).where(Member.user_id == user_id))
    return targets


def _not_dismissed(user_id: int):
    return ~exists().where(MentionDismissal.user_id == user_id, MentionDismissal.message_id == MessageMention.message_id)


def list_mentions(session, identity: Identity, *, limit: int, roles: bool, everyone: bool, guilds: bool,
                  before: str | None) -> list[dict]:
    user_id = identity.user_id
    readable = search.private_channels(session, user_id)
    if guilds:
        readable.update(search.readable_guild_channels(session, user_id))
    if not readable:
        return []
    # Only guilds have roles and @everyone: an inbox of DMs alone skips looking them up.
    targets = _targets(session, user_id, roles=roles and guilds, everyone=everyone and guilds)
    newest = (select(MessageMention.message_id).join(Message, Message.id == MessageMention.message_id)
              .where(MessageMention.target_id.in_(targets), search.in_channels(MessageMention.channel_id, readable),
                     Message.author_id != user_id, _not_dismissed(user_id)))
    if before is not None:
        newest = newest.where(MessageMention.message_id < cursor(before))
    # A message may name the reader twice (directly and by a role): distinct ids first, then the
    # rows, whose JSON columns PostgreSQL cannot compare for DISTINCT.
    ids = list(session.scalars(newest.distinct().order_by(MessageMention.message_id.desc()).limit(limit)))
    rows = list(session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id.desc()))) if ids else []
    return messages.dump_many(session, rows, user_id)


def _dismiss(session, user_id: int, message_ids: list[int]) -> list[int]:
    """Take these messages out of ``user_id``'s inbox; answers those that were in it until now."""
    targets = _targets(session, user_id, roles=True, everyone=True)
    newly = sorted(set(session.scalars(select(MessageMention.message_id).where(
        MessageMention.target_id.in_(targets), MessageMention.message_id.in_(message_ids), _not_dismissed(user_id)))))
    if newly:  # ignoring conflicts: a concurrent request may have dismissed the same ones
        upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(upsert(MentionDismissal).values([{"user_id": user_id, "message_id": m} for m in newly])
                        .on_conflict_do_nothing())
    return newly


def mark_read(session, identity: Identity, body: dict) -> None:
    """Ids that are not mentions of the caller are passed over, as a bulk acknowledgement does."""
    ids = [int(m) for m in body["message_ids"] if 0 <= int(m) <= MAX_SNOWFLAKE]
    for message_id in _dismiss(session, identity.user_id, ids) if ids else ():  # each device drops it, as on remove
        events.publish(session, "RECENT_MENTION_DELETE", {"message_id": str(message_id)}, user_ids=(identity.user_id,))
    session.commit()


def remove(session, identity: Identity, message_id: str) -> None:
    """Idempotent: removing a mention that is not (or no longer) in the inbox changes nothing."""
    target = int(message_id)
    if target <= MAX_SNOWFLAKE and _dismiss(session, identity.user_id, [target]):
        events.publish(session, "RECENT_MENTION_DELETE", {"message_id": str(target)}, user_ids=(identity.user_id,))
    session.commit()
