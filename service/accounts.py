"""Accounts and sessions: register, log in (with MFA and new-IP protection), log out, sudo."""

from __future__ import annotations

import math
import re
import secrets
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from service import events, serializers
from service.auth import Identity
from service.crypto import (
    keyed_hash,
    new_secret,
    new_session_token,
    sha256_hex,
    totp_step,
)
from service.errors import APIError, FieldError, field_error, invalid_form
from service.models import AuthorizedIp, AuthSession, BackupCode, LoginTicket, User, utcnow
from service.runtime import Client

MAX_DISCRIMINATOR = 9999
MFA_TICKET_TTL = timedelta(minutes=5)
IP_TICKET_TTL = timedelta(minutes=30)
IP_RESEND_COOLDOWN = timedelta(seconds=30)
IP_RESEND_LIMIT = 5
USERNAME_JUNK = re.compile(r"[^A-Za-z0-9_]+")


# ---- usernames -------------------------------------------------------------------------

def username_from(global_name: str | None) -> str:
    base = USERNAME_JUNK.sub("_", (global_name or "").strip()).strip("_")[:32]
    return base or "user"


def taken_discriminators(session, username: str) -> set[int]:
    rows = session.execute(select(User.discriminator).where(User.username_key == username.lower()))
    return {row[0] for row in rows}


def pick_discriminator(session, username: str, wanted: int | None = None) -> int:
    taken = taken_discriminators(session, username)
    if wanted is not None:
        if wanted in taken or not 1 <= wanted <= MAX_DISCRIMINATOR:
            raise field_error("discriminator", "TAG_ALREADY_TAKEN", "That username and tag are already taken")
        return wanted
    if len(taken) >= MAX_DISCRIMINATOR:
        raise field_error("username", "USERNAME_NOT_AVAILABLE", "Too many users have this username")
    while True:
        candidate = secrets.randbelow(MAX_DISCRIMINATOR) + 1
        if candidate not in taken:
            return candidate


def username_suggestions(session, global_name: str, limit: int = 10) -> list[str]:
    """Usernames with a free tag left; names differing only in case share tags, so one of each."""
    base = username_from(global_name)
    candidates: dict[str, str] = {}
    for candidate in [base, base.replace("_", ""), *(f"{base[:28]}_{n}" for n in range(1, 20))]:
        if candidate:
            candidates.setdefault(candidate.lower(), candidate)
    full = set(session.scalars(
        select(User.username_key).where(User.username_key.in_(candidates))
        .group_by(User.username_key).having(func.count() >= MAX_DISCRIMINATOR)
    ))
    return [name for key, name in candidates.items() if key not in full][:limit]


def tag_taken(session, username: str, discriminator: str) -> bool:
    return session.scalar(select(
        select(User.id).where(User.username_key == username.lower(), User.discriminator == int(discriminator)).exists()
    ))


# ---- sessions --------------------------------------------------------------------------

def start_session(rt, session, user: User, client: Client) -> str:
    token = new_session_token()
    session.add(AuthSession(
        id=rt.new_id(), user_id=user.id, token_hash=sha256_hex(token), client_ip=client.ip,
        platform=client.platform, os=client.os, browser=client.browser,
    ))
    return token


def token_response(token: str, user: User) -> dict:
    return {"token": token, "user_id": str(user.id), "user": serializers.user_public.dump(user)}


def authorize_address(session, user_id: int, client_ip: str) -> None:
    exists = session.get(AuthorizedIp, (user_id, client_ip))
    if exists is None:
        session.add(AuthorizedIp(user_id=user_id, ip=client_ip))


def list_sessions(session, identity: Identity) -> list[dict]:
    rows = session.scalars(
        select(AuthSession).where(AuthSession.user_id == identity.user_id).order_by(AuthSession.last_used_at.desc())
    )
    return [serializers.serialize_session(row, identity.session_id) for row in rows]


def logout(session, identity: Identity) -> None:
    session.execute(delete(AuthSession).where(AuthSession.id == identity.session_id))
    events.end_logins(session, identity.user_id, [identity.session_id])
    session.commit()


def logout_sessions(rt, session, identity: Identity, body: dict) -> None:
    user = session.get(User, identity.user_id)
    verify_sudo(rt, session, user, body)
    wanted = set(body["session_id_hashes"])
    ids = [row.id for row in session.scalars(select(AuthSession).where(AuthSession.user_id == user.id))
           if serializers.session_id_hash(row.id) in wanted]
    if ids:
        session.execute(delete(AuthSession).where(AuthSession.id.in_(ids)))
        events.end_logins(session, user.id, ids)
    session.commit()


# ---- sudo ------------------------------------------------------------------------------

def verify_sudo(rt, session, user: User, body: dict) -> None:
    """Sensitive changes re-prove identity: an MFA code when MFA is on, else the password."""
    code = body.get("mfa_code")
    if user.mfa_enabled and code:
        if not check_mfa_code(rt, session, user, code):
            raise field_error("mfa_code", "INVALID_MFA_CODE", "Invalid two-factor code")
        return
    password = body.get("password")
    if password is None:
        raise APIError(403, "SUDO_MODE_REQUIRED", "This change needs your password")
    if not rt.passwords.verify(user.password_hash, password):
        raise field_error("password", "INVALID_PASSWORD", "Password does not match")


def check_mfa_code(rt, session, user: User, code: str) -> bool:
    """A current TOTP code, or an unused backup code (which this uses up)."""
    if user.totp_secret:
        step = totp_step(user.totp_secret, code, user.totp_last_step)
        if step is not None:
            # Only one concurrent request may spend a step: the update is conditional on the old value.
            last = user.totp_last_step
            unchanged = User.totp_last_step.is_(None) if last is None else User.totp_last_step == last
            spent = session.execute(update(User).where(User.id == user.id, unchanged).values(totp_last_step=step))
            if spent.rowcount == 1:
                user.totp_last_step = step
                return True
    code_hash = keyed_hash(rt.settings.secret_key, code.strip().lower().replace("-", ""))
    used = session.execute(
        update(BackupCode)
        .where(BackupCode.user_id == user.id, BackupCode.code_hash == code_hash, BackupCode.consumed.is_(False))
        .values(consumed=True)
    )
    return used.rowcount == 1


# ---- register and login ----------------------------------------------------------------

def _email_taken(session, email: str) -> APIError | None:
    if session.scalar(select(select(User.id).where(User.email == email).exists())):
        return field_error("email", "EMAIL_ALREADY_REGISTERED", "Email is already registered")
    return None


def register(rt, session, body: dict, client: Client) -> dict:
    email = body["email"].strip().lower()
    username = body.get("username") or username_from(body.get("global_name"))
    if taken := _email_taken(session, email):
        raise taken
    now = utcnow()
    password_hash = rt.passwords.hash(body["password"])
    for _attempt in range(5):
        user = User(
            id=rt.new_id(), username=username, username_key=username.lower(),
            discriminator=pick_discriminator(session, username), global_name=body.get("global_name"),
            email=email, password_hash=password_hash, password_changed_at=now,
            date_of_birth=body.get("date_of_birth"), terms_agreed_at=now if body.get("consent") else None,
            settings={"theme": body["theme"]} if body.get("theme") else {},
        )
        session.add(user)
        try:
            session.flush()
            break
        except IntegrityError:
            session.rollback()
            if taken := _email_taken(session, email):  # the same email registered a moment ago
                raise taken from None
            # Another registration took the same tag at the same moment: pick again.
    else:
        raise field_error("username", "USERNAME_NOT_AVAILABLE", "Could not find a free tag for this username")
    authorize_address(session, user.id, client.ip)
    token = start_session(rt, session, user, client)
    session.commit()
    return token_response(token, user)


def login(rt, session, body: dict, client: Client) -> dict:
    email = body["email"].strip().lower()
    user = session.scalar(select(User).where(User.email == email, User.bot.is_(False)))
    if user is None:
        rt.passwords.burn(body["password"])
    if user is None or not rt.passwords.verify(user.password_hash, body["password"]):
        raise invalid_form([
            FieldError("email", "INVALID_LOGIN", "Email or password is incorrect"),
            FieldError("password", "INVALID_LOGIN", "Email or password is incorrect"),
        ])
    if user.mfa_enabled:
        ticket, _row = _new_ticket(session, "mfa", user, client.ip, MFA_TICKET_TTL)
        session.commit()
        return {"mfa": True, "ticket": ticket, "allowed_methods": ["totp"], "totp": True, "webauthn": False}
    if session.get(AuthorizedIp, (user.id, client.ip)) is None:
        ticket, row = _new_ticket(session, "ip", user, client.ip, IP_TICKET_TTL)
        _send_ip_authorization(rt, session, user, row)
        session.commit()
        raise APIError(403, "IP_AUTHORIZATION_REQUIRED", "Authorize this new location from the link in your email",
                       ticket=ticket, email=_mask_email(user.email))
    token = start_session(rt, session, user, client)
    session.commit()
    return token_response(token, user)


def login_with_totp(rt, session, body: dict, client: Client) -> dict:
    ticket = _live_ticket(session, "mfa", body["ticket"])
    user = session.get(User, ticket.user_id)
    if user is None or not user.mfa_enabled or not check_mfa_code(rt, session, user, body["code"]):
        session.commit()  # a spent backup code stays spent even if the rest fails
        raise field_error("code", "INVALID_MFA_CODE", "Invalid two-factor code")
    if not _consume(session, ticket):
        raise field_error("ticket", "INVALID_TOKEN", "This login ticket was already used")
    authorize_address(session, user.id, client.ip)
    token = start_session(rt, session, user, client)
    session.commit()
    return token_response(token, user)


# ---- new-IP authorization --------------------------------------------------------------

def authorize_ip(session, email_token: str) -> None:
    ticket = session.scalar(select(LoginTicket).where(
        LoginTicket.kind == "ip", LoginTicket.email_token_hash == sha256_hex(email_token)))
    if ticket is None or ticket.expires_at < utcnow():
        raise field_error("token", "INVALID_TOKEN", "This authorization link is invalid or expired")
    authorize_address(session, ticket.user_id, ticket.client_ip)
    ticket.completed = True
    session.commit()


def poll_ip_authorization(rt, session, ticket_value: str, client: Client) -> dict:
    ticket = _live_ticket(session, "ip", ticket_value, allow_consumed=True)
    if not ticket.completed or ticket.consumed or not _consume(session, ticket):
        return {"completed": ticket.completed, "token": None, "user_id": None, "user": None}
    user = session.get(User, ticket.user_id)
    token = start_session(rt, session, user, client)
    session.commit()
    return {"completed": True, **token_response(token, user)}


def resend_ip_authorization(rt, session, ticket_value: str) -> None:
    ticket = _live_ticket(session, "ip", ticket_value)
    if ticket.completed:
        return
    if ticket.sends >= IP_RESEND_LIMIT:
        raise _retry_later("IP_AUTHORIZATION_RESEND_LIMIT_EXCEEDED", "Too many emails for this login",
                           (ticket.expires_at - utcnow()).total_seconds())
    wait = (ticket.last_sent_at + IP_RESEND_COOLDOWN - utcnow()).total_seconds() if ticket.last_sent_at else 0
    if wait > 0:
        raise _retry_later("IP_AUTHORIZATION_RESEND_COOLDOWN", "Wait before asking for another email", wait)
    _send_ip_authorization(rt, session, session.get(User, ticket.user_id), ticket)
    session.commit()


def _retry_later(code: str, message: str, seconds: float) -> APIError:
    """A 429 in the shape of the rate-limit body, for limits that are rules rather than rates."""
    return APIError(429, code, message, headers={"Retry-After": str(math.ceil(seconds))},
                    retry_after=round(seconds, 3), **{"global": False})


def _send_ip_authorization(rt, session, user: User, ticket: LoginTicket) -> None:
    email_token = new_secret(24)
    ticket.email_token_hash = sha256_hex(email_token)
    ticket.sends += 1
    ticket.last_sent_at = utcnow()
    link = f"{rt.settings.public_url}/authorize-ip?token={email_token}"
    rt.mailer.send(
        session, to=user.email, type="ip_authorization", subject="Authorize a new login location",
        body=f"Someone logged in to your Fluxer account from {ticket.client_ip}. If it was you, open:\n{link}\n",
        metadata={"token": email_token, "ip": ticket.client_ip, "user_id": str(user.id)},
    )


# ---- tickets ---------------------------------------------------------------------------

def _new_ticket(session, kind: str, user: User, client_ip: str, ttl: timedelta) -> tuple[str, LoginTicket]:
    """(the ticket to give the client, its stored row); only the ticket's hash is stored."""
    ticket = new_secret(24)
    row = LoginTicket(ticket_hash=sha256_hex(ticket), kind=kind, user_id=user.id, client_ip=client_ip,
                      expires_at=utcnow() + ttl)
    session.add(row)
    session.flush()
    return ticket, row


def _live_ticket(session, kind: str, value: str, *, allow_consumed: bool = False) -> LoginTicket:
    ticket = session.get(LoginTicket, sha256_hex(value))
    if ticket is None or ticket.kind != kind or ticket.expires_at < utcnow() or (ticket.consumed and not allow_consumed):
        raise field_error("ticket", "INVALID_TOKEN", "This ticket is invalid or expired")
    return ticket


def _consume(session, ticket: LoginTicket) -> bool:
    """Marks a ticket used; exactly one of several concurrent callers gets True."""
    result = session.execute(
        update(LoginTicket).where(LoginTicket.ticket_hash == ticket.ticket_hash, LoginTicket.consumed.is_(False))
        .values(consumed=True)
    )
    return result.rowcount == 1


def _mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
