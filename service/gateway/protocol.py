"""The gateway's wire format: opcodes, close codes, and frames as JSON text (optionally a zstd stream).

A frame is ``{"op", "d", "s", "t"}``. Dispatches (op 0) carry a per-session sequence number ``s``
and the event name ``t``; every other frame has ``s`` and ``t`` null. A dispatch's payload is
encoded once per event and framed per session, so fan-out to many sessions costs a string join each.
"""

from __future__ import annotations

import json
import zlib
from enum import IntEnum

try:  # Python 3.14 ships zstd; older ones take the backport of the same module
    from compression import zstd
except ImportError:  # pragma: no cover - depends on the interpreter
    from backports import zstd

API_VERSION = 1
MAX_CLIENT_FRAME_BYTES = 4096
CLIENT_FRAMES_PER_WINDOW = 120
CLIENT_FRAME_WINDOW_SECONDS = 60.0


class Op(IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


# What a client may send; anything else closes with UNKNOWN_OPCODE.
# There is no voice here, so VOICE_STATE_UPDATE (op 4) is refused like any unknown opcode.
CLIENT_OPS = frozenset({Op.HEARTBEAT, Op.IDENTIFY, Op.PRESENCE_UPDATE, Op.RESUME, Op.REQUEST_GUILD_MEMBERS})


class Close(IntEnum):
    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002  # not JSON, not an object, a malformed payload, or over MAX_CLIENT_FRAME_BYTES
    NOT_AUTHENTICATED = 4003  # a frame other than IDENTIFY/RESUME/HEARTBEAT before identifying
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    SESSION_NO_LONGER_VALID = 4006  # the login behind the session ended (logout, password change)
    INVALID_SEQ = 4007  # RESUME with a sequence number this session never sent
    RATE_LIMITED = 4008
    SESSION_TIMEOUT = 4009  # no heartbeat within the window
    INVALID_SHARD = 4010
    SHARDING_REQUIRED = 4011  # never sent: one shard serves every guild
    INVALID_API_VERSION = 4012
    ACK_BACKPRESSURE = 4013  # the client read too slowly and its queue filled; it may resume


class ProtocolError(Exception):
    """A client broke the protocol; the connection closes with ``code``."""

    def __init__(self, code: Close, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def encode(op: Op, data) -> str:
    return json.dumps({"op": int(op), "d": data, "s": None, "t": None}, separators=(",", ":"))


def dispatch_prefix(name: str, data) -> str:
    """The part of a dispatch frame shared by every session; ``frame`` adds the sequence number."""
    return '{"op":0,"t":' + json.dumps(name) + ',"d":' + json.dumps(data, separators=(",", ":"), default=str) + ',"s":'


def frame(prefix: str, seq: int) -> str:
    return f"{prefix}{seq}}}"


def decode(text: str | bytes) -> tuple[Op, object]:
    """A client frame's opcode and payload; ``ProtocolError`` when it is not one."""
    size = len(text.encode()) if isinstance(text, str) else len(text)
    if size > MAX_CLIENT_FRAME_BYTES:
        raise ProtocolError(Close.DECODE_ERROR, f"frames are limited to {MAX_CLIENT_FRAME_BYTES} bytes")
    try:
        message = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(Close.DECODE_ERROR, "frame is not JSON") from None
    if not isinstance(message, dict) or isinstance(message.get("op"), bool) or not isinstance(message.get("op"), int):
        raise ProtocolError(Close.DECODE_ERROR, "a frame is an object with an integer op")
    try:
        op = Op(message["op"])
    except ValueError:
        raise ProtocolError(Close.UNKNOWN_OPCODE, "unknown opcode") from None
    if op not in CLIENT_OPS:
        raise ProtocolError(Close.UNKNOWN_OPCODE, "clients do not send this opcode")
    return op, message.get("d")


class ZlibStream:
    """``compress=zlib-stream``, what Discord libraries ask for: one deflate context for the
    connection, each frame ending in a sync flush (the 00 00 FF FF marker clients wait for)."""

    def __init__(self) -> None:
        # A 4 KiB window and memLevel 5 (uvicorn's choice for permessage-deflate): ~38 KiB per
        # connection instead of ~130 KiB; any zlib reader inflates it, a window <= 32 KiB is standard.
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 12, 5)

    def compress(self, text: str) -> bytes:
        return self._compressor.compress(text.encode()) + self._compressor.flush(zlib.Z_SYNC_FLUSH)


class ZstdStream:
    """``compress=zstd-stream``: one compression context for the connection, flushed per frame,
    so each frame decompresses as soon as it arrives and later frames reuse the earlier ones' window."""

    def __init__(self) -> None:
        # Level 3 as before, with a 64 KiB window and small match tables: ~80 KiB per connection
        # instead of ~820 KiB (the default sizes its window and tables for multi-megabyte inputs).
        self._compressor = zstd.ZstdCompressor(options={
            zstd.CompressionParameter.compression_level: 3, zstd.CompressionParameter.window_log: 16,
            zstd.CompressionParameter.hash_log: 12, zstd.CompressionParameter.chain_log: 12})

    def compress(self, text: str) -> bytes:
        return self._compressor.compress(text.encode(), zstd.ZstdCompressor.FLUSH_BLOCK)


COMPRESSORS = {"zlib-stream": ZlibStream, "zstd-stream": ZstdStream}  # by the ``compress`` query value
