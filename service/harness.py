"""Test harness: lets integration tests set state that no public route can. Never in production."""

from __future__ import annotations

import hmac

from sqlalchemy import delete, select

from service import auth, events
from service.errors import APIError, field_error, not_found
from service.flags import ALL_SUSPICIOUS_FLAGS, SuspiciousActivityFlags, UserFlags, parse_names
from service.models import OutboxEmail, User
from service.users import parse_snowflake


def check_access(settings, offered: str | None) -> None:
    """The routes exist only in development and test (service.spec drops them otherwise)."""
    expected = settings.test_token
    if expected and not hmac.compare_digest((offered or "").encode(), expected.encode()):
        raise APIError(403, "TEST_HARNESS_FORBIDDEN", "Invalid test token")


def set_security_flags(session, user_id: str, body: dict) -> dict:
    user = session.get(User, parse_snowflake(user_id, "user", "UNKNOWN_USER"))
    if user is None:
        raise not_found("UNKNOWN_USER", "user")
    to_set, unknown_set = parse_names(UserFlags, body.get("set_flags") or [])
    to_clear, unknown_clear = parse_names(UserFlags, body.get("clear_flags") or [])
    named, unknown_suspicious = parse_names(SuspiciousActivityFlags, body.get("suspicious_activity_flag_names") or [])
    if unknown_set or unknown_clear:
        raise field_error("set_flags" if unknown_set else "clear_flags", "UNKNOWN_USER_FLAG",
                          f"Unknown user flag: {(unknown_set or unknown_clear)[0]}")
    if unknown_suspicious:
        raise field_error("suspicious_activity_flag_names", "UNKNOWN_SUSPICIOUS_FLAG",
                          f"Unknown suspicious activity flag: {unknown_suspicious[0]}")
    before = (user.flags, user.suspicious_activity_flags, user.pending_manual_verification)
    user.flags = (user.flags | to_set) & ~to_clear
    if "suspicious_activity_flags" in body or named:
        raw = body.get("suspicious_activity_flags", 0)
        if raw & ~ALL_SUSPICIOUS_FLAGS:
            raise field_error("suspicious_activity_flags", "INVALID_SUSPICIOUS_FLAGS_FORMAT",
                              "Unknown bits in suspicious_activity_flags")
        user.suspicious_activity_flags = raw | named
    if "pending_manual_verification" in body:
        user.pending_manual_verification = body["pending_manual_verification"]
    if not auth.in_good_standing(user):  # an account put under review stops hearing the gateway too
        events.end_logins(session, user.id)
    session.commit()
    after = (user.flags, user.suspicious_activity_flags, user.pending_manual_verification)
    return {"success": True, "updated": before != after, "flags": str(user.flags),
            "suspicious_activity_flags": user.suspicious_activity_flags}


def list_emails(session, recipient: str | None) -> dict:
    query = select(OutboxEmail).order_by(OutboxEmail.id)
    if recipient:
        query = query.where(OutboxEmail.recipient == recipient.strip().lower())
    emails = [{"to": e.recipient, "type": e.type, "timestamp": e.created_at.isoformat(), "metadata": e.metadata_json}
              for e in session.scalars(query)]
    return {"emails": emails, "count": len(emails)}


def clear_emails(session) -> None:
    session.execute(delete(OutboxEmail))
    session.commit()
