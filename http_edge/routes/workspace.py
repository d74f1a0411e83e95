"""§5 Workspace: tree, read, write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from oxios_actors.paths import workspace_root
from oxios_actors.workspace import files
from oxios_actors.workspace.messages import FileWritten, WriteFile
from oxios_actors.workspace.pathguard import UnsafePath, confine

from ..errors import ApiError
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("workspace")
T = TypeVar("T")

TREE_SCHEMA = {"type": "array", "items": {"type": "object", "properties": {
    "name": {"type": "string"}, "is_dir": {"type": "boolean"}, "size": {"type": "integer"}}}}


def root_of(request: web.Request) -> Path:
    edge = edge_of(request)
    return workspace_root(edge.home, edge.config)


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking disk or git work off the event loop; map path errors to HTTP."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, func, *args)
    except UnsafePath as exc:
        raise ApiError(exc.status, exc.message) from None


@routes.api("GET", "/api/workspace/tree", "List one level of the workspace tree", response=TREE_SCHEMA)
async def tree(request: web.Request) -> web.Response:
    rel = request.query.get("dir", "")
    try:
        entries = await in_thread(files.list_dir, root_of(request), rel)
    except FileNotFoundError:
        raise ApiError(404, f"directory not found: {rel}") from None
    return web.json_response(entries)


@routes.api("GET", "/api/workspace/file/{tail:.*}", "Read a workspace file")
async def read_file(request: web.Request) -> web.Response:
    rel = request.match_info["tail"]
    try:
        data = await in_thread(files.read_file, root_of(request), rel)
    except FileNotFoundError:
        raise ApiError(404, f"file not found: {rel}") from None
    except IsADirectoryError:
        raise ApiError(400, f"is a directory: {rel}") from None
    except NotADirectoryError:
        raise ApiError(404, f"file not found: {rel}") from None
    return web.Response(body=data, headers={"Content-Type": files.content_type(rel)})


async def read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"file content exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"file content exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@routes.api("PUT", "/api/workspace/file/{tail:.*}", "Write a workspace file (max 1 MB; committed to git)",
            request={"type": "string", "description": "the file content"})
async def write_file(request: web.Request) -> web.Response:
    rel = request.match_info["tail"]
    root = root_of(request)
    try:
        confine(root, rel)  # early 403 without a round trip; the actor checks again
    except UnsafePath as exc:
        raise ApiError(exc.status, exc.message) from None
    data = await read_limited(request, files.MAX_WRITE_BYTES)
    reply = await edge_of(request).bridge.ask("workspace", WriteFile(rel, data, "api"))
    assert isinstance(reply, FileWritten)
    return web.Response(status=200)
