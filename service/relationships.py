"""Friends, friend requests, blocks, and private notes on other users.

A relationship is stored once per side: a pending request is an outgoing row (4) for the
sender and an incoming row (3) for the receiver; a friendship is a friend row (1) on both
sides; a block is a blocked row (2) on the blocker's side only, and removes whatever friendship
or request either side had. Every change locks both users' rows first and writes both sides in
one transaction, so two people acting on each other at the same moment cannot leave the pair
half-updated. Each side hears of its own change only (``user_ids``).
"""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select

from service import events, serializers
from service.auth import Identity
from service.db import lock_row
from service.errors import APIError, limit_reached, not_found
from service.models import Relationship, User, UserNote, utcnow
from service.users import me, parse_snowflake

FRIEND, BLOCKED, INCOMING, OUTGOING = 1, 2, 3, 4
MAX_FRIENDS = 1000


# --- Reading --------------------------------------------------------------------------------


def blocked_between(session, a: int, b: int) -> bool:
    """Whether either of the two has blocked the other."""
    return session.scalar(select(func.count()).select_from(Relationship).where(
        Relationship.type == BLOCKED,
        or_(and_(Relationship.user_id == a, Relationship.target_id == b),
            and_(Relationship.user_id == b, Relationship.target_id == a)))) > 0


def blocked_among(session, user_id: int, others) -> set[int]:
    """Which of ``others`` ``user_id`` has blocked, or are blocking ``user_id``."""
    others = list(others)
    rows = session.execute(select(Relationship.user_id, Relationship.target_id).where(
        Relationship.type == BLOCKED,
        or_(and_(Relationship.user_id == user_id, Relationship.target_id.in_(others)),
            and_(Relationship.target_id == user_id, Relationship.user_id.in_(others)))))
    return {target if source == user_id else source for source, target in rows}


def are_friends(session, a: int, b: int) -> bool:
    row = session.get(Relationship, (a, b))
    return row is not None and row.type == FRIEND


def list_relationships(session, identity: Identity) -> list[dict]:
    rows = session.execute(select(Relationship, User).join(User, User.id == Relationship.target_id)
                           .where(Relationship.user_id == identity.user_id)
                           .order_by(Relationship.type, Relationship.since, Relationship.target_id))
    return [serializers.serialize_relationship(row, user) for row, user in rows]


def _target(session, user_id: str | int) -> User:
    user = session.get(User, parse_snowflake(user_id, "user", "UNKNOWN_USER"))
    if user is None:
        raise not_found("UNKNOWN_USER", "user")
    return user


def _friend_count(session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Relationship)
                          .where(Relationship.user_id == user_id, Relationship.type == FRIEND))


# --- Changing -------------------------------------------------------------------------------


def lock_users(session, *user_ids: int) -> None:
    """Hold these users' row locks until the transaction ends, lowest id first so that two callers
    never deadlock: what is read after this stays true until commit."""
    for user_id in sorted(set(user_ids)):
        lock_row(session, User, user_id)


def _publish(session, name: str, row: Relationship, target: User) -> None:
    events.publish(session, name, serializers.serialize_relationship(row, target), user_ids=(row.user_id,))


def _publish_removed(session, user_id: int, target_id: int) -> None:
    events.publish(session, "RELATIONSHIP_REMOVE", {"id": str(target_id)}, user_ids=(user_id,))


def _set(session, user_id: int, target_id: int, kind: int) -> Relationship:
    row = session.get(Relationship, (user_id, target_id))
    if row is None:
        row = Relationship(user_id=user_id, target_id=target_id, type=kind, since=utcnow())
        session.add(row)
    else:
        row.type, row.since = kind, utcnow()
    return row


def _answer(session, row: Relationship, target: User) -> dict:
    """The relationship as it stands; ends the transaction (and its locks), nothing having changed."""
    data = serializers.serialize_relationship(row, target)
    session.commit()
    return data


def _friend_request(session, identity: Identity, target: User, *, repeat_is_error: bool) -> dict:
    """Send a friend request to ``target``, or accept theirs. ``repeat_is_error``: asking an existing
    friend again is 400 ``ALREADY_FRIENDS`` (POST) instead of answering the friendship as it is (PUT)."""
    caller = me(session, identity)
    if caller.bot:
        raise APIError(400, "BOTS_CANNOT_SEND_FRIEND_REQUESTS", "Bots cannot send friend requests")
    if target.id == caller.id:
        raise APIError(400, "CANNOT_SEND_FRIEND_REQUEST_TO_SELF", "You cannot send a friend request to yourself")
    lock_users(session, caller.id, target.id)
    mine = session.get(Relationship, (caller.id, target.id))
    theirs = session.get(Relationship, (target.id, caller.id))
    if mine is not None and mine.type == BLOCKED:
        raise APIError(400, "CANNOT_SEND_FRIEND_REQUEST_TO_BLOCKED_USER", "Unblock this user first")
    if (theirs is not None and theirs.type == BLOCKED) or target.bot or target.system:
        raise APIError(400, "FRIEND_REQUEST_BLOCKED", "This user does not accept friend requests")
    if mine is not None and mine.type == FRIEND:
        if repeat_is_error:
            raise APIError(400, "ALREADY_FRIENDS", "You are already friends with this user")
        return _answer(session, mine, target)
    if mine is not None and mine.type == OUTGOING:
        return _answer(session, mine, target)
    if _friend_count(session, caller.id) >= MAX_FRIENDS:
        raise limit_reached("MAX_FRIENDS", "friends", MAX_FRIENDS)
    if mine is not None and mine.type == INCOMING:  # they asked first: this accepts
        if _friend_count(session, target.id) >= MAX_FRIENDS:
            raise APIError(400, "MAX_FRIENDS", "This user has the maximum number of friends", max=MAX_FRIENDS)
        mine, theirs = _set(session, caller.id, target.id, FRIEND), _set(session, target.id, caller.id, FRIEND)
        name = "RELATIONSHIP_UPDATE"
    else:
        mine, theirs = _set(session, caller.id, target.id, OUTGOING), _set(session, target.id, caller.id, INCOMING)
        name = "RELATIONSHIP_ADD"
    session.flush()
    _publish(session, name, mine, target)
    _publish(session, name, theirs, caller)
    data = serializers.serialize_relationship(mine, target)
    session.commit()
    return data


def send_request(session, identity: Identity, user_id: str) -> dict:
    return _friend_request(session, identity, _target(session, user_id), repeat_is_error=True)


def send_request_by_tag(session, identity: Identity, body: dict) -> dict:
    target = session.scalar(select(User).where(User.username_key == body["username"].lower(),
                                               User.discriminator == int(body["discriminator"])))
    if target is None:
        raise APIError(400, "NO_USERS_WITH_FLUXERTAG_EXIST", "No user has this username and discriminator")
    return _friend_request(session, identity, target, repeat_is_error=True)


def put(session, identity: Identity, user_id: str, body: dict | None) -> dict:
    """PUT: no type (or 1) asks for friendship or accepts a request; 2 blocks."""
    target = _target(session, user_id)
    if (body or {}).get("type") == BLOCKED:
        return block(session, identity, target)
    return _friend_request(session, identity, target, repeat_is_error=False)


def block(session, identity: Identity, target: User) -> dict:
    caller = me(session, identity)
    if target.id == caller.id:
        raise APIError(400, "BAD_REQUEST", "You cannot block yourself")
    if target.system:
        raise APIError(400, "CANNOT_BLOCK_SYSTEM_USER", "The system user cannot be blocked")
    lock_users(session, caller.id, target.id)
    mine = session.get(Relationship, (caller.id, target.id))
    if mine is not None and mine.type == BLOCKED:
        return _answer(session, mine, target)
    mine = _set(session, caller.id, target.id, BLOCKED)
    theirs = session.get(Relationship, (target.id, caller.id))
    if theirs is not None and theirs.type != BLOCKED:  # their own block of the caller stays
        session.delete(theirs)
        _publish_removed(session, target.id, caller.id)
    session.flush()
    _publish(session, "RELATIONSHIP_ADD", mine, target)
    data = serializers.serialize_relationship(mine, target)
    session.commit()
    return data


def remove(session, identity: Identity, user_id: str) -> None:
    """Unfriend, cancel or decline a request (both sides' rows go), or unblock (only the caller's)."""
    caller = me(session, identity)
    target_id = parse_snowflake(user_id, "user", "UNKNOWN_USER")
    lock_users(session, caller.id, target_id)
    mine = session.get(Relationship, (caller.id, target_id))
    if mine is None:
        raise not_found("UNKNOWN_USER", "relationship")
    if mine.type != BLOCKED:
        theirs = session.get(Relationship, (target_id, caller.id))
        if theirs is not None and theirs.type != BLOCKED:
            session.delete(theirs)
            _publish_removed(session, target_id, caller.id)
    session.delete(mine)
    _publish_removed(session, caller.id, target_id)
    session.commit()


def set_nickname(session, identity: Identity, user_id: str, body: dict) -> dict:
    target = _target(session, user_id)
    row = session.get(Relationship, (identity.user_id, target.id))
    if row is None:
        raise not_found("UNKNOWN_USER", "relationship")
    nickname = (body.get("nickname") or "").strip() or None
    if nickname != row.nickname:
        row.nickname = nickname
        session.flush()
        _publish(session, "RELATIONSHIP_UPDATE", row, target)
    data = serializers.serialize_relationship(row, target)
    session.commit()
    return data


# --- Notes ----------------------------------------------------------------------------------


def list_notes(session, identity: Identity) -> dict:
    rows = session.execute(select(UserNote.target_id, UserNote.note).where(UserNote.user_id == identity.user_id)
                           .order_by(UserNote.target_id))
    return {str(target_id): note for target_id, note in rows}


def get_note(session, identity: Identity, target_id: str) -> dict:
    target = _target(session, target_id)
    row = session.get(UserNote, (identity.user_id, target.id))
    if row is None:
        raise not_found("UNKNOWN_USER", "note")
    return {"note": row.note}


def set_note(session, identity: Identity, target_id: str, body: dict) -> None:
    """An empty or null note deletes it. USER_NOTE_UPDATE tells the caller's other sessions."""
    target = _target(session, target_id)
    note = body.get("note") or ""
    if not note.strip():
        note = ""
    lock_users(session, identity.user_id)
    row = session.get(UserNote, (identity.user_id, target.id))
    if (row.note if row is not None else "") == note:
        session.commit()
        return
    if not note:
        session.delete(row)
    elif row is None:
        session.add(UserNote(user_id=identity.user_id, target_id=target.id, note=note))
    else:
        row.note = note
    events.publish(session, "USER_NOTE_UPDATE", {"id": str(target.id), "note": note}, user_ids=(identity.user_id,))
    session.commit()
