"""A scripted OpenAI-compatible chat-completions server on loopback for the tests.

The model's behaviour is chosen by a directive in the task text, e.g.
``[script:write notes/x.md hello]``, ``[script:shell sleep 30]``, ``[script:loop]``.
It is stateless: it reads the conversation it is sent, like a real model."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web


def _tool_call(name: str, args: dict[str, Any], n: int) -> dict[str, Any]:
    return {"id": f"call_{n}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}


def respond(body: dict[str, Any]) -> dict[str, Any]:
    messages = body["messages"]
    task = " ".join(str(m.get("content") or "") for m in messages if m["role"] == "user")
    tool_results = [m for m in messages if m["role"] == "tool"]
    match = re.search(r"\[script:(\w+)\s*([^\]]*)\]", task)
    kind, arg = (match.group(1), match.group(2).strip()) if match else ("answer", "")
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if kind == "write" and not tool_results:
        path, _, content = arg.partition(" ")
        message["tool_calls"] = [_tool_call("file_write", {"path": path, "content": content}, 1)]
    elif kind == "shell" and not tool_results:
        message["tool_calls"] = [_tool_call("shell_exec", {"command": arg}, 1)]
    elif kind == "loop":
        message["tool_calls"] = [_tool_call("list_dir", {"path": "."}, len(tool_results) + 1)]
    elif kind == "json":
        message["content"] = arg
    else:
        last = tool_results[-1]["content"] if tool_results else ""
        message["content"] = f"done: {kind} ({last[:100]})"
    usage = {"prompt_tokens": 50 + 10 * len(messages), "completion_tokens": 20,
             "total_tokens": 70 + 10 * len(messages)}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body.get("model", "x"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": usage}


class ScriptedModel:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> str:
        async def completions(request: web.Request) -> web.Response:
            body = await request.json()
            self.requests.append(body)
            return web.json_response(respond(body))

        app = web.Application()
        app.router.add_post("/v1/chat/completions", completions)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
