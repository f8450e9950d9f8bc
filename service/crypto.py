"""Passwords, tokens and one-time codes.

Passwords: argon2id (memory-hard). Bearer tokens: 256-bit random, stored as SHA-256
(they are unguessable, so a fast hash is enough and lookups stay one indexed query).
Short human codes (backup codes, emailed tokens): HMAC-SHA-256 under the server secret,
so a leaked table cannot be brute-forced offline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SESSION_TOKEN_PREFIX = "flx_"  # noqa: S105 - a prefix, not a secret
BACKUP_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class PasswordHashing:
    def __init__(self, memory_kib: int, time_cost: int):
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=1)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        if not stored_hash:
            return False
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def burn(self, password: str) -> None:
        """Spend the cost of one verification, so unknown emails time like wrong passwords."""
        self._hasher.hash(password)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def keyed_hash(secret_key: str, value: str) -> str:
    return hmac.new(secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()


def new_session_token() -> str:
    return SESSION_TOKEN_PREFIX + secrets.token_urlsafe(27)  # 36 characters after the prefix


def new_bot_token(bot_user_id: int) -> str:
    """Discord's shape: base64(user id) '.' random. Never starts with the session prefix."""
    encoded = base64.urlsafe_b64encode(str(bot_user_id).encode()).decode().rstrip("=")
    return f"{encoded}.{secrets.token_urlsafe(30)}"


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def new_backup_code() -> str:
    return "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(8))


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_step(secret: str, code: str, after_step: int | None = None) -> int | None:
    """The time step (now +-1) whose code this is, if later than ``after_step``; else None."""
    code = code.replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(time.time()) // totp.interval
    for step in (current - 1, current, current + 1):
        if (after_step is None or step > after_step) and hmac.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None


def valid_totp_secret(secret: str) -> bool:
    try:
        return len(base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))) >= 10
    except (ValueError, TypeError):
        return False
