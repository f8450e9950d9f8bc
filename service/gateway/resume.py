"""RESUME on any process: a session's snapshot in Redis, claimed by whichever process the client reaches.

With several processes behind one port, a client that reconnects (after a network blip, or after
op 7 from a stopping process) usually reaches another one. So when a session loses its connection,
or its process stops, the process writes a snapshot: who it is, its sequence number, its last
frames, and how far into every process's event stream it had routed (``seen``: origin -> counter).
The process a RESUME reaches claims the snapshot (atomically: one claim wins) and replays, from its
own recent history, the events after ``seen`` that the user may see. When its history does not
reach back that far it refuses (op 9) rather than replay with a hole.
"""

from __future__ import annotations

import json

import redis

SNAPSHOT_FRAMES = 256  # frames a snapshot keeps: what a reconnecting client may not have read yet

# Write a snapshot unless another process holds a claim on the session (the writer's own claim lapses).
_SAVE = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
# Claim a session for ARGV[1], refused while another process holds it; the snapshot goes to the claimer.
# With ARGV[3] = '1' there is no claim without a snapshot: a process that never held the session must
# not block the one that does (whose snapshot may still be on its way).
_CLAIM = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {0, false} end
local snapshot = redis.call('GET', KEYS[1])
if not snapshot and ARGV[3] == '1' then return {1, false} end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[1])
return {1, snapshot}
"""


class SnapshotStore:
    def __init__(self, url: str, prefix: str, origin: str):
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._save, self._claim = client.register_script(_SAVE), client.register_script(_CLAIM)
        self._prefix = prefix
        self.origin = origin

    def _keys(self, session_id: str) -> list[str]:
        return [f"{self._prefix}:gateway:snapshot:{session_id}", f"{self._prefix}:gateway:claim:{session_id}"]

    def save(self, snapshots: dict[str, dict], ttl_seconds: int) -> None:
        for session_id, snapshot in snapshots.items():
            self._save(keys=self._keys(session_id), args=[self.origin, json.dumps(snapshot), ttl_seconds])

    def claim(self, session_id: str, ttl_seconds: int, *, only_with_snapshot: bool = False) -> tuple[bool, dict | None]:
        """(claimed, snapshot): not claimed while another process holds the session; the snapshot,
        if one was written, is now this process's alone."""
        claimed, raw = self._claim(keys=self._keys(session_id),
                                   args=[self.origin, ttl_seconds, "1" if only_with_snapshot else "0"])
        return bool(claimed), (json.loads(raw) if raw else None)
