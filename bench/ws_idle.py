"""The gateway benchmark's memory baseline: the least an ASGI app can hold per WebSocket.

Plain ASGI, no framework: it accepts every WebSocket, echoes text frames, and otherwise waits for
the client to leave; any HTTP request gets "ok" (the benchmark's start-up check). Served by the same
uvicorn with the same flags as the service, its RSS growth per idle connection is what uvicorn and
the websockets library cost by themselves, so bench/gateway.py can show how much is the gateway's.

Run: ``uvicorn bench.ws_idle:app --ws-max-size 65536``.
"""

from __future__ import annotations


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
