"""§2 Chat: ``POST /api/chat`` and the WebSocket ``/api/chat/stream``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from oxios_actors.orchestrator.messages import Chat, ChatReply

from ..errors import ApiError, read_json
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("chat")

MAX_CONTENT_BYTES = 65_536
WS_QUEUE = 1000


def parse_chat(body: dict[str, Any]) -> Chat:
    content = body.get("content", body.get("message"))
    if not isinstance(content, str):
        raise ApiError(400, "content must be a string")
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise ApiError(413, f"content exceeds {MAX_CONTENT_BYTES} bytes")
    if not content.strip():
        raise ApiError(400, "content must not be empty")
    user_id = body.get("user_id", "default")
    session_id = body.get("session_id", "")
    if not isinstance(user_id, str) or not user_id or len(user_id) > 256:
        raise ApiError(400, "user_id must be a non-empty string of at most 256 characters")
    if not isinstance(session_id, str) or len(session_id) > 256:
        raise ApiError(400, "session_id must be a string of at most 256 characters")
    return Chat(content, user_id, session_id, str(uuid.uuid4()))


def reply_body(reply: ChatReply) -> dict[str, Any]:
    return {"id": reply.id, "echo": reply.echo, "reply": reply.reply, "session_id": reply.session_id,
            "phase": reply.phase}


async def run_chat(request: web.Request, chat: Chat) -> ChatReply:
    edge = edge_of(request)
    timeout = float(edge.config["orchestrator"]["chat_timeout_secs"]) + 5
    reply = await edge.bridge.ask("orchestrator", chat, timeout=timeout)
    assert isinstance(reply, ChatReply)
    return reply


@routes.api("POST", "/api/chat", "Send a chat message through the orchestrator",
            request={"type": "object", "required": ["content"],
                     "properties": {"content": {"type": "string"}, "user_id": {"type": "string"},
                                    "session_id": {"type": "string"}}})
async def chat(request: web.Request) -> web.Response:
    body = await read_json(request)
    return web.json_response(reply_body(await run_chat(request, parse_chat(body))))


@routes.api("GET", "/api/chat/stream", "WebSocket chat stream (auth with ?token=)")
async def chat_stream(request: web.Request) -> web.WebSocketResponse:
    edge = edge_of(request)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_CONTENT_BYTES * 2)
    await ws.prepare(request)
    session_id = request.query.get("session_id") or f"ws-{uuid.uuid4()}"
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(WS_QUEUE)

    def on_events(events: list[dict[str, Any]]) -> None:
        for event in events:
            if event.get("session_id") == session_id:
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:  # a slow client is closed, never waited for
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.get_nowait()
                        queue.put_nowait(None)
                    return

    assert edge.fanout is not None
    edge.fanout.listeners.add(on_events)

    async def pump() -> None:
        while True:
            event = await queue.get()
            if event is None:
                await ws.close(code=1008, message=b"client too slow")
                return
            await ws.send_str(json.dumps(event, default=str))

    async def answer(text: str) -> None:
        try:
            reply = await run_chat(request, parse_chat({"content": text, "session_id": session_id}))
            await ws.send_str(json.dumps({"type": "chat_reply", **reply_body(reply)}))
        except ApiError as exc:
            await ws.send_str(json.dumps({"type": "error", "error": exc.message, "status": exc.status}))

    pumper = asyncio.create_task(pump())
    chats: set[asyncio.Task[None]] = set()
    try:
        await ws.send_str(json.dumps({"type": "connected", "session_id": session_id}))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                task = asyncio.create_task(answer(msg.data))
                chats.add(task)
                task.add_done_callback(chats.discard)
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        edge.fanout.listeners.discard(on_events)
        pumper.cancel()
        for task in chats:
            task.cancel()
    return ws
