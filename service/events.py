"""Gateway events: every mutation publishes through ``publish``; delivery waits for the commit.

An event names its audience the way the gateway will route it: a guild (every member), a
channel (members who can view it), or explicit users. Events queue on the database session
and reach the bus only after the transaction commits, so nobody hears of a change that was
rolled back; a rollback drops them.

With ``REDIS_URL`` the bus spans processes (``RedisEventBus``): each event reaches this process's
subscribers at once and every other process through Redis pub/sub, so a gateway connection held
by one worker hears what another worker committed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import redis
from sqlalchemy import event as sa_event

log = logging.getLogger("fluxer.events")
PENDING_KEY = "fluxer.pending_events"


@dataclass(frozen=True)
class Event:
    name: str
    data: dict
    guild_id: int | None = None
    channel_id: int | None = None
    user_ids: tuple[int, ...] = field(default_factory=tuple)


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out to this process's subscribers (the gateway, and the test recorder)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def on_gap(self, callback: Callable[[], None]) -> None:
        """``callback`` runs when events from other processes may have been lost; in one process none are."""

    def complete(self) -> bool:
        """Whether this process hears every process's events now (always, when it is the only one)."""
        return True

    def dispatch(self, events: list[Event]) -> None:
        for item in events:
            for subscriber in list(self._subscribers):
                try:
                    subscriber(item)
                except Exception:  # one broken listener must not undo a committed change
                    log.exception("event subscriber failed", extra={"event": item.name})


class RedisEventBus(EventBus):
    """An ``EventBus`` shared by every process on one Redis channel.

    ``dispatch`` (after a commit) hands the events to this process's subscribers and publishes them
    for the others; a listener thread, started with the first subscriber, hands the other processes'
    events to ours. Each bus tags what it publishes with its origin and a counter, and skips its own echo.

    Redis away, events still reach this process at once; those for the others wait in a bounded
    backlog, published in order when Redis answers again. A receiver that finds a hole anyway (its
    subscription broke, or a backlog overflowed and a counter jumped) tells its ``on_gap`` callbacks,
    so the gateway can make its clients start over instead of trusting a stream with holes.
    """

    RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)  # seconds between reconnection attempts, the last repeated
    RETRY_PUBLISH_AFTER = 1.0  # seconds after a failed publish before commits try Redis again
    BACKLOG_LIMIT = 10_000  # events kept for other processes while Redis is away; older ones are lost

    def __init__(self, url: str, channel: str):
        super().__init__()
        self.channel = channel
        self.origin = uuid.uuid4().hex  # this bus: its own events come back from Redis and are skipped
        # The health check pings an idle subscription, so a connection that died silently is noticed.
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)
        self.listening = threading.Event()  # set while the listener is subscribed
        self._listener: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = threading.Event()
        self._unreachable_until = 0.0
        self._gap_callbacks: list[Callable[[], None]] = []
        self._publish_lock = threading.Lock()  # one publisher at a time keeps the counter in Redis's order
        self._counter = 0
        self._backlog: deque[str] = deque(maxlen=self.BACKLOG_LIMIT)
        self._last_seen: dict[str, int] = {}  # origin -> the counter of its last event received
        self._retry: threading.Timer | None = None  # publishes the backlog later, with or without new commits

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        unsubscribe = super().subscribe(subscriber)
        with self._start_lock:
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="fluxer-events", daemon=True)
                self._listener.start()
        return unsubscribe

    def on_gap(self, callback: Callable[[], None]) -> None:
        self._gap_callbacks.append(callback)

    def complete(self) -> bool:
        return self.listening.is_set()

    def dispatch(self, events: list[Event]) -> None:
        super().dispatch(events)
        with self._publish_lock:
            for item in events:
                self._counter += 1
                self._backlog.append(json.dumps({"origin": self.origin, "n": self._counter, "event": asdict(item)},
                                                default=str))
            if time.monotonic() >= self._unreachable_until:  # do not make every commit wait on a dead Redis
                self._flush()

    def _flush(self) -> None:
        """Publish the backlog in order (the caller holds the publish lock). Never raises."""
        if not self._backlog:
            return
        try:
            pipeline = self._redis.pipeline(transaction=False)
            for envelope in self._backlog:
                pipeline.publish(self.channel, envelope)
            pipeline.execute()
            self._backlog.clear()
        except Exception as exc:  # after the commit nothing may fail the request: log and carry on
            self._unreachable_until = time.monotonic() + self.RETRY_PUBLISH_AFTER
            log.warning("event transport unavailable: events for other processes wait",
                        extra={"error": repr(exc), "waiting": len(self._backlog)})
            if self._retry is None and not self._stopped.is_set():
                self._retry = threading.Timer(self.RETRY_PUBLISH_AFTER, self._retry_backlog)
                self._retry.daemon = True
                self._retry.start()

    def _retry_backlog(self) -> None:
        with self._publish_lock:
            self._retry = None
            self._flush()

    def close(self) -> None:
        """Stop listening (the subscription ends within a second); this process's delivery goes on."""
        self._stopped.set()
        with self._publish_lock:
            if self._retry is not None:
                self._retry.cancel()
        if self._listener is not None:
            self._listener.join(timeout=5)

    def _listen(self) -> None:
        failures = 0
        lost = False  # the subscription broke: whatever was published until it is back never arrived
        while not self._stopped.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                self.listening.set()
                if lost:
                    lost = False
                    self._report_gap()
                    with self._publish_lock:  # Redis is back: what waited goes out now, not on the next commit
                        self._unreachable_until = 0.0
                        self._flush()
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        failures = 0  # only a working subscription resets the backoff
                        self._receive(message["data"])
            except Exception as exc:  # Redis gone, or anything else: log, wait, subscribe again
                self.listening.clear()
                lost = True
                delay = self.RECONNECT_DELAYS[min(failures, len(self.RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("event transport lost; reconnecting", extra={"error": repr(exc), "in_seconds": delay})
                self._stopped.wait(delay)
            finally:
                pubsub.close()
        self.listening.clear()

    def _receive(self, raw: bytes) -> None:
        try:
            envelope = json.loads(raw)
            if envelope["origin"] == self.origin:
                return
            fields = envelope["event"]
            item = Event(fields["name"], fields["data"], guild_id=fields["guild_id"], channel_id=fields["channel_id"],
                         user_ids=tuple(fields["user_ids"]))
            counter = int(envelope["n"])
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable event on the transport channel", extra={"channel": self.channel})
            return
        previous = self._last_seen.get(envelope["origin"])
        self._last_seen[envelope["origin"]] = counter
        if previous is not None and counter != previous + 1:
            self._report_gap()
        super().dispatch([item])

    def _report_gap(self) -> None:
        log.warning("events from other processes were lost", extra={"channel": self.channel})
        for callback in list(self._gap_callbacks):
            callback()


# Internal events start with "_": the gateway acts on them and never sends them to a client.
LOGINS_ENDED = "_LOGINS_ENDED"


def end_logins(session, user_id: int, auth_session_ids: list[int] | None = None) -> None:
    """Tell the gateway that these logins of ``user_id`` (None: all of them, as for a bot's token)
    ended, so their gateway sessions close with 4006 once the change commits."""
    publish(session, LOGINS_ENDED, {"session_ids": auth_session_ids}, user_ids=(user_id,))


def publish(session, name: str, data: dict, *, guild_id: int | None = None, channel_id: int | None = None,
            user_ids: tuple[int, ...] | list[int] = ()) -> None:
    """Queue an event on ``session``; it is delivered when the session commits."""
    session.info.setdefault(PENDING_KEY, []).append(
        Event(name, data, guild_id=guild_id, channel_id=channel_id, user_ids=tuple(user_ids)))


def attach(session_factory, bus: EventBus) -> None:
    """Deliver each session's queued events after its commit; forget them on rollback."""

    @sa_event.listens_for(session_factory, "after_commit")
    def _deliver(session):
        pending = session.info.pop(PENDING_KEY, None)
        if pending:
            bus.dispatch(pending)

    @sa_event.listens_for(session_factory, "after_soft_rollback")
    def _forget(session, previous_transaction):
        if previous_transaction.parent is None:  # the whole transaction, not a savepoint
            session.info.pop(PENDING_KEY, None)
