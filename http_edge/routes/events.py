"""§21 SSE events: ``GET /api/events``."""

from __future__ import annotations

import asyncio

from aiohttp import web

from oxios_actors.events import log as event_log

from ..errors import ApiError
from ..fanout import encode
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("events")


def last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "Last-Event-ID must be an integer event id") from None
    if value < 0:
        raise ApiError(400, "Last-Event-ID must not be negative")
    return value


@routes.api("GET", "/api/events", "Server-Sent Events stream of kernel events")
async def events(request: web.Request) -> web.StreamResponse:
    edge = edge_of(request)
    fanout = edge.fanout
    assert fanout is not None
    resume = last_event_id(request)
    keepalive = edge.config["edge"]["sse_keepalive_secs"]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "Connection": "keep-alive", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    client, position = fanout.register()
    try:
        await response.write(b"retry: 2000\n\n")
        if resume is not None:
            after = resume
            while after < position:
                records = event_log.read_after(edge.store, after, position, 5000)
                if not records:
                    break
                await response.write(encode(records))
                after = records[-1][0]
        while not client.dropped:
            try:
                async with asyncio.timeout(keepalive):
                    await client.ready.wait()
            except TimeoutError:
                await response.write(b": ping\n\n")
                continue
            if client.dropped:
                break
            await response.write(client.take())
    except ConnectionResetError:
        pass
    finally:
        fanout.unregister(client)  # also when a disconnect cancels the handler
    return response
