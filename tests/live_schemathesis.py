"""Schemathesis against a live server: every operation of the spec, every check.

Starts uvicorn in test mode on a free port (SQLite in a temp dir unless DATABASE_URL is
set), registers a user for the token, and fuzzes. Two operations would lock that user out
of every other one (`logout_user` ends its session; the harness's security flags can put it
under review), so they run in a second pass with a token of their own.
Exit status: 0 only when Schemathesis reports no failure in either pass.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "40")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def register(base: str) -> str:
    body = json.dumps({"email": f"fuzz-{uuid.uuid4().hex[:10]}@example.com", "password": "fuzzing password 1",
                       "global_name": "Fuzz"}).encode()
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        f"{base}/auth/register", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own loopback server
        return json.loads(response.read())["token"]


def wait_until_up(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("server exited during start-up")
        try:
            with urllib.request.urlopen(f"{base}/_health", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start within 30 s")


def schemathesis(spec_url: str, token: str, *selection: str) -> int:
    command = [PY, "-m", "schemathesis.cli", "run", spec_url, "--checks", "all", "--max-examples", MAX_EXAMPLES,
               "--header", f"Authorization: {token}", "--seed", os.environ.get("FUZZ_SEED", "1"),
               "--generation-allow-x00", "false", *selection]
    print("+", " ".join(c if "Authorization" not in c else "Authorization: ***" for c in command), flush=True)
    return subprocess.call(command, cwd=ROOT)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FLUXER_ENV": "test"}
        env.setdefault("DATABASE_URL", f"sqlite:///{tmp}/fuzz.sqlite3")
        subprocess.check_call([PY, "-m", "service.manage", "migrate"], cwd=ROOT, env=env)
        port = free_port()
        base = f"http://127.0.0.1:{port}/v1"
        server = subprocess.Popen([PY, "-m", "uvicorn", "service.asgi:app", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-access-log", "--log-level", "warning"], cwd=ROOT, env=env,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_until_up(base, server)
            spec_url = f"{base}/openapi.json"
            lockouts = ("logout_user", "set_user_security_flags")
            first = schemathesis(spec_url, register(base), *[a for op in lockouts for a in ("--exclude-operation-id", op)])
            second = schemathesis(spec_url, register(base), *[a for op in lockouts for a in ("--include-operation-id", op)])
            return 1 if first or second else 0
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
