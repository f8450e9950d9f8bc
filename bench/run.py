"""Messaging benchmark: the production server against a minimal ASGI baseline, in one run.

    make bench                      # or: python bench/run.py --help

What it does, in order:
  1. Drops, recreates and migrates the PostgreSQL database of BENCH_DATABASE_URL, else DATABASE_URL,
     else postgresql://postgres@127.0.0.1:5432/bench. Its name must contain "bench" (it is dropped).
  2. Starts the service as ``make serve`` does: ``uvicorn service.asgi:app --workers N``,
     FLUXER_ENV=production, a freshly generated FLUXER_SECRET_KEY, rate limits in Redis
     (BENCH_REDIS_URL, default redis://127.0.0.1:6379/15) when it answers. Production has no /test
     harness, so:
  3. registers users and creates a guild and its channels through the public API, then fills one
     channel with 1,000 messages and one with 1,000,000 in SQL (INSERT ... SELECT generate_series),
  4. starts the baseline (bench/baseline.py: Starlette + psycopg, the same SQL) on another port,
  5. loads both with wrk (bench/load.lua), A/B alternating, for "send a message" and "read the
     newest 50 messages" at 32 concurrent connections, and
  6. times the newest-50 read of the 1M channel against the 1k one through the API (and the SQL alone).

Rate limits stay on. The load comes through loopback, a trusted proxy by default, and each request
names a distinct client in X-Forwarded-For (see load.lua): the limiter does all its work per request,
and no client exceeds its budget. CPU per request (the server's processes, and the PostgreSQL
backends of the bench database) is measured beside throughput: unlike req/s, it hardly moves when
other work shares the machine. Results go to stdout, var/bench/results.md and results.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from common import cpu_seconds, port_free, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.db import migrate  # noqa: E402

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
OUT = ROOT / "var" / "bench"
PASSWORD = "bench horse battery staple"
CONTENT = "the quick brown fox jumps over the lazy dog, message number "
# The service's statement for a channel's newest page (service/messages.py, _page).
HISTORY_QUERY = ("SELECT * FROM messages WHERE channel_id BETWEEN %(channel)s AND %(channel)s "
                 "ORDER BY channel_id DESC, id DESC LIMIT 50")

# Targets from the brief.
MIN_THROUGHPUT_RATIO = 0.5
MAX_HISTORY_P99_MS = 50.0
MAX_DEPTH_RATIO = 1.2


def log(*parts) -> None:
    print("[bench]", *parts, flush=True)


# --- HTTP -----------------------------------------------------------------------------------


class Client:
    """A keep-alive HTTP/1.1 client that names a fresh client address per request (like load.lua)."""

    def __init__(self, port: int, prefix: int = 254):
        self.port, self.prefix, self.counter = port, prefix, 0
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        self.counter += 1
        headers = {"X-Forwarded-For": f"198.19.{self.prefix}.{self.counter % 250 + 1}"}
        if token:
            headers["Authorization"] = token
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)

    def ok(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        status, data = self.request(method, path, body, token)
        if status >= 300:
            raise RuntimeError(f"{method} {path} -> {status}: {data}")
        return data

    def close(self) -> None:
        self.connection.close()


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}; see var/bench/*.log")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/v1/_health")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server on port {port} did not answer within {timeout}s")


# --- Processes ------------------------------------------------------------------------------


class Server:
    """A uvicorn with N workers in its own process group, so stopping it stops exactly what we started."""

    def __init__(self, name: str, app: str, port: int, workers: int, env: dict):
        if not port_free(port):
            raise RuntimeError(f"port {port} is taken; pass --port/--baseline-port")
        self.name, self.port = name, port
        self.log_path = OUT / f"{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the server
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(workers), "--no-access-log"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[2]) == pgid:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


class CpuMeter:
    """CPU spent by one server's processes and by the PostgreSQL backends serving the bench database.

    Other work on the machine (other people's tests, say) slows requests down but does not add to
    these counters, so CPU per request stays comparable when throughput does not.
    """

    def __init__(self, database_url: str):
        self.database_url = database_url.replace("postgresql+psycopg://", "postgresql://")
        self.dbname = psycopg.conninfo.conninfo_to_dict(self.database_url)["dbname"]
        self.monitor = psycopg.connect(self.database_url, autocommit=True)

    def backends(self) -> list[int]:
        return [pid for (pid,) in self.monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.dbname,))]

    def sample(self, server: Server) -> tuple[dict, float, float]:
        app_pids, db_pids = group_pids(server.process.pid), self.backends()
        return {"app": app_pids, "db": db_pids}, cpu_seconds(app_pids), cpu_seconds(db_pids)

    def since(self, before: tuple[dict, float, float], server: Server) -> tuple[float, float]:
        pids, app0, db0 = before
        # The same processes as at the start: a backend that came up meanwhile started from zero.
        new_db = [p for p in self.backends() if p not in pids["db"]]
        return cpu_seconds(pids["app"]) - app0, cpu_seconds(pids["db"]) - db0 + cpu_seconds(new_db)


def redis_reachable(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except Exception:
        return False


# --- Database -------------------------------------------------------------------------------


def seed_channel(connection, channel_id: int, guild_id: int, authors: list[int], count: int) -> float:
    """``count`` messages, newest an hour ago, one every 5 seconds back in time, authors in turn."""
    started = time.perf_counter()
    newest_ms = time.time_ns() // 1_000_000 - 3_600_000 - 1_420_070_400_000
    connection.execute(
        """
        INSERT INTO messages (id, channel_id, guild_id, author_id, type, content, flags, tts, nonce,
                              mention_everyone, mentions, mention_roles, embeds, sticker_ids)
        SELECT ((%(newest)s::bigint - g * 5000) << 22) | (g %% 4096), %(channel)s, %(guild)s,
               (%(authors)s::bigint[])[1 + g %% %(n_authors)s], 0, %(content)s || g, 0, false, NULL,
               false, '[]', '[]', '[]', '[]'
        FROM generate_series(0::bigint, %(count)s - 1) AS g
        """,
        {"newest": newest_ms, "channel": channel_id, "guild": guild_id, "authors": authors,
         "n_authors": len(authors), "content": CONTENT, "count": count})
    connection.execute("UPDATE channels SET last_message_id = (SELECT max(id) FROM messages WHERE channel_id = %s) "
                       "WHERE id = %s", (channel_id, channel_id))
    connection.commit()
    return time.perf_counter() - started


def sql_read_times(url: str, channel_ids: dict[str, int], reads: int) -> dict:
    """Median time of the history SELECT alone, per channel, alternating; plus the plan."""
    times: dict[str, list[float]] = {name: [] for name in channel_ids}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        plans = {name: " / ".join(row[0].strip() for row in connection.execute("EXPLAIN " + HISTORY_QUERY, {"channel": cid}))
                 for name, cid in channel_ids.items()}
        for round_ in range(reads + 20):
            for name, channel_id in channel_ids.items():
                started = time.perf_counter()
                rows = connection.execute(HISTORY_QUERY, {"channel": channel_id}).fetchall()
                elapsed = time.perf_counter() - started
                assert len(rows) == 50
                if round_ >= 20:
                    times[name].append(elapsed)
    return {"median_ms": {name: statistics.median(t) * 1000 for name, t in times.items()}, "plans": plans}


# --- Load -----------------------------------------------------------------------------------


def wrk(url: str, method: str, token: str, body: str | None, *, connections: int, duration: float, threads: int,
        server: Server | None = None, meter: CpuMeter | None = None) -> dict:
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s", "--timeout", "10s",
               "-s", str(ROOT / "bench" / "load.lua"), url, "--", method, token]
    if body is not None:
        command.append(body)
    before = meter.sample(server) if meter is not None else None
    finished = subprocess.run(command, capture_output=True, text=True, check=False, timeout=duration + 60)
    line = next((line for line in finished.stdout.splitlines() if line.startswith("WRK_JSON ")), None)
    if finished.returncode != 0 or line is None:
        raise RuntimeError(f"wrk printed no result:\n{finished.stdout}\n{finished.stderr}")
    result = json.loads(line[len("WRK_JSON "):])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    if meter is not None:
        app_cpu, db_cpu = meter.since(before, server)
        result["app_cpu_ms"] = app_cpu * 1000 / max(1, result["requests"])
        result["db_cpu_ms"] = db_cpu * 1000 / max(1, result["requests"])
    result["ok"] = sum(n for status, n in result["statuses"].items() if status.startswith("2"))
    return result


def merge(runs: list[dict]) -> dict:
    """Several A/B rounds of one target: total throughput, the median round's latencies."""
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["duration_us"] for r in runs) / 1e6
    statuses: dict[str, int] = {}
    for run in runs:
        for status, count in run["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    cpu = {key: sum(r[key] * r["requests"] for r in runs) / max(1, requests) for key in ("app_cpu_ms", "db_cpu_ms")}
    return {"rps": requests / seconds, "requests": requests, "statuses": statuses, **cpu,
            "p50_ms": statistics.median(r["p50_us"] for r in runs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in runs) / 1000,
            "rounds": [{k: r[k] for k in ("rps", "p50_us", "p99_us", "requests", "app_cpu_ms", "db_cpu_ms")}
                       for r in runs]}


def api_read_times(client: Client, token: str, channel_ids: dict[str, int], reads: int) -> dict:
    times: dict[str, list[float]] = {name: [] for name in channel_ids}
    for round_ in range(reads + 20):
        for name, channel_id in channel_ids.items():
            started = time.perf_counter()
            status, data = client.request("GET", f"/v1/channels/{channel_id}/messages?limit=50", token=token)
            elapsed = time.perf_counter() - started
            if status != 200 or len(data) != 50:
                raise RuntimeError(f"history read of {name} -> {status}")
            if round_ >= 20:
                times[name].append(elapsed)
    # Each round reads both back to back: the median of the per-round ratios cancels slow drift.
    pairs = [big / small for big, small in zip(times["1M"], times["1k"], strict=True)]
    return {"median_ms": {name: statistics.median(t) * 1000 for name, t in times.items()},
            "p90_ms": {name: statistics.quantiles(t, n=10)[-1] * 1000 for name, t in times.items()},
            "median_pair_ratio": statistics.median(pairs)}


# --- Main -----------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "4")),
                        help="uvicorn worker processes, for both servers (default: $WORKERS or 4, as make serve)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", "12")),
                        help="seconds per load run (default 12)")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "2")),
                        help="A/B rounds per endpoint; each round runs ours then the baseline (default 2)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--big", type=int, default=1_000_000, help="messages in the big channel (default 1,000,000)")
    parser.add_argument("--small", type=int, default=1_000, help="messages in the small channel (default 1,000)")
    parser.add_argument("--reads", type=int, default=200, help="timed newest-50 reads per channel (default 200)")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--baseline-port", type=int, default=18081)
    parser.add_argument("--only", choices=["send", "history"], help="load one endpoint only")
    parser.add_argument("--keep-running", action="store_true", help="leave both servers up at the end (for profiling)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this when run as root)")
    OUT.mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_DB
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS
    use_redis = redis_reachable(redis_url)
    started_at, load_before = time.time(), os.getloadavg()[0]

    log(f"database {database_url}: recreating and migrating")
    recreate_database(database_url)
    migrate(database_url)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("FLUXER_", "REDIS_URL", "DATABASE_URL"))}
    service_env = {**base_env, "FLUXER_ENV": "production", "FLUXER_SECRET_KEY": secrets.token_urlsafe(48),
                   "DATABASE_URL": database_url, "STORAGE_DIR": str(OUT / "media")}
    if use_redis:
        service_env["REDIS_URL"] = redis_url
    log(f"rate limits in {'Redis ' + redis_url if use_redis else 'process memory (Redis not reachable)'}")

    servers: list[Server] = []
    try:
        ours = Server("ours", "service.asgi:app", args.port, args.workers, service_env)
        servers.append(ours)
        wait_healthy(args.port, ours.process)
        log(f"service up on :{args.port} ({args.workers} workers, production mode)")

        client = Client(args.port)
        people = []
        for n in range(4):
            data = client.ok("POST", "/v1/auth/register", {
                "email": f"bench-{n}-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD,
                "global_name": f"Bench {n}", "consent": True, "date_of_birth": "1990-01-01"})
            people.append(data)
        token = people[0]["token"]
        guild = client.ok("POST", "/v1/guilds", {"name": "Bench"}, token)
        guild_id = int(guild["id"])
        channels = {name: int(client.ok("POST", f"/v1/guilds/{guild_id}/channels", {"name": name, "type": 0}, token)["id"])
                    for name in ("send", "history-1k", "history-1m")}
        authors = [int(p["user_id"]) for p in people]

        with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as connection:
            seconds = seed_channel(connection, channels["history-1k"], guild_id, authors, args.small)
            log(f"seeded {args.small:,} messages in {seconds:.1f}s")
            seconds = seed_channel(connection, channels["history-1m"], guild_id, authors, args.big)
            log(f"seeded {args.big:,} messages in {seconds:.1f}s")
        with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
            c.execute("VACUUM ANALYZE messages")

        # Enough connections for its share of the clients; PostgreSQL's default max_connections is 100.
        baseline_env = {**base_env, "DATABASE_URL": database_url,
                        "BASELINE_POOL_SIZE": str(-(-args.connections // args.workers) + 2)}
        baseline = Server("baseline", "bench.baseline:app", args.baseline_port, args.workers, baseline_env)
        servers.append(baseline)
        wait_healthy(args.baseline_port, baseline.process)
        log(f"baseline up on :{args.baseline_port} ({args.workers} workers)")

        targets = {"ours": (args.port, ours), "baseline": (args.baseline_port, baseline)}
        meter = CpuMeter(database_url)
        endpoints = {
            "send": ("POST", f"/v1/channels/{channels['send']}/messages", json.dumps({"content": "hello from wrk"})),
            "history": ("GET", f"/v1/channels/{channels['history-1m']}/messages?limit=50", None),
        }
        if args.only:
            endpoints = {args.only: endpoints[args.only]}
        load = {}
        for endpoint, (method, path, body) in endpoints.items():
            runs: dict[str, list[dict]] = {"ours": [], "baseline": []}
            for port, _server in targets.values():
                wrk(f"http://127.0.0.1:{port}{path}", method, token, body, connections=args.connections,
                    duration=args.warmup, threads=args.threads)
            for round_ in range(args.rounds):
                for target, (port, server) in targets.items():
                    result = wrk(f"http://127.0.0.1:{port}{path}", method, token, body, connections=args.connections,
                                 duration=args.duration, threads=args.threads, server=server, meter=meter)
                    runs[target].append(result)
                    log(f"{endpoint:8} {target:8} round {round_ + 1}: {result['rps']:7.1f} req/s  "
                        f"p50 {result['p50_us'] / 1000:6.1f} ms  p99 {result['p99_us'] / 1000:6.1f} ms  "
                        f"cpu/req app {result['app_cpu_ms']:5.1f} ms db {result['db_cpu_ms']:4.1f} ms  "
                        f"statuses {result['statuses']}")
            load[endpoint] = {target: merge(r) for target, r in runs.items()}

        log(f"timing {args.reads} newest-50 reads of each channel through the API, alternating")
        depth = {"api": api_read_times(Client(args.port, prefix=253), token,
                                       {"1k": channels["history-1k"], "1M": channels["history-1m"]}, args.reads),
                 "sql": sql_read_times(database_url, {"1k": channels["history-1k"], "1M": channels["history-1m"]},
                                       args.reads)}
        report(args, load, depth, use_redis, time.time() - started_at, load_before)
        if args.keep_running:
            log(f"servers left running: ours :{args.port} (pgid {ours.process.pid}), "
                f"baseline :{args.baseline_port} (pgid {baseline.process.pid}); token {token}")
            servers.clear()
    finally:
        for server in servers:
            server.stop()
    return 0


def report(args, load: dict, depth: dict, use_redis: bool, elapsed: float, load_before: float) -> None:
    names = {"send": "send message", "history": "read newest 50"}
    lines = [
        f"messaging benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.workers} workers each, "
        f"{args.connections} connections, {args.rounds}x{args.duration:g}s per target, wrk",
        "",
        "| endpoint | ours req/s | baseline req/s | ratio | ours p50 / p99 | baseline p50 / p99 "
        "| ours CPU/req (app + db) | baseline CPU/req (app + db) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for endpoint, result in load.items():
        ours, base = result["ours"], result["baseline"]
        ratio = ours["rps"] / base["rps"] if base["rps"] else 0.0
        lines.append(f"| {names[endpoint]} | {ours['rps']:.0f} | {base['rps']:.0f} | {ratio:.2f} | "
                     f"{ours['p50_ms']:.0f} / {ours['p99_ms']:.0f} ms | {base['p50_ms']:.0f} / {base['p99_ms']:.0f} ms | "
                     f"{ours['app_cpu_ms']:.1f} + {ours['db_cpu_ms']:.1f} ms | "
                     f"{base['app_cpu_ms']:.1f} + {base['db_cpu_ms']:.1f} ms |")
        verdicts.append((f"{names[endpoint]}: throughput >= {MIN_THROUGHPUT_RATIO:.0%} of baseline",
                         ratio >= MIN_THROUGHPUT_RATIO, f"{ratio:.2f}"))
        for target in ("ours", "baseline"):
            bad = {s: n for s, n in result[target]["statuses"].items() if not s.startswith("2")}
            if bad:
                lines.append(f"  (!) {target} {endpoint} non-2xx answers: {bad}")
        if endpoint == "history":
            verdicts.append((f"history p99 < {MAX_HISTORY_P99_MS:.0f} ms at {args.connections} clients",
                             ours["p99_ms"] < MAX_HISTORY_P99_MS, f"{ours['p99_ms']:.1f} ms"))
    api, db = depth["api"]["median_ms"], depth["sql"]["median_ms"]
    api_ratio, sql_ratio = api["1M"] / api["1k"], db["1M"] / db["1k"]
    lines += [
        "",
        f"newest 50 of 1,000,000 vs 1,000 messages (median of {args.reads} sequential reads each):",
        f"  through the API: {api['1M']:.2f} ms vs {api['1k']:.2f} ms -> {api_ratio:.2f}x "
        f"(median of per-round ratios {depth['api']['median_pair_ratio']:.2f}x)",
        f"  the SELECT alone: {db['1M']:.3f} ms vs {db['1k']:.3f} ms -> {sql_ratio:.2f}x",
        *(f"  plan ({name}): {plan}" for name, plan in depth["sql"]["plans"].items()),
    ]
    verdicts.append((f"1M-message channel within {MAX_DEPTH_RATIO}x of 1k (API)", api_ratio <= MAX_DEPTH_RATIO,
                     f"{api_ratio:.2f}x"))
    lines += ["", "targets:"]
    lines += [f"  [{'met ' if ok else 'MISS'}] {what}: {value}" for what, ok, value in verdicts]
    lines += ["", f"rate limits: {'Redis' if use_redis else 'in-process'}; whole run {elapsed:.0f}s; "
              f"load average (1 min) at start {load_before:.1f}, at end {os.getloadavg()[0]:.1f}"]
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    (OUT / "results.json").write_text(json.dumps({"load": load, "depth": depth, "args": vars(args)}, indent=2))
    (OUT / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
