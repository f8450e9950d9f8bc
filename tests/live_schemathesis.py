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
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: make `tests` importable

from tests.live import ROOT, live_server, migrate

PY = sys.executable
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "40")


def register(base: str) -> str:
    body = json.dumps({"email": f"fuzz-{uuid.uuid4().hex[:10]}@example.com", "password": "fuzzing password 1",
                       "global_name": "Fuzz"}).encode()
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        f"{base}/auth/register", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own loopback server
        return json.loads(response.read())["token"]


def schemathesis(spec_url: str, token: str, *selection: str) -> int:
    command = [PY, "-m", "schemathesis.cli", "run", spec_url, "--checks", "all", "--max-examples", MAX_EXAMPLES,
               "--header", f"Authorization: {token}", "--seed", os.environ.get("FUZZ_SEED", "1"),
               "--generation-allow-x00", "false", *selection]
    print("+", " ".join(c if "Authorization" not in c else "Authorization: ***" for c in command), flush=True)
    return subprocess.call(command, cwd=ROOT)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"FLUXER_ENV": "test", "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/fuzz.sqlite3"}
        migrate(env)
        with live_server(env) as base:
            spec_url = f"{base}/openapi.json"
            lockouts = ("logout_user", "set_user_security_flags")
            first = schemathesis(spec_url, register(base), *[a for op in lockouts for a in ("--exclude-operation-id", op)])
            second = schemathesis(spec_url, register(base), *[a for op in lockouts for a in ("--include-operation-id", op)])
            return 1 if first or second else 0


if __name__ == "__main__":
    sys.exit(main())
