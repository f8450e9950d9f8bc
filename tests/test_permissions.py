"""The permission arithmetic of ``service.permissions`` against Discord's rules.

Two layers of checking:

* a table of hand-written scenarios, each with the result Discord would give;
* property-based tests (hypothesis) comparing the module with a small reference written here,
  bit by bit, in a different style from the module (per bit: walk the layers, the last layer
  that says something about the bit decides), plus a few algebraic properties.

Every expected value is spelled with this file's own constants, not the module's ``ALL`` or
``TIMEOUT_ALLOWED``, so a changed constant shows up too.
"""

from __future__ import annotations

import functools
import operator
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.permissions import (
    ALL,
    DEFAULT_EVERYONE,
    MEMBER_OVERWRITE,
    ROLE_OVERWRITE,
    TIMEOUT_ALLOWED,
    Overwrite,
    Permission,
    channel_permissions,
    guild_permissions,
)

P = Permission
VIEW = int(P.VIEW_CHANNEL)
SEND = int(P.SEND_MESSAGES)
HISTORY = int(P.READ_MESSAGE_HISTORY)
ATTACH = int(P.ATTACH_FILES)
ADMIN = int(P.ADMINISTRATOR)
MANAGE_MESSAGES = int(P.MANAGE_MESSAGES)
MANAGE_GUILD = int(P.MANAGE_GUILD)

FLAGS = [int(flag) for flag in Permission]
EVERY_DEFINED_BIT = functools.reduce(operator.or_, FLAGS, 0)  # computed here, independently of ALL
KEPT_IN_TIMEOUT = VIEW | HISTORY
UNKNOWN_BIT = 1 << 60  # no Permission uses it
UNKNOWN_BIT_19 = 1 << 19  # a hole between USE_EXTERNAL_EMOJIS and CONNECT

GUILD = 1000  # the guild id, hence also the @everyone role id
USER = 42
OTHER_USER = 43
ROLE_A, ROLE_B, ROLE_C = 1, 2, 3  # ROLE_C is never held by USER in the table


def everyone_ow(allow: int = 0, deny: int = 0) -> Overwrite:
    return Overwrite(GUILD, ROLE_OVERWRITE, allow, deny)


def role_ow(role_id: int, allow: int = 0, deny: int = 0) -> Overwrite:
    return Overwrite(role_id, ROLE_OVERWRITE, allow, deny)


def member_ow(user_id: int = USER, allow: int = 0, deny: int = 0) -> Overwrite:
    return Overwrite(user_id, MEMBER_OVERWRITE, allow, deny)


def effective(*, everyone: int, roles: dict[int, int], overwrites: list[Overwrite], is_owner: bool = False,
              timed_out: bool = False, member_role_ids: list[int] | None = None) -> tuple[int, int]:
    """(guild-level, channel-level) permissions of USER holding ``roles`` (role id -> permissions)."""
    guild = guild_permissions(is_owner=is_owner, everyone=everyone, role_permissions=list(roles.values()),
                              timed_out=timed_out)
    role_ids = list(roles) if member_role_ids is None else member_role_ids
    channel = channel_permissions(guild, guild_id=GUILD, user_id=USER, member_role_ids=role_ids,
                                  overwrites=overwrites, timed_out=timed_out)
    return guild, channel


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    everyone: int
    guild: int  # expected guild-level permissions
    channel: int  # expected channel permissions
    roles: dict[int, int] = field(default_factory=dict)
    overwrites: tuple[Overwrite, ...] = ()
    is_owner: bool = False
    timed_out: bool = False
    member_role_ids: tuple[int, ...] | None = None  # default: the keys of ``roles``


BASIC = VIEW | SEND | HISTORY

CASES = {
    # -- owner and administrators
    "owner-has-all-even-with-nothing": Case(everyone=0, guild=EVERY_DEFINED_BIT, channel=EVERY_DEFINED_BIT, is_owner=True),
    "owner-ignores-every-overwrite": Case(
        everyone=BASIC, is_owner=True, guild=EVERY_DEFINED_BIT, channel=EVERY_DEFINED_BIT,
        overwrites=(everyone_ow(deny=EVERY_DEFINED_BIT), member_ow(deny=EVERY_DEFINED_BIT)),
    ),
    "owner-not-affected-by-timeout": Case(
        everyone=BASIC, is_owner=True, timed_out=True, guild=EVERY_DEFINED_BIT, channel=EVERY_DEFINED_BIT,
        overwrites=(member_ow(deny=SEND | VIEW),),
    ),
    "admin-via-role": Case(everyone=0, roles={ROLE_A: ADMIN}, guild=EVERY_DEFINED_BIT, channel=EVERY_DEFINED_BIT),
    "admin-via-everyone": Case(everyone=ADMIN, guild=EVERY_DEFINED_BIT, channel=EVERY_DEFINED_BIT),
    "admin-ignores-view-deny-overwrites": Case(
        everyone=VIEW, roles={ROLE_A: ADMIN}, guild=EVERY_DEFINED_BIT, channel=EVERY_DEFINED_BIT,
        overwrites=(everyone_ow(deny=VIEW), role_ow(ROLE_A, deny=VIEW | SEND), member_ow(deny=EVERY_DEFINED_BIT)),
    ),
    "admin-not-affected-by-timeout": Case(
        everyone=BASIC, roles={ROLE_A: ADMIN}, timed_out=True, guild=EVERY_DEFINED_BIT, channel=EVERY_DEFINED_BIT,
        overwrites=(everyone_ow(deny=SEND),),
    ),
    # ADMINISTRATOR only counts when it comes from roles: through an overwrite it is just a bit.
    # Discord computes the bit into the channel set but grants nothing else with it.
    "admin-from-member-overwrite-grants-nothing-else": Case(
        everyone=VIEW | SEND, guild=VIEW | SEND, channel=VIEW | SEND | ADMIN,
        overwrites=(member_ow(allow=ADMIN),),
    ),
    "admin-from-role-overwrite-does-not-undo-denies": Case(
        everyone=VIEW | SEND | HISTORY, roles={ROLE_A: 0}, guild=VIEW | SEND | HISTORY, channel=VIEW | HISTORY | ADMIN,
        overwrites=(everyone_ow(deny=SEND), role_ow(ROLE_A, allow=ADMIN)),
    ),
    "admin-from-overwrite-without-view-is-nothing": Case(
        everyone=VIEW | SEND, guild=VIEW | SEND, channel=0,
        overwrites=(everyone_ow(deny=VIEW), member_ow(allow=ADMIN | SEND)),
    ),
    "admin-from-overwrite-still-timed-out": Case(
        everyone=BASIC, timed_out=True, guild=VIEW | HISTORY, channel=VIEW | HISTORY,
        overwrites=(member_ow(allow=ADMIN | SEND),),
    ),
    # -- guild level
    "default-everyone-alone": Case(everyone=DEFAULT_EVERYONE, guild=DEFAULT_EVERYONE, channel=DEFAULT_EVERYONE),
    "union-of-everyone-and-roles": Case(
        everyone=VIEW, roles={ROLE_A: SEND, ROLE_B: HISTORY | ATTACH},
        guild=VIEW | SEND | HISTORY | ATTACH, channel=VIEW | SEND | HISTORY | ATTACH,
    ),
    "roles-can-only-add": Case(
        everyone=VIEW | SEND, roles={ROLE_A: 0, ROLE_B: MANAGE_MESSAGES},
        guild=VIEW | SEND | MANAGE_MESSAGES, channel=VIEW | SEND | MANAGE_MESSAGES,
    ),
    "no-view-at-guild-level-means-nothing-in-channel": Case(everyone=SEND | HISTORY, guild=SEND | HISTORY, channel=0),
    # -- @everyone overwrite
    "everyone-overwrite-deny": Case(
        everyone=BASIC, guild=BASIC, channel=VIEW | HISTORY, overwrites=(everyone_ow(deny=SEND),),
    ),
    "everyone-overwrite-allow": Case(
        everyone=VIEW, guild=VIEW, channel=VIEW | SEND | ATTACH, overwrites=(everyone_ow(allow=SEND | ATTACH),),
    ),
    "everyone-overwrite-allow-beats-its-own-deny": Case(
        everyone=VIEW, guild=VIEW, channel=VIEW | SEND, overwrites=(everyone_ow(allow=SEND, deny=SEND),),
    ),
    "everyone-overwrite-removes-a-role-permission": Case(
        everyone=VIEW, roles={ROLE_A: SEND}, guild=VIEW | SEND, channel=VIEW, overwrites=(everyone_ow(deny=SEND),),
    ),
    # -- role overwrites
    "role-allow-beats-everyone-deny": Case(
        everyone=BASIC, roles={ROLE_A: 0}, guild=BASIC, channel=BASIC,
        overwrites=(everyone_ow(deny=SEND), role_ow(ROLE_A, allow=SEND)),
    ),
    "role-deny-beats-everyone-allow": Case(
        everyone=VIEW, roles={ROLE_A: 0}, guild=VIEW, channel=VIEW,
        overwrites=(everyone_ow(allow=SEND), role_ow(ROLE_A, deny=SEND)),
    ),
    "role-deny-and-other-role-allow-allow-wins": Case(
        everyone=BASIC, roles={ROLE_A: 0, ROLE_B: 0}, guild=BASIC, channel=BASIC,
        overwrites=(role_ow(ROLE_A, deny=SEND), role_ow(ROLE_B, allow=SEND)),
    ),
    "role-allow-and-other-role-deny-allow-wins-whatever-the-order": Case(
        everyone=VIEW, roles={ROLE_B: 0, ROLE_A: 0}, guild=VIEW, channel=VIEW | SEND,
        overwrites=(role_ow(ROLE_B, allow=SEND), role_ow(ROLE_A, deny=SEND)),
    ),
    "role-denies-combine": Case(
        everyone=BASIC | ATTACH, roles={ROLE_A: 0, ROLE_B: 0}, guild=BASIC | ATTACH, channel=VIEW | HISTORY,
        overwrites=(role_ow(ROLE_A, deny=SEND), role_ow(ROLE_B, deny=ATTACH)),
    ),
    "overwrite-for-unheld-role-ignored": Case(
        everyone=BASIC, roles={ROLE_A: 0}, guild=BASIC, channel=BASIC,
        overwrites=(role_ow(ROLE_C, deny=VIEW | SEND), role_ow(ROLE_B, allow=MANAGE_MESSAGES)),
    ),
    "role-overwrite-targeting-the-user-id-is-not-a-member-overwrite": Case(
        everyone=BASIC, guild=BASIC, channel=BASIC, overwrites=(Overwrite(USER, ROLE_OVERWRITE, 0, VIEW),),
    ),
    # The @everyone role may appear among a member's role ids; its overwrite must not be applied
    # again in the role layer (where its allow would beat the deny of a real role).
    "everyone-overwrite-not-double-applied-as-role": Case(
        everyone=VIEW, roles={ROLE_A: 0}, member_role_ids=(GUILD, ROLE_A), guild=VIEW, channel=VIEW,
        overwrites=(everyone_ow(allow=SEND), role_ow(ROLE_A, deny=SEND)),
    ),
    "everyone-deny-not-double-applied-as-role": Case(
        everyone=VIEW, roles={ROLE_A: 0}, member_role_ids=(ROLE_A, GUILD), guild=VIEW, channel=0,
        overwrites=(everyone_ow(deny=VIEW), role_ow(ROLE_A, allow=VIEW), member_ow(deny=VIEW)),
    ),
    # -- member overwrite
    "member-allow-beats-role-deny": Case(
        everyone=VIEW, roles={ROLE_A: SEND}, guild=VIEW | SEND, channel=VIEW | SEND,
        overwrites=(role_ow(ROLE_A, deny=SEND), member_ow(allow=SEND)),
    ),
    "member-deny-beats-role-allow": Case(
        everyone=VIEW, roles={ROLE_A: 0}, guild=VIEW, channel=VIEW,
        overwrites=(role_ow(ROLE_A, allow=SEND), member_ow(deny=SEND)),
    ),
    "member-deny-beats-everyone-allow": Case(
        everyone=VIEW, guild=VIEW, channel=VIEW, overwrites=(everyone_ow(allow=SEND), member_ow(deny=SEND)),
    ),
    "member-allow-beats-its-own-deny": Case(
        everyone=VIEW, guild=VIEW, channel=VIEW | SEND, overwrites=(member_ow(allow=SEND, deny=SEND),),
    ),
    "overwrite-for-another-member-ignored": Case(
        everyone=BASIC, guild=BASIC, channel=BASIC,
        overwrites=(member_ow(OTHER_USER, deny=VIEW | SEND), member_ow(OTHER_USER, allow=MANAGE_MESSAGES)),
    ),
    "member-overwrite-targeting-a-role-id-ignored": Case(
        everyone=BASIC, roles={ROLE_A: 0}, guild=BASIC, channel=BASIC,
        overwrites=(Overwrite(ROLE_A, MEMBER_OVERWRITE, 0, VIEW),),
    ),
    # -- VIEW_CHANNEL
    "view-denied-by-everyone-overwrite-means-nothing": Case(
        everyone=BASIC, guild=BASIC, channel=0, overwrites=(everyone_ow(allow=ATTACH | MANAGE_MESSAGES, deny=VIEW),),
    ),
    "view-denied-by-role-overwrite-means-nothing": Case(
        everyone=BASIC, roles={ROLE_A: 0, ROLE_B: 0}, guild=BASIC, channel=0,
        overwrites=(role_ow(ROLE_A, deny=VIEW), role_ow(ROLE_B, allow=SEND | ATTACH)),
    ),
    "view-denied-by-member-overwrite-beats-role-allow": Case(
        everyone=BASIC, roles={ROLE_A: 0}, guild=BASIC, channel=0,
        overwrites=(role_ow(ROLE_A, allow=VIEW | MANAGE_MESSAGES), member_ow(deny=VIEW)),
    ),
    "view-granted-by-role-overwrite": Case(
        everyone=SEND, roles={ROLE_A: 0}, guild=SEND, channel=VIEW | SEND, overwrites=(role_ow(ROLE_A, allow=VIEW),),
    ),
    "view-granted-by-member-overwrite-after-everyone-deny": Case(
        everyone=BASIC, guild=BASIC, channel=BASIC, overwrites=(everyone_ow(deny=VIEW), member_ow(allow=VIEW)),
    ),
    # -- timeout
    "timeout-keeps-view-and-history-at-guild-level": Case(
        everyone=DEFAULT_EVERYONE, timed_out=True, guild=VIEW | HISTORY, channel=VIEW | HISTORY,
    ),
    "timeout-strips-moderation-roles": Case(
        everyone=VIEW, roles={ROLE_A: MANAGE_MESSAGES | int(P.MODERATE_MEMBERS) | int(P.BAN_MEMBERS)},
        timed_out=True, guild=VIEW, channel=VIEW,
    ),
    "timeout-beats-overwrite-allowing-send": Case(
        everyone=BASIC, roles={ROLE_A: 0}, timed_out=True, guild=VIEW | HISTORY, channel=VIEW | HISTORY,
        overwrites=(everyone_ow(allow=SEND), role_ow(ROLE_A, allow=SEND | ATTACH), member_ow(allow=SEND)),
    ),
    "timeout-view-from-overwrite-still-counts": Case(
        everyone=SEND | HISTORY, roles={ROLE_A: 0}, timed_out=True, guild=HISTORY, channel=VIEW | HISTORY,
        overwrites=(role_ow(ROLE_A, allow=VIEW),),
    ),
    "timeout-and-view-denied-means-nothing": Case(
        everyone=BASIC, timed_out=True, guild=VIEW | HISTORY, channel=0, overwrites=(everyone_ow(deny=VIEW),),
    ),
    "timeout-without-history": Case(everyone=VIEW | SEND, timed_out=True, guild=VIEW, channel=VIEW),
    # -- bits no Permission defines: they never grant or remove a defined permission, and are dropped
    "unknown-high-bit-in-everyone": Case(everyone=BASIC | UNKNOWN_BIT, guild=BASIC, channel=BASIC),
    "unknown-bits-in-overwrites": Case(
        everyone=BASIC, roles={ROLE_A: UNKNOWN_BIT_19}, guild=BASIC, channel=VIEW | HISTORY,
        overwrites=(everyone_ow(allow=UNKNOWN_BIT, deny=SEND | UNKNOWN_BIT_19), member_ow(deny=UNKNOWN_BIT)),
    ),
    "unknown-bits-with-admin": Case(
        everyone=UNKNOWN_BIT | UNKNOWN_BIT_19, roles={ROLE_A: ADMIN | UNKNOWN_BIT},
        guild=EVERY_DEFINED_BIT, channel=EVERY_DEFINED_BIT,
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_table(case: Case) -> None:
    guild, channel = effective(
        everyone=case.everyone, roles=case.roles, overwrites=list(case.overwrites), is_owner=case.is_owner,
        timed_out=case.timed_out,
        member_role_ids=None if case.member_role_ids is None else list(case.member_role_ids),
    )
    assert (P(guild), P(channel)) == (P(case.guild), P(case.channel))
    # the table's own answer agrees with the reference below, so the two checks back each other up
    scenario = Scenario(
        everyone=case.everyone & EVERY_DEFINED_BIT,
        roles={rid: perms & EVERY_DEFINED_BIT for rid, perms in case.roles.items()},
        member_role_ids=list(case.roles) if case.member_role_ids is None else list(case.member_role_ids),
        overwrites=[Overwrite(o.target_id, o.type, o.allow & EVERY_DEFINED_BIT, o.deny & EVERY_DEFINED_BIT)
                    for o in case.overwrites],
        is_owner=case.is_owner, timed_out=case.timed_out,
    )
    assert reference(scenario) == (case.guild, case.channel)


def test_admin_from_overwrite_is_not_an_administrator() -> None:
    """Discord: an overwrite cannot make anyone an administrator, whatever it allows."""
    _, channel = effective(everyone=VIEW, roles={ROLE_A: 0}, overwrites=[role_ow(ROLE_A, allow=ADMIN)])
    assert channel != EVERY_DEFINED_BIT
    assert not channel & (MANAGE_GUILD | int(P.BAN_MEMBERS) | MANAGE_MESSAGES | SEND)


def test_constants() -> None:
    assert ALL == EVERY_DEFINED_BIT
    assert TIMEOUT_ALLOWED == KEPT_IN_TIMEOUT
    assert len(set(FLAGS)) == len(FLAGS) and all(flag & (flag - 1) == 0 for flag in FLAGS)  # distinct single bits
    assert DEFAULT_EVERYONE & ~EVERY_DEFINED_BIT == 0
    assert DEFAULT_EVERYONE & VIEW and DEFAULT_EVERYONE & SEND
    for power in (P.ADMINISTRATOR, P.MANAGE_GUILD, P.MANAGE_ROLES, P.MANAGE_CHANNELS, P.KICK_MEMBERS, P.BAN_MEMBERS,
                  P.MODERATE_MEMBERS, P.MANAGE_MESSAGES, P.MENTION_EVERYONE):
        assert not DEFAULT_EVERYONE & power, power.name


def test_iterables_are_consumed_once() -> None:
    """Generators work as well as lists (each input is iterated a single time)."""
    guild = guild_permissions(is_owner=False, everyone=VIEW, role_permissions=iter([SEND, HISTORY]), timed_out=False)
    assert guild == BASIC
    channel = channel_permissions(guild, guild_id=GUILD, user_id=USER, member_role_ids=iter([ROLE_A]),
                                  overwrites=iter([role_ow(ROLE_A, deny=SEND)]), timed_out=False)
    assert channel == VIEW | HISTORY


def test_unknown_bits_do_not_leak_into_results() -> None:
    """Bits no Permission defines mean nothing: they are dropped on every path, not only the admin and timeout ones."""
    guild, channel = effective(everyone=BASIC | UNKNOWN_BIT, roles={}, overwrites=[everyone_ow(allow=UNKNOWN_BIT_19)])
    assert guild & ~EVERY_DEFINED_BIT == 0
    assert channel & ~EVERY_DEFINED_BIT == 0


# --------------------------------------------------------------------------------------------
# The reference, bit by bit
# --------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    everyone: int  # the @everyone role's permissions
    roles: dict[int, int]  # every other role of the guild: id -> permissions
    member_role_ids: list[int]  # may name the @everyone role (GUILD) or roles that do not exist
    overwrites: list[Overwrite]
    is_owner: bool
    timed_out: bool


def _has(value: int, bit: int) -> bool:
    return value & bit == bit


def reference(s: Scenario) -> tuple[int, int]:
    """(guild-level, channel) permissions, decided one permission at a time."""
    held = [rid for rid in s.member_role_ids if rid != GUILD and rid in s.roles]
    is_admin = s.is_owner or _has(s.everyone, ADMIN) or any(_has(s.roles[rid], ADMIN) for rid in held)
    if is_admin:
        return EVERY_DEFINED_BIT, EVERY_DEFINED_BIT

    everyone_layer = [o for o in s.overwrites if o.type == ROLE_OVERWRITE and o.target_id == GUILD]
    role_layer = [o for o in s.overwrites if o.type == ROLE_OVERWRITE and o.target_id != GUILD
                  and o.target_id in s.member_role_ids]
    member_layer = [o for o in s.overwrites if o.type == MEMBER_OVERWRITE and o.target_id == USER]

    def verdict(layer: list[Overwrite], bit: int) -> bool | None:
        """What one layer says about a bit: its allows win over its denies; None if it is silent."""
        if any(_has(o.allow, bit) for o in layer):
            return True
        if any(_has(o.deny, bit) for o in layer):
            return False
        return None

    guild_bits, channel_bits = set(), set()
    for bit in FLAGS:
        granted = _has(s.everyone, bit) or any(_has(s.roles[rid], bit) for rid in held)
        if granted and not (s.timed_out and bit not in (VIEW, HISTORY)):
            guild_bits.add(bit)
        in_channel = granted
        for layer in (everyone_layer, role_layer, member_layer):
            said = verdict(layer, bit)
            if said is not None:
                in_channel = said
        if in_channel:
            channel_bits.add(bit)

    if VIEW not in channel_bits:
        channel_bits = set()
    if s.timed_out:
        channel_bits &= {VIEW, HISTORY}
    return sum(guild_bits), sum(channel_bits)


def module(s: Scenario) -> tuple[int, int]:
    role_permissions = [s.roles[rid] for rid in s.member_role_ids if rid in s.roles]
    guild = guild_permissions(is_owner=s.is_owner, everyone=s.everyone, role_permissions=role_permissions,
                              timed_out=s.timed_out)
    channel = channel_permissions(guild, guild_id=GUILD, user_id=USER, member_role_ids=s.member_role_ids,
                                  overwrites=s.overwrites, timed_out=s.timed_out)
    return guild, channel


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

# Generation is kept cheap (one draw per bitfield, from a fixed pool): hypothesis costs per draw.
# The pool mixes every combination of a few permissions that interact with the rules (so layers
# often talk about the same bits) with every single flag and a few wide sets.
HOT = [VIEW, SEND, HISTORY, ATTACH, MANAGE_MESSAGES]


def _pick(items: list, mask: int) -> list:
    return [item for i, item in enumerate(items) if mask >> i & 1]


HOT_SETS = [sum(_pick(HOT, n)) for n in range(1 << len(HOT))]
WIDE_SETS = [DEFAULT_EVERYONE, EVERY_DEFINED_BIT & ~ADMIN] + [EVERY_DEFINED_BIT & ~ADMIN & ~bit for bit in HOT]
ROLE_POOL = HOT_SETS + [flag for flag in FLAGS if flag != ADMIN] + WIDE_SETS + [ADMIN] * 3  # ADMIN now and then
OVERWRITE_POOL = HOT_SETS + FLAGS + WIDE_SETS + [EVERY_DEFINED_BIT]
role_bits = st.sampled_from(ROLE_POOL)
overwrite_bits = st.sampled_from(OVERWRITE_POOL)

# A role id may equal the user's id: overwrites are told apart by type as well as target.
ROLE_IDS = [ROLE_A, ROLE_B, ROLE_C, 4, 5, USER]
HELD_IDS = [*ROLE_IDS, GUILD]  # a member's role ids may name the @everyone role
OVERWRITE_TARGETS = [(GUILD, ROLE_OVERWRITE)] + [(rid, ROLE_OVERWRITE) for rid in ROLE_IDS] + [
    (USER, MEMBER_OVERWRITE), (OTHER_USER, MEMBER_OVERWRITE)]


@st.composite
def scenarios(draw) -> Scenario:
    """A guild with 0-5 roles besides @everyone (of six possible ids), any of them held or not,
    overwrites for any subset of @everyone, those roles and two members, in a random order."""
    role_ids = _pick(ROLE_IDS, draw(st.integers(0, (1 << len(ROLE_IDS)) - 1)))[:5]
    roles = {rid: draw(role_bits) for rid in role_ids}
    held = _pick(HELD_IDS, draw(st.integers(0, (1 << len(HELD_IDS)) - 1)))
    targets = _pick(OVERWRITE_TARGETS, draw(st.integers(0, (1 << len(OVERWRITE_TARGETS)) - 1)))
    overwrites = [Overwrite(target, kind, draw(overwrite_bits), draw(overwrite_bits)) for target, kind in targets]
    random.Random(draw(st.integers(0, 1 << 16))).shuffle(overwrites)
    flags = draw(st.integers(0, 7))
    return Scenario(
        everyone=draw(role_bits), roles=roles, member_role_ids=held, overwrites=overwrites,
        is_owner=flags == 7, timed_out=bool(flags & 1),
    )


fast = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@fast
@given(scenarios())
def test_module_matches_reference(s: Scenario) -> None:
    guild, channel = module(s)
    expected_guild, expected_channel = reference(s)
    assert P(guild) == P(expected_guild)
    assert P(channel) == P(expected_channel)


@fast
@given(scenarios(), role_bits)
def test_adding_a_role_never_removes_guild_permissions(s: Scenario, extra: int) -> None:
    roles = [s.roles[rid] for rid in s.member_role_ids if rid in s.roles]
    before = guild_permissions(is_owner=s.is_owner, everyone=s.everyone, role_permissions=roles, timed_out=s.timed_out)
    after = guild_permissions(is_owner=s.is_owner, everyone=s.everyone, role_permissions=[*roles, extra],
                              timed_out=s.timed_out)
    assert before & ~after == 0


@fast
@given(scenarios())
def test_owner_always_has_everything(s: Scenario) -> None:
    s.is_owner = True
    assert module(s) == (EVERY_DEFINED_BIT, EVERY_DEFINED_BIT)


@fast
@given(scenarios(), st.booleans())
def test_administrator_from_roles_always_has_everything(s: Scenario, via_everyone: bool) -> None:
    """Whatever the overwrites say and even in timeout."""
    if via_everyone:
        s.everyone |= ADMIN
    else:
        s.roles[ROLE_B] = s.roles.get(ROLE_B, 0) | ADMIN
        s.member_role_ids = [*s.member_role_ids, ROLE_B]
    assert module(s) == (EVERY_DEFINED_BIT, EVERY_DEFINED_BIT)


@fast
@given(scenarios())
def test_everyone_role_among_member_roles_changes_nothing(s: Scenario) -> None:
    """The @everyone overwrite applies once, whether or not the caller lists the @everyone role."""
    without = [rid for rid in s.member_role_ids if rid != GUILD]
    s.member_role_ids = without
    expected = module(s)
    s.member_role_ids = [GUILD, *without]
    assert module(s) == expected


@fast
@given(scenarios())
def test_results_are_defined_permissions_and_channel_needs_view(s: Scenario) -> None:
    guild, channel = module(s)
    assert guild & ~EVERY_DEFINED_BIT == 0
    assert channel & ~EVERY_DEFINED_BIT == 0
    assert channel == 0 or channel & VIEW
    if s.timed_out and guild != EVERY_DEFINED_BIT:
        assert guild & ~KEPT_IN_TIMEOUT == 0
        assert channel & ~KEPT_IN_TIMEOUT == 0


@fast
@given(scenarios())
def test_order_of_overwrites_and_roles_does_not_matter(s: Scenario) -> None:
    expected = module(s)
    s.overwrites = list(reversed(s.overwrites))
    s.member_role_ids = list(reversed(s.member_role_ids))
    assert module(s) == expected


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.integers(min_value=0, max_value=(1 << 64) - 1), st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_unknown_bits_never_change_defined_permissions(s: Scenario, junk_a: int, junk_b: int) -> None:
    expected = module(s)
    junk_a &= ~EVERY_DEFINED_BIT
    junk_b &= ~EVERY_DEFINED_BIT
    s.everyone |= junk_a
    s.roles = {rid: perms | junk_b for rid, perms in s.roles.items()}
    s.overwrites = [Overwrite(o.target_id, o.type, o.allow | junk_a, o.deny | junk_b) for o in s.overwrites]
    assert module(s) == expected
