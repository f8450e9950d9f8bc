"""Rate limits with flask-limiter: one global budget per client plus one bucket per route.

Buckets are declared on the operations in the spec (``x-fluxer-ratelimit``), so the
documentation and the enforcement cannot drift apart. Counters live in memory for a
single process and in Redis (``REDIS_URL``) when several processes must share them.
"""

from __future__ import annotations

import math
import time

import connexion
import flask
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import parse

from service.errors import APIError
from service.runtime import client_ip
from service.spec import operations

GLOBAL_LIMIT = "50/second"
GLOBAL_BUCKET = "global"
DEFAULT_ROUTE_LIMIT = "60/10seconds"
DEVELOPMENT_FACTOR = 10  # development mode relaxes every limit by this much
TEST_OPT_IN_HEADER = "X-Fluxer-Test-Enable-Rate-Limits"
RATELIMIT_KEY = "x-fluxer-ratelimit"


def _scaled(limit: str, factor: int) -> str:
    item = parse(limit)
    return f"{item.amount * factor}/{item.multiples} {item.GRANULARITY.name}"


def route_buckets(document: dict) -> dict[str, tuple[str, str]]:
    """operationId -> (bucket name, limit) for every operation of the bundled spec."""
    buckets = {}
    for _method, _path, operation in operations(document):
        declared = operation.get(RATELIMIT_KEY) or {}
        buckets[operation["operationId"]] = (declared.get("bucket", operation["operationId"]),
                                             declared.get("limit", DEFAULT_ROUTE_LIMIT))
    return buckets


def install(flask_app: flask.Flask, settings, document: dict) -> Limiter:
    factor = DEVELOPMENT_FACTOR if settings.env == "development" else 1
    buckets = route_buckets(document)

    def operation_id() -> str:
        """The spec's operationId of this request; "" for the few routes outside the spec."""
        try:
            resolved = connexion.context.operation.operation_id  # "handlers.<module>.<operationId>"
        except RuntimeError:
            return ""
        return resolved.rsplit(".", 1)[-1]

    def route_limit() -> str:
        return _scaled(buckets.get(operation_id(), ("", DEFAULT_ROUTE_LIMIT))[1], factor)

    def exempt() -> bool:
        if not settings.rate_limits_enabled:
            return True
        if settings.env == "test":
            return flask.request.headers.get(TEST_OPT_IN_HEADER, "").lower() != "true"
        return False

    limiter = Limiter(
        key_func=client_ip,
        app=flask_app,
        storage_uri=settings.redis_url or "memory://",
        storage_options={"socket_connect_timeout": 2} if settings.redis_url else {},
        strategy="fixed-window",
        application_limits=[_scaled(GLOBAL_LIMIT, factor)],
        default_limits=[route_limit],
        # Our hook writes the headers: flask-limiter's round the reset up to a whole second and
        # put Retry-After on every response, overwriting the 429's value.
        headers_enabled=False,
        swallow_errors=True,  # if Redis is briefly away, serve rather than fail every request
        key_prefix="fluxer",
    )
    limiter.request_filter(exempt)

    def bucket_name(request_limit) -> str:
        if request_limit.shared or GLOBAL_BUCKET in request_limit.key:
            return GLOBAL_BUCKET
        return buckets.get(operation_id(), (operation_id(), ""))[0]

    def reset_after(request_limit) -> float:
        return max(0.0, request_limit.window.reset_time - time.time())

    @flask_app.after_request
    def add_rate_limit_headers(response: flask.Response) -> flask.Response:
        current = limiter.current_limit
        if current is not None:
            response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
            response.headers["X-RateLimit-Remaining"] = str(current.remaining)
            response.headers["X-RateLimit-Reset"] = f"{current.window.reset_time:.3f}"
            response.headers["X-RateLimit-Reset-After"] = f"{reset_after(current):.3f}"
            response.headers["X-RateLimit-Bucket"] = bucket_name(current)
        return response

    @flask_app.errorhandler(RateLimitExceeded)
    def too_many_requests(exc: RateLimitExceeded):
        current = limiter.current_limit
        retry_after = reset_after(current) if current else 1.0
        is_global = current is not None and bucket_name(current) == GLOBAL_BUCKET
        return APIError(429, "RATE_LIMITED", "You are being rate limited.",
                        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
                        retry_after=round(retry_after, 3), **{"global": is_global}).flask_response()

    return limiter
