"""Snowflake ids on the Fluxer epoch, with Discord's bit layout.

    63..22 milliseconds since 2015-01-01T00:00:00Z | 21..12 node id | 11..0 sequence

The 10-bit node id is leased from the database when a process starts
(``storage.allocate_node_id``), so two processes never share one and their ids never
collide; within a process ids strictly increase, even if the wall clock steps back.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

FLUXER_EPOCH_MS = 1_420_070_400_000
NODE_BITS = 10
SEQUENCE_BITS = 12
MAX_NODE = (1 << NODE_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
TIMESTAMP_SHIFT = NODE_BITS + SEQUENCE_BITS


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SnowflakeGenerator:
    def __init__(self, node_id: int, clock=now_ms):
        if not 0 <= node_id <= MAX_NODE:
            raise ValueError(f"node id must be within 0..{MAX_NODE}")
        self.node_id = node_id
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        with self._lock:
            ms = max(self._clock(), self._last_ms)  # never step back with the clock
            if ms == self._last_ms:
                self._sequence = (self._sequence + 1) & MAX_SEQUENCE
                if self._sequence == 0:  # 4096 ids in one millisecond: borrow the next one
                    ms += 1
            else:
                self._sequence = 0
            self._last_ms = ms
            return ((ms - FLUXER_EPOCH_MS) << TIMESTAMP_SHIFT) | (self.node_id << SEQUENCE_BITS) | self._sequence


def snowflake_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> TIMESTAMP_SHIFT) + FLUXER_EPOCH_MS) / 1000, tz=UTC)


def snowflake_from_time(moment: datetime) -> int:
    return (int(moment.timestamp() * 1000) - FLUXER_EPOCH_MS) << TIMESTAMP_SHIFT
