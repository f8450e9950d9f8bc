"""The gateway across processes: with REDIS_URL a client connected to one server process hears what
another process committed, once; and losing Redis for a while neither crashes a server nor leaves
its clients silently behind: they are told to identify again, and delivery resumes."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

from tests.gateway import GatewayClient, gateway_url_of, live_account, live_channel, live_env, live_send, redis_server
from tests.live import free_port, live_server


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_a_client_on_one_process_hears_what_another_process_committed_once(database_url):
    env = live_env(database_url, os.environ["REDIS_URL"])
    with live_server(env) as first, live_server(env) as second:
        token, _user_id, headers = live_account(first)
        channel_id = live_channel(first, headers)
        on_first, on_second = GatewayClient(gateway_url_of(first)), GatewayClient(gateway_url_of(second))
        try:
            on_first.identify(token)
            on_second.identify(token)
            sent = live_send(second, headers, channel_id, "through the second process")
            for connection in (on_first, on_second):
                assert connection.dispatch("MESSAGE_CREATE")["id"] == sent["id"]
            sent = live_send(first, headers, channel_id, "through the first process")
            for connection in (on_first, on_second):
                assert connection.dispatch("MESSAGE_CREATE")["id"] == sent["id"]
            for connection in (on_first, on_second):  # each message arrived once
                connection.assert_silent(0.5)
                created = [f["d"]["id"] for f in connection.seen if f.get("t") == "MESSAGE_CREATE"]
                assert len(created) == len(set(created)) == 2
        finally:
            on_first.close()
            on_second.close()


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server to stop and restart one")
def test_losing_redis_for_a_while_then_delivery_resumes(database_url):
    port = free_port()
    redis = redis_server(port)
    env = live_env(database_url, f"redis://127.0.0.1:{port}/0")
    try:
        with live_server(env) as first, live_server(env) as second:
            token, _user_id, headers = live_account(first)
            channel_id = live_channel(first, headers)
            listener = GatewayClient(gateway_url_of(first))
            listener.identify(token)
            sent = live_send(second, headers, channel_id, "before the outage")
            assert listener.dispatch("MESSAGE_CREATE")["id"] == sent["id"]

            redis.terminate()
            redis.wait(timeout=10)
            # Both processes keep serving: the REST call commits, health answers.
            during = live_send(second, headers, channel_id, "during the outage")
            assert httpx.get(f"{first}/_health").status_code == 200

            redis = redis_server(port)
            # The first process lost events while Redis was away: its client is told to start over.
            frame = listener.recv(timeout=15)
            while frame["op"] == 0:
                frame = listener.recv(timeout=15)
            assert frame == {"op": 9, "d": False, "s": None, "t": None}
            assert listener.wait_closed() == 4000
            listener.close()

            before_restart = listener
            listener = GatewayClient(gateway_url_of(first))
            listener.identify(token)
            sent = live_send(second, headers, channel_id, "after the outage")
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
