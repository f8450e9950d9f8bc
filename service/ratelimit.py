"""Rate limits: one global budget per client plus one bucket per route, on every request.

The limiter is ASGI middleware outside Connexion, so requests that Connexion rejects
(validation 400s, 401s, 404s, 405s) count as well, and every response carries the headers.
Buckets are declared on the operations in the spec (``x-fluxer-ratelimit``), so the
documentation and the enforcement cannot drift apart. Counters are fixed windows that start
with a key's first hit (the ``limits`` package only parses the limits), in memory for one
process and in Redis (``REDIS_URL``) when several share them; either way a request costs one
counter operation (in Redis, one script call), since it runs before every request. While Redis
is away, requests are served without limits and the counters are asked again a second later.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from limits import RateLimitItem, parse

from service.errors import APIError
from service.middleware import send_error
from service.net import client_address
from service.routes import ROUTE_KEY
from service.spec import operations

GLOBAL_LIMIT = "50/second"
GLOBAL_BUCKET = "global"
DEFAULT_ROUTE_LIMIT = "60/10seconds"
DEVELOPMENT_FACTOR = 10  # development mode relaxes every limit by this much
TEST_OPT_IN_HEADER = "X-Fluxer-Test-Enable-Rate-Limits"
RATELIMIT_KEY = "x-fluxer-ratelimit"
NAMESPACE = "fluxer"
RETRY_STORAGE_AFTER = 1.0  # seconds after the counters failed before they are asked again

log = logging.getLogger("fluxer.ratelimit")


def _scaled(limit: str, factor: int) -> RateLimitItem:
    item = parse(limit)
    return parse(f"{item.amount * factor}/{item.multiples} {item.GRANULARITY.name}")


def route_buckets(document: dict, factor: int = 1) -> dict[str, tuple[str, RateLimitItem]]:
    """operationId -> (bucket name, limit) for every operation of the bundled spec."""
    buckets = {}
    for _method, _path, operation in operations(document):
        declared = operation.get(RATELIMIT_KEY) or {}
        buckets[operation["operationId"]] = (declared.get("bucket", operation["operationId"]),
                                             _scaled(declared.get("limit", DEFAULT_ROUTE_LIMIT), factor))
    return buckets


def rate_limit_key(address: str) -> str:
    """Whose budget a request spends: an IPv4 address, or an IPv6 address's /64, since one host is
    usually handed a whole /64 and could otherwise take a fresh budget per address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:  # an IPv4 client reaching us over IPv6 is that IPv4 client
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))


@dataclass(frozen=True)
class Verdict:
    bucket: str
    limit: RateLimitItem
    remaining: int
    reset_at: float
    breached: bool

    @property
    def reset_after(self) -> float:
        return max(0.0, self.reset_at - time.time())

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit.amount),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": f"{self.reset_at:.3f}",
            "X-RateLimit-Reset-After": f"{self.reset_after:.3f}",
            "X-RateLimit-Bucket": self.bucket,
        }

    def error(self) -> APIError:
        wait = self.reset_after
        is_global = self.bucket == GLOBAL_BUCKET
        # Discord libraries read the header, not the body, to tell a global limit from a route's.
        marks = {"X-RateLimit-Global": "true"} if is_global else {}
        return APIError(429, "RATE_LIMITED", "You are being rate limited.",
                        headers={**self.headers(), **marks, "X-RateLimit-Scope": "user",
                                 "Retry-After": str(max(1, math.ceil(wait)))},
                        retry_after=round(wait, 3), **{"global": is_global})


# Charges each (key, limit, window) in turn and stops at the first one over its limit. A key's
# window starts with its first hit (a fixed window per key). Returns count and ms to reset per
# key charged.
_CHARGE_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 or redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
  out[#out + 1] = count
  out[#out + 1] = redis.call('PTTL', key)
  if count > tonumber(ARGV[2 * i - 1]) then break end
end
return out
"""

Charge = tuple[str, RateLimitItem]  # (key, limit)


class MemoryCounters:
    """Counters for one process: the same windows as the Redis script, in a dict."""

    SWEEP_EVERY = 10_000  # charges between sweeps of expired windows, so memory stays bounded

    def __init__(self):
        self._windows: dict[str, list[float]] = {}  # key -> [count, expires_at]
        self._lock = threading.Lock()
        self._charges = 0

    async def charge(self, charges: list[Charge]) -> list[tuple[int, float]]:
        now = time.time()
        out = []
        with self._lock:
            self._charges += 1
            if self._charges % self.SWEEP_EVERY == 0:
                self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            for key, limit in charges:
                window = self._windows.get(key)
                if window is None or window[1] <= now:
                    window = self._windows[key] = [0, now + limit.get_expiry()]
                window[0] += 1
                out.append((int(window[0]), window[1]))
                if window[0] > limit.amount:
                    break
        return out


class RedisCounters:
    """Counters shared by every process through Redis: one script call per request."""

    def __init__(self, url: str):
        self.url = url
        self._script, self._loop = None, None

    async def charge(self, charges: list[Charge]) -> list[tuple[int, float]]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # Redis connections belong to the event loop that opened them
            client = aioredis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
            self._script, self._loop = client.register_script(_CHARGE_SCRIPT), loop
        args = []
        for _key, limit in charges:
            args += [limit.amount, limit.get_expiry() * 1000]
        reply = await self._script(keys=[key for key, _limit in charges], args=args)
        now = time.time()
        return [(int(reply[i]), now + max(int(reply[i + 1]), 0) / 1000) for i in range(0, len(reply), 2)]


class RateLimitMiddleware:
    def __init__(self, app, *, settings, document: dict):
        self.app = app
        self.settings = settings
        factor = DEVELOPMENT_FACTOR if settings.env == "development" else 1
        self.global_limit = _scaled(GLOBAL_LIMIT, factor)
        self.buckets = route_buckets(document, factor)
        self.counters = RedisCounters(settings.redis_url) if settings.redis_url else MemoryCounters()
        self._unavailable_until = 0.0  # monotonic time before which the counters are not asked again

    def _exempt(self, headers: dict[bytes, bytes]) -> bool:
        if self.settings.env != "test":
            return False
        return headers.get(TEST_OPT_IN_HEADER.lower().encode(), b"").decode("latin-1").lower() != "true"

    async def check(self, client: str, operation_id: str | None) -> Verdict:
        """Charges the global budget, then the route's bucket; the first one breached answers,
        else the narrowest budget (the route's) is the one the headers show."""
        checks = [(GLOBAL_BUCKET, self.global_limit)]
        if operation_id in self.buckets:
            checks.append(self.buckets[operation_id])
        keys = [(f"{NAMESPACE}:{bucket}:{limit.amount}/{limit.get_expiry()}:{client}", limit) for bucket, limit in checks]
        charged = await self.counters.charge(keys)
        (bucket, limit), (count, reset_at) = checks[len(charged) - 1], charged[-1]
        return Verdict(bucket, limit, max(0, limit.amount - count), reset_at, breached=count > limit.amount)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self._exempt(headers):
            await self.app(scope, receive, send)
            return
        peer = (scope.get("client") or ("",))[0]
        forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1") or None
        route = scope.get(ROUTE_KEY)
        if time.monotonic() < self._unavailable_until:  # counters away: no request waits on them meanwhile
            await self.app(scope, receive, send)
            return
        try:
            verdict = await self.check(rate_limit_key(client_address(peer, forwarded, self.settings)),
                                       route.operation_id if route else None)
        except Exception as exc:  # Redis briefly away: serve unlimited rather than fail every request
            if not self._unavailable_until:
                log.warning("rate limit storage unavailable; serving without limits", extra={"error": repr(exc)})
            self._unavailable_until = time.monotonic() + RETRY_STORAGE_AFTER
            await self.app(scope, receive, send)
            return
        self._unavailable_until = 0.0
        if verdict.breached:
            await send_error(send, verdict.error())
            return
        extra = [(name.lower().encode(), value.encode()) for name, value in verdict.headers().items()]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
