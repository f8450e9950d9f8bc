"""The event bus across processes: with REDIS_URL, what one server commits reaches another's
subscribers (the gateway's, in each worker) once, and a Redis outage costs other processes those
events but never fails a request or this process's own delivery."""

from __future__ import annotations

import os
import threading
import time

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from tests.conftest import make_settings

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")


class Recorder:
    """A subscriber that can wait for an event another thread delivers."""

    def __init__(self):
        self.events, self._arrived = [], threading.Condition()

    def __call__(self, event) -> None:
        with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    def wait_for(self, predicate, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not any(predicate(e) for e in self.events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._arrived.wait(remaining)
            return next(e for e in self.events if predicate(e))


def _guild(client, owner) -> dict:
    response = client.post("/v1/guilds", json={"name": "Transport"}, headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json()


def _send_message(client, register) -> tuple[dict, str]:
    owner = register()
    guild = _guild(client, owner)
    channel = guild["system_channel_id"]
    response = client.post(f"/v1/channels/{channel}/messages", json={"content": "across processes"},
                           headers=owner.auth)
    assert response.status_code == 200, response.text
    return response.json(), channel


@needs_redis
def test_an_event_committed_on_one_server_reaches_another(database_url, register):
    # Two servers from one settings object (one database, one Redis events channel), as two workers.
    settings = make_settings(database_url)
    first, second = create_app(settings), create_app(settings)
    heard_first, heard_second = Recorder(), Recorder()
    stop_first = first.runtime.events.subscribe(heard_first)
    stop_second = second.runtime.events.subscribe(heard_second)
    try:
        assert first.runtime.events.listening.wait(5) and second.runtime.events.listening.wait(5)
        with TestClient(first) as client:
            sent, channel = _send_message(client, register)
        created = heard_second.wait_for(lambda e: e.name == "MESSAGE_CREATE" and e.data["id"] == sent["id"])
        assert created is not None, "the other server never heard of the message"
        assert created.channel_id == int(channel) and created.data["content"] == "across processes"
        time.sleep(0.3)  # any echo would have come back by now
        mine = [e for e in heard_first.events if e.name == "MESSAGE_CREATE" and e.data["id"] == sent["id"]]
        assert len(mine) == 1  # the publishing server delivers once, not again from Redis
        theirs = [e for e in heard_second.events if e.name == "MESSAGE_CREATE" and e.data["id"] == sent["id"]]
        assert len(theirs) == 1
    finally:
        stop_first()
        stop_second()
        first.runtime.events.close()
        second.runtime.events.close()


def test_without_redis_reachable_requests_succeed_and_this_process_still_hears(database_url, register):
    settings = make_settings(database_url, REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    server = create_app(settings)
    heard = Recorder()
    stop = server.runtime.events.subscribe(heard)
    try:
        with TestClient(server) as client:
            sent, _channel = _send_message(client, register)
        created = [e for e in heard.events if e.name == "MESSAGE_CREATE" and e.data["id"] == sent["id"]]
        assert len(created) == 1
    finally:
        stop()
        server.runtime.events.close()
