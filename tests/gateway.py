"""Gateway test tools: the app served by a real uvicorn in a thread, and a blocking WebSocket client.

The embedded server serves the suite's own ``app`` object, so HTTP calls made through the usual
``client`` fixture publish events to the same hub the WebSocket clients are connected to.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid

import httpx
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import PASSWORD, unique_ip
from tests.live import free_port

DEFAULT_QUERY = "v=1&encoding=json"


class EmbeddedServer:
    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    ws_max_size=65536))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def hub(self):
        return self.server.config.app.hub if hasattr(self.server.config.app, "hub") else None

    def __enter__(self) -> EmbeddedServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("embedded server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class GatewayClient:
    """One gateway connection. ``dispatch`` waits for a named event; ``assert_silent`` proves none came."""

    def __init__(self, url: str, query: str = DEFAULT_QUERY):
        self.ws = connect(f"{url}?{query}" if query else url, max_size=None, open_timeout=5)
        self.seen: list[dict] = []  # every frame received, in order
        self.close_code: int | None = None

    def send(self, op: int, data=None) -> None:
        self.ws.send(json.dumps({"op": op, "d": data}))

    def send_raw(self, text: str | bytes) -> None:
        self.ws.send(text)

    def recv(self, timeout: float = 5.0) -> dict:
        frame = json.loads(self.ws.recv(timeout=timeout))
        self.seen.append(frame)
        return frame

    def hello(self) -> dict:
        frame = self.recv()
        assert frame["op"] == 10, frame
        return frame["d"]

    def identify(self, token: str, **extra) -> dict:
        """HELLO, IDENTIFY, and the READY payload."""
        self.hello()
        self.send(2, {"token": token, "properties": {"os": "linux", "browser": "pytest", "device": "pytest"}, **extra})
        return self.dispatch("READY")

    def dispatch(self, name: str, timeout: float = 5.0) -> dict:
        """The payload of the next dispatch called ``name``, skipping other frames."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {name} within {timeout} s; saw {[f.get('t') or f['op'] for f in self.seen]}")
            frame = self.recv(timeout=remaining)
            if frame["op"] == 0 and frame["t"] == name:
                return frame["d"]

    def assert_silent(self, timeout: float = 0.5, ignore: tuple[str, ...] = ("PRESENCE_UPDATE",)) -> None:
        """No dispatch (other than ``ignore``) arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = self.recv(timeout=remaining)
            except TimeoutError:
                return
            assert frame["op"] != 0 or frame["t"] in ignore, f"unexpected {frame.get('t')}: {frame}"

    def wait_closed(self, timeout: float = 5.0) -> int:
        """Read until the server closes; the close code."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.recv(timeout=max(0.01, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
            return self.close_code
        raise AssertionError("the server did not close the connection")

    def close(self) -> None:
        self.ws.close()


def wait_for(predicate, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def send_message(client, account, channel_id, content: str, **body) -> dict:
    """Post a message through the suite's HTTP client; the created message."""
    response = client.post(f"/v1/channels/{channel_id}/messages", json={"content": content, **body},
                           headers=account.auth)
    assert response.status_code == 200, response.text
    return response.json()


# --- real server processes (tests.live) -----------------------------------------------------------


def live_env(database_url: str, redis_url: str) -> dict:
    """Settings for server processes that form one deployment: their own events channel, shared by them."""
    return {"FLUXER_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "EVENTS_CHANNEL": f"fluxer:events:{uuid.uuid4().hex}"}


def gateway_url_of(api: str) -> str:
    return api.replace("http://", "ws://").removesuffix("/v1") + "/gateway"


def live_account(api: str) -> tuple[str, str, dict]:
    """A person registered on a live server: (token, user id, request headers)."""
    ip = unique_ip()
    body = {"email": f"live-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD, "consent": True}
    response = httpx.post(f"{api}/auth/register", json=body, headers={"X-Forwarded-For": ip})
    assert response.status_code == 200, response.text
    data = response.json()
    return data["token"], data["user_id"], {"Authorization": data["token"], "X-Forwarded-For": ip}


def live_channel(api: str, headers: dict) -> str:
    """A new guild's text channel on a live server."""
    guild = httpx.post(f"{api}/guilds", json={"name": "Live"}, headers=headers).json()
    channels = httpx.get(f"{api}/guilds/{guild['id']}/channels", headers=headers).json()
    return next(c["id"] for c in channels if c["type"] == 0)


def live_send(api: str, headers: dict, channel_id: str, content: str) -> dict:
    response = httpx.post(f"{api}/channels/{channel_id}/messages", json={"content": content}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def redis_server(port: int) -> subprocess.Popen:
    """A private redis-server, for tests that stop and restart it."""
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.call(["redis-cli", "-p", str(port), "ping"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) != 0:
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    return server
