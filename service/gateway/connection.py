"""One WebSocket connection speaking the gateway protocol.

Two tasks per connection: the reader parses client frames and enforces the heartbeat window, the
frame size and the rate limit; the writer drains a bounded outbox, so a client that reads slowly
only ever delays itself. When its outbox is full it is closed with 4013; its session stays
resumable and the replay buffer holds what it missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from starlette.websockets import WebSocket, WebSocketDisconnect

from service.gateway import protocol, state
from service.gateway.hub import GatewaySession, Hub
from service.gateway.protocol import Close, Op, ProtocolError
from service.presence import STATUSES
from service.users import MAX_SNOWFLAKE

log = logging.getLogger("fluxer.gateway")
NORMAL_CLOSURES = (1000, 1001)  # a client that says goodbye ends its session; other closes may resume
SERVICE_RESTART = 1012
MEMBER_CHUNK = 1000  # members per GUILD_MEMBERS_CHUNK, and the largest `limit` a request may give
MAX_REQUESTED_IDS = 100
OUTBOX_BYTES_LIMIT = 8 * 1024 * 1024  # queued for one client, whatever GATEWAY_QUEUE_LIMIT allows


class Connection:
    def __init__(self, hub: Hub, websocket: WebSocket, compressor: protocol.ZlibStream | protocol.ZstdStream | None):
        self.hub = hub
        self.websocket = websocket
        self.compressor = compressor
        self.session: GatewaySession | None = None
        self.outbox: deque[str] = deque()
        self.replaying = 0  # replayed frames still in the outbox: the slow-client limit counts only the rest
        self.outbox_bytes = 0  # of frames pushed (replays and acks are not counted; both are bounded)
        self.wakeup = asyncio.Event()
        self.close_code: int | None = None  # set once: the writer sends the close frame
        self.close_reason = ""
        self.resumable = True
        self.window = hub.heartbeat_interval_ms / 1000 * 1.5  # a heartbeat must arrive within this
        self.deadline = time.monotonic() + self.window
        self.recent_frames: deque[float] = deque()
        self.writer: asyncio.Task | None = None
        self.keep_session = False  # another connection took the session over: leave it attached

    # --- called by the hub ----------------------------------------------------------------

    def push(self, text: str) -> None:
        if self.close_code is not None:
            return
        if len(self.outbox) - self.replaying >= self.hub.queue_limit or self.outbox_bytes > OUTBOX_BYTES_LIMIT:
            self.close(Close.ACK_BACKPRESSURE, resumable=True)
            return
        self.outbox.append(text)
        self.outbox_bytes += len(text)
        self.wakeup.set()

    def replaced(self) -> None:
        """Another connection resumed this session."""
        self.close(Close.UNKNOWN_ERROR, resumable=False, keep_session=True)

    def invalidate(self) -> None:
        """The session can no longer be trusted (events were lost): start again with IDENTIFY."""
        self.outbox.append(protocol.encode(Op.INVALID_SESSION, False))
        self.close(Close.UNKNOWN_ERROR, resumable=False)

    async def reconnect_elsewhere(self) -> None:
        """Server shutdown: op 7, then a clean close."""
        self.outbox.append(protocol.encode(Op.RECONNECT, None))
        self.close(SERVICE_RESTART, resumable=True)
        if self.writer is not None:
            await asyncio.wait({self.writer}, timeout=2)

    def close(self, code: int, *, resumable: bool, keep_session: bool = False, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason[:120]  # a close frame's reason is at most 123 bytes
            self.resumable = resumable
            self.keep_session = keep_session
            self.wakeup.set()

    # --- the connection's life ---------------------------------------------------------------

    async def run(self) -> None:
        self.writer = asyncio.create_task(self._write())
        reader = asyncio.create_task(self._read())
        try:
            await self._send(protocol.encode(Op.HELLO, {"heartbeat_interval": self.hub.heartbeat_interval_ms}))
            await asyncio.wait({reader, self.writer}, return_when=asyncio.FIRST_COMPLETED)
            if not self.writer.done():  # the reader decided to close: the writer flushes and sends the close frame
                self.wakeup.set()
                await asyncio.wait({self.writer}, timeout=2)
        finally:
            reader.cancel()
            if not self.writer.done():
                self.writer.cancel()
            if self.session is not None and not self.keep_session:
                self.hub.detach(self.session, self, resumable=self.resumable)

    async def _read(self) -> None:
        try:
            while self.close_code is None:
                try:
                    async with asyncio.timeout(max(0.0, self.deadline - time.monotonic())):
                        message = await self.websocket.receive()
                except TimeoutError:
                    self.close(Close.SESSION_TIMEOUT, resumable=True)
                    return
                if message["type"] == "websocket.disconnect":
                    code = message.get("code", 1000)
                    self.close_code = code
                    self.resumable = code not in NORMAL_CLOSURES
                    return
                await self._handle(message.get("text") if message.get("text") is not None else message.get("bytes"))
        except ProtocolError as error:
            self.close(error.code, resumable=error.code in (Close.RATE_LIMITED, Close.SESSION_TIMEOUT),
                       reason=error.reason)
        except WebSocketDisconnect as gone:
            self.close_code = gone.code
            self.resumable = gone.code not in NORMAL_CLOSURES
        except Exception:  # a bug in handling one frame: close, never take the server down
            log.exception("gateway connection failed")
            self.close(Close.UNKNOWN_ERROR, resumable=True)

    async def _write(self) -> None:
        try:
            while True:
                await self.wakeup.wait()
                self.wakeup.clear()
                while self.outbox:
                    text = self.outbox.popleft()
                    self.outbox_bytes = max(0, self.outbox_bytes - len(text))
                    self.replaying = max(0, self.replaying - 1)
                    await self._send(text)
                if self.close_code is not None:
                    if self.close_code >= 4000 or self.close_code == SERVICE_RESTART:
                        await self.websocket.close(self.close_code, self.close_reason)
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away while we wrote

    async def _send(self, text: str) -> None:
        if self.compressor is not None:
            await self.websocket.send_bytes(self.compressor.compress(text))
        else:
            await self.websocket.send_text(text)

    # --- client frames -----------------------------------------------------------------------

    async def _handle(self, raw) -> None:
        if raw is None:
            raise ProtocolError(Close.DECODE_ERROR, "empty frame")
        now = time.monotonic()
        recent = self.recent_frames  # frames of the last minute only: an idle client keeps one or two
        while recent and now - recent[0] >= protocol.CLIENT_FRAME_WINDOW_SECONDS:
            recent.popleft()
        if len(recent) >= protocol.CLIENT_FRAMES_PER_WINDOW:
            raise ProtocolError(Close.RATE_LIMITED, "too many frames")
        recent.append(now)
        op, data = protocol.decode(raw)
        if op == Op.HEARTBEAT:
            self.deadline = time.monotonic() + self.window
            self.outbox.append(protocol.encode(Op.HEARTBEAT_ACK, None))
            self.wakeup.set()
        elif op == Op.IDENTIFY:
            await self._identify(data)
        elif op == Op.RESUME:
            await self._resume(data)
        elif self.session is None:
            raise ProtocolError(Close.NOT_AUTHENTICATED, "identify first")
        elif op == Op.PRESENCE_UPDATE:
            await self._presence(data)
        elif op == Op.REQUEST_GUILD_MEMBERS:
            await self._request_members(data)

    async def _authenticate(self, token) -> state.Identity:
        if self.session is not None:
            raise ProtocolError(Close.ALREADY_AUTHENTICATED, "already identified")
        identity = await asyncio.to_thread(state.identify, self.hub.runtime, token)
        if identity is None:
            raise ProtocolError(Close.AUTHENTICATION_FAILED, "authentication failed")
        return identity

    async def _identify(self, data) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("token"), str):
            raise ProtocolError(Close.DECODE_ERROR, "IDENTIFY needs a token")
        shard = data.get("shard")
        if shard is not None and shard not in ([0, 1], (0, 1)):
            raise ProtocolError(Close.INVALID_SHARD, "this gateway has one shard: [0, 1]")
        intents = data.get("intents")
        if intents is not None and (isinstance(intents, bool) or not isinstance(intents, int) or intents < 0):
            raise ProtocolError(Close.DECODE_ERROR, "intents is a non-negative integer")
        identity = await self._authenticate(data["token"])
        if not await self.hub.may_identify(identity.user_id):
            raise ProtocolError(Close.RATE_LIMITED, "too many IDENTIFYs today")
        status = _status(data.get("presence"), properties=data.get("properties"))
        session = await self.hub.open_session(identity, status, intents)
        try:
            # A logout committed between the token check and the registration reached no session: look again.
            if await asyncio.to_thread(state.identify, self.hub.runtime, data["token"]) is None:
                raise ProtocolError(Close.AUTHENTICATION_FAILED, "authentication failed")
            ready, guild_creates = await self.hub.db(state.ready, identity)
            others = await self.hub.sessions_of(identity.user_id)
        except BaseException:  # the database failed, or the client went: the session must not linger
            self.hub.end(session)
            raise
        if session.id not in self.hub.sessions or session.overflowed:
            # Forgotten meanwhile (events were lost, the server is stopping) or too far behind already.
            self.hub.end(session)
            raise ProtocolError(Close.UNKNOWN_ERROR, "the session could not start; identify again")
        self.session = session
        self.hub.attach(session, self)
        ready["session_id"] = session.id
        ready["resume_gateway_url"] = self.hub.runtime.settings.gateway_url
        ready["sessions"] = [{"session_id": sid, **status} for sid, status in others.items()]
        ready["presences"] = []
        ready["shard"] = [0, 1]
        session.release([protocol.dispatch_prefix("READY", ready),
                         *(protocol.dispatch_prefix("GUILD_CREATE", guild) for guild in guild_creates)])

    async def _resume(self, data) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("session_id"), str) \
                or isinstance(data.get("seq"), bool) or not isinstance(data.get("seq"), int | type(None)):
            raise ProtocolError(Close.DECODE_ERROR, "RESUME needs token, session_id and seq")
        identity = await self._authenticate(data.get("token"))
        session = self.hub.sessions.get(data["session_id"])
        if session is None:  # held by another process, or by one that stopped: its snapshot, if any
            session = await self.hub.adopt(data["session_id"], identity)
        elif session.user_id == identity.user_id and session.holding is None \
                and not await self.hub.keep_here(session):  # another process resumed it a moment ago
            self.hub.end(session, announce=False)
            session = None
        if session is None or session.user_id != identity.user_id or session.holding is not None:
            await self._send(protocol.encode(Op.INVALID_SESSION, False))
            return
        seq = data.get("seq") or 0
        if seq > session.seq:
            raise ProtocolError(Close.INVALID_SEQ, "that sequence number was never sent")
        missed = session.missed_since(seq)
        if missed is None:  # what it missed no longer fits the buffer: start over, on every connection
            if session.connection is not None:
                session.connection.invalidate()
            self.hub.end(session)
            await self._send(protocol.encode(Op.INVALID_SESSION, False))
            return
        self.session = session
        session.identity = identity  # the login used now: its logout is the one that ends this session
        self.hub.attach(session, self)
        # The replay is bounded by the replay buffer, not the slow-client limit, which it may exceed.
        self.outbox.extend(missed)
        self.replaying = len(self.outbox)
        session.dispatch(protocol.dispatch_prefix("RESUMED", None))

    async def _presence(self, data) -> None:
        if not isinstance(data, dict) or data.get("status") not in STATUSES:
            raise ProtocolError(Close.DECODE_ERROR, f"status is one of {', '.join(STATUSES)}")
        await self.hub.set_status(self.session, _status(data, properties=None, mobile=self.session.status["mobile"]))

    async def _request_members(self, data) -> None:
        if not isinstance(data, dict):
            raise ProtocolError(Close.DECODE_ERROR, "REQUEST_GUILD_MEMBERS needs a payload")
        guild_id = _snowflake(data.get("guild_id"))
        query, limit = data.get("query", ""), data.get("limit", 0)
        user_ids = data.get("user_ids")
        if isinstance(user_ids, str | int):
            user_ids = [user_ids]
        parsed_ids = [_snowflake(u) for u in user_ids] if isinstance(user_ids, list) else None
        if guild_id is None or not isinstance(query, str) or isinstance(limit, bool) or not isinstance(limit, int) \
                or not 0 <= limit <= MEMBER_CHUNK or (user_ids is not None and (parsed_ids is None or None in parsed_ids)):
            raise ProtocolError(Close.DECODE_ERROR, "REQUEST_GUILD_MEMBERS needs guild_id and query or user_ids")
        if "\x00" in query or (parsed_ids is not None and len(parsed_ids) > MAX_REQUESTED_IDS):
            raise ProtocolError(Close.DECODE_ERROR, f"query without NUL; at most {MAX_REQUESTED_IDS} user_ids")
        members, not_found = await self.hub.db(state.guild_members, self.session.user_id, guild_id, query=query,
                                               limit=limit, user_ids=parsed_ids)
        online = set()
        if data.get("presences"):
            online = await asyncio.to_thread(self.hub.presence.online, [int(m["user"]["id"]) for m in members])
        pages = [members[start:start + MEMBER_CHUNK] for start in range(0, len(members), MEMBER_CHUNK)] or [[]]
        for index, page in enumerate(pages):
            chunk = {"guild_id": str(guild_id), "members": page, "chunk_index": index, "chunk_count": len(pages),
                     "not_found": not_found if index == 0 else []}
            if data.get("presences"):
                chunk["presences"] = [{"user": {"id": m["user"]["id"]}, "status": "online"} for m in page
                                      if int(m["user"]["id"]) in online]
            if isinstance(data.get("nonce"), str) and len(data["nonce"]) <= 32:
                chunk["nonce"] = data["nonce"]
            self.session.dispatch(protocol.dispatch_prefix("GUILD_MEMBERS_CHUNK", chunk))


def _status(presence, *, properties, mobile: bool | None = None) -> dict:
    presence = presence if isinstance(presence, dict) else {}
    status = presence.get("status") if presence.get("status") in STATUSES else "online"
    if mobile is None:
        device = (properties or {}).get("device") if isinstance(properties, dict) else None
        mobile = isinstance(device, str) and device.lower() in ("ios", "android", "mobile")
    return {"status": status, "afk": presence.get("afk") is True, "mobile": mobile}


def _snowflake(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_SNOWFLAKE else None
