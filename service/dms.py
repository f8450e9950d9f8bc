"""DMs and group DMs: open one, list them, add and remove group DM recipients.

A DM (type 1) joins exactly two people, and a pair has at most one: opening it again answers
the same channel. There is no unique constraint to lean on (recipients are rows of their own),
so opening locks both users' rows first and only then looks for the pair's DM, oldest first:
two people opening their DM at the same moment get the same channel. A group DM (type 3) holds
up to ``MAX_GROUP_DM_RECIPIENTS`` people, its creator (the owner) included, all of them the
creator's friends. Recipients read and write the channel's messages through ``service.messages``
(see ``service.access``); blocks end new DMs and, in a DM, sending.
"""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased

from service import attachments, events, relationships, serializers, storage
from service.access import DM, GROUP_DM, PRIVATE_CHANNEL_TYPES, channel_access
from service.auth import Identity
from service.channels import last_pin_timestamps
from service.db import lock_row
from service.errors import APIError, field_error, limit_reached, not_found
from service.models import Channel, ChannelRecipient, Member, Message, Relationship, User
from service.users import me, parse_snowflake

MAX_GROUP_DM_RECIPIENTS = 10  # people in one group DM, the owner included
MAX_GROUP_DMS = 150  # group DMs one person is in


def cannot_message() -> APIError:
    return APIError(403, "CANNOT_SEND_MESSAGES_TO_USER", "You cannot send messages to this user")


# --- Reading --------------------------------------------------------------------------------


def _people(session, channel_ids: list[int]) -> dict[int, list[User]]:
    people: dict[int, list[User]] = {}
    if channel_ids:
        rows = session.execute(select(ChannelRecipient.channel_id, User).join(User, User.id == ChannelRecipient.user_id)
                               .where(ChannelRecipient.channel_id.in_(channel_ids)))
        for channel_id, user in rows:
            people.setdefault(channel_id, []).append(user)
    return people


def dump(session, channel: Channel, viewer_id: int) -> dict:
    data = serializers.serialize_private_channel(channel, _people(session, [channel.id]).get(channel.id, []), viewer_id)
    data["last_pin_timestamp"] = last_pin_timestamps(session, [channel.id]).get(channel.id)
    return data


def list_private(session, identity: Identity) -> list[dict]:
    """The caller's DMs and group DMs, the most recently active first."""
    channels = list(session.scalars(
        select(Channel).join(ChannelRecipient, ChannelRecipient.channel_id == Channel.id)
        .where(ChannelRecipient.user_id == identity.user_id, Channel.guild_id.is_(None),
               Channel.type.in_(PRIVATE_CHANNEL_TYPES))
        .order_by(func.coalesce(Channel.last_message_id, Channel.id).desc())))
    people = _people(session, [c.id for c in channels])
    pins = last_pin_timestamps(session, [c.id for c in channels])
    return [{**serializers.serialize_private_channel(c, people.get(c.id, []), identity.user_id),
             "last_pin_timestamp": pins.get(c.id)} for c in channels]


def find_dm(session, a: int, b: int) -> Channel | None:
    """The pair's DM; the oldest, should there ever be two."""
    first, second = aliased(ChannelRecipient), aliased(ChannelRecipient)
    return session.scalar(
        select(Channel)
        .join(first, and_(first.channel_id == Channel.id, first.user_id == a))
        .join(second, and_(second.channel_id == Channel.id, second.user_id == b))
        .where(Channel.type == DM, Channel.guild_id.is_(None)).order_by(Channel.id).limit(1))


def _group_dm_counts(session, user_ids) -> dict[int, int]:
    rows = session.execute(select(ChannelRecipient.user_id, func.count())
                           .join(Channel, Channel.id == ChannelRecipient.channel_id)
                           .where(Channel.type == GROUP_DM, ChannelRecipient.user_id.in_(list(user_ids)))
                           .group_by(ChannelRecipient.user_id))
    return dict(rows.all())


# --- Opening --------------------------------------------------------------------------------


def _new_channel(rt, session, kind: int, owner_id: int | None, people: list[User]) -> Channel:
    channel = Channel(id=rt.new_id(), guild_id=None, type=kind, name=None, position=0, nsfw=False,
                      rate_limit_per_user=0, content_warning_level=0, owner_id=owner_id)
    session.add(channel)
    session.flush()
    session.add_all(ChannelRecipient(channel_id=channel.id, user_id=person.id) for person in people)
    session.flush()
    for person in people:  # each recipient sees the channel with everyone else as its recipients
        events.publish(session, "CHANNEL_CREATE", serializers.serialize_private_channel(channel, people, person.id),
                       user_ids=(person.id,))
    return channel


def create(rt, session, identity: Identity, body: dict) -> dict:
    """``recipient_id``: the pair's DM, opened once and answered ever after. ``recipients``: a new group DM."""
    one, many = body.get("recipient_id"), body.get("recipients")
    if one is not None and many is not None:
        raise field_error("recipients", "BASE_TYPE_INVALID", "Send recipient_id for a DM or recipients for a group DM")
    if one is None and many is None:
        raise field_error("recipient_id", "BASE_TYPE_REQUIRED", "Send recipient_id or recipients")
    caller = me(session, identity)
    if one is not None:
        return _open_dm(rt, session, caller, one)
    return _create_group(rt, session, caller, many)


def _shares_guild(session, a: int, b: int) -> bool:
    mine, theirs = aliased(Member), aliased(Member)
    return session.scalar(select(mine.guild_id).join(theirs, and_(theirs.guild_id == mine.guild_id, theirs.user_id == b))
                          .where(mine.user_id == a).limit(1)) is not None


def _open_dm(rt, session, caller: User, recipient_id) -> dict:
    target = session.get(User, parse_snowflake(recipient_id, "user", "UNKNOWN_USER"))
    if target is None:
        raise not_found("UNKNOWN_USER", "user")
    if target.id == caller.id:
        raise field_error("recipient_id", "BASE_TYPE_INVALID", "You cannot open a DM with yourself")
    relationships.lock_users(session, caller.id, target.id)
    channel = find_dm(session, caller.id, target.id)
    if channel is None:
        if relationships.blocked_between(session, caller.id, target.id):
            raise cannot_message()
        if caller.bot and not _shares_guild(session, caller.id, target.id):
            raise cannot_message()  # bots write only to people they share a guild with
        channel = _new_channel(rt, session, DM, None, [caller, target])
    data = dump(session, channel, caller.id)
    session.commit()
    return data


def _create_group(rt, session, caller: User, recipients: list) -> dict:
    ids = [i for i in dict.fromkeys(parse_snowflake(r, "user", "UNKNOWN_USER") for r in recipients) if i != caller.id]
    if not ids:
        raise field_error("recipients", "BASE_TYPE_BAD_LENGTH", "A group DM needs someone besides you")
    if len(ids) + 1 > MAX_GROUP_DM_RECIPIENTS:
        raise limit_reached("MAX_GROUP_DM_RECIPIENTS", "group DM recipients", MAX_GROUP_DM_RECIPIENTS)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
    for index, user_id in enumerate(ids):
        if user_id not in users:
            raise field_error(f"recipients.{index}", "UNKNOWN_USER", "Unknown user")
    relationships.lock_users(session, caller.id, *ids)
    if relationships.blocked_among(session, caller.id, ids):
        raise cannot_message()
    friends = set(session.scalars(select(Relationship.target_id).where(
        Relationship.user_id == caller.id, Relationship.type == relationships.FRIEND, Relationship.target_id.in_(ids))))
    if set(ids) - friends:
        raise APIError(400, "GROUP_DM_RECIPIENTS_NOT_ADDABLE", "Only your friends can be added to a group DM")
    counts = _group_dm_counts(session, [caller.id, *ids])
    if any(count >= MAX_GROUP_DMS for count in counts.values()):
        raise limit_reached("MAX_GROUP_DMS", "group DMs", MAX_GROUP_DMS)
    channel = _new_channel(rt, session, GROUP_DM, caller.id, [caller, *(users[i] for i in ids)])
    data = dump(session, channel, caller.id)
    session.commit()
    return data


# --- Group DM recipients --------------------------------------------------------------------


def _group(session, identity: Identity, channel_id: str) -> Channel:
    """The group DM, locked, with the caller still in it (someone may have removed them meanwhile)."""
    access = channel_access(session, identity, channel_id, allow_private=True)
    if access.channel.type != GROUP_DM:
        raise APIError(400, "INVALID_CHANNEL_TYPE", "Only a group DM has recipients to add or remove")
    lock_row(session, Channel, access.channel.id)
    session.refresh(access.channel)
    return access.channel


def recipient_ids(session, channel_id: int) -> list[int]:
    return list(session.scalars(select(ChannelRecipient.user_id).where(ChannelRecipient.channel_id == channel_id)
                                .order_by(ChannelRecipient.user_id)))


def add_recipient(session, identity: Identity, channel_id: str, user_id: str) -> None:
    """Any recipient adds one of their friends; adding someone already there changes nothing."""
    channel = _group(session, identity, channel_id)
    current = recipient_ids(session, channel.id)
    if identity.user_id not in current:
        raise not_found("UNKNOWN_CHANNEL", "channel")
    target = session.get(User, parse_snowflake(user_id, "user", "UNKNOWN_USER"))
    if target is None:
        raise not_found("UNKNOWN_USER", "user")
    if target.id in current:
        session.commit()
        return
    if not relationships.are_friends(session, identity.user_id, target.id):
        raise APIError(400, "NOT_FRIENDS_WITH_USER", "You can only add your friends")
    if len(current) >= MAX_GROUP_DM_RECIPIENTS:
        raise limit_reached("MAX_GROUP_DM_RECIPIENTS", "group DM recipients", MAX_GROUP_DM_RECIPIENTS)
    if _group_dm_counts(session, [target.id]).get(target.id, 0) >= MAX_GROUP_DMS:
        raise limit_reached("MAX_GROUP_DMS", "group DMs", MAX_GROUP_DMS)
    session.add(ChannelRecipient(channel_id=channel.id, user_id=target.id))
    session.flush()
    events.publish(session, "CHANNEL_RECIPIENT_ADD",
                   {"channel_id": str(channel.id), "user": serializers.user_public.dump(target)}, user_ids=current)
    events.publish(session, "CHANNEL_CREATE", dump(session, channel, target.id), user_ids=(target.id,))
    session.commit()


def remove_recipient(session, identity: Identity, channel_id: str, user_id: str) -> None:
    """The owner removes anyone; everyone may leave. When the owner leaves, the recipient with the
    lowest id owns the group; when the last one leaves, the group DM and its messages are gone."""
    channel = _group(session, identity, channel_id)
    current = recipient_ids(session, channel.id)
    if identity.user_id not in current:
        raise not_found("UNKNOWN_CHANNEL", "channel")
    target_id = parse_snowflake(user_id, "user", "UNKNOWN_USER")
    if target_id != identity.user_id and channel.owner_id != identity.user_id:
        raise APIError(403, "MISSING_PERMISSIONS", "Only the group DM's owner removes others")
    if target_id not in current:
        raise not_found("UNKNOWN_USER", "user")
    target = session.get(User, target_id)
    before = dump(session, channel, target_id)  # the removed user's last view of it
    session.execute(ChannelRecipient.__table__.delete().where(ChannelRecipient.channel_id == channel.id,
                                                              ChannelRecipient.user_id == target_id))
    remaining = [i for i in current if i != target_id]
    events.publish(session, "CHANNEL_DELETE", before, user_ids=(target_id,))
    if not remaining:  # the last one out: the group DM, its messages and their files go
        storage.delete_after_commit(session, *attachments.storage_keys_of(session, Message.channel_id == channel.id))
        session.delete(channel)
        session.commit()
        return
    events.publish(session, "CHANNEL_RECIPIENT_REMOVE",
                   {"channel_id": str(channel.id), "user": serializers.user_public.dump(target)}, user_ids=remaining)
    if channel.owner_id == target_id:
        channel.owner_id = remaining[0]
        session.flush()
        people = _people(session, [channel.id]).get(channel.id, [])
        pinned = last_pin_timestamps(session, [channel.id]).get(channel.id)
        for person_id in remaining:
            events.publish(session, "CHANNEL_UPDATE",
                           {**serializers.serialize_private_channel(channel, people, person_id),
                            "last_pin_timestamp": pinned}, user_ids=(person_id,))
    session.commit()

