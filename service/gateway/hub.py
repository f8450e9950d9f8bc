"""One process's gateway: its sessions, and the router that hands each committed event to exactly
the sessions whose users may see it.

Events arrive from the bus (request threads, and the Redis listener thread) and queue for a single
router task, so every session sees events in the order this process received them. Deciding who
may see an event needs the database; those reads run in worker threads and their answers are
cached per guild (``GuildView``) until an event that changes roles, members or channels of that
guild passes through the router, which drops the cache before routing that event.

A session outlives its connection for ``gateway_resume_seconds``: events keep landing in its replay
buffer, and a RESUME on this process replays what the client missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from limits import parse
from sqlalchemy.orm import Session

from service import dms
from service.auth import Identity
from service.events import LOGINS_ENDED, SESSION_MOVED, Event
from service.gateway import protocol, state
from service.gateway.resume import SNAPSHOT_FRAMES, SnapshotStore
from service.permissions import Permission
from service.presence import aggregate
from service.ratelimit import MemoryCounters, RedisCounters

log = logging.getLogger("fluxer.gateway")

# Events after which a guild's cached view (members, roles, overwrites) is stale.
RESHAPING_EVENTS = frozenset({
    "GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE", "GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE",
    "GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE", "GUILD_ROLE_UPDATE_BULK", "GUILD_ROLE_DELETE", "CHANNEL_CREATE",
    "CHANNEL_UPDATE", "CHANNEL_UPDATE_BULK", "CHANNEL_DELETE",
})
# Channel events whose payload is the channel itself: its overwrites after the change decide who hears it.
CHANNEL_SHAPED = frozenset({"CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE"})
# Events a member hears only with more than VIEW_CHANNEL on the channel.
EXTRA_PERMISSION = {"INVITE_CREATE": Permission.MANAGE_CHANNELS, "INVITE_DELETE": Permission.MANAGE_CHANNELS}
# Guild events only those who may read the same through REST hear (the ban list needs BAN_MEMBERS).
GUILD_PERMISSION = {"GUILD_BAN_ADD": Permission.BAN_MEMBERS, "GUILD_BAN_REMOVE": Permission.BAN_MEMBERS}
# Events that change who is in a DM or group DM.
RECIPIENT_EVENTS = frozenset({"CHANNEL_RECIPIENT_ADD", "CHANNEL_RECIPIENT_REMOVE", "CHANNEL_DELETE", "CHANNEL_CREATE"})
GUILD_PRESENCES_INTENT = 1 << 8
RECIPIENT_CACHE_LIMIT = 10_000  # DMs whose recipients are remembered
REPLAY_BYTES_LIMIT = 8 * 1024 * 1024  # a session's replay buffer, whatever GATEWAY_REPLAY_LIMIT allows
IDENTIFY_BUDGET = parse("1000/day")  # IDENTIFYs per account, what /gateway/bot announces
HISTORY_LIMIT = 10_000  # events routed here that a session resumed from another process may need
# Not replayed to a session resumed from another process: presence is a state (READY-like, not a log),
# and each announcement names everyone sharing a guild with its user, too large to keep thousands of.
UNREPLAYED = frozenset({"PRESENCE_UPDATE", LOGINS_ENDED, SESSION_MOVED})
# A snapshot is resumable here only if this process heard every process's events from a little
# before it was taken: what its writer had routed by then was published this long before, at most.
SNAPSHOT_MARGIN_SECONDS = 1.0


@dataclass(eq=False)
class GatewaySession:
    id: str
    identity: Identity
    status: dict
    intents: int | None
    replay_limit: int
    seq: int = 0
    replay: deque = field(default_factory=deque)
    replay_bytes: int = 0
    connection: object | None = None  # the live Connection, None while detached
    detached_at: float | None = None
    holding: list[str] | None = field(default_factory=list)  # dispatch prefixes that arrive before READY
    overflowed: bool = False  # more arrived before READY than a replay could hold: the session cannot start

    @property
    def user_id(self) -> int:
        return self.identity.user_id

    def dispatch(self, prefix: str, *, keep: bool = True) -> None:
        if self.holding is not None:
            if len(self.holding) < self.replay_limit:
                self.holding.append(prefix)
            else:
                self.overflowed = True
            return
        self.seq += 1
        if keep:  # the prefix is one string shared by every session the event went to; RESUME rebuilds frames
            self.replay.append((self.seq, prefix))
            self.replay_bytes += len(prefix)
            while len(self.replay) > self.replay_limit or self.replay_bytes > REPLAY_BYTES_LIMIT:
                self.replay_bytes -= len(self.replay.popleft()[1])
        if self.connection is not None:
            self.connection.push(protocol.frame(prefix, self.seq))

    def release(self, first: list[str]) -> None:
        """Send ``first`` (READY), then what arrived while it was being built, in order. READY is not
        kept for RESUME: a client that resumes has it, since the session id it names came in it."""
        held, self.holding = self.holding or [], None
        for index, prefix in enumerate([*first, *held]):
            self.dispatch(prefix, keep=not (index == 0 and first))

    def missed_since(self, seq: int) -> list[str] | None:
        """The frames after ``seq``; None when some of them have already left the buffer."""
        if seq == self.seq:
            return []
        oldest = self.replay[0][0] if self.replay else self.seq + 1
        if seq < oldest - 1:
            return None
        return [protocol.frame(prefix, s) for s, prefix in self.replay if s > seq]

    def wants(self, event_name: str) -> bool:
        if event_name == "PRESENCE_UPDATE" and self.intents is not None:
            return bool(self.intents & GUILD_PRESENCES_INTENT)
        return True


class Hub:
    def __init__(self, runtime):
        self.runtime = runtime
        settings = runtime.settings
        self.heartbeat_interval_ms = settings.gateway_heartbeat_ms
        self.resume_seconds = settings.gateway_resume_seconds
        self.queue_limit = settings.gateway_queue_limit
        self.replay_limit = settings.gateway_replay_limit
        self.sessions: dict[str, GatewaySession] = {}
        self.by_user: dict[int, set[GatewaySession]] = {}
        self.guild_users: dict[int, set[int]] = {}  # guild -> local users who are members
        self.user_guilds: dict[int, set[int]] = {}  # and the other way round
        self.presence = runtime.presence
        self._identify_counters = RedisCounters(settings.redis_url) if settings.redis_url else MemoryCounters()
        self._views: dict[int, state.GuildView] = {}
        self._recipients: dict[int, set[int]] = {}
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self._routing_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-routing")
        # What was routed, for sessions resumed from another process (with Redis only).
        bus = runtime.events
        self.snapshots = SnapshotStore(settings.redis_url, settings.events_channel, bus.origin) \
            if settings.redis_url else None
        self._history: deque[Event] = deque()
        self._seen: dict[str, int] = {}  # origin -> counter of the last event routed
        self._floor: dict[str, int] = {}  # origin -> the counter from which the history is complete
        self.listening_since = time.time()
        self._unsubscribe = None
        self._hears_gaps = False
        self.closing = False

    # --- lifecycle ---------------------------------------------------------------------------

    def ensure_started(self, *, take_over: bool = False) -> None:
        """Start on the running loop: at server start-up, or with the first connection. A hub whose
        loop has ended (an embedded server that stopped) starts afresh on the new one; so does one
        running on another loop when ``take_over`` (a connection is served here: the hub must be too)."""
        running = asyncio.get_running_loop()
        if self._loop is running or (self._loop is not None and not self._loop.is_closed() and not take_over):
            return
        if self._loop is not None and not self._loop.is_closed():
            for task in self._tasks:
                self._loop.call_soon_threadsafe(task.cancel)
        if self._unsubscribe:
            self._unsubscribe()
        self.sessions.clear()
        self.by_user.clear()
        self.guild_users.clear()
        self.user_guilds.clear()
        self._views.clear()
        self._recipients.clear()
        self._forget_history()
        self.closing = False
        self._loop = running
        self._queue = asyncio.Queue()
        self._tasks = [self._loop.create_task(self._route_forever(), name="gateway-router"),
                       self._loop.create_task(self._housekeeping(), name="gateway-housekeeping")]
        self._unsubscribe = self.runtime.events.subscribe(self._from_bus)
        if not self._hears_gaps:  # once: the callback finds the hub's current loop itself
            self.runtime.events.on_gap(self._from_gap)
            self._hears_gaps = True

    def runs_on_this_loop(self) -> bool:
        return self._loop is not None and self._loop is asyncio.get_running_loop()

    async def shutdown(self) -> None:
        """Tell every client to reconnect elsewhere (op 7), then close their connections."""
        self.closing = True
        leaving = list(self.sessions.values())
        connections = [s.connection for s in leaving if s.connection is not None]
        await asyncio.gather(*(c.reconnect_elsewhere() for c in connections), return_exceptions=True)
        # Once their connections are closed (nothing more reaches the clients), so another process can
        # resume them: op 7 asks clients to.
        await self._save_snapshots(leaving)
        for session in leaving:
            self._forget(session, announce=False)
        # Their presence goes now, not when Redis expires it: a deploy must not leave everyone "online".
        await asyncio.gather(*(self._drop_presence(s) for s in leaving), return_exceptions=True)
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        for task in self._tasks:
            task.cancel()
        # ``closing`` stays set: a client reconnecting to this stopping process is refused (1012).

    def _from_bus(self, event: Event) -> None:
        # Called from request threads and the Redis listener: hand over to the loop, in order.
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def _from_gap(self) -> None:
        """Events from other processes were lost (Redis went away): every session may have missed
        some, so each client is told to start over with a fresh READY rather than trust a replay."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._invalidate_everything)

    def _invalidate_everything(self) -> None:
        self._views.clear()
        self._recipients.clear()
        self._forget_history()
        for session in list(self.sessions.values()):
            if session.connection is not None:
                session.connection.invalidate()
            self._forget(session)

    async def db(self, function, *args, **kwargs):
        """Run ``function(session, *args, **kwargs)`` in a worker thread with its own database session."""
        return await asyncio.to_thread(self._with_session, function, args, kwargs)

    async def _routing_db(self, function, *args):
        """``db`` for the router, on its own thread: IDENTIFYs and member requests never queue ahead of it."""
        return await asyncio.get_running_loop().run_in_executor(self._routing_pool, self._with_session, function, args, {})

    def _with_session(self, function, args, kwargs):
        with Session(self.runtime.db.engine, expire_on_commit=False) as session:
            return function(session, *args, **kwargs)

    # --- sessions ----------------------------------------------------------------------------

    async def open_session(self, identity: Identity, status: dict, intents: int | None) -> GatewaySession:
        # Registered before its guilds are read: a GUILD_CREATE routed meanwhile still adds its guild
        # (the session holds events until READY). A guild left meanwhile costs nothing: a guild's
        # view only ever lists real members.
        session = GatewaySession(secrets.token_hex(16), identity, status, intents, self.replay_limit)
        self.sessions[session.id] = session
        self.by_user.setdefault(identity.user_id, set()).add(session)
        try:
            for guild_id in await self.db(state.guild_ids_of, identity.user_id):
                self._join(identity.user_id, guild_id)
        except BaseException:
            self._forget(session, announce=False)
            raise
        await self._set_presence(session, status)
        return session

    async def may_identify(self, user_id: int) -> bool:
        """Whether this account has IDENTIFYs left today; when the counters are unreachable, it has."""
        try:
            (count, _reset), = await self._identify_counters.charge([(f"gateway-identify:{user_id}", IDENTIFY_BUDGET)])
        except Exception as exc:
            log.warning("identify budget unavailable", extra={"error": repr(exc)})
            return True
        return count <= IDENTIFY_BUDGET.amount

    async def sessions_of(self, user_id: int) -> dict[str, dict]:
        """This user's gateway sessions on every process, from presence; none known when it is unreachable."""
        try:
            return await asyncio.to_thread(self.presence.sessions, user_id)
        except Exception as exc:
            log.warning("presence unavailable", extra={"error": repr(exc)})
            return {}

    def attach(self, session: GatewaySession, connection) -> None:
        previous = session.connection
        session.connection, session.detached_at = connection, None
        if previous is not None and previous is not connection:
            previous.replaced()

    def detach(self, session: GatewaySession, connection, *, resumable: bool) -> None:
        if session.connection is not connection:
            return  # a newer connection resumed this session already
        session.connection = None
        if resumable and not self.closing:
            session.detached_at = time.monotonic()
            self._in_background(self._save_snapshots([session]))
        else:
            self._forget(session)

    def end(self, session: GatewaySession, *, announce: bool = True) -> None:
        self._forget(session, announce=announce)

    def _forget(self, session: GatewaySession, *, announce: bool = True) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        held = self.by_user.get(session.user_id, set())
        held.discard(session)
        if not held:
            self.by_user.pop(session.user_id, None)
            for guild_id in list(self.user_guilds.get(session.user_id, ())):
                self._leave(session.user_id, guild_id)
        if announce and self._loop is not None and not self._loop.is_closed():
            self._in_background(self._drop_presence(session))

    def _in_background(self, coroutine) -> None:
        task = self._loop.create_task(coroutine)
        self._background.add(task)  # a reference, so the task is not collected before it runs
        task.add_done_callback(self._background.discard)

    def _join(self, user_id: int, guild_id: int) -> None:
        users = self.guild_users.setdefault(guild_id, set())
        if user_id not in users:
            users.add(user_id)
            self.user_guilds.setdefault(user_id, set()).add(guild_id)
            self._views.pop(guild_id, None)

    def _leave(self, user_id: int, guild_id: int) -> None:
        users = self.guild_users.get(guild_id)
        if users and user_id in users:
            users.discard(user_id)
            if not users:
                self.guild_users.pop(guild_id, None)
            guilds = self.user_guilds.get(user_id, set())
            guilds.discard(guild_id)
            if not guilds:
                self.user_guilds.pop(user_id, None)
            self._views.pop(guild_id, None)

    async def _housekeeping(self) -> None:
        """End sessions nobody resumed in time; keep this process's presence fresh in Redis."""
        last_refresh = time.monotonic()
        while True:
            await asyncio.sleep(min(5.0, self.resume_seconds / 4))
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if session.detached_at is not None and now - session.detached_at > self.resume_seconds:
                    self._forget(session)
            if now - last_refresh >= self.presence.REFRESH_SECONDS:
                last_refresh = now
                held = {uid: {s.id for s in sessions} for uid, sessions in self.by_user.items()}
                try:
                    await asyncio.to_thread(self.presence.refresh, held)
                except Exception as exc:  # Redis away: the next round tries again
                    log.warning("presence refresh failed", extra={"error": repr(exc)})

    # --- presence ----------------------------------------------------------------------------

    async def set_status(self, session: GatewaySession, status: dict) -> None:
        session.status = status
        await self._set_presence(session, status)

    async def _set_presence(self, session: GatewaySession, status: dict) -> None:
        def change():
            before = aggregate(list(self.presence.sessions(session.user_id).values()))
            self.presence.put(session.user_id, session.id, status)
            return before, aggregate(list(self.presence.sessions(session.user_id).values()))
        await self._announce_presence(session.user_id, change)

    async def _drop_presence(self, session: GatewaySession) -> None:
        def change():
            before = aggregate(list(self.presence.sessions(session.user_id).values()))
            self.presence.drop(session.user_id, session.id)
            return before, aggregate(list(self.presence.sessions(session.user_id).values()))
        await self._announce_presence(session.user_id, change)

    async def _announce_presence(self, user_id: int, change) -> None:
        try:
            before, after = await asyncio.to_thread(change)
            if before == after:
                return
            user = await self.db(state.public_user, user_id)
            audience = await self.db(state.presence_audience, user_id)
        except Exception as exc:  # presence is best effort: Redis or the database away must not end a session
            log.warning("presence update failed", extra={"error": repr(exc)})
            return
        if user is None:
            return
        payload = {"user": user, **after, "custom_status": None}
        if audience:  # the bus may talk to Redis: never on the event loop
            await asyncio.to_thread(self.runtime.events.dispatch,
                                    [Event("PRESENCE_UPDATE", payload, user_ids=tuple(sorted(audience)))])

    # --- routing -----------------------------------------------------------------------------

    ROUTE_RETRY_DELAYS = (0.1, 0.5, 2.0)  # seconds between attempts to route an event (the database may blink)

    async def _route_forever(self) -> None:
        while True:
            event = await self._queue.get()
            if isinstance(event, tuple):  # ("adopt", session id, identity, snapshot, future)
                _job, session_id, identity, snapshot, adopted = event
                try:
                    adopted.set_result(await self._adopt(session_id, identity, snapshot))
                except Exception as exc:
                    log.exception("gateway adoption failed")
                    adopted.set_exception(exc)
                continue
            for delay in (*self.ROUTE_RETRY_DELAYS, None):
                try:
                    await self.route(event)
                    break
                except Exception:
                    if delay is None:  # its audience may have missed it: they must not run on unaware
                        log.exception("gateway routing failed; sessions start over", extra={"event": event.name})
                        self._invalidate_everything()
                    else:
                        await asyncio.sleep(delay)

    async def route(self, event: Event) -> None:
        self._before_routing(event)  # caches must forget a change even while nobody here is connected
        if self.sessions:
            if event.name == LOGINS_ENDED:
                self._end_logins(event)
            elif event.name == SESSION_MOVED:
                self._let_go(event)
            else:
                for user_id, prefix in await self._prefixes(event):
                    self._dispatch_to_user(user_id, event.name, prefix)
                self._after_routing(event)
        self._remember(event)  # after its dispatch: a snapshot's ``seen`` never runs ahead of its frames

    async def _prefixes(self, event: Event, only: int | None = None) -> list[tuple[int, str]]:
        """(user, encoded dispatch) for everyone here who may see ``event``, or for ``only`` that user."""
        audience = await self._audience(event)
        if only is not None:
            audience &= {only}
        if not audience:
            return []
        if event.name != "CHANNEL_UPDATE_BULK":
            prefix = protocol.dispatch_prefix(event.name, event.data)
            return [(user_id, prefix) for user_id in audience]
        # A bulk channel change names many channels: each member hears only of those they can see.
        view = await self._view(event.guild_id)
        channels = event.data.get("channels", []) if isinstance(event.data, dict) else []
        encoded: dict[tuple[int, ...], str] = {}  # members who see the same channels share one encoding
        out = []
        for user_id in audience:
            visible = tuple(i for i, channel in enumerate(channels) if view.permissions(
                user_id, int(channel["id"]), state.overwrites_in(channel)) & Permission.VIEW_CHANNEL)
            if not visible:
                continue
            if visible not in encoded:
                encoded[visible] = protocol.dispatch_prefix(
                    event.name, {**event.data, "channels": [channels[i] for i in visible]})
            out.append((user_id, encoded[visible]))
        return out

    def _dispatch_to_user(self, user_id: int, name: str, prefix: str) -> None:
        for session in list(self.by_user.get(user_id, ())):
            if session.wants(name):
                session.dispatch(prefix)

    # --- sessions resumed across processes ------------------------------------------------------

    def _remember(self, event: Event) -> None:
        if event.ref is None or self.snapshots is None:
            return
        origin, counter = event.ref
        self._floor.setdefault(origin, counter)
        self._seen[origin] = max(self._seen.get(origin, 0), counter)
        if event.name in UNREPLAYED:
            return  # counted as seen, not kept: a resumed session does not get it
        self._history.append(event)
        if len(self._history) > HISTORY_LIMIT:
            gone = self._history.popleft()
            self._floor[gone.ref[0]] = gone.ref[1] + 1

    def _forget_history(self) -> None:
        """After lost events the history has a hole: it starts again, and so does what it can cover."""
        self._history.clear()
        self._seen.clear()
        self._floor.clear()
        self.listening_since = time.time()

    def _snapshot(self, session: GatewaySession) -> dict:
        identity = session.identity
        return {"user_id": identity.user_id, "kind": identity.kind, "auth_session_id": identity.session_id,
                "intents": session.intents, "status": session.status, "seq": session.seq,
                "replay": list(session.replay)[-SNAPSHOT_FRAMES:], "seen": dict(self._seen), "taken_at": time.time()}

    async def _save_snapshots(self, sessions: list[GatewaySession]) -> None:
        if self.snapshots is None or not sessions:
            return
        await self._save_snapshots_raw({s.id: self._snapshot(s) for s in sessions if s.holding is None})

    async def _save_snapshots_raw(self, snapshots: dict[str, dict]) -> None:
        try:
            await asyncio.to_thread(self.snapshots.save, snapshots, self.resume_seconds)
        except Exception as exc:  # Redis away: these sessions can still be resumed here
            log.warning("gateway snapshots not saved", extra={"error": repr(exc), "sessions": len(snapshots)})

    async def keep_here(self, session: GatewaySession) -> bool:
        """Before resuming a session this process holds: claim it, unless another process already did."""
        if self.snapshots is None:
            return True
        try:
            claimed, _snapshot = await asyncio.to_thread(self.snapshots.claim, session.id, self.resume_seconds)
        except Exception as exc:  # Redis away: nobody else can have claimed it either
            log.warning("gateway claim failed", extra={"error": repr(exc)})
            return True
        return claimed

    async def adopt(self, session_id: str, identity: Identity) -> GatewaySession | None:
        """A session another process held, resumed here from its snapshot; None when that cannot be
        done without a hole (no snapshot, another owner, or history that does not reach back)."""
        if self.snapshots is None:
            return None
        try:
            claimed, snapshot = await asyncio.to_thread(self.snapshots.claim, session_id, self.resume_seconds,
                                                        only_with_snapshot=True)
        except Exception as exc:
            log.warning("gateway claim failed", extra={"error": repr(exc)})
            return None
        if not claimed or snapshot is None:
            return None
        session = None
        heard_since = snapshot["taken_at"] - SNAPSHOT_MARGIN_SECONDS >= self.listening_since
        if snapshot["user_id"] == identity.user_id and heard_since:
            adopted = asyncio.get_running_loop().create_future()
            self._queue.put_nowait(("adopt", session_id, identity, snapshot, adopted))  # in turn, like events
            session = await adopted
        if session is None:  # refused here: put it back, so that its holder (or another process) still may
            await self._save_snapshots_raw({session_id: snapshot})
            return None
        await asyncio.to_thread(self.runtime.events.dispatch,
                                [Event(SESSION_MOVED, {"session_id": session_id}, user_ids=(identity.user_id,))])
        await self._set_presence(session, session.status)
        return session

    async def _adopt(self, session_id: str, identity: Identity, snapshot: dict) -> GatewaySession | None:
        """In the router, between two events: nothing is routed while the replay is put together."""
        seen = {origin: int(counter) for origin, counter in snapshot["seen"].items()}
        for origin, last in self._seen.items():
            if last > seen.get(origin, 0) and self._floor[origin] > seen.get(origin, 0) + 1:
                return None  # this process no longer remembers all that the session missed
        session = GatewaySession(session_id, identity, snapshot["status"], snapshot["intents"], self.replay_limit,
                                 seq=snapshot["seq"], holding=None)
        for seq, prefix in snapshot["replay"]:
            session.replay.append((seq, prefix))
            session.replay_bytes += len(prefix)
        self.sessions[session_id] = session
        self.by_user.setdefault(identity.user_id, set()).add(session)
        session.detached_at = time.monotonic()
        try:
            for guild_id in await self.db(state.guild_ids_of, identity.user_id):
                self._join(identity.user_id, guild_id)
            for event in list(self._history):
                origin, counter = event.ref
                if counter <= seen.get(origin, 0):
                    continue
                for _user_id, prefix in await self._prefixes(event, only=identity.user_id):
                    if session.wants(event.name):
                        session.dispatch(prefix)
        except BaseException:
            self._forget(session, announce=False)
            raise
        return session

    def _let_go(self, event: Event) -> None:
        """Another process resumed one of this process's sessions: its copy here goes, quietly."""
        if self.snapshots is None or event.ref is None or event.ref[0] == self.snapshots.origin:
            return
        session = self.sessions.get(event.data.get("session_id")) if isinstance(event.data, dict) else None
        if session is not None:
            if session.connection is not None:
                session.connection.replaced()
            self._forget(session, announce=False)

    def _end_logins(self, event: Event) -> None:
        ended = event.data.get("session_ids") if isinstance(event.data, dict) else None
        for user_id in event.user_ids:
            for session in list(self.by_user.get(user_id, ())):
                if ended is None or session.identity.session_id in ended:
                    if session.connection is not None:
                        session.connection.close(protocol.Close.SESSION_NO_LONGER_VALID, resumable=False)
                    self._forget(session)

    def _before_routing(self, event: Event) -> None:
        if event.guild_id is not None and event.name in RESHAPING_EVENTS:
            self._views.pop(event.guild_id, None)
        if event.name in RECIPIENT_EVENTS:  # the DM's id is the payload's id (CHANNEL_*) or channel_id (RECIPIENT_*)
            self._recipients.pop(event.channel_id, None)
            if isinstance(event.data, dict):
                for key in ("id", "channel_id"):
                    self._recipients.pop(_int(event.data.get(key)), None)

    def _after_routing(self, event: Event) -> None:
        """A user who joined or left a guild: this process now routes that guild's events to them, or stops."""
        if event.name not in ("GUILD_CREATE", "GUILD_DELETE") or not event.user_ids:
            return
        guild_id = _int(event.data.get("id")) if isinstance(event.data, dict) else None
        if guild_id is None:
            return
        for user_id in event.user_ids:
            if user_id in self.by_user:
                (self._join if event.name == "GUILD_CREATE" else self._leave)(user_id, guild_id)

    async def _audience(self, event: Event) -> set[int]:
        if event.user_ids:
            return {uid for uid in event.user_ids if uid in self.by_user}
        if event.guild_id is not None:
            view = await self._view(event.guild_id)
            if event.channel_id is None:
                needed = GUILD_PERMISSION.get(event.name, 0)
                return {uid for uid, access in view.accesses.items() if access.permissions & needed == needed}
            needed = Permission.VIEW_CHANNEL | EXTRA_PERMISSION.get(event.name, 0)
            overwrites = state.overwrites_in(event.data) if event.name in CHANNEL_SHAPED else None
            return {uid for uid in view.accesses
                    if view.permissions(uid, event.channel_id, overwrites) & needed == needed}
        if event.channel_id is not None:  # a DM or group DM: its recipients
            recipients = self._recipients.pop(event.channel_id, None)
            if recipients is None or not self.runtime.events.complete():
                recipients = set(await self._routing_db(dms.recipient_ids, event.channel_id))
            if self.runtime.events.complete():
                self._recipients[event.channel_id] = recipients  # most recently used last
                while len(self._recipients) > RECIPIENT_CACHE_LIMIT:
                    self._recipients.pop(next(iter(self._recipients)))
            return {uid for uid in recipients if uid in self.by_user}
        return set()

    async def _view(self, guild_id: int) -> state.GuildView:
        # Without every other process's events a cached view may miss a kick or a role change made
        # there: while the bus is incomplete, the database answers each time.
        view = self._views.get(guild_id) if self.runtime.events.complete() else None
        if view is not None and view.stale():
            view = None
        if view is None:
            candidates = set(self.guild_users.get(guild_id, ()))
            if not candidates:  # nobody here is in this guild: nothing to load, nothing to keep
                return state.GuildView(guild_id)
            view = await self._routing_db(state.load_guild_view, guild_id, candidates)
            # Only cache what is still current: a join or leave while loading dropped the entry. While
            # this process may be missing other processes' events (Redis away), nothing is cached.
            if candidates == self.guild_users.get(guild_id, set()) and self.runtime.events.complete():
                self._views[guild_id] = view
        return view


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
