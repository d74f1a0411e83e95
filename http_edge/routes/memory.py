"""§8 Memory: the memory files (read from the workspace) and entries, keyword and semantic
search (asked of the Memory actor, which owns the store and the HNSW indexes)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from oxios_actors.memory import files
from oxios_actors.memory.messages import (
    Recalled,
    Remember,
    Remembered,
    SearchKeywords,
    SearchSemantic,
)
from oxios_actors.memory.records import MemoryInputError, new_entry_fields, search_fields
from oxios_actors.paths import workspace_root

from ..errors import ApiError, read_json
from ..pagination import page_of
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("memory")

_TYPES = ["conversation", "session", "fact", "episode", "knowledge"]
_ENTRY_FIELDS: dict[str, Any] = {
    "id": {"type": "string"}, "type": {"type": "string"}, "content": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}}, "importance": {"type": "number"},
    "created_at": {"type": "string"}}
_ENTRY = {"type": "object", "properties": _ENTRY_FIELDS}
_SEARCH = {"type": "object", "required": ["query"], "properties": {
    "query": {"type": "string"}, "memory_type": {"type": "string", "enum": _TYPES, "nullable": True},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 10}}}


def _workspace(request: web.Request) -> Any:
    edge = edge_of(request)
    return workspace_root(edge.home, edge.config)


async def _blocking(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def _body(request: web.Request, parse: Any) -> Any:
    """The validated body, after checking that memory is enabled (the edge hears of a config
    change at once; the actor checks too)."""
    if not edge_of(request).config["memory"]["enabled"]:
        raise ApiError(503, "memory is disabled (memory.enabled is false)")
    try:
        return parse(await read_json(request))
    except MemoryInputError as exc:
        raise ApiError(exc.status, exc.message) from None


@routes.api("GET", "/api/memory", "List memory files (daily and knowledge), paginated",
            response={"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "category": {"type": "string"}}}},
                "total": {"type": "integer"}, "page": {"type": "integer"},
                "limit": {"type": "integer"}}})
async def list_memory(request: web.Request) -> web.Response:
    page = page_of(request)
    return web.json_response(page.slice(await _blocking(files.list_files, _workspace(request))))


@routes.api("GET", "/api/memory/{name}", "Get a memory file by name (memory/, then memory/knowledge/)",
            response={"type": "object", "properties": {
                "name": {"type": "string"}, "category": {"type": "string"},
                "content": {"type": "string"}}})
async def get_memory(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        found = await _blocking(files.read_file, _workspace(request), name)
    except files.BadName as exc:
        raise ApiError(400, str(exc)) from None
    if found is None:
        raise ApiError(404, f"memory entry not found: {name}")
    return web.json_response(found)


@routes.api("POST", "/api/memory", "Create a memory entry (content at most 32 KB)",
            request={"type": "object", "required": ["content"], "properties": {
                "content": {"type": "string", "maxLength": 32768},
                "memory_type": {"type": "string", "enum": ["fact", "episode", "knowledge"],
                                "default": "fact"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "importance": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}}},
            response={"type": "object", "properties": {"id": {"type": "string"},
                                                       "status": {"type": "string"}}})
async def create_memory(request: web.Request) -> web.Response:
    content, memory_type, tags, importance = await _body(request, new_entry_fields)
    reply = await edge_of(request).bridge.ask("memory", Remember(content, memory_type, tags, importance))
    assert isinstance(reply, Remembered)
    return web.json_response({"id": reply.id, "status": "created"})


@routes.api("POST", "/api/memory/search", "Keyword search of memory entries", request=_SEARCH,
            response={"type": "object", "properties": {
                "count": {"type": "integer"}, "entries": {"type": "array", "items": _ENTRY}}})
async def search_memory(request: web.Request) -> web.Response:
    query, memory_type, limit = await _body(request, search_fields)
    reply = await edge_of(request).bridge.ask("memory", SearchKeywords(query, memory_type, limit))
    assert isinstance(reply, Recalled)
    return web.json_response({"count": len(reply.entries), "entries": list(reply.entries)})


@routes.api("POST", "/api/memory/semantic", "Semantic search (HNSW)", request=_SEARCH,
            response={"type": "object", "properties": {
                "count": {"type": "integer"}, "engine": {"type": "string"},
                "entries": {"type": "array", "items": {"type": "object", "properties": {
                    **_ENTRY_FIELDS, "similarity": {"type": "number"},
                    "distance": {"type": "number"}}}}}})
async def semantic_memory(request: web.Request) -> web.Response:
    query, memory_type, limit = await _body(request, search_fields)
    reply = await edge_of(request).bridge.ask("memory", SearchSemantic(query, memory_type, limit))
    assert isinstance(reply, Recalled)
    return web.json_response({"count": len(reply.entries), "entries": list(reply.entries),
                              "engine": reply.engine})
