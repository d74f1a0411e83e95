"""§6 Seeds and §14 Sessions."""

from __future__ import annotations

from aiohttp import web

from oxios_actors.orchestrator import records
from oxios_actors.orchestrator.messages import DeleteSession
from oxios_actors.paths import workspace_root

from ..errors import ApiError
from ..pagination import page_of
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("seeds")


@routes.api("GET", "/api/seeds", "List seeds (paginated)")
async def list_seeds(request: web.Request) -> web.Response:
    edge = edge_of(request)
    page = page_of(request)
    items = records.list_seeds(edge.store, workspace_root(edge.home, edge.config))
    return web.json_response(page.slice(items))


@routes.api("GET", "/api/seeds/{id}", "Get a seed (JSON or markdown)")
async def get_seed(request: web.Request) -> web.Response:
    edge = edge_of(request)
    seed_id = request.match_info["id"]
    seed = records.get_seed(edge.store, seed_id)
    if seed is not None:
        return web.json_response(records.seed_public(seed))
    md = records.markdown_seed(workspace_root(edge.home, edge.config), seed_id)
    if md is None:
        raise ApiError(404, f"seed {seed_id} not found")
    return web.json_response(md)


@routes.api("GET", "/api/seeds/{id}/evolution", "Evolution lineage, root first")
async def evolution(request: web.Request) -> web.Response:
    chain = records.lineage(edge_of(request).store, request.match_info["id"])
    if chain is None:
        raise ApiError(404, f"seed {request.match_info['id']} not found")
    return web.json_response(chain)


@routes.api("GET", "/api/sessions", "List sessions, most recently updated first (paginated)")
async def list_sessions(request: web.Request) -> web.Response:
    return web.json_response(page_of(request).slice(records.list_sessions(edge_of(request).store)))


@routes.api("GET", "/api/sessions/{id}", "Get a session with its history")
async def get_session(request: web.Request) -> web.Response:
    session = records.get_session(edge_of(request).store, request.match_info["id"])
    if session is None:
        raise ApiError(404, f"session {request.match_info['id']} not found")
    return web.json_response(session)


@routes.api("DELETE", "/api/sessions/{id}", "Delete a session")
async def delete_session(request: web.Request) -> web.Response:
    reply = await edge_of(request).bridge.ask("orchestrator", DeleteSession(request.match_info["id"]))
    return web.json_response(reply)
