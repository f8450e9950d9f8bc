"""Bitfields with names: user flags and suspicious-activity flags."""

from __future__ import annotations

import enum


class UserFlags(enum.IntFlag):
    STAFF = 1 << 0
    CTP_MEMBER = 1 << 1
    PARTNER = 1 << 2
    BUG_HUNTER = 1 << 3
    FRIENDLY_BOT = 1 << 4
    FRIENDLY_BOT_MANUAL_APPROVAL = 1 << 5
    SPAMMER = 1 << 6


PUBLIC_USER_FLAGS = int(UserFlags(sum(f.value for f in UserFlags)))


class SuspiciousActivityFlags(enum.IntFlag):
    """Actions an account must take before it may use the API beyond /auth."""

    REQUIRE_VERIFIED_EMAIL = 1 << 0
    REQUIRE_REVERIFIED_EMAIL = 1 << 1
    REQUIRE_VERIFIED_PHONE = 1 << 2
    REQUIRE_REVERIFIED_PHONE = 1 << 3
    REQUIRE_VERIFIED_EMAIL_OR_VERIFIED_PHONE = 1 << 4
    REQUIRE_REVERIFIED_EMAIL_OR_VERIFIED_PHONE = 1 << 5
    REQUIRE_VERIFIED_EMAIL_OR_REVERIFIED_PHONE = 1 << 6
    REQUIRE_REVERIFIED_EMAIL_OR_REVERIFIED_PHONE = 1 << 7


ALL_SUSPICIOUS_FLAGS = sum(f.value for f in SuspiciousActivityFlags)


def parse_names(enum_class: type[enum.IntFlag], names: list[str]) -> tuple[int, list[str]]:
    """(combined value, unknown names)."""
    value, unknown = 0, []
    for name in names:
        member = enum_class.__members__.get(name.upper())
        if member is None:
            unknown.append(name)
        else:
            value |= member.value
    return value, unknown
