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

import itertools
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

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
    # On a bus shared by processes: (origin, counter), the event's place in its origin's stream.
    ref: tuple[str, int] | None = None


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

    ``dispatch`` (after a commit) hands the events to this process's subscribers at once and queues
    them for the others; a publisher thread sends the queue to Redis in order, so no commit ever
    waits on Redis. A listener thread, started with the first subscriber, hands the other processes'
    events to ours. Each bus tags what it publishes with its origin and a counter, and skips its own echo.

    Redis away, the queue (bounded) waits and goes out when Redis answers again. A receiver that finds
    a hole anyway (its subscription broke, or a queue overflowed and a counter jumped) tells its
    ``on_gap`` callbacks, so the gateway can make its clients start over instead of trusting a stream
    with holes.
    """

    RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)  # seconds between reconnection attempts, the last repeated
    RETRY_PUBLISH_AFTER = 1.0  # seconds after a failed publish before the publisher tries again
    BACKLOG_LIMIT = 10_000  # events kept for other processes while Redis is away; older ones are lost
    BATCH = 500  # events per pipeline

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
        self._gap_callbacks: list[Callable[[], None]] = []
        self._queued = threading.Condition()  # guards the counter and the backlog; never held during I/O
        self._counter = 0
        self._backlog: deque[tuple[int, str]] = deque(maxlen=self.BACKLOG_LIMIT)  # (counter, envelope)
        self._publisher: threading.Thread | None = None
        self._last_seen: dict[str, int] = {}  # origin -> the counter of its last event received

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
        with self._start_lock:
            if self._publisher is None:
                self._publisher = threading.Thread(target=self._publish, name="fluxer-events-out", daemon=True)
                self._publisher.start()
        with self._queued:  # held while this process hears them too: its subscribers get them in counter order
            stamped = []
            for item in events:
                self._counter += 1
                stamped.append(replace(item, ref=(self.origin, self._counter)))
                envelope = json.dumps({"origin": self.origin, "n": self._counter, "event": asdict(item)}, default=str)
                self._backlog.append((self._counter, envelope))
            self._queued.notify()
            super().dispatch(stamped)

    def _publish(self) -> None:
        """The publisher thread: sends the backlog in order; on failure waits and tries again."""
        while not self._stopped.is_set():
            with self._queued:
                while not self._backlog and not self._stopped.is_set():
                    self._queued.wait(timeout=1.0)
                batch = list(itertools.islice(self._backlog, self.BATCH))
            if not batch:
                continue
            try:
                pipeline = self._redis.pipeline(transaction=False)
                for _counter, envelope in batch:
                    pipeline.publish(self.channel, envelope)
                pipeline.execute()
            except Exception as exc:  # Redis away: the backlog waits (what overflows it is lost)
                log.warning("event transport unavailable: events for other processes wait",
                            extra={"error": repr(exc), "waiting": len(self._backlog)})
                self._stopped.wait(self.RETRY_PUBLISH_AFTER)
                continue
            sent = batch[-1][0]
            with self._queued:  # the backlog may have lost its oldest meanwhile: drop by counter, not count
                while self._backlog and self._backlog[0][0] <= sent:
                    self._backlog.popleft()

    def close(self) -> None:
        """Stop listening and publishing (within a second); this process's delivery goes on."""
        self._stopped.set()
        with self._queued:
            self._queued.notify_all()
        for thread in (self._listener, self._publisher):
            if thread is not None:
                thread.join(timeout=5)

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
            counter = int(envelope["n"])
            item = Event(fields["name"], fields["data"], guild_id=fields["guild_id"], channel_id=fields["channel_id"],
                         user_ids=tuple(fields["user_ids"]), ref=(str(envelope["origin"]), counter))
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
SESSION_MOVED = "_SESSION_MOVED"  # another process resumed this gateway session: its old holder lets go


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
