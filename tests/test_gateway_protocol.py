"""The gateway's wire protocol (service/gateway): every opcode a client sends or receives, and every
close code, exercised over real WebSocket connections to a real uvicorn.

Most tests use the suite's embedded server (``gateway_server``). Settings that change the protocol's
timing (heartbeat, resume window, queue limit) get a server of their own, one per module.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import signal
import threading
import time
import uuid
import zlib

import httpx
import pytest
from limits import parse
from sqlalchemy.orm import Session
from starlette.testclient import TestClient
from websockets.exceptions import ConnectionClosed

from service.app import create_app
from service.events import Event
from service.gateway import hub as hub_module
from service.gateway import state
from tests.conftest import PASSWORD, make_settings, unique_ip
from tests.gateway import EmbeddedServer, GatewayClient, send_message, wait_for
from tests.live import server_process

try:  # the same zstd the server uses
    from compression import zstd
except ImportError:  # pragma: no cover - depends on the interpreter
    from backports import zstd

# Opcodes and close codes as a client knows them (the protocol's numbers, not the server's enums).
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE_UPDATE, VOICE_STATE_UPDATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_GUILD_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11
GUILD_PRESENCES = 1 << 8
PUBLIC_USER_FIELDS = {"id", "username", "discriminator", "global_name", "avatar", "avatar_color", "bot", "system",
                      "flags"}
FRIEND = 1
DROPPED = 3000  # a close code that is not a goodbye (1000/1001): the session stays resumable


# --- servers and connections -------------------------------------------------------------------------


def _special_server(database_url, tmp_path_factory, **environ):
    special = create_app(make_settings(database_url, STORAGE_DIR=str(tmp_path_factory.mktemp("media")), **environ))
    try:
        with EmbeddedServer(special) as server:
            server.app = special
            yield server
    finally:
        if hasattr(special.runtime.events, "close"):
            special.runtime.events.close()
        special.runtime.db.engine.dispose()


@pytest.fixture(scope="module")
def fast_heartbeat_server(database_url, tmp_path_factory):
    yield from _special_server(database_url, tmp_path_factory, GATEWAY_HEARTBEAT_MS="200")


@pytest.fixture(scope="module")
def brief_server(database_url, tmp_path_factory):
    """Sessions wait one second to be resumed and keep only 16 frames to replay."""
    yield from _special_server(database_url, tmp_path_factory, GATEWAY_RESUME_SECONDS="1", GATEWAY_REPLAY_LIMIT="16")


@pytest.fixture(scope="module")
def small_queue_server(database_url, tmp_path_factory):
    yield from _special_server(database_url, tmp_path_factory, GATEWAY_QUEUE_LIMIT="16")


class CompressedClient(GatewayClient):
    """A connection asking for ``compress=...``: every server frame is binary, and all of them are one
    stream, so one decompression context serves the whole connection."""

    def __init__(self, url: str, query: str):
        super().__init__(url, query)
        self.decompressor = self.make_decompressor()
        self.raw: list[bytes | str] = []

    def recv(self, timeout: float = 5.0) -> dict:
        raw = self.ws.recv(timeout=timeout)
        self.raw.append(raw)
        frame = json.loads(self.decompressor.decompress(raw))
        self.seen.append(frame)
        return frame


class ZstdClient(CompressedClient):
    make_decompressor = staticmethod(zstd.ZstdDecompressor)


class ZlibClient(CompressedClient):
    make_decompressor = staticmethod(zlib.decompressobj)



def _dispatches(connection) -> list[dict]:
    return [f for f in connection.seen if f["op"] == DISPATCH]


def _frames_until_closed(connection, timeout: float = 5.0) -> tuple[list[dict], int | None]:
    """Every frame until the server closes, and the close code."""
    frames, deadline = [], time.monotonic() + timeout
    try:
        while True:
            frames.append(connection.recv(timeout=max(0.01, deadline - time.monotonic())))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        raise AssertionError(f"the server did not close the connection within {timeout} s; saw {frames}") from None


def _resume(connection, account, session_id: str, seq) -> None:
    connection.hello()
    connection.send(RESUME, {"token": account.token, "session_id": session_id, "seq": seq})


def _identify_payload(token: str, **extra) -> dict:
    return {"token": token, "properties": {"os": "linux", "browser": "pytest", "device": "pytest"}, **extra}


def _session_seq(server, session_id: str) -> int | None:
    session = server.hub.sessions.get(session_id)
    return session.seq if session else None


# --- REST helpers -------------------------------------------------------------------------------------


def _befriend(client, a, b) -> None:
    assert client.put(f"/v1/users/@me/relationships/{b.user_id}", headers=a.auth).status_code == 200
    assert client.put(f"/v1/users/@me/relationships/{a.user_id}", headers=b.auth).json()["type"] == FRIEND



def _application(client, owner) -> dict:
    response = client.post("/v1/oauth2/applications", headers=owner.auth, json={"name": "Gateway Bot"})
    assert response.status_code == 200, response.text
    return response.json()


def _add_bot(client, owner, application, guild) -> None:
    body = {"client_id": application["id"], "scope": "bot", "permissions": "2048", "guild_id": guild["id"]}
    response = client.post("/v1/oauth2/authorize/consent", headers=owner.auth, json=body)
    assert response.status_code == 200, response.text


def _big_event(user_id: str, n: int, size: int = 200_000) -> Event:
    """A MESSAGE_CREATE for one user; random content, so permessage-deflate cannot shrink it on the wire."""
    return Event("MESSAGE_CREATE", {"n": n, "content": secrets.token_urlsafe(size * 3 // 4)}, user_ids=(int(user_id),))


# --- HELLO, IDENTIFY, READY ---------------------------------------------------------------------------


def test_hello_carries_the_configured_heartbeat_interval(app, connect, gateway_server):
    connection = connect(gateway_server)
    frame = connection.recv()
    assert frame == {"op": HELLO, "d": {"heartbeat_interval": app.runtime.settings.gateway_heartbeat_ms},
                     "s": None, "t": None}
    assert frame["d"]["heartbeat_interval"] == 41250


def test_hello_without_a_version_in_the_query_is_served(connect, gateway_server):
    assert connect(gateway_server, query="").hello()["heartbeat_interval"] == 41250


def test_ready_for_a_person(app, client, connect, gateway_server, register, make_guild, add_member):
    alice, bob = register(), register()
    guild = make_guild(alice, "Protocol Guild")
    add_member(bob, guild)
    _befriend(client, alice, bob)
    dm = client.post("/v1/users/@me/channels", json={"recipient_id": bob.user_id}, headers=alice.auth)
    assert dm.status_code == 200, dm.text

    connection = connect(gateway_server)
    ready = connection.identify(alice.token)

    first = _dispatches(connection)[0]
    assert first["t"] == "READY" and first["s"] == 1
    assert ready["v"] == 1 and ready["version"] == 1
    assert re.fullmatch(r"[0-9a-f]{32}", ready["session_id"])
    assert ready["resume_gateway_url"] == app.runtime.settings.gateway_url
    assert ready["shard"] == [0, 1] and ready["presences"] == [] and ready.get("application") is None
    assert ready["user"]["id"] == alice.user_id and ready["user"]["email"] == alice.email  # one's own, private

    [full] = ready["guilds"]
    assert full["id"] == guild["id"] and full["name"] == "Protocol Guild" and "unavailable" not in full
    assert {c["id"] for c in full["channels"]} == {c["id"] for c in guild["channels"]}
    assert guild["system_channel_id"] in {c["id"] for c in full["channels"]}
    assert guild["id"] in {r["id"] for r in full["roles"]}  # @everyone's id is the guild's
    assert full["member_count"] == 2 and full["owner_id"] == alice.user_id

    [private] = ready["private_channels"]
    assert private["id"] == dm.json()["id"] and [u["id"] for u in private["recipients"]] == [bob.user_id]
    assert ready["relationships"] == [{k: v for k, v in r.items() if k != "user"}
                                      for r in client.get("/v1/users/@me/relationships", headers=alice.auth).json()]
    [relationship] = ready["relationships"]
    assert relationship["id"] == bob.user_id and relationship["type"] == FRIEND and "user" not in relationship
    [person] = ready["users"]  # bob, once, though both the friendship and the DM name him
    assert person["id"] == bob.user_id and set(person) == PUBLIC_USER_FIELDS
    assert "email" not in person and "phone" not in person

    assert ready["sessions"] == [{"session_id": ready["session_id"], "status": "online", "mobile": False, "afk": False}]


def test_sequence_numbers_count_up_from_ready(client, connect, gateway_server, register, make_guild, add_member):
    alice, bob = register(), register()
    guild = make_guild(alice)
    add_member(bob, guild)
    connection = connect(gateway_server)
    connection.identify(alice.token)
    sent = [send_message(client, bob, guild["system_channel_id"], f"number {n}")["id"] for n in range(3)]
    received = [connection.dispatch("MESSAGE_CREATE")["id"] for _ in sent]
    assert received == sent
    dispatches = _dispatches(connection)
    assert [f["s"] for f in dispatches] == list(range(1, len(dispatches) + 1))
    assert all(f["s"] is None and f["t"] is None for f in connection.seen if f["op"] != DISPATCH)


def test_identify_with_a_presence_and_a_mobile_device(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    connection.hello()
    connection.send(IDENTIFY, {"token": alice.token, "properties": {"device": "Android"},
                               "presence": {"status": "idle", "afk": True}})
    ready = connection.dispatch("READY")
    assert ready["sessions"] == [{"session_id": ready["session_id"], "status": "idle", "mobile": True, "afk": True}]


# --- bots ---------------------------------------------------------------------------------------------


@pytest.fixture
def bot_in_two_guilds(client, register, make_guild):
    owner = register()
    guilds = [make_guild(owner, "First"), make_guild(owner, "Second")]
    application = _application(client, owner)
    for guild in guilds:
        _add_bot(client, owner, application, guild)
    return application, guilds, owner


def test_a_bot_gets_unavailable_guilds_then_one_guild_create_each(connect, gateway_server, bot_in_two_guilds):
    application, guilds, _owner = bot_in_two_guilds
    connection = connect(gateway_server)
    ready = connection.identify(application["bot"]["token"])  # the bare token, no "Bot " prefix

    assert ready["user"]["id"] == application["bot"]["id"]
    assert ready["guilds"] == [{"id": g["id"], "unavailable": True} for g in sorted(guilds, key=lambda g: int(g["id"]))]
    assert ready["private_channels"] == [] and ready["relationships"] == [] and ready["users"] == []
    assert ready["application"] is not None
    creates = [connection.recv() for _ in guilds]  # straight after READY, nothing between
    assert [(f["op"], f["t"], f["s"]) for f in creates] == [(DISPATCH, "GUILD_CREATE", 2), (DISPATCH, "GUILD_CREATE", 3)]
    assert [f["d"]["id"] for f in creates] == [g["id"] for g in ready["guilds"]]
    for frame, guild in zip(creates, sorted(guilds, key=lambda g: int(g["id"])), strict=True):
        assert frame["d"]["name"] == guild["name"] and "unavailable" not in frame["d"]
        assert guild["system_channel_id"] in {c["id"] for c in frame["d"]["channels"]}
        assert len(frame["d"]["roles"]) == 2  # @everyone and the bot's managed role
    connection.assert_silent(0.3)


def test_a_bots_ready_names_its_application(connect, gateway_server, bot_in_two_guilds):
    application, _guilds, _owner = bot_in_two_guilds
    ready = connect(gateway_server).identify(application["bot"]["token"])
    assert ready["application"]["id"] == application["id"]


def test_a_bots_ready_user_says_it_is_a_bot(client, connect, gateway_server, bot_in_two_guilds):
    application, _guilds, _owner = bot_in_two_guilds
    me = client.get("/v1/users/@me", headers={"Authorization": f"Bot {application['bot']['token']}"})
    assert me.status_code == 200 and me.json()["bot"] is True
    ready = connect(gateway_server).identify(application["bot"]["token"])
    assert ready["user"].get("bot") is True


# --- heartbeats ---------------------------------------------------------------------------------------


def test_heartbeat_is_acknowledged_before_and_after_identify(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    connection.hello()
    connection.send(HEARTBEAT, None)
    assert connection.recv() == {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None}
    connection.send(IDENTIFY, _identify_payload(alice.token))
    connection.dispatch("READY")
    connection.send(HEARTBEAT, 1)
    assert connection.recv() == {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None}


def test_a_missed_heartbeat_closes_with_4009_and_the_session_resumes(connect, fast_heartbeat_server, register):
    alice = register()
    connection = connect(fast_heartbeat_server)
    assert connection.hello() == {"heartbeat_interval": 200}
    for _ in range(5):  # heartbeats keep it open well past one window (1.5 intervals = 0.3 s)
        time.sleep(0.12)
        connection.send(HEARTBEAT, None)
        assert connection.recv()["op"] == HEARTBEAT_ACK
    connection.send(IDENTIFY, _identify_payload(alice.token))
    ready = connection.dispatch("READY")
    started = time.monotonic()
    assert connection.wait_closed(timeout=3) == 4009
    assert time.monotonic() - started < 2

    again = connect(fast_heartbeat_server)
    _resume(again, alice, ready["session_id"], 1)
    assert again.dispatch("RESUMED", timeout=2) is None
    assert again.seen[-1]["s"] == 2


def test_a_connection_that_never_heartbeats_closes_with_4009(connect, fast_heartbeat_server):
    connection = connect(fast_heartbeat_server)
    connection.hello()
    assert connection.wait_closed(timeout=3) == 4009


# --- resuming -----------------------------------------------------------------------------------------


def test_resume_replays_what_was_missed_then_resumed(client, connect, gateway_server, register, make_guild,
                                                     add_member):
    alice, bob = register(), register()
    guild = make_guild(alice)
    add_member(bob, guild)
    channel = guild["system_channel_id"]
    connection = connect(gateway_server)
    ready = connection.identify(alice.token)
    send_message(client, bob, channel, "before")
    connection.dispatch("MESSAGE_CREATE")
    last = connection.seen[-1]["s"]
    assert last == 2
    connection.ws.close(code=DROPPED)

    missed = [send_message(client, bob, channel, f"missed {n}") for n in range(3)]
    assert wait_for(lambda: _session_seq(gateway_server, ready["session_id"]) == last + 3)

    again = connect(gateway_server)
    _resume(again, alice, ready["session_id"], last)
    frames = [again.recv() for _ in range(4)]
    assert [(f["op"], f["t"], f["s"]) for f in frames] == [
        (DISPATCH, "MESSAGE_CREATE", 3), (DISPATCH, "MESSAGE_CREATE", 4), (DISPATCH, "MESSAGE_CREATE", 5),
        (DISPATCH, "RESUMED", 6)]
    assert [f["d"]["id"] for f in frames[:3]] == [m["id"] for m in missed]
    assert frames[3]["d"] is None

    live = send_message(client, bob, channel, "after")  # the resumed session carries on counting
    assert again.dispatch("MESSAGE_CREATE")["id"] == live["id"] and again.seen[-1]["s"] == 7


def test_resume_with_nothing_missed_is_just_resumed(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    ready = connection.identify(alice.token)
    connection.ws.close(code=DROPPED)
    again = connect(gateway_server)
    _resume(again, alice, ready["session_id"], 1)
    assert again.recv() == {"op": DISPATCH, "t": "RESUMED", "d": None, "s": 2}


def test_resume_takes_the_session_from_a_live_connection(client, connect, gateway_server, register, make_guild,
                                                        add_member):
    alice, bob = register(), register()
    guild = make_guild(alice)
    add_member(bob, guild)
    first = connect(gateway_server)
    ready = first.identify(alice.token)
    second = connect(gateway_server)
    _resume(second, alice, ready["session_id"], 1)
    assert second.dispatch("RESUMED") is None
    assert first.wait_closed() == 4000  # the older connection lets go
    sent = send_message(client, bob, guild["system_channel_id"], "to the new connection")
    assert second.dispatch("MESSAGE_CREATE")["id"] == sent["id"]


def test_resume_with_a_seq_never_sent_closes_with_4007(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    ready = connection.identify(alice.token)
    connection.ws.close(code=DROPPED)
    again = connect(gateway_server)
    _resume(again, alice, ready["session_id"], 2)  # only READY (1) was sent
    assert again.wait_closed() == 4007


def test_resume_of_an_unknown_session_is_invalid_and_identify_may_follow(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    _resume(connection, alice, uuid.uuid4().hex, 0)
    assert connection.recv() == {"op": INVALID_SESSION, "d": False, "s": None, "t": None}
    connection.send(IDENTIFY, _identify_payload(alice.token))  # the connection stays open for a fresh start
    assert connection.dispatch("READY")["user"]["id"] == alice.user_id


def test_resume_with_another_users_token_is_invalid(connect, gateway_server, register):
    alice, mallory = register(), register()
    connection = connect(gateway_server)
    ready = connection.identify(alice.token)
    connection.ws.close(code=DROPPED)

    thief = connect(gateway_server)
    _resume(thief, mallory, ready["session_id"], 1)
    assert thief.recv() == {"op": INVALID_SESSION, "d": False, "s": None, "t": None}
    thief.assert_silent(0.3, ignore=())

    owner = connect(gateway_server)  # the attempt did not harm the session
    _resume(owner, alice, ready["session_id"], 1)
    assert owner.dispatch("RESUMED") is None


def test_resume_after_the_window_is_invalid(connect, brief_server, register):
    alice = register()
    connection = connect(brief_server)
    ready = connection.identify(alice.token)
    dropped = time.monotonic()
    connection.ws.close(code=DROPPED)
    assert wait_for(lambda: ready["session_id"] not in brief_server.hub.sessions, timeout=6)
    assert time.monotonic() - dropped >= 1  # kept for the whole window first

    again = connect(brief_server)
    _resume(again, alice, ready["session_id"], 1)
    assert again.recv() == {"op": INVALID_SESSION, "d": False, "s": None, "t": None}
    again.send(IDENTIFY, _identify_payload(alice.token))
    assert again.dispatch("READY")["session_id"] != ready["session_id"]


def test_resume_after_a_goodbye_is_invalid(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    ready = connection.identify(alice.token)
    connection.close()  # 1000: the client ended its session
    assert wait_for(lambda: ready["session_id"] not in gateway_server.hub.sessions)
    again = connect(gateway_server)
    _resume(again, alice, ready["session_id"], 1)
    assert again.recv()["op"] == INVALID_SESSION


def test_resume_beyond_the_replay_buffer_is_invalid(connect, brief_server, register):
    alice = register()
    connection = connect(brief_server)
    ready = connection.identify(alice.token)
    connection.ws.close(code=DROPPED)
    bus = brief_server.app.runtime.events
    for n in range(20):  # 21 frames in all; the buffer keeps 16
        bus.dispatch([_big_event(alice.user_id, n, size=10)])
    assert wait_for(lambda: _session_seq(brief_server, ready["session_id"]) == 21)
    again = connect(brief_server)
    _resume(again, alice, ready["session_id"], 1)
    assert again.recv() == {"op": INVALID_SESSION, "d": False, "s": None, "t": None}


def test_lost_events_invalidate_every_session(connect, brief_server, register):
    # What the hub does when the Redis transport reports a gap: it cannot know what each session missed.
    alice = register()
    connection = connect(brief_server)
    ready = connection.identify(alice.token)
    brief_server.hub._from_gap()
    frames, code = _frames_until_closed(connection)
    assert frames == [{"op": INVALID_SESSION, "d": False, "s": None, "t": None}] and code == 4000
    again = connect(brief_server)
    _resume(again, alice, ready["session_id"], 1)
    assert again.recv()["op"] == INVALID_SESSION


def test_a_failed_resume_does_not_leave_a_live_connection_deaf(connect, brief_server, register):
    alice = register()
    live = connect(brief_server)
    ready = live.identify(alice.token)
    bus = brief_server.app.runtime.events
    for n in range(20):
        bus.dispatch([_big_event(alice.user_id, n, size=10)])
    for _ in range(20):
        live.dispatch("MESSAGE_CREATE")
    late = connect(brief_server)
    _resume(late, alice, ready["session_id"], 1)  # frame 2 has left the 16-frame buffer
    assert late.recv()["op"] == INVALID_SESSION

    bus.dispatch([_big_event(alice.user_id, 99, size=10)])
    try:  # either the live connection keeps its session and hears this, or it is told it lost it
        assert live.dispatch("MESSAGE_CREATE", timeout=2)["n"] == 99
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code in (4000, 4006)
    except TimeoutError:
        pytest.fail("the live connection is still open but its session is gone: it hears nothing")


# --- close codes --------------------------------------------------------------------------------------


OVERSIZED = json.dumps({"op": HEARTBEAT, "d": None, "pad": "x" * 4096})


@pytest.mark.parametrize(("raw", "code"), [
    pytest.param(json.dumps({"op": 99, "d": None}), 4001, id="unknown-op"),
    pytest.param(json.dumps({"op": VOICE_STATE_UPDATE, "d": {"guild_id": "1", "channel_id": None}}), 4001,
                 id="voice-state-update"),
    pytest.param(json.dumps({"op": 5, "d": None}), 4001, id="op-5"),
    pytest.param(json.dumps({"op": DISPATCH, "d": None}), 4001, id="server-op-dispatch"),
    pytest.param(json.dumps({"op": HELLO, "d": None}), 4001, id="server-op-hello"),
    pytest.param(json.dumps({"op": HEARTBEAT_ACK, "d": None}), 4001, id="server-op-ack"),
    pytest.param("this is not json", 4002, id="not-json"),
    pytest.param(json.dumps([1, 2, 3]), 4002, id="json-array"),
    pytest.param(json.dumps({"op": "1", "d": None}), 4002, id="op-as-string"),
    pytest.param(json.dumps({"op": True, "d": None}), 4002, id="op-as-bool"),
    pytest.param(json.dumps({"d": None}), 4002, id="no-op"),
    pytest.param(OVERSIZED, 4002, id="over-4096-bytes"),
    pytest.param(b"\xff\xfe\x00", 4002, id="binary-not-utf8"),
    pytest.param(json.dumps({"op": IDENTIFY, "d": {"properties": {}}}), 4002, id="identify-without-token"),
    pytest.param(json.dumps({"op": IDENTIFY, "d": None}), 4002, id="identify-without-payload"),
    pytest.param(json.dumps({"op": IDENTIFY, "d": {"token": 12345}}), 4002, id="identify-token-not-a-string"),
    pytest.param(json.dumps({"op": IDENTIFY, "d": {"token": "x", "intents": -1}}), 4002, id="identify-negative-intents"),
    pytest.param(json.dumps({"op": RESUME, "d": {"token": "x", "seq": 1}}), 4002, id="resume-without-session-id"),
    pytest.param(json.dumps({"op": RESUME, "d": {"token": "x", "session_id": "a", "seq": "1"}}), 4002,
                 id="resume-seq-not-an-int"),
    pytest.param(json.dumps({"op": PRESENCE_UPDATE, "d": {"status": "dnd"}}), 4003, id="presence-before-identify"),
    pytest.param(json.dumps({"op": REQUEST_GUILD_MEMBERS, "d": {"guild_id": "1", "query": "", "limit": 0}}), 4003,
                 id="members-before-identify"),
    pytest.param(json.dumps({"op": IDENTIFY, "d": {"token": "flx_not-a-real-session-token"}}), 4004,
                 id="unknown-session-token"),
    pytest.param(json.dumps({"op": IDENTIFY, "d": {"token": "MTIz.not.a-bot-token"}}), 4004, id="unknown-bot-token"),
    pytest.param(json.dumps({"op": IDENTIFY, "d": {"token": ""}}), 4004, id="empty-token"),
    pytest.param(json.dumps({"op": RESUME, "d": {"token": "flx_nope", "session_id": "a", "seq": 1}}), 4004,
                 id="resume-with-unknown-token"),
    pytest.param(json.dumps({"op": IDENTIFY, "d": {"token": "x", "shard": [1, 2]}}), 4010, id="shard-1-of-2"),
    pytest.param(json.dumps({"op": IDENTIFY, "d": {"token": "x", "shard": [0, 2]}}), 4010, id="shard-0-of-2"),
])
def test_a_bad_frame_closes_with_its_code(connect, gateway_server, raw, code):
    connection = connect(gateway_server)
    connection.hello()
    connection.send_raw(raw)
    assert connection.wait_closed() == code


def test_a_frame_of_exactly_4096_bytes_is_accepted(connect, gateway_server):
    connection = connect(gateway_server)
    connection.hello()
    frame = json.dumps({"op": HEARTBEAT, "d": None, "pad": ""})
    connection.send_raw(json.dumps({"op": HEARTBEAT, "d": None, "pad": "x" * (4096 - len(frame))}))
    assert connection.recv()["op"] == HEARTBEAT_ACK
    assert len(OVERSIZED.encode()) > 4096


def test_a_token_that_is_not_valid_unicode_closes_with_4004(connect, gateway_server):
    connection = connect(gateway_server)
    connection.hello()
    connection.send_raw('{"op": 2, "d": {"token": "flx_\\ud800"}}')
    assert connection.wait_closed() == 4004


def test_shard_zero_of_one_is_accepted(connect, gateway_server, register):
    alice = register()
    ready = connect(gateway_server).identify(alice.token, shard=[0, 1])
    assert ready["shard"] == [0, 1]


def test_identify_twice_closes_with_4005(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    connection.identify(alice.token)
    connection.send(IDENTIFY, _identify_payload(alice.token))
    assert connection.wait_closed() == 4005


def test_resume_after_identify_closes_with_4005(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    ready = connection.identify(alice.token)
    connection.send(RESUME, {"token": alice.token, "session_id": ready["session_id"], "seq": 1})
    assert connection.wait_closed() == 4005


def test_logout_ends_the_gateway_session_with_4006(client, connect, gateway_server, register, make_guild, add_member):
    alice, bob = register(), register()
    guild = make_guild(alice)
    add_member(bob, guild)
    connection = connect(gateway_server)
    connection.identify(alice.token)
    assert client.post("/v1/auth/logout", headers=alice.auth).status_code == 204
    assert client.get("/v1/users/@me", headers=alice.auth).status_code == 401
    send_message(client, bob, guild["system_channel_id"], "not for a logged-out session")
    try:
        heard = connection.dispatch("MESSAGE_CREATE", timeout=10)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 4006
    else:
        pytest.fail(f"a logged-out session still received MESSAGE_CREATE {heard['id']}")


def test_a_reset_bot_token_ends_the_bots_session_with_4006(client, connect, gateway_server, bot_in_two_guilds):
    application, _guilds, owner = bot_in_two_guilds
    connection = connect(gateway_server)
    connection.identify(application["bot"]["token"])
    reset = client.post(f"/v1/oauth2/applications/{application['id']}/bot/reset-token", json={"password": PASSWORD},
                        headers=owner.auth)
    assert reset.status_code == 200, reset.text
    assert connection.wait_closed() == 4006


def test_a_logout_while_identifying_still_ends_the_session(client, connect, gateway_server, register, monkeypatch):
    alice = register()
    checked, logged_out = threading.Event(), threading.Event()
    original = state.identify

    def identify(runtime, token):  # widens the window between checking the token and registering the session
        found = original(runtime, token)
        if token == alice.token:
            checked.set()
            logged_out.wait(5)
        return found

    monkeypatch.setattr(state, "identify", identify)
    connection = connect(gateway_server)
    connection.hello()
    connection.send(IDENTIFY, _identify_payload(alice.token))
    assert checked.wait(5)
    assert client.post("/v1/auth/logout", headers=alice.auth).status_code == 204
    time.sleep(0.3)  # the router has handled the logout by now
    logged_out.set()
    try:
        frames, code = _frames_until_closed(connection, timeout=2)
    except AssertionError:
        pytest.fail("a session identified with a token logged out meanwhile stays open")
    assert code in (4004, 4006), frames


def test_more_than_120_frames_a_minute_closes_with_4008_and_the_session_resumes(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    ready = connection.identify(alice.token)  # frame 1 of the window
    for _ in range(119):
        connection.send(HEARTBEAT, 1)
    assert [connection.recv()["op"] for _ in range(119)] == [HEARTBEAT_ACK] * 119
    connection.send(HEARTBEAT, 1)  # the 121st
    assert connection.wait_closed() == 4008

    again = connect(gateway_server)  # a rate-limited client may resume
    _resume(again, alice, ready["session_id"], 1)
    assert again.dispatch("RESUMED") is None


def test_an_account_past_its_daily_identify_budget_closes_with_4008(connect, gateway_server, register, monkeypatch):
    monkeypatch.setattr(hub_module, "IDENTIFY_BUDGET", parse("2/day"))  # 1,000 in production
    alice = register()
    for _ in range(2):
        connect(gateway_server).identify(alice.token)
    third = connect(gateway_server)
    third.hello()
    third.send(IDENTIFY, _identify_payload(alice.token))
    assert third.wait_closed() == 4008
    connect(gateway_server).identify(register().token)  # the budget is per account


@pytest.mark.parametrize("query", ["v=2&encoding=json", "v=0", "v=abc&encoding=json"])
def test_an_unsupported_version_closes_with_4012(connect, gateway_server, query):
    assert connect(gateway_server, query=query).wait_closed() == 4012


@pytest.mark.parametrize("query", ["v=1&encoding=etf", "v=1&encoding=xml", "v=1&encoding=json&compress=gzip"])
def test_an_unsupported_encoding_or_compression_closes_with_4002(connect, gateway_server, query):
    connection = connect(gateway_server, query=query)
    with pytest.raises(ConnectionClosed) as closed:
        connection.ws.recv(timeout=5)  # no HELLO first
    assert closed.value.rcvd.code == 4002


# --- a client too slow to read: 4013, then resume -----------------------------------------------------


def test_a_slow_client_is_closed_with_4013_and_resumes_after_its_last_seq(connect, small_queue_server, register):
    alice = register()
    connection = connect(small_queue_server)
    ready = connection.identify(alice.token)
    session = small_queue_server.hub.sessions[ready["session_id"]]
    holder = session.connection
    bus = small_queue_server.app.runtime.events

    published = 0  # the client reads nothing now; the server's outbox for it holds 16 frames
    while holder.close_code is None:
        assert published < 500, "the server never gave up on the slow client"
        bus.dispatch([_big_event(alice.user_id, published)])
        published += 1
        assert wait_for(lambda expected=published + 1: session.seq == expected)
    assert holder.close_code == 4013
    for n in range(published, published + 3):  # still published to the session while it is away
        bus.dispatch([_big_event(alice.user_id, n)])
    published += 3
    assert wait_for(lambda: session.seq == published + 1)

    frames, code = _frames_until_closed(connection, timeout=15)
    assert code == 4013
    seqs = [f["s"] for f in frames if f["op"] == DISPATCH]
    assert seqs == list(range(2, 2 + len(seqs)))  # what did arrive, arrived in order, nothing skipped
    last = seqs[-1] if seqs else 1
    assert last < published + 1  # some never reached the client
    assert wait_for(lambda: session.connection is None)

    again = connect(small_queue_server)
    _resume(again, alice, ready["session_id"], last)
    replay = [again.recv() for _ in range(published + 1 - last)]
    assert [(f["t"], f["s"]) for f in replay] == [("MESSAGE_CREATE", s) for s in range(last + 1, published + 2)]
    assert [f["d"]["n"] for f in replay] == list(range(last - 1, published))  # event n was frame n + 2
    assert again.recv() == {"op": DISPATCH, "t": "RESUMED", "d": None, "s": published + 2}


def test_a_resume_may_replay_more_than_the_queue_limit(connect, small_queue_server, register):
    alice = register()
    connection = connect(small_queue_server)
    ready = connection.identify(alice.token)
    connection.ws.close(code=DROPPED)
    bus = small_queue_server.app.runtime.events
    for n in range(30):  # the session keeps 4096 frames for replay; the outbox limit is 16
        bus.dispatch([_big_event(alice.user_id, n, size=10)])
    assert wait_for(lambda: _session_seq(small_queue_server, ready["session_id"]) == 31)

    again = connect(small_queue_server)
    _resume(again, alice, ready["session_id"], 1)
    frames = []
    try:
        while not frames or frames[-1].get("t") != "RESUMED":
            frames.append(again.recv())
    except ConnectionClosed as closed:
        raise AssertionError(f"closed with {closed.rcvd.code if closed.rcvd else None} after "
                             f"{len(frames)} of 31 frames") from None
    assert [f["s"] for f in frames] == list(range(2, 33))


# --- compression --------------------------------------------------------------------------------------


def test_zstd_stream_compresses_every_frame_in_one_stream(connect, gateway_server, register, make_guild):
    alice = register()
    guild = make_guild(alice, "Compressed")
    connection = connect(gateway_server, query="v=1&encoding=json&compress=zstd-stream", client=ZstdClient)
    assert connection.hello() == {"heartbeat_interval": 41250}
    connection.send(IDENTIFY, _identify_payload(alice.token))
    ready = connection.dispatch("READY")
    assert ready["user"]["id"] == alice.user_id and [g["id"] for g in ready["guilds"]] == [guild["id"]]
    connection.send(HEARTBEAT, 1)
    assert connection.recv() == {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None}
    assert all(isinstance(raw, bytes) for raw in connection.raw) and len(connection.raw) >= 3
    with pytest.raises(zstd.ZstdError):  # a frame alone is not a zstd frame: it needs the stream before it
        zstd.ZstdDecompressor().decompress(connection.raw[-1])


def test_zlib_stream_frames_each_end_with_a_sync_flush(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server, query="v=1&encoding=json&compress=zlib-stream", client=ZlibClient)
    assert connection.hello() == {"heartbeat_interval": 41250}
    connection.send(IDENTIFY, _identify_payload(alice.token))
    assert connection.dispatch("READY")["user"]["id"] == alice.user_id
    assert all(isinstance(raw, bytes) and raw.endswith(b"\x00\x00\xff\xff") for raw in connection.raw)


# --- presence -----------------------------------------------------------------------------------------


def _presences_of(connection, user_id: str, timeout: float = 5.0) -> dict:
    """The next PRESENCE_UPDATE about ``user_id``."""
    deadline = time.monotonic() + timeout
    while True:
        update = connection.dispatch("PRESENCE_UPDATE", timeout=max(0.01, deadline - time.monotonic()))
        if update["user"]["id"] == user_id:
            return update


def test_presence_update_reaches_guild_mates(connect, gateway_server, register, make_guild, add_member):
    alice, bob, carol = register(), register(), register()
    guild = make_guild(alice)
    add_member(bob, guild)
    add_member(carol, guild)
    watcher = connect(gateway_server)
    watcher.identify(bob.token)
    without_presences = connect(gateway_server)
    without_presences.identify(carol.token, intents=((1 << 16) - 1) & ~GUILD_PRESENCES)  # every intent but one
    actor = connect(gateway_server)
    actor.identify(alice.token)
    online = _presences_of(watcher, alice.user_id)
    assert (online["status"], online["mobile"], online["afk"]) == ("online", False, False)
    assert set(online["user"]) == PUBLIC_USER_FIELDS

    actor.send(PRESENCE_UPDATE, {"status": "dnd", "since": None, "activities": [], "afk": False})
    update = _presences_of(watcher, alice.user_id)
    assert update["status"] == "dnd" and update["user"]["id"] == alice.user_id and update["custom_status"] is None
    without_presences.assert_silent(0.5, ignore=())

    actor.send(PRESENCE_UPDATE, {"status": "invisible", "afk": False})
    assert _presences_of(watcher, alice.user_id)["status"] == "offline"  # invisible shows as offline
    actor.assert_silent(0.3, ignore=())  # nobody is told of their own presence
    actor.send(PRESENCE_UPDATE, {"status": "idle", "afk": True})
    idle = _presences_of(watcher, alice.user_id)
    assert (idle["status"], idle["afk"]) == ("idle", True)
    actor.close()  # a goodbye ends the session: alice is offline
    assert _presences_of(watcher, alice.user_id)["status"] == "offline"


def test_presence_update_with_an_unknown_status_closes_with_4002(connect, gateway_server, register):
    alice = register()
    connection = connect(gateway_server)
    connection.identify(alice.token)
    connection.send(PRESENCE_UPDATE, {"status": "busy"})
    assert connection.wait_closed() == 4002


# --- REQUEST_GUILD_MEMBERS -----------------------------------------------------------------------------


@pytest.fixture
def guild_of_two(register, make_guild, add_member):
    alice, bob, carol = register(global_name="Alfa Protocol"), register(global_name="Bravo Protocol"), register()
    guild = make_guild(alice)
    add_member(bob, guild)
    return guild, alice, bob, carol


def _request_members(connection, **payload) -> dict:
    connection.send(REQUEST_GUILD_MEMBERS, payload)
    return connection.dispatch("GUILD_MEMBERS_CHUNK")


def test_request_guild_members_answers_every_member(connect, gateway_server, guild_of_two):
    guild, alice, bob, _carol = guild_of_two
    connection = connect(gateway_server)
    connection.identify(alice.token)
    chunk = _request_members(connection, guild_id=guild["id"], query="", limit=0, nonce="n-1", presences=True)
    assert chunk["guild_id"] == guild["id"] and chunk["nonce"] == "n-1"
    assert (chunk["chunk_index"], chunk["chunk_count"], chunk["not_found"]) == (0, 1, [])
    assert [m["user"]["id"] for m in chunk["members"]] == sorted([alice.user_id, bob.user_id], key=int)
    for member in chunk["members"]:
        assert set(member["user"]) == PUBLIC_USER_FIELDS and isinstance(member["roles"], list)
    assert chunk["presences"] == [{"user": {"id": alice.user_id}, "status": "online"}]  # bob is not connected

    by_name = _request_members(connection, guild_id=guild["id"], query="BRAVO", limit=10)
    assert [m["user"]["id"] for m in by_name["members"]] == [bob.user_id] and "nonce" not in by_name
    assert _request_members(connection, guild_id=guild["id"], query="zulu", limit=10)["members"] == []


def test_request_guild_members_by_id_reports_the_missing(connect, gateway_server, guild_of_two):
    guild, alice, bob, carol = guild_of_two
    connection = connect(gateway_server)
    connection.identify(alice.token)
    chunk = _request_members(connection, guild_id=guild["id"], user_ids=[bob.user_id, carol.user_id], nonce="ids")
    assert [m["user"]["id"] for m in chunk["members"]] == [bob.user_id]
    assert chunk["not_found"] == [carol.user_id] and chunk["nonce"] == "ids"


def test_request_guild_members_from_a_non_member_is_empty(connect, gateway_server, guild_of_two):
    guild, alice, _bob, carol = guild_of_two
    connection = connect(gateway_server)
    connection.identify(carol.token)
    chunk = _request_members(connection, guild_id=guild["id"], query="", limit=0)
    assert chunk["members"] == [] and chunk["guild_id"] == guild["id"]
    assert _request_members(connection, guild_id=guild["id"], user_ids=[alice.user_id])["members"] == []


def test_members_by_id_never_reports_a_member_as_not_found(app, guild_of_two):
    guild, alice, bob, _carol = guild_of_two
    with Session(app.runtime.db.engine) as session:  # what op 8 answers, without the transport
        found, not_found = state.guild_members(session, int(alice.user_id), int(guild["id"]), query="", limit=1,
                                               user_ids=[int(alice.user_id), int(bob.user_id)])
    assert found and not_found == []


@pytest.mark.parametrize("payload", [
    {"query": "", "limit": 0},
    {"guild_id": "not-a-snowflake", "query": "", "limit": 0},
    {"guild_id": "1", "query": "", "limit": 1001},
    {"guild_id": "1", "query": 5, "limit": 0},
    {"guild_id": "1", "user_ids": ["x"]},
])
def test_request_guild_members_malformed_closes_with_4002(connect, gateway_server, register, payload):
    alice = register()
    connection = connect(gateway_server)
    connection.identify(alice.token)
    connection.send(REQUEST_GUILD_MEMBERS, payload)
    assert connection.wait_closed() == 4002


# --- routing caches -----------------------------------------------------------------------------------


def test_a_person_removed_from_a_group_dm_while_nobody_was_connected_hears_nothing(connect, brief_server, register):
    owner, first, second = register(), register(), register()
    with TestClient(brief_server.app) as rest:  # through the brief server's own bus
        _befriend(rest, owner, first)
        _befriend(rest, owner, second)
        group = rest.post("/v1/users/@me/channels", json={"recipients": [first.user_id, second.user_id]},
                          headers=owner.auth).json()["id"]
        watching = connect(brief_server)
        watching.identify(owner.token)
        send_message(rest, first, group, "hello group")
        watching.dispatch("MESSAGE_CREATE")  # the hub now knows the group's recipients
        watching.close()
        assert wait_for(lambda: not brief_server.hub.sessions, timeout=6)

        removed = rest.delete(f"/v1/channels/{group}/recipients/{second.user_id}", headers=owner.auth)
        assert removed.status_code == 204, removed.text
        outsider = connect(brief_server)
        outsider.identify(second.token)
        insider = connect(brief_server)
        insider.identify(owner.token)
        sent = send_message(rest, first, group, "not for the removed")
        assert insider.dispatch("MESSAGE_CREATE")["id"] == sent["id"]
        outsider.assert_silent(0.5)


# --- shutdown -----------------------------------------------------------------------------------------


def test_after_shutdown_new_connections_are_refused_with_1012(database_url, tmp_path_factory, register):
    alice = register()
    serving = _special_server(database_url, tmp_path_factory)
    server = next(serving)
    try:
        connection = GatewayClient(server.gateway_url)
        connection.identify(alice.token)
        hub = server.hub
        asyncio.run_coroutine_threadsafe(hub.shutdown(), hub._loop).result(timeout=10)  # what SIGTERM runs first
        frames, code = _frames_until_closed(connection)
        assert frames == [{"op": RECONNECT, "d": None, "s": None, "t": None}] and code == 1012

        late = GatewayClient(server.gateway_url)  # the client reconnects at once, as op 7 asks
        try:
            first = late.ws.recv(timeout=3)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1012
        else:
            pytest.fail(f"the stopping server served a new connection: {first}")
        finally:
            late.close()
    finally:
        serving.close()


def test_sigterm_sends_reconnect_then_closes_with_1012(database_url):
    env = {"FLUXER_ENV": "test", "DATABASE_URL": database_url, "EVENTS_CHANNEL": f"fluxer:events:{uuid.uuid4().hex}"}
    with server_process(env) as (base, process):
        gateway_url = base.replace("http://", "ws://").removesuffix("/v1") + "/gateway"
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        response = httpx.post(f"{base}/auth/register", headers={"X-Forwarded-For": unique_ip()}, timeout=10,
                              json={"email": email, "password": PASSWORD, "global_name": "Shutdown", "consent": True})
        assert response.status_code == 200, response.text
        connection = GatewayClient(gateway_url)
        try:
            ready = connection.identify(response.json()["token"])
            assert ready["user"]["id"] == response.json()["user_id"]
            process.send_signal(signal.SIGTERM)
            frames, code = _frames_until_closed(connection, timeout=10)
            assert frames == [{"op": RECONNECT, "d": None, "s": None, "t": None}]
            assert code == 1012
            process.wait(timeout=10)
        finally:
            connection.close()

