"""The gateway across processes: with REDIS_URL a client connected to one server process hears what
another process committed, once; and losing Redis for a while neither crashes a server nor leaves
its clients silently behind: they are told to identify again, and delivery resumes."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import httpx
import pytest

from tests.conftest import PASSWORD, unique_ip
from tests.gateway import GatewayClient
from tests.live import free_port, live_server


def _account(api: str) -> tuple[str, dict]:
    ip = unique_ip()
    body = {"email": f"scale-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD, "consent": True}
    response = httpx.post(f"{api}/auth/register", json=body, headers={"X-Forwarded-For": ip})
    assert response.status_code == 200, response.text
    return response.json()["token"], {"Authorization": response.json()["token"], "X-Forwarded-For": ip}


def _guild_channel(api: str, headers: dict) -> str:
    guild = httpx.post(f"{api}/guilds", json={"name": "Scale"}, headers=headers).json()
    channels = httpx.get(f"{api}/guilds/{guild['id']}/channels", headers=headers).json()
    return next(c["id"] for c in channels if c["type"] == 0)


def _send(api: str, headers: dict, channel_id: str, content: str) -> dict:
    response = httpx.post(f"{api}/channels/{channel_id}/messages", json={"content": content}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _gateway(api: str) -> str:
    return api.replace("http://", "ws://").removesuffix("/v1") + "/gateway"


def _env(database_url: str, redis_url: str) -> dict:
    # One events channel for both servers (they are one deployment), none shared with other tests.
    return {"FLUXER_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "EVENTS_CHANNEL": f"fluxer:events:{uuid.uuid4().hex}"}


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_a_client_on_one_process_hears_what_another_process_committed_once(database_url):
    env = _env(database_url, os.environ["REDIS_URL"])
    with live_server(env) as first, live_server(env) as second:
        token, headers = _account(first)
        channel_id = _guild_channel(first, headers)
        on_first, on_second = GatewayClient(_gateway(first)), GatewayClient(_gateway(second))
        try:
            on_first.identify(token)
            on_second.identify(token)
            sent = _send(second, headers, channel_id, "through the second process")
            for connection in (on_first, on_second):
                assert connection.dispatch("MESSAGE_CREATE")["id"] == sent["id"]
            sent = _send(first, headers, channel_id, "through the first process")
            for connection in (on_first, on_second):
                assert connection.dispatch("MESSAGE_CREATE")["id"] == sent["id"]
            for connection in (on_first, on_second):  # each message arrived once
                connection.assert_silent(0.5)
                created = [f["d"]["id"] for f in connection.seen if f.get("t") == "MESSAGE_CREATE"]
                assert len(created) == len(set(created)) == 2
        finally:
            on_first.close()
            on_second.close()


def _redis_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.call(["redis-cli", "-p", str(port), "ping"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) != 0:
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    return server


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server to stop and restart one")
def test_losing_redis_for_a_while_then_delivery_resumes(database_url):
    port = free_port()
    redis = _redis_server(port)
    env = _env(database_url, f"redis://127.0.0.1:{port}/0")
    try:
        with live_server(env) as first, live_server(env) as second:
            token, headers = _account(first)
            channel_id = _guild_channel(first, headers)
            listener = GatewayClient(_gateway(first))
            listener.identify(token)
            sent = _send(second, headers, channel_id, "before the outage")
            assert listener.dispatch("MESSAGE_CREATE")["id"] == sent["id"]

            redis.terminate()
            redis.wait(timeout=10)
            # Both processes keep serving: the REST call commits, health answers.
            during = _send(second, headers, channel_id, "during the outage")
            assert httpx.get(f"{first}/_health").status_code == 200

            redis = _redis_server(port)
            # The first process lost events while Redis was away: its client is told to start over.
            frame = listener.recv(timeout=15)
            while frame["op"] == 0:
                frame = listener.recv(timeout=15)
            assert frame == {"op": 9, "d": False, "s": None, "t": None}
            assert listener.wait_closed() == 4000
            listener.close()

            before_restart = listener
            listener = GatewayClient(_gateway(first))
            listener.identify(token)
            sent = _send(second, headers, channel_id, "after the outage")
            heard = []
            while sent["id"] not in heard:
                heard.append(listener.dispatch("MESSAGE_CREATE", timeout=10)["id"])
            # The message committed while Redis was away waited in the second process and still
            # arrived, before the later one: on the old connection or, after it, on the new.
            heard = [f["d"]["id"] for f in before_restart.seen if f.get("t") == "MESSAGE_CREATE"] + heard
            assert heard[-2:] == [during["id"], sent["id"]]
            listener.close()
    finally:
        redis.terminate()
        redis.wait(timeout=10)
