"""Schemathesis against a live server: every operation of the spec, every check.

Starts uvicorn in test mode on a free port (SQLite in a temp dir unless DATABASE_URL is
set), registers a user for the token, and fuzzes. The user owns a guild with a role, an
invite, an emoji and a sticker, and schemathesis.toml pins the path ids to those objects
(through FUZZ_* variables), so guild operations reach their real code instead of stopping
at "unknown guild". Two operations would lock that user out of every other one
(`logout_user` ends its session; the harness's security flags can put it under review), so
they run in a second pass with a token of their own.
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


PNG_1X1 = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQ"
           "AAAAABJRU5ErkJggg==")


def call(base: str, method: str, path: str, body=None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, headers=headers, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own loopback server
        return json.loads(response.read() or b"null")


def register(base: str) -> tuple[str, str]:
    body = {"email": f"fuzz-{uuid.uuid4().hex[:10]}@example.com", "password": "fuzzing password 1",
            "global_name": "Fuzz"}
    answer = call(base, "POST", "/auth/register", body)
    return answer["token"], answer["user_id"]


def seed_guild(base: str, token: str, user_id: str) -> dict[str, str]:
    """Objects for the fuzzer to work on; their ids become the FUZZ_* variables schemathesis.toml reads."""
    guild = call(base, "POST", "/guilds", {"name": "Fuzz Guild"}, token)
    role = call(base, "POST", f"/guilds/{guild['id']}/roles", {"name": "Fuzz Role"}, token)
    invite = call(base, "POST", f"/channels/{guild['system_channel_id']}/invites", {"max_age": 0}, token)
    emoji = call(base, "POST", f"/guilds/{guild['id']}/emojis", {"name": "fuzz", "image": PNG_1X1}, token)
    sticker = call(base, "POST", f"/guilds/{guild['id']}/stickers", {"name": "fuzz", "image": PNG_1X1, "tags": ["x"]},
                   token)
    return {"FUZZ_GUILD_ID": guild["id"], "FUZZ_CHANNEL_ID": guild["system_channel_id"], "FUZZ_ROLE_ID": role["id"],
            "FUZZ_USER_ID": user_id, "FUZZ_INVITE_CODE": invite["code"], "FUZZ_EMOJI_ID": emoji["id"],
            "FUZZ_STICKER_ID": sticker["id"]}


def schemathesis(spec_url: str, token: str, *selection: str, env: dict[str, str]) -> int:
    command = [PY, "-m", "schemathesis.cli", "run", spec_url, "--checks", "all", "--max-examples", MAX_EXAMPLES,
               "--header", f"Authorization: {token}", "--seed", os.environ.get("FUZZ_SEED", "1"),
               "--generation-allow-x00", "false", *selection]
    print("+", " ".join(c if "Authorization" not in c else "Authorization: ***" for c in command), flush=True)
    return subprocess.call(command, cwd=ROOT, env={**os.environ, **env})


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"FLUXER_ENV": "test", "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/fuzz.sqlite3",
               "STORAGE_DIR": f"{tmp}/media"}
        migrate(env)
        with live_server(env) as base:
            spec_url = f"{base}/openapi.json"
            lockouts = ("logout_user", "set_user_security_flags")
            token, user_id = register(base)
            ids = seed_guild(base, token, user_id)
            first = schemathesis(spec_url, token, *[a for op in lockouts for a in ("--exclude-operation-id", op)],
                                 env=ids)
            token, user_id = register(base)
            second = schemathesis(spec_url, token, *[a for op in lockouts for a in ("--include-operation-id", op)],
                                  env={**ids, "FUZZ_USER_ID": user_id})
            return 1 if first or second else 0


if __name__ == "__main__":
    sys.exit(main())
