"""§15 Personas."""

from __future__ import annotations

from aiohttp import web

from oxios_actors.messages import Ok
from oxios_actors.personas import records
from oxios_actors.personas.service import ActivatePersona, CreatePersona, DeletePersona, UpdatePersona

from ..errors import ApiError, read_json
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("personas")


async def _command(request: web.Request, message: object) -> web.Response:
    reply = await edge_of(request).bridge.ask("personas", message)
    assert isinstance(reply, Ok)
    return web.json_response(reply.data)


# /active is registered before /{id} so that it is not taken for an id.
@routes.api("GET", "/api/personas/active", "Get the active persona")
async def get_active(request: web.Request) -> web.Response:
    persona = records.active(edge_of(request).store)
    if persona is None:
        return web.json_response({"active": False, "message": "No active persona set"})
    return web.json_response({k: persona.get(k) for k in ("id", "name", "role", "description", "system_prompt",
                                                           "enabled", "model", "personality_traits")})


@routes.api("PUT", "/api/personas/active", "Set the active persona")
async def set_active(request: web.Request) -> web.Response:
    body = await read_json(request)
    pid = body.get("id")
    if not isinstance(pid, str) or not pid:
        raise ApiError(400, "id must be a non-empty string")
    return await _command(request, ActivatePersona(pid))


@routes.api("GET", "/api/personas", "List personas")
async def list_personas(request: web.Request) -> web.Response:
    return web.json_response([{k: p.get(k) for k in records.LIST_FIELDS}
                              for p in records.all_personas(edge_of(request).store)])


@routes.api("POST", "/api/personas", "Create a persona")
async def create(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        records.validate(body, partial=False)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return await _command(request, CreatePersona(body))


@routes.api("GET", "/api/personas/{id}", "Get a persona")
async def get_one(request: web.Request) -> web.Response:
    persona = records.get(edge_of(request).store, request.match_info["id"])
    if persona is None:
        raise ApiError(404, f"persona {request.match_info['id']} not found")
    return web.json_response({k: v for k, v in persona.items() if k != "created_at"})


@routes.api("PUT", "/api/personas/{id}", "Update a persona (partial)")
async def update(request: web.Request) -> web.Response:
    body = await read_json(request)
    try:
        records.validate(body, partial=True)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return await _command(request, UpdatePersona(request.match_info["id"], body))


@routes.api("DELETE", "/api/personas/{id}", "Delete a persona (not the last one)")
async def delete(request: web.Request) -> web.Response:
    return await _command(request, DeletePersona(request.match_info["id"]))
