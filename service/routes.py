"""Which operation a request is for, decided from the spec before Connexion routes it.

The layers outside Connexion need this too: the rate limiter charges the operation's bucket,
and the method guard answers 405 with the complete ``Allow`` list (Connexion's own lists
only some methods).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service import spec
from service.errors import APIError
from service.middleware import API_PREFIX, send_error

ROUTE_KEY = "fluxer.route"


@dataclass(frozen=True)
class Route:
    allowed: frozenset[str]  # the methods the path serves
    operation_id: str | None  # None when the request's method is not among them


def allowed_methods(path_item: dict) -> frozenset[str]:
    """Declared methods, and HEAD wherever GET is (routing answers it). OPTIONS is not among
    them: CORS preflights are answered before routing, and a plain OPTIONS is a 405."""
    methods = {m.upper() for m in spec.HTTP_METHODS if m in path_item}
    if "GET" in methods:
        methods.add("HEAD")
    return frozenset(methods)


class RouteTable:
    def __init__(self, paths: dict, extra_paths: dict[str, frozenset[str]]):
        entries = []
        for path, item in paths.items():
            operations = {m.upper(): item[m]["operationId"] for m in spec.HTTP_METHODS if m in item}
            if "GET" in operations:
                operations.setdefault("HEAD", operations["GET"])
            entries.append((path, allowed_methods(item), operations))
        entries += [(path, methods, {}) for path, methods in extra_paths.items()]
        # Literal paths before templates, as routing does: "/oauth2/applications/@me" is not an "{id}".
        entries.sort(key=lambda entry: "{" in entry[0])
        self._entries = [
            (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(API_PREFIX + path)) + "/?$"), allowed, ops)
            for path, allowed, ops in entries
        ]

    def resolve(self, path: str, method: str) -> Route | None:
        for pattern, allowed, operations in self._entries:
            if pattern.match(path):
                return Route(allowed, operations.get(method) if method in allowed else None)
        return None


class RouteResolver:
    """Records the request's route in the scope for the layers inside it."""

    def __init__(self, app, table: RouteTable):
        self.app = app
        self.table = table

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope[ROUTE_KEY] = self.table.resolve(scope["path"], scope["method"])
        await self.app(scope, receive, send)


class MethodGuard:
    """405 with the complete Allow list for a path that exists but does not serve the method."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        route = scope.get(ROUTE_KEY)
        if route is not None and scope["method"] not in route.allowed:
            await send_error(send, APIError(405, "METHOD_NOT_ALLOWED", "Method not allowed",
                                            headers={"Allow": ", ".join(sorted(route.allowed))}))
            return
        await self.app(scope, receive, send)
