"""Rate limits: one global budget per client plus one bucket per route, on every request.

The limiter is ASGI middleware outside Connexion, so requests that Connexion rejects
(validation 400s, 401s, 404s, 405s) count as well, and every response carries the headers.
Buckets are declared on the operations in the spec (``x-fluxer-ratelimit``), so the
documentation and the enforcement cannot drift apart. Counters (``limits``, fixed windows)
live in memory for one process and in Redis (``REDIS_URL``) when several processes share them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

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
        return APIError(429, "RATE_LIMITED", "You are being rate limited.",
                        headers={**self.headers(), "Retry-After": str(max(1, math.ceil(wait)))},
                        retry_after=round(wait, 3), **{"global": self.bucket == GLOBAL_BUCKET})


class RateLimitMiddleware:
    def __init__(self, app, *, settings, document: dict):
        self.app = app
        self.settings = settings
        factor = DEVELOPMENT_FACTOR if settings.env == "development" else 1
        self.global_limit = _scaled(GLOBAL_LIMIT, factor)
        self.buckets = route_buckets(document, factor)
        self._limiter = None if settings.redis_url else FixedWindowRateLimiter(storage_from_string("async+memory://"))
        self._limiter_loop = None

    @property
    def limiter(self) -> FixedWindowRateLimiter:
        """Redis connections belong to the event loop that opened them: one limiter per loop."""
        if self.settings.redis_url:
            loop = asyncio.get_running_loop()
            if self._limiter_loop is not loop:
                storage = storage_from_string(f"async+{self.settings.redis_url}", implementation="redispy")
                self._limiter, self._limiter_loop = FixedWindowRateLimiter(storage), loop
        return self._limiter

    def _exempt(self, headers: dict[bytes, bytes]) -> bool:
        if self.settings.env != "test":
            return False
        return headers.get(TEST_OPT_IN_HEADER.lower().encode(), b"").decode("latin-1").lower() != "true"

    async def check(self, client: str, operation_id: str | None) -> Verdict:
        """Charges the global budget, then the route's bucket; the first one breached answers."""
        checks = [(GLOBAL_BUCKET, self.global_limit)]
        if operation_id in self.buckets:
            checks.append(self.buckets[operation_id])
        for bucket, limit in checks:
            if not await self.limiter.hit(limit, NAMESPACE, bucket, client):
                return await self._verdict(bucket, limit, client, breached=True)
        bucket, limit = checks[-1]  # the narrowest budget is the one worth showing
        return await self._verdict(bucket, limit, client, breached=False)

    async def _verdict(self, bucket: str, limit: RateLimitItem, client: str, *, breached: bool) -> Verdict:
        stats = await self.limiter.get_window_stats(limit, NAMESPACE, bucket, client)
        return Verdict(bucket, limit, stats.remaining, stats.reset_time, breached)

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
        try:
            verdict = await self.check(client_address(peer, forwarded, self.settings),
                                       route.operation_id if route else None)
        except Exception as exc:  # Redis briefly away: serve unlimited rather than fail every request
            log.warning("rate limit storage unavailable", extra={"error": repr(exc)})
            await self.app(scope, receive, send)
            return
        if verdict.breached:
            await send_error(send, verdict.error())
            return
        extra = [(name.lower().encode(), value.encode()) for name, value in verdict.headers().items()]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
