"""§9 Programs: install from a git URL or a tarball, list, inspect, enable, uninstall."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from oxios_actors.programs import records
from oxios_actors.programs.fetch import InstallError, Limits, classify_source
from oxios_actors.programs.manifest import host_requirements
from oxios_actors.programs.messages import (
    InstallProgram,
    ProgramEnabled,
    ProgramInstalled,
    ProgramUninstalled,
    SetProgramEnabled,
    UninstallProgram,
)
from oxios_actors.workspace.pathguard import UnsafePath, check_name

from ..errors import ApiError, read_json
from ..pagination import page_of
from ..routing import ApiRoutes
from .system import edge_of
from .workspace import in_thread, root_of

routes = ApiRoutes("programs")


def _name(request: web.Request) -> str:
    try:
        return check_name(request.match_info["name"], "program name")
    except UnsafePath as exc:
        raise ApiError(exc.status, exc.message) from None


@routes.api("GET", "/api/programs", "List installed programs (paginated)")
async def list_programs(request: web.Request) -> web.Response:
    page = page_of(request)
    edge = edge_of(request)
    states = records.read_states(edge.store)
    return web.json_response(page.slice(await in_thread(records.list_programs, root_of(request), states)))


@routes.api("POST", "/api/programs", "Install a program from a git URL or an http(s) tarball URL",
            request={"type": "object", "required": ["path"], "properties": {
                "path": {"type": "string", "maxLength": 8192}}})
async def install_program(request: web.Request) -> web.Response:
    edge = edge_of(request)
    body = await read_json(request)
    try:
        classify_source(body.get("path"))  # early 400; the registry checks again
    except InstallError as exc:
        raise ApiError(exc.status, exc.message) from None
    limits = Limits.from_config(edge.config.get("programs", {}))
    reply = await edge.bridge.ask("programs", InstallProgram(body["path"], "api"),
                                  timeout=2 * limits.timeout_secs + 30)
    assert isinstance(reply, ProgramInstalled)
    return web.json_response({"status": "installed", "name": reply.name, "version": reply.version})


async def _detail(request: web.Request, name: str) -> dict[str, Any]:
    edge = edge_of(request)
    found = await in_thread(records.detail, root_of(request), name, records.read_states(edge.store))
    if found is None:
        raise ApiError(404, f"program not found: {name}")
    return found


@routes.api("GET", "/api/programs/{name}", "Get a program with its tools and skill content")
async def get_program(request: web.Request) -> web.Response:
    return web.json_response(await _detail(request, _name(request)))


@routes.api("DELETE", "/api/programs/{name}", "Uninstall a program")
async def uninstall_program(request: web.Request) -> web.Response:
    name = _name(request)
    reply = await edge_of(request).bridge.ask("programs", UninstallProgram(name, "api"))
    assert isinstance(reply, ProgramUninstalled)
    return web.json_response({"status": "uninstalled", "name": name})


async def _set_enabled(request: web.Request, enabled: bool) -> web.Response:
    name = _name(request)
    reply = await edge_of(request).bridge.ask("programs", SetProgramEnabled(name, enabled))
    assert isinstance(reply, ProgramEnabled)
    return web.json_response({"status": "enabled" if enabled else "disabled", "name": name})


@routes.api("POST", "/api/programs/{name}/enable", "Enable a program")
async def enable_program(request: web.Request) -> web.Response:
    return await _set_enabled(request, True)


@routes.api("POST", "/api/programs/{name}/disable", "Disable a program (without uninstalling)")
async def disable_program(request: web.Request) -> web.Response:
    return await _set_enabled(request, False)


@routes.api("GET", "/api/programs/{name}/host-requirements", "Check a program's host requirements")
async def program_host_requirements(request: web.Request) -> web.Response:
    name = _name(request)
    found = await in_thread(records.load, root_of(request), name)
    if found is None:
        raise ApiError(404, f"program not found: {name}")
    return web.json_response(await in_thread(host_requirements, found[1]))
