"""Permission bits and the one computation of what a member may do, in a guild and in a channel.

Discord's model, which Fluxer's clients and bots expect:

1. The guild owner, and anyone whose roles grant ADMINISTRATOR, has every permission.
2. Otherwise the guild-level set is @everyone's permissions OR every role of the member.
3. In a channel, overwrites apply in order: @everyone's (deny, then allow), then all of the
   member's role overwrites combined (deny, then allow), then the member's own.
4. Without VIEW_CHANNEL in a channel the member has nothing there.
5. A member in timeout keeps only VIEW_CHANNEL and READ_MESSAGE_HISTORY (owner and
   administrators are never timed out in effect).

These functions are pure: they take numbers, not rows, so the rules can be tested alone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Permission(enum.IntFlag):
    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    PRIORITY_SPEAKER = 1 << 8
    STREAM = 1 << 9
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MUTE_MEMBERS = 1 << 22
    DEAFEN_MEMBERS = 1 << 23
    MOVE_MEMBERS = 1 << 24
    USE_VAD = 1 << 25
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    MANAGE_EXPRESSIONS = 1 << 30
    USE_EXTERNAL_STICKERS = 1 << 37
    MODERATE_MEMBERS = 1 << 40
    CREATE_EXPRESSIONS = 1 << 43
    PIN_MESSAGES = 1 << 51
    BYPASS_SLOWMODE = 1 << 52
    UPDATE_RTC_REGION = 1 << 53


ALL = 0
for _flag in Permission:
    ALL |= int(_flag)

# What @everyone may do in a new guild: take part, but not manage or moderate.
DEFAULT_EVERYONE = int(
    Permission.CREATE_INSTANT_INVITE | Permission.ADD_REACTIONS | Permission.STREAM | Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES | Permission.EMBED_LINKS | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY | Permission.USE_EXTERNAL_EMOJIS | Permission.CONNECT | Permission.SPEAK
    | Permission.USE_VAD | Permission.CHANGE_NICKNAME | Permission.USE_EXTERNAL_STICKERS
    | Permission.CREATE_EXPRESSIONS
)
TIMEOUT_ALLOWED = int(Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY)

ROLE_OVERWRITE = 0
MEMBER_OVERWRITE = 1


@dataclass(frozen=True)
class Overwrite:
    target_id: int
    type: int  # ROLE_OVERWRITE | MEMBER_OVERWRITE
    allow: int
    deny: int


def names(value: int) -> list[str]:
    return [flag.name for flag in Permission if value & flag]


def guild_permissions(*, is_owner: bool, everyone: int, role_permissions: Iterable[int], timed_out: bool) -> int:
    if is_owner:
        return ALL
    base = everyone
    for permissions in role_permissions:
        base |= permissions
    if base & Permission.ADMINISTRATOR:
        return ALL
    if timed_out:
        return base & TIMEOUT_ALLOWED
    return base & ALL  # bits no permission defines mean nothing


def channel_permissions(base: int, *, guild_id: int, user_id: int, member_role_ids: Iterable[int],
                        overwrites: Iterable[Overwrite], timed_out: bool) -> int:
    """The member's permissions in one channel, from its guild-level set ``base``."""
    if base & Permission.ADMINISTRATOR:  # owners get ALL, which includes it
        return ALL
    by_key = {(o.type, o.target_id): o for o in overwrites}
    permissions = base
    everyone = by_key.get((ROLE_OVERWRITE, guild_id))  # @everyone's role id is the guild id
    if everyone:
        permissions = (permissions & ~everyone.deny) | everyone.allow
    allow = deny = 0
    for role_id in member_role_ids:
        overwrite = by_key.get((ROLE_OVERWRITE, role_id))
        if overwrite and role_id != guild_id:
            allow |= overwrite.allow
            deny |= overwrite.deny
    permissions = (permissions & ~deny) | allow
    member = by_key.get((MEMBER_OVERWRITE, user_id))
    if member:
        permissions = (permissions & ~member.deny) | member.allow
    if not permissions & Permission.VIEW_CHANNEL:
        return 0
    if timed_out:
        permissions &= TIMEOUT_ALLOWED
    return permissions & ALL
