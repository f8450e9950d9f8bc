"""What the gateway reads from the database: identity, READY state, and who may see an event.

Every function here is synchronous and takes an ORM session; the hub runs them in worker threads so
the event loop never waits on the database. Permission answers come from the same ``GuildAccess``
rules the REST operations use, so the gateway can never show what a request would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from service import auth, dms, guilds, relationships, serializers
from service import members as members_service
from service.access import GuildAccess, load_member_access
from service.auth import Identity
from service.crypto import SESSION_TOKEN_PREFIX
from service.db import escape_like
from service.errors import APIError
from service.models import (
    Application,
    Channel,
    Guild,
    Member,
    PermissionOverwrite,
    Relationship,
    Role,
    User,
    utcnow,
)
from service.permissions import Overwrite

QUERY_LIMIT = 100  # members a name search answers when it sets no limit
MEMBER_LIST_LIMIT = 10_000  # members a request for the whole list answers at most
IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's parameter limit


def chunks(ids, size: int = IN_CHUNK):
    ids = list(ids)
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def identify(runtime, token) -> Identity | None:
    """The account behind a gateway token: a session token by its ``flx_`` form, else a bot token.
    None when the token is unknown or the account may not use the API (under review)."""
    if not isinstance(token, str) or not token or len(token) > 512 or not token.isascii():
        return None  # tokens are ASCII; anything else (a lone surrogate, say) cannot match one
    kind = "session" if token.startswith(SESSION_TOKEN_PREFIX) else "bot"
    try:
        info = auth.resolve(runtime, kind, token, "/gateway")
    except APIError:
        return None
    return Identity.from_token_info(info) if info else None


def ready(session, identity: Identity) -> tuple[dict, list[dict]]:
    """READY's payload, and the GUILD_CREATE payloads that follow it for a bot (people get full
    guilds inside READY; bots get unavailable stubs first, as Discord's gateway does)."""
    user = session.get(User, identity.user_id)
    memberships = session.execute(select(Guild, Member).join(Member, Member.guild_id == Guild.id)
                                  .where(Member.user_id == identity.user_id).order_by(Guild.id)).all()
    full = [guilds.full_state(session, load_member_access(session, guild, member)) for guild, member in memberships]
    private_channels = dms.list_private(session, identity)
    users: dict[str, dict] = {}
    related = []
    for item in relationships.list_relationships(session, identity):
        person = item.pop("user")
        users[person["id"]] = person
        related.append(item)
    for channel in private_channels:
        for person in channel["recipients"]:
            users[person["id"]] = person
    payload = {
        "v": 1,
        "version": 1,
        "user": {**serializers.bot.dump(user), "bot": True} if identity.is_bot else serializers.user_private.dump(user),
        "guilds": [{"id": g["id"], "unavailable": True} for g in full] if identity.is_bot else full,
        "private_channels": private_channels,
        "relationships": related,
        "users": list(users.values()),
    }
    if identity.is_bot:
        application_id = session.scalar(select(Application.id).where(Application.bot_user_id == identity.user_id))
        payload["application"] = {"id": str(application_id), "flags": 0}
    return payload, (full if identity.is_bot else [])


def guild_ids_of(session, user_id: int) -> set[int]:
    return set(session.scalars(select(Member.guild_id).where(Member.user_id == user_id)))


@dataclass
class GuildView:
    """One guild as the gateway routes it: the local candidates who are members, with their access,
    and every channel's overwrites. Rebuilt whenever roles, members or channels change."""

    guild_id: int
    accesses: dict[int, GuildAccess] = field(default_factory=dict)
    overwrites: dict[int, list[Overwrite]] = field(default_factory=dict)
    # A timeout ends without any event: the view is stale from the first moment one runs out.
    valid_until: datetime | None = None
    _cache: dict[tuple[int, int], int] = field(default_factory=dict)

    def stale(self) -> bool:
        return self.valid_until is not None and utcnow() >= self.valid_until

    def permissions(self, user_id: int, channel_id: int, overwrites: list[Overwrite] | None = None) -> int:
        access = self.accesses.get(user_id)
        if access is None:
            return 0
        if overwrites is not None:  # a channel event names the channel's own (new) overwrites
            return access.permissions_under(overwrites)
        key = (channel_id, user_id)
        if key not in self._cache:
            self._cache[key] = access.permissions_under(self.overwrites.get(channel_id, []))
        return self._cache[key]


def load_guild_view(session, guild_id: int, candidate_ids) -> GuildView:
    view = GuildView(guild_id)
    guild = session.get(Guild, guild_id)
    if guild is None:
        return view
    roles = {role.id: role for role in session.scalars(select(Role).where(Role.guild_id == guild_id))}
    members, held = {}, {}
    for batch in chunks(candidate_ids):
        found = {m.user_id: m for m in session.scalars(select(Member).where(Member.guild_id == guild_id,
                                                                            Member.user_id.in_(batch)))}
        members.update(found)
        held.update(members_service.role_ids_of(session, guild_id, list(found)))
    view.accesses = {uid: GuildAccess(guild, member, roles, held[uid]) for uid, member in members.items()}
    now = utcnow()
    view.valid_until = min((m.communication_disabled_until for m in members.values()
                            if m.communication_disabled_until is not None and m.communication_disabled_until > now),
                           default=None)
    rows = session.scalars(select(PermissionOverwrite).join(Channel, Channel.id == PermissionOverwrite.channel_id)
                           .where(Channel.guild_id == guild_id))
    for row in rows:
        view.overwrites.setdefault(row.channel_id, []).append(Overwrite(row.target_id, row.type, row.allow, row.deny))
    return view


def overwrites_in(channel_data: dict) -> list[Overwrite] | None:
    """The overwrites a CHANNEL_* payload carries (its state after the change), as permission rows."""
    rows = channel_data.get("permission_overwrites") if isinstance(channel_data, dict) else None
    if rows is None:
        return None
    return [Overwrite(int(o["id"]), int(o["type"]), int(o["allow"]), int(o["deny"])) for o in rows]


def presence_audience(session, user_id: int) -> set[int]:
    """Who hears ``user_id``'s presence: everyone sharing a guild with them, and their friends."""
    shared = select(Member.guild_id).where(Member.user_id == user_id)
    audience = set(session.scalars(select(Member.user_id).where(Member.guild_id.in_(shared)).distinct()))
    audience |= set(session.scalars(select(Relationship.target_id).where(
        Relationship.user_id == user_id, Relationship.type == relationships.FRIEND)))
    audience.discard(user_id)
    return audience


def public_user(session, user_id: int) -> dict | None:
    user = session.get(User, user_id)
    return serializers.user_public.dump(user) if user else None


def guild_members(session, user_id: int, guild_id: int, *, query: str, limit: int,
                  user_ids: list[int] | None) -> tuple[list[dict], list[str]]:
    """REQUEST_GUILD_MEMBERS: the members named by ``user_ids``, or those whose username starts with
    ``query`` (at most ``limit``; 0 with an empty query means the whole list, up to MEMBER_LIST_LIMIT),
    answered only to a member of the guild; and the requested ids that are not members."""
    if session.get(Member, (guild_id, user_id)) is None:
        return [], []
    statement = (select(Member, User).join(User, User.id == Member.user_id).where(Member.guild_id == guild_id)
                 .order_by(Member.user_id))
    if user_ids:
        statement = statement.where(Member.user_id.in_(user_ids))
    else:
        if query:  # a username prefix, case-insensitive, as the members search matches
            statement = statement.where(User.username_key.like(escape_like(query.lower()) + "%", escape="\\"))
        statement = statement.limit(limit or (QUERY_LIMIT if query else MEMBER_LIST_LIMIT))
    rows = session.execute(statement).all()
    role_ids = members_service.role_ids_of(session, guild_id, [m.user_id for m, _ in rows])
    found = [serializers.serialize_member(m, u, role_ids[m.user_id]) for m, u in rows]
    present = {m.user_id for m, _ in rows}
    not_found = [str(uid) for uid in (user_ids or []) if uid not in present]
    return found, not_found
