"""Gateway events: every mutation publishes through ``publish``; delivery waits for the commit.

An event names its audience the way the gateway will route it: a guild (every member), a
channel (members who can view it), or explicit users. Events queue on the database session
and reach the bus only after the transaction commits, so nobody hears of a change that was
rolled back; a rollback drops them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

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

    def dispatch(self, events: list[Event]) -> None:
        for item in events:
            for subscriber in list(self._subscribers):
                try:
                    subscriber(item)
                except Exception:  # one broken listener must not undo a committed change
                    log.exception("event subscriber failed", extra={"event": item.name})


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
