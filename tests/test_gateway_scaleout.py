"""The gateway across processes: with REDIS_URL a client connected to one server process hears what
another process committed, once; a session resumes on whichever process the client reaches next,
after a dropped connection or its process stopping; and losing Redis for a while neither crashes a
server nor leaves its clients silently behind: they are told to identify again, and delivery resumes."""

from __future__ import annotations

import json
import os
import shutil
import time

import httpx
import pytest

from tests.gateway import GatewayClient, gateway_url_of, live_account, live_channel, live_env, live_send, redis_server
from tests.live import free_port, live_server, server_process

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
DROPPED = 4100  # a client-side close that is not a goodbye: the session stays resumable


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


def _resume(connection: GatewayClient, token: str, session_id: str, seq: int) -> list[dict]:
    """RESUME on a new connection; the frames up to RESUMED (or the op 9 that refuses it)."""
    connection.hello()
    connection.send(6, {"token": token, "session_id": session_id, "seq": seq})
    frames = [connection.recv()]
    while frames[-1]["op"] == 0 and frames[-1]["t"] != "RESUMED":
        frames.append(connection.recv())
    return frames


@needs_redis
def test_a_session_dropped_on_one_process_resumes_on_another(database_url):
    env = live_env(database_url, os.environ["REDIS_URL"])
    with live_server(env) as first, live_server(env) as second:
        token, _user_id, headers = live_account(first)
        channel_id = live_channel(first, headers)
        time.sleep(1.2)  # a snapshot is only taken over by a process that heard everything since before it
        dropped = GatewayClient(gateway_url_of(first))
        ready = dropped.identify(token)
        seq = dropped.seen[-1]["s"]
        dropped.ws.close(code=DROPPED)
        missed = [live_send(second, headers, channel_id, f"missed {n}") for n in range(3)]

        resumed = GatewayClient(gateway_url_of(second))
        try:
            frames = _resume(resumed, token, ready["session_id"], seq)
            assert frames[-1]["t"] == "RESUMED", frames
            replayed = [f for f in frames if f.get("t") == "MESSAGE_CREATE"]
            assert [f["d"]["id"] for f in replayed] == [m["id"] for m in missed]  # all, once, in order
            assert [f["s"] for f in frames] == list(range(seq + 1, seq + 1 + len(frames)))
            later = live_send(first, headers, channel_id, "after the resume")
            assert resumed.dispatch("MESSAGE_CREATE")["id"] == later["id"]
            resumed.assert_silent(0.5)
        finally:
            resumed.close()
        # The process that held it let go: resuming there now is refused.
        again = GatewayClient(gateway_url_of(first))
        try:
            assert _resume(again, token, ready["session_id"], seq)[-1] == {"op": 9, "d": False, "s": None, "t": None}
        finally:
            again.close()


@needs_redis
def test_a_stopping_process_hands_its_sessions_over(database_url):
    env = live_env(database_url, os.environ["REDIS_URL"])
    with live_server(env) as second, server_process(env) as (first, process):
        token, _user_id, headers = live_account(first)
        channel_id = live_channel(first, headers)
        time.sleep(1.2)
        leaving = GatewayClient(gateway_url_of(first))
        ready = leaving.identify(token)
        process.terminate()  # SIGTERM: op 7, then the connection closes
        frame = leaving.recv()
        while frame["op"] == 0:
            frame = leaving.recv()
        assert frame["op"] == 7
        seq = max(f["s"] or 0 for f in leaving.seen)
        leaving.wait_closed()
        process.wait(timeout=15)
        missed = live_send(second, headers, channel_id, "while reconnecting")

        resumed = GatewayClient(gateway_url_of(second))
        try:
            frames = _resume(resumed, token, ready["session_id"], seq)
            assert frames[-1]["t"] == "RESUMED", json.dumps(frames)[:500]
            assert [f["d"]["id"] for f in frames if f.get("t") == "MESSAGE_CREATE"] == [missed["id"]]
        finally:
            resumed.close()


@needs_redis
def test_a_process_that_did_not_hear_everything_since_the_drop_refuses_the_resume(database_url):
    env = live_env(database_url, os.environ["REDIS_URL"])
    with live_server(env) as first:
        token, _user_id, headers = live_account(first)
        channel_id = live_channel(first, headers)
        dropped = GatewayClient(gateway_url_of(first))
        ready = dropped.identify(token)
        seq = dropped.seen[-1]["s"]
        dropped.ws.close(code=DROPPED)
        missed = live_send(first, headers, channel_id, "published before the second process listened")
        with live_server(env) as second:  # started after the drop: it cannot know what the session missed
            late = GatewayClient(gateway_url_of(second))
            try:
                assert _resume(late, token, ready["session_id"], seq)[-1] == {"op": 9, "d": False, "s": None,
                                                                               "t": None}
            finally:
                late.close()
        # The refusal gave the session back: the process that holds it still resumes it.
        holder = GatewayClient(gateway_url_of(first))
        try:
            frames = _resume(holder, token, ready["session_id"], seq)
            assert frames[-1]["t"] == "RESUMED"
            assert [f["d"]["id"] for f in frames if f.get("t") == "MESSAGE_CREATE"] == [missed["id"]]
        finally:
            holder.close()
