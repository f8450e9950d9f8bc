"""The real-time gateway: WebSocket sessions on ``/gateway``, served by the same process as the API.

``GatewayServer`` is the outermost ASGI layer. It takes WebSocket connections to ``/gateway`` and
passes everything else (HTTP, lifespan) to the API. At start-up it wraps the server's SIGTERM/SIGINT
handler, so a shutdown first tells every client to reconnect (op 7) before the server closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from urllib.parse import parse_qs

from starlette.websockets import WebSocket

from service.gateway.connection import Connection
from service.gateway.hub import Hub
from service.gateway.protocol import API_VERSION, COMPRESSORS, Close

log = logging.getLogger("fluxer.gateway")
GATEWAY_PATHS = ("/gateway", "/gateway/")
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GatewayServer:
    def __init__(self, app, runtime):
        self.app = app
        self.hub = Hub(runtime)
        self._drain: asyncio.Task | None = None  # the shutdown in progress, referenced so it runs to the end

    def __getattr__(self, name):  # the API app's attributes (runtime, connexion) stay reachable
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and scope["path"] in GATEWAY_PATHS:
            await self._serve(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.app(scope, self._lifespan(receive), send)
        else:
            await self.app(scope, receive, send)

    async def _serve(self, scope, receive, send) -> None:
        # The hub runs where connections are served (a no-op on a stopping server: ``closing`` stays set).
        self.hub.ensure_started(take_over=True)
        websocket = WebSocket(scope, receive, send)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        version = query.get("v", [str(API_VERSION)])[0]
        encoding = query.get("encoding", ["json"])[0]
        compress = query.get("compress", [None])[0]
        await websocket.accept()
        if version != str(API_VERSION):
            await websocket.close(Close.INVALID_API_VERSION)
            return
        if encoding != "json" or (compress is not None and compress not in COMPRESSORS):
            await websocket.close(Close.DECODE_ERROR)
            return
        if self.hub.closing:
            await websocket.close(1012)
            return
        await Connection(self.hub, websocket, COMPRESSORS[compress]() if compress else None).run()

    def _lifespan(self, receive):
        async def wrapped():
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.hub.ensure_started()  # from the start: its history must cover sessions resumed from elsewhere
                self._hook_signals()
                # What start-up built (the spec, routes, ORM metadata: ~270,000 objects) lives as long as
                # the process. Frozen, it is out of the collector's sight: a full collection then scans only
                # what came later, and stops the loop for ~50 ms instead of ~200 ms with 500 connections.
                # Once per process: an app started again (tests) must not freeze what is garbage by then.
                if gc.get_freeze_count() == 0:
                    gc.collect()
                    gc.freeze()
            elif message["type"] == "lifespan.shutdown" and self.hub.runs_on_this_loop():
                await self.hub.shutdown()
            return message
        return wrapped

    def _hook_signals(self) -> None:
        """Run the hub's shutdown (op 7 to every client) before the server's own signal handler,
        which would otherwise close every WebSocket at once with 1012 and no word of warning."""
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS}
        if not all(callable(handler) for handler in previous.values()):
            return

        def handler(signum, frame):
            for sig, theirs in previous.items():  # a second signal goes straight to the server (force quit)
                signal.signal(sig, theirs)
            loop.call_soon_threadsafe(self._start_drain, previous[signum], signum, frame)

        with contextlib.suppress(ValueError):  # not the main thread (an embedded server): keep theirs
            for sig in SHUTDOWN_SIGNALS:
                signal.signal(sig, handler)

    def _start_drain(self, previous, signum, frame) -> None:
        self._drain = asyncio.get_running_loop().create_task(self._drain_then(previous, signum, frame))

    async def _drain_then(self, previous, signum, frame) -> None:
        try:
            await asyncio.wait_for(self.hub.shutdown(), timeout=5)
        except Exception:  # the server must still stop
            log.exception("gateway shutdown failed")
        previous(signum, frame)
