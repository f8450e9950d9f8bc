"""Who is online: each gateway session's status, shared by every process.

Without Redis there is one process and a dictionary is the whole truth. With ``REDIS_URL`` each
user's sessions live in one Redis hash (session id -> status), written by the process holding the
session and refreshed while it lives, so a crashed process's sessions expire on their own.
"""

from __future__ import annotations

import json
import threading
import time

import redis
from sqlalchemy import select

from service.models import Member

STATUSES = ("online", "dnd", "idle", "invisible", "offline")  # most present first
SHOWN = ("online", "dnd", "idle")  # what others see; invisible shows as offline


def aggregate(sessions: list[dict]) -> dict:
    """A user's presence across sessions: the most present status of them all."""
    if not sessions:
        return {"status": "offline", "mobile": False, "afk": False}
    best = min(sessions, key=lambda s: STATUSES.index(s["status"]))
    shown = best["status"] if best["status"] in SHOWN else "offline"
    return {"status": shown, "mobile": any(s.get("mobile") for s in sessions),
            "afk": all(s.get("afk") for s in sessions)}


class CountedPresence:
    """Guild online counts, remembered briefly: counting looks at every member, and a public invite
    lookup must not make a large guild's count run on each request."""

    COUNT_TTL_SECONDS = 15.0
    COUNTS_KEPT = 10_000

    def __init__(self) -> None:
        self._counts: dict[int, tuple[float, int]] = {}  # guild -> (counted at, online)

    def online_count(self, guild_id: int, count) -> int:
        now = time.monotonic()
        cached = self._counts.get(guild_id)
        if cached is not None and now - cached[0] < self.COUNT_TTL_SECONDS:
            return cached[1]
        online = count()
        if len(self._counts) >= self.COUNTS_KEPT:
            self._counts.clear()
        self._counts[guild_id] = (now, online)
        return online


class MemoryPresence(CountedPresence):
    REFRESH_SECONDS = 60

    def __init__(self) -> None:
        super().__init__()
        self._sessions: dict[int, dict[str, dict]] = {}
        self._lock = threading.Lock()  # worker threads put and drop at once

    def put(self, user_id: int, session_id: str, state: dict) -> None:
        with self._lock:
            self._sessions.setdefault(user_id, {})[session_id] = state

    def drop(self, user_id: int, session_id: str) -> None:
        with self._lock:
            held = self._sessions.get(user_id, {})
            held.pop(session_id, None)
            if not held:
                self._sessions.pop(user_id, None)

    def sessions(self, user_id: int) -> dict[str, dict]:
        with self._lock:
            return dict(self._sessions.get(user_id, {}))

    def online(self, user_ids) -> set[int]:
        with self._lock:
            return {uid for uid in user_ids
                    if aggregate(list(self._sessions.get(uid, {}).values()))["status"] != "offline"}

    def refresh(self, held: dict[int, set[str]]) -> None:
        """Nothing expires in one process: its sessions leave when they end."""


class RedisPresence(CountedPresence):
    TTL_SECONDS = 150  # a process refreshes every REFRESH_SECONDS; a dead one's sessions vanish after this
    REFRESH_SECONDS = 60

    def __init__(self, url: str, prefix: str):
        super().__init__()
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    def _key(self, user_id: int) -> str:
        return f"{self._prefix}:presence:{user_id}"

    def put(self, user_id: int, session_id: str, state: dict) -> None:
        stamped = {**state, "expires": time.time() + self.TTL_SECONDS}
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(self._key(user_id), session_id, json.dumps(stamped))
        pipe.expire(self._key(user_id), self.TTL_SECONDS)
        pipe.execute()

    def drop(self, user_id: int, session_id: str) -> None:
        self._redis.hdel(self._key(user_id), session_id)

    def sessions(self, user_id: int) -> dict[str, dict]:
        now = time.time()
        found = {}
        for session_id, raw in self._redis.hgetall(self._key(user_id)).items():
            state = json.loads(raw)
            if state.pop("expires", 0) > now:  # a field outlives its process when others refresh the key
                found[session_id.decode()] = state
        return found

    def online(self, user_ids) -> set[int]:
        user_ids = list(user_ids)
        pipe = self._redis.pipeline(transaction=False)
        for uid in user_ids:
            pipe.hvals(self._key(uid))
        now = time.time()
        online = set()
        for uid, values in zip(user_ids, pipe.execute(), strict=True):
            states = [s for s in map(json.loads, values) if s.get("expires", 0) > now]
            if aggregate(states)["status"] != "offline":
                online.add(uid)
        return online

    def refresh(self, held: dict[int, set[str]]) -> None:
        """Re-stamp this process's live sessions so they do not expire."""
        pipe = self._redis.pipeline(transaction=False)
        for user_id, session_ids in held.items():
            for session_id in session_ids:
                pipe.hget(self._key(user_id), session_id)
        current = pipe.execute()
        pipe = self._redis.pipeline(transaction=False)
        index = 0
        for user_id, session_ids in held.items():
            for session_id in session_ids:
                raw = current[index]
                index += 1
                if raw is None:
                    continue
                state = {**json.loads(raw), "expires": time.time() + self.TTL_SECONDS}
                pipe.hset(self._key(user_id), session_id, json.dumps(state))
                pipe.expire(self._key(user_id), self.TTL_SECONDS)
        pipe.execute()


def online_members(session, store, guild_id: int) -> int:
    """How many of a guild's members are online (invites' ``presence_count``, guilds' ``with_counts``),
    as counted within the last ``COUNT_TTL_SECONDS``."""
    def count() -> int:
        member_ids = list(session.scalars(select(Member.user_id).where(Member.guild_id == guild_id)))
        return len(store.online(member_ids))
    try:
        return store.online_count(guild_id, count)
    except redis.RedisError:  # presence is a hint: without Redis nobody is known to be online
        return 0
