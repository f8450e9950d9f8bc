"""Who may touch a guild or a channel: every guild and channel operation starts here.

``guild_access`` answers 404 ``UNKNOWN_GUILD`` to anyone who is not a member (a stranger
learns nothing, not even that the guild exists); ``channel_access`` answers 404
``UNKNOWN_CHANNEL`` likewise and 403 ``MISSING_ACCESS`` to a member who cannot view the
channel. DMs and group DMs (channels without a guild) answer only callers that ask for them
(``allow_private``): their recipients get ``PRIVATE_CHANNEL_PERMISSIONS``, anyone else 404
``UNKNOWN_CHANNEL``. ``require`` answers 403 ``MISSING_PERMISSIONS``. The arithmetic lives in
``service.permissions``; this module only loads the rows it needs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, bindparam, select

from service import permissions as perms
from service.auth import Identity
from service.errors import APIError, not_found
from service.models import Channel, ChannelRecipient, Guild, Member, MemberRole, PermissionOverwrite, Role, utcnow
from service.permissions import Permission
from service.users import parse_snowflake

NO_ROLE_POSITION = -1
DM, GROUP_DM = 1, 3
PRIVATE_CHANNEL_TYPES = (DM, GROUP_DM)
# What every recipient may do in a DM or group DM. Nobody moderates one: no MANAGE_*, no @everyone.
PRIVATE_CHANNEL_PERMISSIONS = int(
    Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES | Permission.SEND_TTS_MESSAGES | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES | Permission.READ_MESSAGE_HISTORY | Permission.ADD_REACTIONS
    | Permission.USE_EXTERNAL_EMOJIS | Permission.USE_EXTERNAL_STICKERS | Permission.PIN_MESSAGES
)


def missing_permissions(*needed: Permission) -> APIError:
    return APIError(403, "MISSING_PERMISSIONS", "Missing permissions",
                    permissions=perms.names(sum(int(p) for p in needed)))


def timed_out(member: Member, now: datetime | None = None) -> bool:
    until = member.communication_disabled_until
    return until is not None and until > (now or utcnow())


@dataclass
class GuildAccess:
    guild: Guild
    member: Member
    roles: dict[int, Role]  # every role of the guild, by id
    member_role_ids: list[int]
    permissions: int = field(init=False)

    def __post_init__(self) -> None:
        everyone = self.roles.get(self.guild.id)
        self.permissions = perms.guild_permissions(
            is_owner=self.is_owner,
            everyone=everyone.permissions if everyone else 0,
            role_permissions=[self.roles[r].permissions for r in self.member_role_ids if r in self.roles],
            timed_out=timed_out(self.member),
        )

    @property
    def user_id(self) -> int:
        return self.member.user_id

    @property
    def is_owner(self) -> bool:
        return self.guild.owner_id == self.member.user_id

    @property
    def is_admin(self) -> bool:
        return bool(self.permissions & Permission.ADMINISTRATOR)

    def has(self, *needed: Permission) -> bool:
        return all(self.permissions & p == p for p in needed)

    def require(self, *needed: Permission) -> None:
        if not self.has(*needed):
            raise missing_permissions(*needed)

    def highest_position(self) -> int:
        """The top of this member's roles; the owner outranks every role."""
        if self.is_owner:
            return 1 << 31
        positions = [self.roles[r].position for r in self.member_role_ids if r in self.roles]
        return max(positions, default=NO_ROLE_POSITION)

    def outranks_role(self, role: Role) -> bool:
        return self.is_owner or role.position < self.highest_position()

    def require_role_below(self, role: Role) -> None:
        """Nobody edits or hands out a role at or above their own highest role (the owner may)."""
        if not self.outranks_role(role):
            raise APIError(403, "MISSING_PERMISSIONS", "That role is at or above your highest role")

    def require_grantable(self, permissions: int) -> None:
        """Nobody grants a permission they lack themselves; the owner and administrators may."""
        if self.is_owner or self.is_admin:
            return
        lacking = permissions & ~self.permissions
        if lacking:
            raise APIError(403, "MISSING_PERMISSIONS", "You cannot grant permissions you do not have",
                           permissions=perms.names(lacking))

    def channel_permissions(self, session, channel: Channel) -> int:
        return self.permissions_under(session.scalars(_OVERWRITES, {"channel_id": channel.id}))

    def permissions_under(self, overwrites) -> int:
        """This member's permissions in a channel with these overwrite rows."""
        return perms.channel_permissions(
            self.permissions, guild_id=self.guild.id, user_id=self.user_id, member_role_ids=self.member_role_ids,
            overwrites=[perms.Overwrite(o.target_id, o.type, o.allow, o.deny) for o in overwrites],
            timed_out=timed_out(self.member),
        )


@dataclass
class ChannelAccess:
    guild: GuildAccess | None  # None in a DM or group DM
    channel: Channel
    permissions: int
    recipient_ids: tuple[int, ...] = ()  # a DM's or group DM's people, the caller among them

    @property
    def is_private(self) -> bool:
        return self.guild is None

    def has(self, *needed: Permission) -> bool:
        return all(self.permissions & p == p for p in needed)

    def require(self, *needed: Permission) -> None:
        if not self.has(*needed):
            raise missing_permissions(*needed)


# The statements on every channel read and send are built once: building one and deriving its
# cache key costs more CPU than PostgreSQL spends answering it.
_ROLES_HELD = (
    select(Role, MemberRole.role_id)
    .outerjoin(MemberRole, and_(MemberRole.role_id == Role.id, MemberRole.user_id == bindparam("user_id")))
    .where(Role.guild_id == bindparam("guild_id")))
_OVERWRITES = select(PermissionOverwrite).where(PermissionOverwrite.channel_id == bindparam("channel_id"))
_CHANNEL_GUILD_MEMBER = (
    select(Channel, Guild, Member).outerjoin(Guild, Guild.id == Channel.guild_id)
    .outerjoin(Member, and_(Member.guild_id == Channel.guild_id, Member.user_id == bindparam("user_id")))
    .where(Channel.id == bindparam("channel_id")))
_RECIPIENTS = select(ChannelRecipient.user_id).where(ChannelRecipient.channel_id == bindparam("channel_id"))


def load_member_access(session, guild: Guild, member: Member) -> GuildAccess:
    # Every role of the guild, each flagged when the member holds it: one query, not two.
    roles, held = {}, []
    for role, held_role_id in session.execute(_ROLES_HELD, {"user_id": member.user_id, "guild_id": guild.id}):
        roles[role.id] = role
        if held_role_id is not None:
            held.append(role.id)
    return GuildAccess(guild, member, roles, held)


def guild_channels_with(session, user_id: int, needed: int, *conditions) -> dict[int, Channel]:
    """The guild channels matching ``conditions`` (on Channel) in which ``user_id`` holds every bit of
    ``needed``: for many channels at once, in five queries however many guilds they span. The
    related rows are selected by the same conditions, never by a list of ids, so no statement
    grows with the number of channels (SQLite allows 32,766 parameters)."""
    matching = (select(Channel).join(Member, and_(Member.guild_id == Channel.guild_id, Member.user_id == user_id))
                .where(*conditions))
    channels = list(session.scalars(matching))
    if not channels:
        return {}
    guild_ids = matching.with_only_columns(Channel.guild_id).distinct()
    memberships = session.execute(select(Guild, Member).join(Member, Member.guild_id == Guild.id)
                                  .where(Guild.id.in_(guild_ids), Member.user_id == user_id)).all()
    roles: dict[int, dict[int, Role]] = defaultdict(dict)
    for role in session.scalars(select(Role).where(Role.guild_id.in_(guild_ids))):
        roles[role.guild_id][role.id] = role
    held: dict[int, list[int]] = defaultdict(list)
    for guild_id, role_id in session.execute(select(MemberRole.guild_id, MemberRole.role_id).where(
            MemberRole.user_id == user_id, MemberRole.guild_id.in_(guild_ids))):
        held[guild_id].append(role_id)
    accesses = {guild.id: GuildAccess(guild, member, roles[guild.id], held[guild.id]) for guild, member in memberships}
    overwrites: dict[int, list[PermissionOverwrite]] = defaultdict(list)
    for overwrite in session.scalars(select(PermissionOverwrite).where(
            PermissionOverwrite.channel_id.in_(matching.with_only_columns(Channel.id)))):
        overwrites[overwrite.channel_id].append(overwrite)
    # A membership ended between the first query and the second leaves no access: its channels drop out.
    return {c.id: c for c in channels if c.guild_id in accesses
            and accesses[c.guild_id].permissions_under(overwrites[c.id]) & needed == needed}


def guild_access(session, identity: Identity, guild_id: str | int) -> GuildAccess:
    gid = parse_snowflake(guild_id, "guild", "UNKNOWN_GUILD")
    row = session.execute(
        select(Guild, Member).join(Member, Member.guild_id == Guild.id)
        .where(Guild.id == gid, Member.user_id == identity.user_id)
    ).first()
    if row is None:
        raise not_found("UNKNOWN_GUILD", "guild")
    return load_member_access(session, *row)


def channel_access(session, identity: Identity, channel_id: str | int, *, allow_private: bool = False) -> ChannelAccess:
    """The caller's access to a channel. DMs and group DMs answer only with ``allow_private``
    (their ``guild`` is None): callers that need a guild keep answering 404 for them."""
    cid = parse_snowflake(channel_id, "channel", "UNKNOWN_CHANNEL")
    # The channel, its guild and the caller's membership in one round trip: this runs on every
    # message read and send.
    row = session.execute(_CHANNEL_GUILD_MEMBER, {"channel_id": cid, "user_id": identity.user_id}).first()
    if row is None or (row[0].guild_id is None and not allow_private):
        raise not_found("UNKNOWN_CHANNEL", "channel")
    channel, guild, member = row
    if channel.guild_id is None:
        recipients = tuple(session.scalars(_RECIPIENTS, {"channel_id": channel.id}))
        if identity.user_id not in recipients:
            raise not_found("UNKNOWN_CHANNEL", "channel")
        return ChannelAccess(None, channel, PRIVATE_CHANNEL_PERMISSIONS, recipients)
    if member is None:
        raise not_found("UNKNOWN_CHANNEL", "channel")
    access = load_member_access(session, guild, member)
    channel_permissions = access.channel_permissions(session, channel)
    if not channel_permissions & Permission.VIEW_CHANNEL:
        raise APIError(403, "MISSING_ACCESS", "Missing access")
    return ChannelAccess(access, channel, channel_permissions)
