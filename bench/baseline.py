"""The benchmark's baseline: a minimal ASGI app (plain Starlette, async psycopg) doing the same SQL.

It answers the two routes the benchmark loads, with the statements the real service runs for
them and nothing else: no spec validation, no ORM, no marshmallow, no rate limiter, no access
log. The permission arithmetic is the service's own pure functions (``service.permissions``),
so both sides decide the same thing; everything around it is the thinnest code that does the job.

    send:    session+user by token hash; channel+guild+member; guild roles with the member's
             marked; channel overwrites; author; lock the channel row; INSERT message;
             UPDATE channels.last_message_id; COMMIT
    history: session+user by token hash; channel+guild+member; guild roles with the member's
             marked; channel overwrites; the 50 newest messages; their authors; their
             reactions; their attachments

Run: ``DATABASE_URL=postgresql://... uvicorn bench.baseline:app --workers N``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
import time
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import permissions as perms
from service.permissions import Permission

FLUXER_EPOCH_MS = 1_420_070_400_000
SESSION_PREFIX = "flx_"
POOL_SIZE = int(os.environ.get("BASELINE_POOL_SIZE", "10"))
PUBLIC_USER_FLAGS = 0  # the benchmark's users have no public flags


def _dsn() -> str:
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench")
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class Pool:
    """A fixed set of connections handed out in turn (psycopg_pool would be one more dependency)."""

    def __init__(self, dsn: str, size: int):
        self.dsn, self.size = dsn, size
        self.idle: asyncio.Queue | None = None

    async def open(self) -> None:
        self.idle = asyncio.Queue()
        for _ in range(self.size):
            self.idle.put_nowait(await psycopg.AsyncConnection.connect(self.dsn))

    async def close(self) -> None:
        while self.idle is not None and not self.idle.empty():
            await self.idle.get_nowait().close()

    async def acquire(self) -> psycopg.AsyncConnection:
        return await self.idle.get()

    def release(self, connection: psycopg.AsyncConnection) -> None:
        self.idle.put_nowait(connection)


class Snowflakes:
    def __init__(self, node: int):
        self.node, self.lock, self.last, self.sequence = node & 1023, threading.Lock(), -1, 0

    def next(self) -> int:
        with self.lock:
            ms = max(time.time_ns() // 1_000_000, self.last)
            if ms == self.last:
                self.sequence = (self.sequence + 1) & 4095
                if self.sequence == 0:
                    ms += 1
            else:
                self.sequence = 0
            self.last = ms
            return ((ms - FLUXER_EPOCH_MS) << 22) | (self.node << 12) | self.sequence


pool = Pool(_dsn(), POOL_SIZE)
ids: Snowflakes | None = None


def _error(status: int, code: str) -> Response:
    return Response(json.dumps({"code": code, "message": code, "error": code}), status, media_type="application/json")


class Denied(Exception):
    def __init__(self, status: int, code: str):
        self.status, self.code = status, code


def _iso_of_id(message_id: int) -> str:
    return datetime.fromtimestamp(((message_id >> 22) + FLUXER_EPOCH_MS) / 1000, tz=UTC).isoformat()


def _user(row) -> dict:
    user_id, username, discriminator, global_name, avatar, bot, system, flags = row
    return {"id": str(user_id), "username": username, "discriminator": f"{discriminator:04d}",
            "global_name": global_name, "avatar": avatar, "avatar_color": None, "bot": bot, "system": system,
            "flags": int(flags) & PUBLIC_USER_FLAGS}


USER_COLUMNS = "id, username, discriminator, global_name, avatar, bot, system, flags"
MESSAGE_COLUMNS = ("id, channel_id, guild_id, author_id, type, content, flags, tts, nonce, mention_everyone, mentions, "
                   "mention_roles, embeds, sticker_ids, referenced_message_id, pinned_at, edited_at")


async def _access(cursor, request: Request, channel_id: int) -> tuple[int, int | None, int]:
    """(user id, guild id, channel permissions): the service's auth and channel_access, as SQL."""
    token = request.headers.get("authorization", "")
    if not token.startswith(SESSION_PREFIX):
        raise Denied(401, "UNAUTHORIZED")
    await cursor.execute(
        "SELECT s.id, u.id, u.pending_manual_verification, u.suspicious_activity_flags, u.email_verified "
        "FROM auth_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = %s",
        (hashlib.sha256(token.encode()).hexdigest(),))
    row = await cursor.fetchone()
    if row is None:
        raise Denied(401, "UNAUTHORIZED")
    _session_id, user_id, pending, suspicious, verified = row
    if pending or (suspicious & ~(1 if verified else 0)):
        raise Denied(403, "ACCOUNT_SUSPICIOUS_ACTIVITY")
    await cursor.execute(
        "SELECT c.guild_id, g.owner_id, m.user_id, m.communication_disabled_until FROM channels c "
        "LEFT JOIN guilds g ON g.id = c.guild_id LEFT JOIN members m ON m.guild_id = c.guild_id AND m.user_id = %s "
        "WHERE c.id = %s", (user_id, channel_id))
    channel = await cursor.fetchone()
    if channel is None or channel[0] is None or channel[2] is None:
        raise Denied(404, "UNKNOWN_CHANNEL")
    guild_id, owner_id, _member, until = channel
    timed_out = until is not None and until > datetime.now(UTC)
    await cursor.execute(
        "SELECT r.id, r.permissions, mr.role_id FROM roles r LEFT JOIN member_roles mr "
        "ON mr.role_id = r.id AND mr.user_id = %s WHERE r.guild_id = %s", (user_id, guild_id))
    role_rows = await cursor.fetchall()
    roles = {role_id: permissions for role_id, permissions, _held in role_rows}
    role_ids = [role_id for role_id, _permissions, held in role_rows if held is not None]
    await cursor.execute("SELECT target_id, type, allow, deny FROM permission_overwrites WHERE channel_id = %s",
                         (channel_id,))
    overwrites = [perms.Overwrite(*row) for row in await cursor.fetchall()]
    base = perms.guild_permissions(is_owner=owner_id == user_id, everyone=roles.get(guild_id, 0),
                                   role_permissions=[roles[r] for r in role_ids if r in roles], timed_out=timed_out)
    allowed = perms.channel_permissions(base, guild_id=guild_id, user_id=user_id, member_role_ids=role_ids,
                                        overwrites=overwrites, timed_out=timed_out)
    if not allowed & Permission.VIEW_CHANNEL:
        raise Denied(403, "MISSING_ACCESS")
    return user_id, guild_id, allowed


def _message(row, author: dict, reactions: list, attachments: list) -> dict:
    (message_id, channel_id, guild_id, _author_id, type_, content, flags, tts, nonce, everyone, _mentions,
     mention_roles, embeds, sticker_ids, _referenced, pinned_at, edited_at) = row
    return {"id": str(message_id), "channel_id": str(channel_id), "guild_id": None if guild_id is None else str(guild_id),
            "webhook_id": None, "type": type_, "flags": flags, "content": content, "timestamp": _iso_of_id(message_id),
            "edited_timestamp": edited_at.isoformat() if edited_at else None, "pinned": pinned_at is not None,
            "mention_everyone": everyone, "tts": tts, "mention_roles": mention_roles, "embeds": embeds,
            "stickers": [{"id": s} for s in sticker_ids], "nonce": nonce, "author": author, "mentions": [],
            "attachments": attachments, "reactions": reactions}


async def _extras(cursor, message_ids: list[int], viewer_id: int) -> tuple[dict, dict]:
    await cursor.execute(
        "SELECT message_id, emoji_key, count(*), max(CASE WHEN user_id = %s THEN 1 ELSE 0 END), min(created_at) "
        "FROM reactions WHERE message_id = ANY(%s) GROUP BY message_id, emoji_key", (viewer_id, message_ids))
    reactions: dict[int, list] = {}
    for message_id, key, count, mine, _first in await cursor.fetchall():
        reactions.setdefault(message_id, []).append({"emoji": {"id": None, "name": key}, "count": count, "me": bool(mine)})
    await cursor.execute("SELECT id, message_id, filename, size, content_type FROM attachments "
                         "WHERE message_id = ANY(%s) ORDER BY id", (message_ids,))
    attachments: dict[int, list] = {}
    for attachment_id, message_id, filename, size, content_type in await cursor.fetchall():
        attachments.setdefault(message_id, []).append(
            {"id": str(attachment_id), "filename": filename, "size": size, "content_type": content_type})
    return reactions, attachments


async def _run(request: Request, work) -> Response:
    try:
        channel_id = int(request.path_params["channel_id"])
    except ValueError:
        return _error(404, "UNKNOWN_CHANNEL")
    connection = await pool.acquire()
    try:
        async with connection.transaction(), connection.cursor() as cursor:
            body = await work(cursor, channel_id)
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")
    except Denied as denied:
        return _error(denied.status, denied.code)
    finally:
        pool.release(connection)


async def send_message(request: Request) -> Response:
    payload = await request.json()
    content = payload.get("content") or ""
    if not isinstance(content, str) or not content.strip() or len(content) > 2000:
        return _error(400, "INVALID_FORM_BODY")

    async def work(cursor, channel_id):
        user_id, guild_id, allowed = await _access(cursor, request, channel_id)
        if not allowed & Permission.SEND_MESSAGES:
            raise Denied(403, "MISSING_PERMISSIONS")
        await cursor.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        author = _user(await cursor.fetchone())
        # The service locks the channel row before drawing the id, so messages commit in id order.
        await cursor.execute("UPDATE channels SET id = id WHERE id = %s", (channel_id,))
        message_id = ids.next()
        nonce = None if payload.get("nonce") is None else str(payload["nonce"])
        row = (message_id, channel_id, guild_id, user_id, 0, content, 0, False, nonce, False,
               [], [], [], [], None, None, None)
        await cursor.execute(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [*row[:10], *(Json(v) for v in row[10:14]), *row[14:]])
        await cursor.execute("UPDATE channels SET last_message_id = %s WHERE id = %s", (message_id, channel_id))
        return _message(row, author, [], [])  # a new message has no reactions or files to look up

    return await _run(request, work)


async def list_messages(request: Request) -> Response:
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        return _error(400, "INVALID_FORM_BODY")
    if not 1 <= limit <= 100:
        return _error(400, "INVALID_FORM_BODY")

    async def work(cursor, channel_id):
        user_id, _guild_id, allowed = await _access(cursor, request, channel_id)
        if not allowed & Permission.READ_MESSAGE_HISTORY:
            raise Denied(403, "MISSING_PERMISSIONS")
        await cursor.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel_id BETWEEN %s AND %s "
                             "ORDER BY channel_id DESC, id DESC LIMIT %s", (channel_id, channel_id, limit))
        rows = await cursor.fetchall()
        if not rows:
            return []
        await cursor.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ANY(%s)", (list({r[3] for r in rows}),))
        authors = {row[0]: _user(row) for row in await cursor.fetchall()}
        message_ids = [r[0] for r in rows]
        reactions, attachments = await _extras(cursor, message_ids, user_id)
        return [_message(r, authors[r[3]], reactions.get(r[0], []), attachments.get(r[0], [])) for r in rows]

    return await _run(request, work)


@contextlib.asynccontextmanager
async def lifespan(_app):
    global ids
    await pool.open()
    connection = await pool.acquire()
    try:
        async with connection.transaction():
            cursor = await connection.execute("INSERT INTO id_nodes (started_at) VALUES (now()) RETURNING id")
            ids = Snowflakes((await cursor.fetchone())[0])  # a node of its own, as each service process leases
    finally:
        pool.release(connection)
    yield
    await pool.close()


async def health(_request: Request) -> Response:
    return Response('{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/channels/{channel_id}/messages", send_message, methods=["POST"]),
        Route("/v1/channels/{channel_id}/messages", list_messages, methods=["GET"]),
        Route("/v1/_health", health, methods=["GET"]),
    ],
    lifespan=lifespan,
)
