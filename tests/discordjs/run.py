"""Compatibility check: the official Discord libraries, unchanged, against a live server.

Starts the service (test mode, a temporary SQLite database), then through the REST API registers a
person, creates a guild, creates an application with a bot and adds the bot to the guild. Then it
runs ``pingpong.mjs``: ``@discordjs/rest`` (api = this server, version '1') fetches
``GET /v1/gateway/bot`` and ``@discordjs/ws`` (version '1') connects to the gateway it names. Once
the bot prints READY and its first heartbeat is acknowledged (the server's heartbeat interval is
shortened to 1 s for this), the person sends "ping"; the bot hears MESSAGE_CREATE and answers "pong"
with ``POST /v1/channels/{id}/messages``; this script polls the channel's history until that answer
is there, authored by the bot.

Prints a PASS line and exits 0; on any failure prints what the bot printed and exits 1
(``--verbose`` prints it on success too, with the libraries' debug output).
Needs Node.js 20+ and npm (``npm ci`` runs here when node_modules is missing).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run as a script: make `tests` importable

from tests import live  # noqa: E402

READY_TIMEOUT = 30.0  # seconds for the bot to fetch /gateway/bot, connect, identify and get READY
HEARTBEAT_MS = 1000  # HELLO's heartbeat_interval here, so a heartbeat happens within the check
PONG_TIMEOUT = 30.0  # seconds from sending "ping" until "pong" is in the channel's history
NODE_TIMEOUT_MS = 30_000  # the bot gives up on its own after this long (exit status 2)
# VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY for the bot's managed role
BOT_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16)


class Failure(Exception):
    pass


def call(base: str, method: str, path: str, body=None, token: str | None = None):
    headers = {"Content-Type": "application/json", "User-Agent": "fluxer-discordjs-compat"}
    if token:
        headers["Authorization"] = token
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own loopback server
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise Failure(f"{method} {path} answered {error.code}: {error.read().decode(errors='replace')}") from None


def setup(base: str) -> dict:
    """A person who owns a guild, and an application whose bot is a member of it."""
    person = call(base, "POST", "/auth/register", {
        "email": f"compat-{uuid.uuid4().hex[:10]}@example.com", "password": "discord.js compat check 1",
        "global_name": "Compat Person", "consent": True})
    token = person["token"]
    guild = call(base, "POST", "/guilds", {"name": "discord.js compat"}, token)
    application = call(base, "POST", "/oauth2/applications", {"name": "PingPong Bot"}, token)
    call(base, "POST", "/oauth2/authorize/consent", {
        "client_id": application["id"], "scope": "bot", "permissions": str(BOT_PERMISSIONS),
        "guild_id": guild["id"]}, token)
    return {"token": token, "user_id": person["user_id"], "guild_id": guild["id"],
            "channel_id": guild["system_channel_id"], "bot_id": application["bot"]["id"],
            "bot_token": application["bot"]["token"]}


def libraries() -> str:
    """The pinned library versions, as package.json names them."""
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]
    return " + ".join(f"{name} {version}" for name, version in pinned.items() if name.startswith("@discordjs/"))


def ensure_node() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        raise Failure(f"{' and '.join(missing)} not found: install Node.js 20+ with npm "
                      "(https://nodejs.org/, or e.g. `apt-get install nodejs npm`)")
    if not (HERE / "node_modules").is_dir():
        print("+ npm ci (tests/discordjs)", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)


class Bot:
    """``node pingpong.mjs`` with its output collected: stdout lines also go to a queue to wait on."""

    def __init__(self, api: str, bot_token: str):
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        env = {**os.environ, "FLUXER_API": api, "FLUXER_BOT_TOKEN": bot_token,
               "FLUXER_COMPAT_TIMEOUT_MS": str(NODE_TIMEOUT_MS)}
        self.process = subprocess.Popen(["node", "pingpong.mjs"], cwd=HERE, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self._threads = [threading.Thread(target=self._pump, args=(self.process.stdout, self.stdout, True), daemon=True),
                         threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr, False), daemon=True)]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream, sink: list[str], to_queue: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            sink.append(line)
            if to_queue:
                self.lines.put(line)

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Failure(f"the bot printed no {prefix!r} line within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    raise Failure(f"the bot exited with {self.process.returncode} before printing {prefix!r}") from None
                continue
            if line.startswith(prefix):
                return line

    def finish(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise Failure(f"the bot did not exit within {timeout:.0f} s of replying") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for thread in self._threads:
            thread.join(timeout=2)

    def output(self) -> str:
        return "\n".join(["--- node stdout ---", *self.stdout, "--- node stderr ---", *self.stderr])


def wait_for_pong(base: str, world: dict, ping_id: str, bot: Bot) -> dict:
    deadline = time.monotonic() + PONG_TIMEOUT
    path = f"/channels/{world['channel_id']}/messages?limit=20"
    while time.monotonic() < deadline:
        gone = bot.process.poll()  # read before the history: a bot that replied and exited 0 is seen below
        for message in call(base, "GET", path, token=world["token"]):
            if message["content"] == "pong" and message["author"]["id"] == world["bot_id"]:
                return message
        if gone is not None:
            raise Failure(f"the bot exited with {gone} and no \"pong\" is in channel {world['channel_id']}")
        time.sleep(0.2)
    raise Failure(f"no message \"pong\" by the bot in channel {world['channel_id']} within {PONG_TIMEOUT:.0f} s "
                  f"of \"ping\" ({ping_id})")


def check(base: str, api: str, verbose: bool) -> str:
    started = time.monotonic()
    world = setup(base)
    bot = Bot(api, world["bot_token"])
    try:
        ready = bot.wait_for("READY ", READY_TIMEOUT)
        _, session_id, ready_user_id, *_ = ready.split()
        if ready_user_id != world["bot_id"]:
            raise Failure(f"READY names user {ready_user_id}, not the bot {world['bot_id']}")
        heartbeat = bot.wait_for("HEARTBEAT_ACK ", HEARTBEAT_MS / 1000 * 3)
        ping = call(base, "POST", f"/channels/{world['channel_id']}/messages", {"content": "ping"}, world["token"])
        pong = wait_for_pong(base, world, ping["id"], bot)
        code = bot.finish(timeout=10)
        if code != 0:
            raise Failure(f"the bot exited with {code} after replying")
        heard = next((line for line in bot.stdout if line.startswith(f"GOT MESSAGE_CREATE {ping['id']} ")), None)
        if heard is None:
            raise Failure("\"pong\" is there but the bot never printed the MESSAGE_CREATE of \"ping\"")
        reference = (pong.get("message_reference") or {}).get("message_id")
        verdict = (f"PASS discord.js ({libraries()}): READY session {session_id} "
                f"for bot {world['bot_id']}; heartbeat acknowledged ({heartbeat.split()[-1]}); "
                f"bot heard MESSAGE_CREATE {ping['id']} \"ping\" from user {world['user_id']}; "
                f"message {pong['id']} \"pong\" by the bot in channel {world['channel_id']} "
                f"(replying to {reference}); {time.monotonic() - started:.1f} s")
    except BaseException:
        bot.stop()
        print(bot.output(), file=sys.stderr, flush=True)
        raise
    finally:
        bot.stop()
    if verbose:
        print(bot.output(), flush=True)
    return verdict


def main() -> int:
    try:
        ensure_node()
    except (Failure, subprocess.CalledProcessError) as error:
        print(f"FAIL {error}", file=sys.stderr)
        return 1
    # /gateway/bot must name the gateway of this very server, so the port is chosen before it starts.
    port = live.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"FLUXER_ENV": "test", "DATABASE_URL": f"sqlite:///{tmp}/compat.sqlite3", "REDIS_URL": "",
               "STORAGE_DIR": f"{tmp}/media", "PUBLIC_URL": f"http://127.0.0.1:{port}",
               "GATEWAY_URL": f"ws://127.0.0.1:{port}/gateway", "GATEWAY_HEARTBEAT_MS": str(HEARTBEAT_MS)}
        live.migrate(env)
        try:
            with live.live_server(env, port) as base:
                print(check(base, api=f"http://127.0.0.1:{port}", verbose="--verbose" in sys.argv[1:]), flush=True)
        except Failure as error:
            print(f"FAIL {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
