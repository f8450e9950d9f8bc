"""ASGI middleware that sits outside Connexion's stack, so it also shapes error responses.

``EdgeMiddleware`` is the outermost layer: it gives every request an id, serves the
unversioned alias of every ``/v1`` route, refuses paths with control characters and
bodies over the size limit, logs one JSON line per request, and is the last resort
that turns an escaped exception into the JSON 500 body.

Bodies are capped at ``max_body_bytes``; only multipart POSTs to ``upload_path`` (messages
with files) may reach ``max_upload_bytes``. A chunked upload is not buffered here: it is
counted as it streams, and the multipart validator spools it (service.validation).
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import traceback
import uuid

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from service.errors import APIError

API_PREFIX = "/v1"
REQUEST_ID_HEADER = b"x-request-id"
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
access_log = logging.getLogger("fluxer.access")
log = logging.getLogger("fluxer.edge")


async def send_error(send, error: APIError) -> None:
    """Answer with an error straight from ASGI middleware (outside Connexion's handlers)."""
    body = error.to_json().encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), str(v).encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(APIError):
    def __init__(self, limit: int):
        super().__init__(413, "PAYLOAD_TOO_LARGE", f"Request body larger than {limit} bytes")


class EdgeMiddleware:
    def __init__(self, app, *, max_body_bytes: int, expose_traces: bool, upload_path: re.Pattern | None = None,
                 max_upload_bytes: int = 0):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.expose_traces = expose_traces
        self.upload_path = upload_path
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = dict(scope.get("headers") or [])
        offered = headers.get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = offered if SANE_REQUEST_ID.match(offered) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        state = {"status": 0, "started": False}
        scope = dict(scope)
        # Inner layers (Flask, log lines) read the id from the request like any header.
        scope["headers"] = [(k, v) for k, v in scope.get("headers") or [] if k != REQUEST_ID_HEADER]
        scope["headers"].append((REQUEST_ID_HEADER, request_id.encode()))

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                out = [(k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER]
                out.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": out}
            await send(message)

        async def reply(error: APIError):
            await send_error(send_with_id, error)

        try:
            path = scope["path"]
            if CONTROL_CHARACTERS.search(path):
                await reply(APIError(404, "NOT_FOUND", "Not found"))
                return
            if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
                # One spec and one set of handlers: the unversioned path is an alias of /v1.
                scope["path"] = API_PREFIX + path
                scope["raw_path"] = API_PREFIX.encode() + scope.get("raw_path", path.encode())
            upload = self._is_upload(scope, headers)
            limit = self.max_upload_bytes if upload else self.max_body_bytes
            declared = headers.get(b"content-length")
            if declared is not None:
                if not declared.isdigit():
                    await reply(APIError(400, "BAD_REQUEST", "Invalid Content-Length"))
                    return
                if int(declared) > limit:
                    # The server frames the body by this length, so checking it caps the body.
                    await reply(BodyTooLarge(limit))
                    return
            elif upload:
                receive = self._capped(receive, limit)
            elif b"transfer-encoding" in headers:
                # Connexion reads a body only when Content-Length says there is one, so a chunked
                # body is read here (within the cap) and handed on with its length.
                body = await self._read_body(receive)
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"transfer-encoding"]
                scope["headers"].append((b"content-length", str(len(body)).encode()))
                receive = self._replay(body, receive)
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if isinstance(exc, APIError):
                error = exc
            else:
                log.error("unhandled exception at the edge", exc_info=exc)
                error = APIError(500, "INTERNAL_SERVER_ERROR", "Internal server error")
                if self.expose_traces:
                    error.extra["trace"] = traceback.format_exception(exc)
            if not state["started"]:
                await reply(error)
        finally:
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": state["status"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": (scope.get("client") or ("-",))[0],
                },
            )
            request_id_var.reset(token)

    def _is_upload(self, scope, headers: dict[bytes, bytes]) -> bool:
        return (self.upload_path is not None and scope["method"] == "POST"
                and headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
                and self.upload_path.match(scope["path"]) is not None)

    @staticmethod
    def _capped(receive, limit: int):
        """The body as it streams, refused (413) once it passes ``limit``."""
        seen = 0

        async def capped():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
            return message

        return capped

    async def _read_body(self, receive) -> bytes:
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body_bytes:
                raise BodyTooLarge(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive):
        sent = False

        async def wrapped():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return wrapped


class FluxerCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, except that a refused preflight gets our JSON error and no CORS headers."""

    def preflight_response(self, request_headers):
        origin = request_headers.get("origin", "")
        if not self.is_allowed_origin(origin):
            error = APIError(403, "FORBIDDEN", "Origin not allowed")
            return Response(error.to_json(), status_code=403, media_type="application/json")
        return super().preflight_response(request_headers)
