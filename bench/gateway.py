"""Gateway fan-out benchmark: 1,000 WebSocket clients in one guild channel, two server processes, Redis.

    make bench-gateway                  # or: python bench/gateway.py --help

What it does, in order:
  1. Drops, recreates and migrates the PostgreSQL database of --database-url (default
     postgresql://postgres@127.0.0.1:5432/bench_gw; its name must contain "bench", and it is never
     "test"). Events cross processes on Redis (--redis-url, default redis://127.0.0.1:6379/0) on a
     channel of this run's own (EVENTS_CHANNEL=fluxer:bench-gw:<random>).
  2. Starts two service processes (uvicorn, one worker each, FLUXER_ENV=test so argon2 is cheap and
     rate limits are off, --ws-max-size 65536) and bench/ws_idle.py, a bare ASGI WebSocket app, under
     the same uvicorn with the same flags, as the memory baseline.
  3. Creates the owner and --clients members with the service's own models (users, and sessions whose
     token is stored as its SHA-256, as service.accounts does), the guild through the API
     (POST /v1/guilds), and the memberships with service.members.add (Guild.member_count follows).
  4. Starts --client-procs client processes (asyncio + the websockets client, uvloop when installed).
     Warm-up: a few clients identify on each server, hear a few messages, and leave.
  5. Memory: each server's RSS (VmRSS) with no client, then with every client connected and idle,
     after --settle seconds: (after - before) / connections, per server. The same for the baseline
     app with as many plain connections (open, one echo, idle), to show what uvicorn and websockets
     cost by themselves.
  6. Connects the clients, half to each server, in batches of --batch concurrent IDENTIFYs
     (intents GUILD_MESSAGES | MESSAGE_CONTENT: no GUILD_PRESENCES, so no presence fan-out). Each
     client heartbeats as the protocol asks.
  7. Latency: the owner sends --messages messages through REST, alternating between the servers,
     each with its own nonce. t0 is when the REST response arrived; each client stamps the
     MESSAGE_CREATE it receives (time.time(): one clock, one machine). Reported: time from t0 to
     delivery at the last client (and the first), p50/p95/p99/max, split by whether that client sits
     on the process that served the REST call or on the other one (its events came through Redis).
     By default the loop is closed: the next message goes once every client has the previous one,
     plus --gap seconds. --rate N sends N messages per second regardless (open loop).
  8. Stops everything it started and drops the database (unless --keep-db).

Targets (the issue): p99 to the last client under 250 ms at 1,000 clients on the 2-core machine,
and under 50 KiB per idle connection. The run prints PASS/FAIL and exits 0 either way; it exits 1
when something broke (a client that did not connect, a missing delivery, a dropped connection).

The clients run in separate processes (default 2: 1,000 sockets parsing JSON in one Python process
would be a bottleneck of the benchmark, not of the server), each holding half of each server's
clients. CPU per message of every party (servers, clients, PostgreSQL, Redis) is reported, so a
reader can tell whose time the latency is. Results go to stdout and var/bench-gateway/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from common import cpu_seconds, plain_url, port_free, recreate_database

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench-gateway"
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/bench_gw"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
INTENTS = 1 << 9 | 1 << 15  # GUILD_MESSAGES | MESSAGE_CONTENT; without GUILD_PRESENCES (1 << 8)
CONTENT = "the quick brown fox jumps over the lazy dog, gateway fan-out message "

# Targets from the issue.
MAX_P99_MS = 250.0
MAX_KIB_PER_CONNECTION = 50.0


def log(*parts) -> None:
    print("[bench-gateway]", *parts, flush=True)


# --- Client processes ---------------------------------------------------------------------------
# Everything in this section runs in the client processes (spawned: they import this module afresh,
# so it imports nothing heavy at the top).


def make_decoder(compress: str | None):
    """A function from one received frame to its JSON text, for the ``compress`` query value."""
    if compress is None:
        return lambda raw: raw
    if compress == "zlib-stream":  # one deflate stream, each frame ending with a sync flush
        import zlib

        stream = zlib.decompressobj()
        return lambda raw: stream.decompress(raw).decode()
    try:  # zstd-stream: one zstd frame for the connection, a block flushed per message
        from compression import zstd
    except ImportError:
        from backports import zstd
    stream = zstd.ZstdDecompressor()
    return lambda raw: stream.decompress(raw).decode()


class GatewayConnection:
    __slots__ = ("decode", "index", "interval", "reader", "seq", "server", "ws")

    def __init__(self, index: int, server: int, ws, interval: float, decode):
        self.index, self.server, self.ws, self.interval, self.decode = index, server, ws, interval, decode
        self.seq: int | None = None
        self.reader: asyncio.Task | None = None


class ClientWorker:
    """One client process: holds its share of the connections and answers the main process's commands.

    Commands arrive on a pipe as tuples and are answered one at a time; besides the answers, the
    worker sends ("done", nonce) once every gateway client it holds has received that message.
    """

    def __init__(self, pipe, index: int, compress: str | None):
        self.pipe, self.index, self.compress = pipe, index, compress
        self.compression = "deflate"  # offered, as every browser does; the server decides
        self.connections: dict[str, list] = {"gateway": [], "plain": []}
        self.closing = False
        self.stats: dict[str, dict[int, list]] = {}  # nonce -> server -> [count, first, last]
        self.totals: dict[str, int] = {}
        self.problems: list[str] = []
        self.heartbeats: asyncio.Task | None = None
        self.commands: asyncio.Queue | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.commands = asyncio.Queue()
        # A thread reads the pipe: loop.add_reader would make it non-blocking, and a large command
        # arriving in parts would then fail to read.
        threading.Thread(target=self._read_commands, args=(loop,), daemon=True).start()
        self.pipe.send(("answer", 0, ("hello", os.getpid())))
        while True:
            number, name, *args = await self.commands.get()
            if name == "exit":
                await self.close("gateway")
                await self.close("plain")
                self.pipe.send(("answer", number, ("bye",)))
                return
            self.pipe.send(("answer", number, await getattr(self, name)(*args)))

    def _read_commands(self, loop) -> None:
        while True:
            try:
                command = self.pipe.recv()
            except (EOFError, OSError):  # the main process is gone
                command = (-1, "exit")
            loop.call_soon_threadsafe(self.commands.put_nowait, command)
            if command[1] == "exit":
                return

    # --- commands ------------------------------------------------------------------------------

    async def connect(self, kind: str, specs: list[tuple], batch: int) -> tuple:
        """Open ``specs`` (index, url, token, server) in batches; time each one to READY (or echo)."""
        from websockets.asyncio.client import connect  # noqa: F401 - fail early if missing

        started = time.perf_counter()
        failures, times = [], []
        for start in range(0, len(specs), batch):
            group = specs[start:start + batch]
            results = await asyncio.gather(*(self._open(kind, *spec) for spec in group), return_exceptions=True)
            for spec, result in zip(group, results, strict=True):
                if isinstance(result, BaseException):
                    failures.append(f"client {spec[0]} ({spec[1]}): {result!r}")
                else:
                    connection, seconds = result
                    self.connections[kind].append(connection)
                    times.append(seconds)
        if kind == "gateway" and self.heartbeats is None and self.connections["gateway"]:
            self.heartbeats = asyncio.create_task(self._heartbeat())
        return ("connected", len(self.connections[kind]), failures, times, time.perf_counter() - started)

    async def close(self, kind: str) -> tuple:
        self.closing = True
        connections, self.connections[kind] = self.connections[kind], []
        if kind == "gateway" and self.heartbeats is not None:
            self.heartbeats.cancel()
            self.heartbeats = None
        sockets = [c.ws if isinstance(c, GatewayConnection) else c for c in connections]
        for start in range(0, len(sockets), 100):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in sockets[start:start + 100]),
                                                      return_exceptions=True), timeout=10)
        for connection in connections:
            if isinstance(connection, GatewayConnection) and connection.reader is not None:
                connection.reader.cancel()
        self.closing = False
        return ("closed", len(connections))

    async def reset(self) -> tuple:
        self.stats, self.totals = {}, {}
        return ("reset",)

    async def report(self) -> tuple:
        return ("report", self.stats, self.problems, self.cpu_seconds(), len(self.connections["gateway"]))

    async def cpu(self) -> tuple:
        return ("cpu", self.cpu_seconds())

    @staticmethod
    def cpu_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    # --- connections ---------------------------------------------------------------------------

    async def _open(self, kind: str, index: int, url: str, token: str | None, server: int):
        from websockets.asyncio.client import connect

        started = time.perf_counter()
        if kind == "plain":
            ws = await connect(url, max_size=None, ping_interval=None, compression=self.compression,
                               open_timeout=60, proxy=None)
            await ws.send("ping")
            async with asyncio.timeout(30):
                if await ws.recv() != "ping":
                    raise RuntimeError("the echo app did not echo")
            return ws, time.perf_counter() - started

        query = "v=1&encoding=json" + (f"&compress={self.compress}" if self.compress else "")
        ws = await connect(f"{url}?{query}", max_size=None, ping_interval=None,
                           compression=self.compression, open_timeout=60, proxy=None)
        decode = make_decoder(self.compress)
        try:
            async with asyncio.timeout(90):
                hello = json.loads(decode(await ws.recv()))
                if hello["op"] != 10:
                    raise RuntimeError(f"expected HELLO, got {hello}")
                await ws.send(json.dumps({"op": 2, "d": {
                    "token": token, "intents": INTENTS,
                    "properties": {"os": "linux", "browser": "bench", "device": "bench"}}}))
                connection = GatewayConnection(index, server, ws, hello["d"]["heartbeat_interval"] / 1000, decode)
                while True:
                    frame = json.loads(decode(await ws.recv()))
                    if frame["op"] == 0:
                        connection.seq = frame["s"]
                        if frame["t"] == "READY":
                            break
                    elif frame["op"] in (7, 9):
                        raise RuntimeError(f"server answered IDENTIFY with op {frame['op']}")
        except BaseException:
            await ws.close()
            raise
        connection.reader = asyncio.create_task(self._read(connection))
        return connection, time.perf_counter() - started

    async def _read(self, connection: GatewayConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in connection.ws:
                now = time.time()
                frame = json.loads(connection.decode(raw))
                op = frame["op"]
                if op == 0:
                    connection.seq = frame["s"]
                    if frame["t"] == "MESSAGE_CREATE":
                        self._delivered(frame["d"].get("nonce"), connection.server, now)
                elif op in (7, 9):
                    self.problems.append(f"client {connection.index} got op {op}")
        except ConnectionClosed as closed:
            if not self.closing:
                self.problems.append(f"client {connection.index} lost its connection: {closed}")
            return
        if not self.closing:
            self.problems.append(f"client {connection.index}: the server closed the connection")

    def _delivered(self, nonce: str | None, server: int, now: float) -> None:
        if nonce is None:
            return
        per_server = self.stats.setdefault(nonce, {})
        entry = per_server.get(server)
        if entry is None:
            per_server[server] = [1, now, now]
        else:
            entry[0] += 1
            entry[1] = min(entry[1], now)
            entry[2] = max(entry[2], now)
        total = self.totals[nonce] = self.totals.get(nonce, 0) + 1
        if total == len(self.connections["gateway"]):
            self.pipe.send(("done", nonce))

    async def _heartbeat(self) -> None:
        """Every client heartbeats about every half interval, the sends spread evenly over time, so a
        client that joined just after its turn still beats well within the server's 1.5 intervals."""
        from websockets.exceptions import ConnectionClosed

        while True:
            connections = list(self.connections["gateway"])
            if not connections:
                await asyncio.sleep(1)
                continue
            step = connections[0].interval * 0.45 / len(connections)
            for connection in connections:
                with contextlib.suppress(ConnectionClosed):
                    await connection.ws.send(json.dumps({"op": 1, "d": connection.seq}))
                await asyncio.sleep(step)


def worker_main(pipe, index: int, compress: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when we stop
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(ClientWorker(pipe, index, compress).run())


class Workers:
    """The main process's side of the client processes."""

    def __init__(self, count: int, compress: str | None):
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        self.done: dict[str, int] = defaultdict(int)
        for index in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=worker_main, args=(child, index, compress), daemon=True,
                                      name=f"bench-gateway-client-{index}")
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)
        self.number = 0
        self.pids = [self._receive(pipe, 0, 60)[1] for pipe in self.pipes]

    def _receive(self, pipe, number: int, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("a client process did not answer")
            message = pipe.recv()
            if message[0] == "done":
                self.done[message[1]] += 1
            elif message[1] == number:
                return message[2]
            else:
                log(f"(!) a client process answered command {message[1]} while {number} was awaited: {message[2]!r:.200}")

    def call(self, commands: list[tuple], timeout: float = 600) -> list[tuple]:
        """One command per worker, sent together; their answers, in worker order."""
        self.number += 1
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send((self.number, *command))
        return [self._receive(pipe, self.number, timeout) for pipe in self.pipes]

    def broadcast(self, command: tuple, timeout: float = 600) -> list[tuple]:
        return self.call([command] * len(self.pipes), timeout)

    def wait_done(self, nonces, timeout: float) -> bool:
        """Until every worker has reported every one of ``nonces`` delivered; False on timeout."""
        deadline = time.monotonic() + timeout
        waiting = set(nonces)
        while True:
            waiting = {n for n in waiting if self.done[n] < len(self.pipes)}
            if not waiting:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for pipe in multiprocessing.connection.wait(self.pipes, remaining):
                message = pipe.recv()
                if message[0] == "done":
                    self.done[message[1]] += 1
                else:
                    log(f"(!) a client process answered command {message[1]} unasked: {message[2]!r:.200}")

    def stop(self) -> None:
        self.number += 1
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send((self.number, "exit"))
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                self._receive(pipe, self.number, 30)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


# --- Servers and measurements (main process) ----------------------------------------------------


class Server:
    """One single-process uvicorn in its own process group; its pid is the server's own."""

    def __init__(self, name: str, app: str, port: int, env: dict, health: str, extra: tuple[str, ...] = ()):
        if not port_free(port):
            raise RuntimeError(f"port {port} is taken; pass --port")
        self.name, self.port, self.health = name, port, health
        self.log = open(OUT / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the server
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                   "--ws-max-size", "65536", "--log-level", "warning", "--no-access-log", *extra]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log.name}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", self.health)
                if connection.getresponse().status == 200:
                    connection.close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer on :{self.port} within {timeout}s")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


class Rest:
    """Keep-alive HTTP to one server; a connection idle for longer than uvicorn keeps one (5 s) is reopened."""

    IDLE_SECONDS = 3.0

    def __init__(self, port: int):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.used = time.monotonic()

    def ok(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        if time.monotonic() - self.used > self.IDLE_SECONDS:
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.used = time.monotonic()
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        self.connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} -> {response.status}: {data[:300]!r}")
        return json.loads(data) if data else None


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs together."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def pids_named(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() == name:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = psycopg.conninfo.conninfo_to_dict(plain_url(url)).get("dbname") or ""
    if "bench" not in name or name == "test":
        return
    admin = psycopg.conninfo.make_conninfo(plain_url(url), dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def seed(database_url: str, clients: int, rest: Rest) -> dict:
    """The owner and ``clients`` members with a session each, the guild (through the API), the memberships."""
    import warnings

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    with warnings.catch_warnings():  # connexion imports starlette.testclient, which warns about httpx
        warnings.simplefilter("ignore")
        from service.app import allocate_node_id
    from service import members
    from service.crypto import new_session_token, sha256_hex
    from service.db import Database
    from service.models import AuthSession, Guild, User, utcnow
    from service.snowflake import SnowflakeGenerator

    db = Database(database_url)
    try:
        ids = SnowflakeGenerator(allocate_node_id(db))  # a node id of its own: no clash with the servers' ids
        now = utcnow()
        people: list[tuple[int, str]] = []
        with Session(db.engine) as session:
            users, logins = [], []
            for n in range(clients + 1):
                name = "gwowner" if n == 0 else f"gw{n}"
                user = User(id=ids.next_id(), username=name, username_key=name, discriminator=1,
                            global_name=f"Gateway {n}", email=f"{name}@bench.invalid", email_verified=True,
                            password_hash=None, date_of_birth="1990-01-01", terms_agreed_at=now, settings={})
                token = new_session_token()
                users.append(user)
                logins.append(AuthSession(id=ids.next_id(), user_id=user.id, token_hash=sha256_hex(token),
                                          client_ip="127.0.0.1", browser="bench"))
                people.append((user.id, token))
            session.add_all(users)
            session.flush()
            session.add_all(logins)
            session.commit()

        owner_token = people[0][1]
        guild = rest.ok("POST", "/v1/guilds", {"name": "Gateway bench"}, owner_token)
        guild_id = int(guild["id"])
        channel_id = int(guild["system_channel_id"])

        with Session(db.engine) as session:
            row = session.get(Guild, guild_id)
            member_ids = [user_id for user_id, _token in people[1:]]
            for user in session.scalars(select(User).where(User.id.in_(member_ids))).all():
                members.add(None, session, row, user)
            session.commit()
            member_count = session.scalar(select(Guild.member_count).where(Guild.id == guild_id))
        if member_count != clients + 1:
            raise RuntimeError(f"member_count is {member_count}, expected {clients + 1}")
    finally:
        db.dispose()
    return {"owner_token": owner_token, "guild_id": guild_id, "channel_id": channel_id,
            "tokens": [token for _user_id, token in people[1:]], "member_count": member_count}


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def summary(values: list[float]) -> dict:
    return {"p50": percentile(values, 0.50), "p95": percentile(values, 0.95), "p99": percentile(values, 0.99),
            "max": max(values) if values else float("nan"), "n": len(values)}


# --- Phases ---------------------------------------------------------------------------------------


def client_specs(tokens: list[str], servers: list[Server], workers: int) -> list[list[tuple]]:
    """Client i goes to server i % 2 and to worker (i // 2) % workers: each worker holds half of each server's."""
    specs: list[list[tuple]] = [[] for _ in range(workers)]
    for index, token in enumerate(tokens):
        server = index % len(servers)
        specs[(index // len(servers)) % workers].append(
            (index, f"ws://127.0.0.1:{servers[server].port}/gateway", token, server))
    return specs


def connect_all(workers: Workers, kind: str, specs: list[list[tuple]], batch: int) -> dict:
    per_worker = max(1, batch // len(specs))
    answers = workers.call([("connect", kind, share, per_worker) for share in specs])
    failures = [f for answer in answers for f in answer[2]]
    times = [t for answer in answers for t in answer[3]]
    return {"connected": sum(a[1] for a in answers), "failures": failures, "times": times,
            "seconds": max(a[4] for a in answers)}


def send_messages(workers: Workers, rests: list[Rest], token: str, channel_id: int, count: int, *,
                  gap: float, rate: float | None, tag: str, timeout: float) -> list[dict]:
    """Send ``count`` messages; the send records (nonce, server, REST start and response times)."""
    sent = []
    path = f"/v1/channels/{channel_id}/messages"
    started = time.monotonic()
    for n in range(count):
        if rate:
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        server = n % len(rests)
        nonce = f"{tag}-{n}"
        t_start = time.time()
        rests[server].ok("POST", path, {"content": f"{CONTENT}{n}", "nonce": nonce}, token)
        t0 = time.time()
        sent.append({"nonce": nonce, "server": server, "t_start": t_start, "t0": t0})
        if not rate:
            workers.wait_done([nonce], timeout)
            if gap > 0:
                time.sleep(gap)
    if rate:
        workers.wait_done([s["nonce"] for s in sent], timeout)
    return sent


def latencies(sent: list[dict], reports: list[tuple], expected: int) -> dict:
    merged: dict[str, dict[int, list]] = {}
    for report in reports:
        for nonce, per_server in report[1].items():
            target = merged.setdefault(nonce, {})
            for server, (count, first, last) in per_server.items():
                if server in target:
                    old = target[server]
                    target[server] = [old[0] + count, min(old[1], first), max(old[2], last)]
                else:
                    target[server] = [count, first, last]
    last, first, local, remote, rest, from_request, missing_by_message = [], [], [], [], [], [], []
    each = []  # per message, in order: for results.json
    missing = duplicates = 0
    for item in sent:
        per_server = merged.get(item["nonce"], {})
        received = sum(entry[0] for entry in per_server.values())
        rest.append((item["t0"] - item["t_start"]) * 1000)
        duplicates += max(0, received - expected)
        if received < expected:
            missing += expected - received
            missing_by_message.append((item["nonce"], expected - received))
            continue
        t0 = item["t0"]
        last.append((max(e[2] for e in per_server.values()) - t0) * 1000)
        from_request.append((max(e[2] for e in per_server.values()) - item["t_start"]) * 1000)
        first.append((min(e[1] for e in per_server.values()) - t0) * 1000)
        for server, entry in per_server.items():
            (local if server == item["server"] else remote).append((entry[2] - t0) * 1000)
        each.append({"nonce": item["nonce"], "rest_server": item["server"], "t0": t0, "rest_ms": rest[-1],
                     "last_ms_by_server": {server: (entry[2] - t0) * 1000 for server, entry in per_server.items()}})
    return {"last": summary(last), "first": summary(first), "local_last": summary(local),
            "remote_last": summary(remote), "rest": summary(rest), "from_request": summary(from_request),
            "missing": missing, "duplicates": duplicates, "missing_by_message": missing_by_message[:10],
            "complete_messages": len(last), "each": each}


# --- Main -----------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000, help="gateway clients, half per server (default 1000)")
    parser.add_argument("--messages", type=int, default=200, help="timed messages (default 200)")
    parser.add_argument("--gap", type=float, default=0.05,
                        help="seconds between a message's last delivery and the next send (default 0.05)")
    parser.add_argument("--rate", type=float, default=None,
                        help="open loop instead: send this many messages per second, not waiting for delivery")
    parser.add_argument("--warmup-messages", type=int, default=5, help="untimed messages before the timed ones")
    parser.add_argument("--batch", type=int, default=50, help="IDENTIFYs in flight at once, all clients (default 50)")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before each RSS reading (default 5)")
    parser.add_argument("--deflate", action="store_true",
                        help="let the servers accept permessage-deflate (uvicorn's default; `make serve` refuses it, "
                             "as this benchmark does unless told otherwise)")
    parser.add_argument("--compress", choices=["zlib-stream", "zstd-stream"],
                        help="clients ask the gateway for this transport compression (default: none, plain JSON)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare-uvicorn memory baseline")
    parser.add_argument("--port", type=int, default=18180, help="first of three ports: two servers, the baseline")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_GW_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_GW_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--delivery-timeout", type=float, default=15.0,
                        help="seconds to wait for a message to reach every client (default 15)")
    parser.add_argument("--keep-db", action="store_true", help="leave the database in place afterwards")
    parser.add_argument("--server-app", default="service.asgi:app",
                        help="the ASGI app the two servers run (a wrapper for profiling; default service.asgi:app)")
    args = parser.parse_args(argv)
    if args.clients < 2 or args.messages < 1:
        parser.error("--clients must be at least 2 and --messages at least 1")
    args.client_procs = max(1, min(args.client_procs, args.clients // 2))
    return args


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    OUT.mkdir(parents=True, exist_ok=True)
    raise_file_limit(args.clients * 2 + 1024)
    run_tag = secrets.token_hex(3)
    events_channel = f"fluxer:bench-gw:{run_tag}"
    started_at, load_before = time.time(), os.getloadavg()[0]

    import redis

    redis_client = redis.Redis.from_url(args.redis_url, socket_timeout=5)
    redis_client.ping()

    taken = [port for port in range(args.port, args.port + 3) if not port_free(port)]
    if taken:  # before the database is dropped: another run of this benchmark may be using it
        raise SystemExit(f"port(s) {taken} are taken (another run of this benchmark?); pass --port")
    log(f"database {args.database_url}: recreating and migrating")
    recreate_database(args.database_url)
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("FLUXER_", "REDIS_URL", "DATABASE_URL", "EVENTS_CHANNEL", "GATEWAY_"))}
    subprocess.run([sys.executable, "-m", "service.manage", "migrate"], cwd=ROOT, check=True,
                   env={**base_env, "DATABASE_URL": args.database_url}, stdout=subprocess.DEVNULL)
    service_env = {**base_env, "FLUXER_ENV": "test", "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
                   "EVENTS_CHANNEL": events_channel, "STORAGE_DIR": str(OUT / "media")}

    uvicorn_extra = () if args.deflate else ("--ws-per-message-deflate", "false")
    servers: list[Server] = []
    started: list[Server] = []  # everything to stop at the end, the baseline too
    workers: Workers | None = None
    broke: list[str] = []
    try:
        for n, name in enumerate("ab"):
            servers.append(Server(f"server-{name}", args.server_app, args.port + n, service_env, "/v1/_health",
                                  uvicorn_extra))
            started.append(servers[-1])
        baseline = None
        if not args.no_baseline:
            baseline = Server("ws-idle", "bench.ws_idle:app", args.port + 2, base_env, "/", uvicorn_extra)
            started.append(baseline)
        for server in [*servers, *([baseline] if baseline else [])]:
            server.wait_healthy()
        log(f"servers up: a :{servers[0].port} (pid {servers[0].pid}), b :{servers[1].port} (pid {servers[1].pid})"
            + (f", baseline :{baseline.port} (pid {baseline.pid})" if baseline else "")
            + f"; events on Redis channel {events_channel}")

        rests = [Rest(server.port) for server in servers]
        seeded_at = time.perf_counter()
        seeded = seed(args.database_url, args.clients, rests[0])
        log(f"seeded owner + {args.clients} members with sessions (member_count {seeded['member_count']}) "
            f"in {time.perf_counter() - seeded_at:.1f}s")

        workers = Workers(args.client_procs, args.compress)
        log(f"{args.client_procs} client processes up (pids {workers.pids})")

        # Warm-up: a few clients per server identify, hear messages, and leave (a normal close ends the session).
        warm = client_specs(seeded["tokens"][:10 * len(servers)], servers, args.client_procs)
        result = connect_all(workers, "gateway", warm, args.batch)
        if result["failures"]:
            raise RuntimeError(f"warm-up clients failed: {result['failures'][:3]}")
        send_messages(workers, rests, seeded["owner_token"], seeded["channel_id"], 4, gap=0.05, rate=None,
                      tag=f"w{run_tag}", timeout=args.delivery_timeout)
        workers.broadcast(("close", "gateway"))
        workers.broadcast(("reset",))
        time.sleep(args.settle)
        rss_before = [server.rss_kib() for server in servers]

        memory = {"servers": [], "baseline": None}
        if baseline is not None:
            base_before = baseline.rss_kib()
            specs = [[(i, f"ws://127.0.0.1:{baseline.port}/", None, 0) for i in range(w, args.clients, args.client_procs)]
                     for w in range(args.client_procs)]
            result = connect_all(workers, "plain", specs, args.batch)
            if result["failures"]:
                broke.append(f"{len(result['failures'])} baseline connections failed: {result['failures'][:3]}")
            time.sleep(args.settle)
            base_after = baseline.rss_kib()
            memory["baseline"] = {"before": base_before, "after": base_after, "connections": result["connected"],
                                  "per_connection": (base_after - base_before) / max(1, result["connected"])}
            workers.broadcast(("close", "plain"))
            baseline.stop()
            log(f"baseline: {result['connected']} plain connections, "
                f"{memory['baseline']['per_connection']:.1f} KiB each")

        log(f"connecting {args.clients} gateway clients ({args.batch} IDENTIFYs in flight)")
        specs = client_specs(seeded["tokens"], servers, args.client_procs)
        connected = connect_all(workers, "gateway", specs, args.batch)
        log(f"{connected['connected']}/{args.clients} READY in {connected['seconds']:.1f}s"
            + (f"; {len(connected['failures'])} failed, e.g. {connected['failures'][:2]}" if connected["failures"] else ""))
        if connected["failures"]:
            broke.append(f"{len(connected['failures'])} of {args.clients} clients did not reach READY")
        time.sleep(args.settle)
        rss_after = [server.rss_kib() for server in servers]
        per_server = [len([s for share in specs for s in share if s[3] == n]) for n in range(len(servers))]
        for n, server in enumerate(servers):
            memory["servers"].append({"name": server.name, "before": rss_before[n], "after": rss_after[n],
                                      "connections": per_server[n],
                                      "per_connection": (rss_after[n] - rss_before[n]) / max(1, per_server[n])})

        expected = connected["connected"]
        log(f"{args.warmup_messages} untimed messages, then {args.messages} timed "
            + (f"at {args.rate:g}/s (open loop)" if args.rate else f"one at a time, {args.gap * 1000:.0f} ms apart"))
        send_messages(workers, rests, seeded["owner_token"], seeded["channel_id"], args.warmup_messages, gap=args.gap,
                      rate=None, tag=f"u{run_tag}", timeout=args.delivery_timeout)
        workers.broadcast(("reset",))
        meters = {"servers": [s.pid for s in servers], "redis": pids_named("redis-server"),
                  "postgres": postgres_backends(args.database_url)}
        cpu_before = {name: cpu_seconds(pids) for name, pids in meters.items()}
        clients_before = sum(a[1] for a in workers.broadcast(("cpu",)))
        machine_before, wall_before = machine_ticks(), time.monotonic()
        sent = send_messages(workers, rests, seeded["owner_token"], seeded["channel_id"], args.messages, gap=args.gap,
                             rate=args.rate, tag=f"m{run_tag}", timeout=args.delivery_timeout)
        wall = time.monotonic() - wall_before
        machine_after = machine_ticks()
        cpu = {name: cpu_seconds(pids) - cpu_before[name] for name, pids in meters.items()}
        reports = workers.broadcast(("report",))
        rss_end = [server.rss_kib() for server in servers]
        for n, item in enumerate(memory["servers"]):
            item["after_messages"] = rss_end[n]
        cpu["clients"] = sum(r[3] for r in reports) - clients_before
        problems = [p for r in reports for p in r[2]]
        latency = latencies(sent, reports, expected)
        if latency["missing"]:
            broke.append(f"{latency['missing']} deliveries missing, e.g. {latency['missing_by_message'][:3]}")
        if latency["duplicates"]:
            broke.append(f"{latency['duplicates']} deliveries arrived twice")
        if problems:
            broke.append(f"{len(problems)} client problems, e.g. {problems[:3]}")
        busy = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])

        results = {"args": vars(args), "memory": memory, "connect": {k: v for k, v in connected.items() if k != "times"},
                   "identify": summary([t * 1000 for t in connected["times"]]), "latency": latency,
                   "cpu_ms_per_message": {k: v * 1000 / args.messages for k, v in cpu.items()},
                   "machine_busy": busy, "wall_seconds": wall, "expected": expected, "broke": broke,
                   "load_before": load_before, "load_after": os.getloadavg()[0],
                   "elapsed": time.time() - started_at}
        report(args, results)
    finally:
        if workers is not None:
            workers.stop()
        for server in started:
            server.stop()
        with contextlib.suppress(Exception):
            for key in redis_client.scan_iter(match=f"{events_channel}:*", count=1000):
                redis_client.delete(key)
        if args.keep_db:
            log(f"database kept: {args.database_url}")
        else:
            with contextlib.suppress(Exception):
                drop_database(args.database_url)
    if broke:
        log("BROKEN: " + "; ".join(broke))
        return 1
    return 0


def postgres_backends(database_url: str) -> list[int]:
    import psycopg

    name = psycopg.conninfo.conninfo_to_dict(plain_url(database_url))["dbname"]
    with psycopg.connect(plain_url(database_url), autocommit=True) as connection:
        return [pid for (pid,) in connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))]


def report(args, results: dict) -> None:
    memory, latency, cpu = results["memory"], results["latency"], results["cpu_ms_per_message"]
    mode = (f"open loop at {args.rate:g} messages/s" if args.rate
            else f"closed loop: each message once every client has the previous one, then {args.gap * 1000:.0f} ms")
    lines = [
        f"gateway fan-out benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores; "
        f"{results['expected']} clients over 2 server processes (Redis between them), "
        f"{args.client_procs} client processes, permessage-deflate "
        f"{'offered and accepted' if args.deflate else 'refused by the servers (as make serve does)'}, "
        f"gateway compression {args.compress or 'none'}",
        "",
        f"connect: {results['connect']['connected']}/{args.clients} READY in {results['connect']['seconds']:.1f}s, "
        f"{args.batch} in flight; connect+IDENTIFY->READY p50 {results['identify']['p50']:.0f} ms, "
        f"p99 {results['identify']['p99']:.0f} ms",
        "",
        f"memory per idle connection (VmRSS after {args.settle:g}s idle, minus before any client):",
        "| process | RSS, no clients | RSS, clients idle | connections | per connection |",
        "|---|---:|---:|---:|---:|",
    ]
    for item in memory["servers"]:
        lines.append(f"| {item['name']} (service) | {item['before'] / 1024:.1f} MiB | {item['after'] / 1024:.1f} MiB | "
                     f"{item['connections']} | {item['per_connection']:.1f} KiB |")
    base = memory["baseline"]
    if base:
        lines.append(f"| bench/ws_idle.py (bare ASGI, same uvicorn) | {base['before'] / 1024:.1f} MiB | "
                     f"{base['after'] / 1024:.1f} MiB | {base['connections']} | {base['per_connection']:.1f} KiB |")
    ours = max(item["per_connection"] for item in memory["servers"])
    if base:
        lines.append(f"the service's own share: {ours - base['per_connection']:.1f} KiB per connection "
                     f"(worse server minus the bare app)")
    grown = [(item["after_messages"] - item["before"]) / max(1, item["connections"]) for item in memory["servers"]]
    lines.append(f"after the {args.warmup_messages + args.messages} messages below, the same count gives "
                 + ", ".join(f"{g:.1f} KiB" for g in grown)
                 + " per connection (each session keeps what it was sent for RESUME, up to the replay limit)")
    lines += [
        "",
        f"latency from the REST response (t0) to MESSAGE_CREATE, {latency['complete_messages']} of {args.messages} "
        f"messages delivered to all {results['expected']} clients; {mode}:",
        "| | p50 | p95 | p99 | max |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = [("last client (all)", latency["last"]), ("first client", latency["first"]),
            ("last client on the server that took the REST call", latency["local_last"]),
            ("last client on the other server (via Redis)", latency["remote_last"]),
            ("last client, counted from the REST request instead", latency["from_request"]),
            ("REST send itself (request -> response)", latency["rest"])]
    for name, s in rows:
        lines.append(f"| {name} | {s['p50']:.1f} ms | {s['p95']:.1f} ms | {s['p99']:.1f} ms | {s['max']:.1f} ms |")
    lines += [
        f"missing deliveries: {latency['missing']} of {args.messages * results['expected']}"
        + (f"; {latency['duplicates']} arrived twice" if latency["duplicates"] else ""),
        "",
        f"CPU per message during the timed phase ({results['wall_seconds']:.1f}s): servers "
        f"{cpu['servers']:.1f} ms (both), clients {cpu['clients']:.1f} ms, PostgreSQL {cpu['postgres']:.1f} ms, "
        f"Redis {cpu['redis']:.1f} ms; the machine was {results['machine_busy']:.0%} busy "
        f"(all {os.cpu_count()} cores, everything on it); load average {results['load_before']:.1f} at start, "
        f"{results['load_after']:.1f} now; whole run {results['elapsed']:.0f}s",
    ]
    p99 = latency["last"]["p99"]
    verdicts = [(f"p99 REST response -> last client < {MAX_P99_MS:.0f} ms at {results['expected']} clients",
                 p99 < MAX_P99_MS, f"{p99:.1f} ms"),
                (f"memory per idle connection < {MAX_KIB_PER_CONNECTION:.0f} KiB (worse server)",
                 ours < MAX_KIB_PER_CONNECTION, f"{ours:.1f} KiB")]
    lines += ["", "targets:"]
    lines += [f"  [{'PASS' if ok else 'FAIL'}] {what}: {value}" for what, ok, value in verdicts]
    met = sum(ok for _what, ok, _value in verdicts)
    lines += ["", f"RESULT: {'PASS' if met == len(verdicts) else 'FAIL'} ({met} of {len(verdicts)} targets met; "
                  f"p99 {p99:.1f} ms, {ours:.1f} KiB per idle connection)"]
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    (OUT / "results.md").write_text(text + "\n")
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
