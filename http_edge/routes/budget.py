"""§17 Budget: reads from LMDB, changes through the BudgetLedger."""

from __future__ import annotations

from aiohttp import web

from oxios_actors.budget import records
from oxios_actors.budget.messages import (
    BudgetRemoved,
    BudgetReset,
    BudgetSet,
    RemoveBudget,
    Reserve,
    Reserved,
    ResetBudget,
    SetBudget,
)

from ..errors import ApiError, read_json
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("budget")

_INT = {"type": "integer", "minimum": 1}


def agent_of(request: web.Request) -> str:
    agent_id = request.match_info["agent_id"]
    problem = records.check_agent_id(agent_id)
    if problem:
        raise ApiError(400, problem)
    return agent_id


@routes.api("GET", "/api/budget/{agent_id}", "Get an agent's budget",
            response={"type": "object", "properties": {
                "agent_id": {"type": "string"}, "tokens_remaining": {"type": "integer"},
                "calls_remaining": {"type": "integer"}, "window_remaining_secs": {"type": "integer"},
                "is_exhausted": {"type": "boolean"}}})
async def get_budget(request: web.Request) -> web.Response:
    agent_id = agent_of(request)
    found = records.read_status(edge_of(request).store, agent_id)
    if found is None:
        raise ApiError(404, f"No budget configured for agent {agent_id}")
    return web.json_response(found)


@routes.api("POST", "/api/budget/{agent_id}", "Set an agent's budget",
            request={"type": "object", "required": list(records.LIMIT_FIELDS),
                     "properties": {name: _INT for name in records.LIMIT_FIELDS}})
async def set_budget(request: web.Request) -> web.Response:
    agent_id = agent_of(request)
    body = await read_json(request)
    problem = records.check_limits(body)
    if problem:
        raise ApiError(400, problem)
    reply = await edge_of(request).bridge.ask(
        "budget", SetBudget(agent_id, body["token_budget"], body["calls_budget"], body["window_secs"]))
    assert isinstance(reply, BudgetSet)
    return web.json_response({"set": True, "agent_id": agent_id})


@routes.api("DELETE", "/api/budget/{agent_id}", "Remove an agent's budget")
async def remove_budget(request: web.Request) -> web.Response:
    agent_id = agent_of(request)
    reply = await edge_of(request).bridge.ask("budget", RemoveBudget(agent_id))
    assert isinstance(reply, BudgetRemoved)
    return web.json_response({"removed": True, "agent_id": agent_id})


@routes.api("POST", "/api/budget/{agent_id}/reserve", "Reserve tokens (and one call) from a budget",
            request={"type": "object", "required": ["tokens"], "properties": {"tokens": _INT}})
async def reserve(request: web.Request) -> web.Response:
    agent_id = agent_of(request)
    body = await read_json(request)
    if "tokens" not in body:
        raise ApiError(400, "tokens is required")
    if not records.is_positive_int(body["tokens"]):
        raise ApiError(400, "tokens must be a positive integer")
    reply = await edge_of(request).bridge.ask("budget", Reserve(agent_id, body["tokens"], 1,
                                                                 require_budget=True))
    assert isinstance(reply, Reserved)
    return web.json_response({"reserved": True})


@routes.api("POST", "/api/budget/{agent_id}/reset", "Reset an agent's budget window")
async def reset_budget(request: web.Request) -> web.Response:
    agent_id = agent_of(request)
    reply = await edge_of(request).bridge.ask("budget", ResetBudget(agent_id))
    assert isinstance(reply, BudgetReset)
    return web.json_response({"reset": True, "agent_id": agent_id})


__all__ = ["routes"]
