"""§4 Agents and §19 Agent groups."""

from __future__ import annotations

from aiohttp import web

from oxios_actors.agents import records
from oxios_actors.agents.messages import KillAgent

from ..errors import ApiError
from ..pagination import page_of
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("agents")


@routes.api("GET", "/api/agents", "List agents (paginated, by creation time)")
async def list_agents(request: web.Request) -> web.Response:
    page = page_of(request)
    items, total = records.page(edge_of(request).store, page.offset, page.limit)
    return web.json_response(page.body(items, total))


@routes.api("POST", "/api/agents/{id}/kill", "Kill an agent (its process and its tools)")
async def kill_agent(request: web.Request) -> web.Response:
    agent_id = request.match_info["id"]
    await edge_of(request).bridge.ask("agents", KillAgent(agent_id))
    return web.Response(status=200)


@routes.api("GET", "/api/agent-groups", "List agent groups")
async def list_groups(request: web.Request) -> web.Response:
    return web.json_response(records.list_groups(edge_of(request).store))


@routes.api("GET", "/api/agent-groups/{id}", "Get an agent group with its members")
async def get_group(request: web.Request) -> web.Response:
    group = records.get_group(edge_of(request).store, request.match_info["id"])
    if group is None:
        raise ApiError(404, f"agent group {request.match_info['id']} not found")
    return web.json_response(group)
