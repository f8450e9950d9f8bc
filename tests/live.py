"""Real server processes for tests that need them (fuzzing, several processes sharing state)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            with urllib.request.urlopen(f"{base}/_health", timeout=1):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start within 30 s")


@contextlib.contextmanager
def server_process(env: dict[str, str], port: int | None = None):
    """A uvicorn process of the service on ``port`` (a free loopback port by default); yields its /v1
    base URL and the process, for tests that signal it."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "service.asgi:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **env}, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(base, server)
        yield base, server
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=10)


@contextlib.contextmanager
def live_server(env: dict[str, str], port: int | None = None):
    """``server_process`` for tests that only need its /v1 base URL."""
    with server_process(env, port) as (base, _server):
        yield base


def migrate(env: dict[str, str]) -> None:
    subprocess.check_call([sys.executable, "-m", "service.manage", "migrate"], cwd=ROOT, env={**os.environ, **env})
