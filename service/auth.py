"""Who is calling: resolves the Authorization header for Connexion's security layer.

A person sends the bare session token (``flx_...``); a bot sends ``Bot <token>``. Each
form is accepted only by its own scheme, so a ``Bot`` prefix on a session token, or a
bare bot token, is 401. The database lookup runs in a worker thread: Connexion calls
these functions on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from starlette.concurrency import run_in_threadpool

from service.crypto import SESSION_TOKEN_PREFIX, sha256_hex
from service.errors import APIError
from service.flags import SuspiciousActivityFlags
from service.models import Application, AuthSession, User, utcnow

SCOPE_KEY = "fluxer.runtime"
BOT_PREFIX = "Bot "
# Paths an account under review may still use: logging in and out, and nothing else.
UNRESTRICTED_PREFIXES = ("/v1/auth/",)
LAST_USED_RESOLUTION = timedelta(minutes=5)  # write last_used_at at most this often


@dataclass(frozen=True)
class Identity:
    user_id: int
    kind: str  # "session" | "bot"
    session_id: int | None = None

    @property
    def is_bot(self) -> bool:
        return self.kind == "bot"

    def token_info(self) -> dict:
        return {"sub": str(self.user_id), "kind": self.kind, "session_id": self.session_id}

    @classmethod
    def from_token_info(cls, info: dict) -> Identity:
        return cls(int(info["sub"]), info["kind"], info.get("session_id"))


async def session_token_info(apikey: str, request) -> dict | None:
    if not apikey.startswith(SESSION_TOKEN_PREFIX):
        return None
    runtime = request.scope[SCOPE_KEY]
    return await run_in_threadpool(resolve, runtime, "session", apikey, request.scope["path"])


async def bot_token_info(apikey: str, request) -> dict | None:
    if not apikey.startswith(BOT_PREFIX):
        return None
    token = apikey[len(BOT_PREFIX):].strip()
    if not token or token.startswith(SESSION_TOKEN_PREFIX):
        return None
    runtime = request.scope[SCOPE_KEY]
    return await run_in_threadpool(resolve, runtime, "bot", token, request.scope["path"])


# What the standing check reads of a user; the lookups fetch these columns, no whole rows. Both
# statements are built once: they run before every authenticated request.
_STANDING = (User.id.label("user_id"), User.pending_manual_verification, User.suspicious_activity_flags,
             User.email_verified)
_SESSION_BY_TOKEN = (
    select(AuthSession.id.label("session_id"), AuthSession.last_used_at, *_STANDING)
    .join(User, User.id == AuthSession.user_id).where(AuthSession.token_hash == bindparam("token_hash")))
_BOT_BY_TOKEN = (
    select(*_STANDING).join(Application, Application.bot_user_id == User.id)
    .where(Application.bot_token_hash == bindparam("token_hash")))


def resolve(runtime, kind: str, token: str, path: str) -> dict | None:
    """The token_info of a session or bot token, None when unknown; APIError for an account under review."""
    # A bare connection, not an ORM session: this runs before every authenticated request.
    token_hash = sha256_hex(token)
    with runtime.db.engine.connect() as connection:
        if kind == "session":
            row = connection.execute(_SESSION_BY_TOKEN, {"token_hash": token_hash}).first()
            if row is None:
                return None
            now = utcnow()
            if now - row.last_used_at > LAST_USED_RESOLUTION:
                connection.execute(update(AuthSession).where(AuthSession.id == row.session_id)
                                   .values(last_used_at=now))
                connection.commit()
            identity = Identity(row.user_id, "session", row.session_id)
        else:
            row = connection.execute(_BOT_BY_TOKEN, {"token_hash": token_hash}).first()
            if row is None:
                return None
            identity = Identity(row.user_id, "bot")
    check_account_standing(row, path)
    return identity.token_info()


def in_good_standing(user) -> bool:
    """Whether the account may use more than /auth (the gateway included)."""
    try:
        check_account_standing(user, "")
    except APIError:
        return False
    return True


def check_account_standing(user, path: str) -> None:
    """Accounts under review or with required actions may only use /auth."""
    if path.startswith(UNRESTRICTED_PREFIXES):
        return
    if user.pending_manual_verification:
        raise APIError(403, "ACCOUNT_SUSPICIOUS_ACTIVITY", "This account is pending manual verification",
                       pending_manual_verification=True)
    outstanding = user.suspicious_activity_flags
    if user.email_verified:
        outstanding &= ~SuspiciousActivityFlags.REQUIRE_VERIFIED_EMAIL
    if outstanding:
        raise APIError(403, "ACCOUNT_SUSPICIOUS_ACTIVITY", "This account must complete required actions",
                       suspicious_activity_flags=int(outstanding))
