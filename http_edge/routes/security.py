"""§11 Audit, §12 Permissions, §20 Approvals."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp import web

from oxios_actors.approvals import records as approvals
from oxios_actors.approvals.messages import Resolve
from oxios_actors.audit import chain
from oxios_actors.audit.messages import Flush, Flushed, Verified, Verify
from oxios_actors.messages import Ok
from oxios_actors.permissions import records as permissions
from oxios_actors.permissions.messages import UpdatePermissions

from ..errors import ApiError, query_int, read_json
from ..pagination import page_of
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("security")

MAX_RANGE = 10_000
LEGACY_FIELDS = ("timestamp", "agent_name", "action", "resource", "allowed", "reason")


@routes.api("GET", "/api/audit/entries", "Audit entries in a seq range (inclusive)")
async def audit_entries(request: web.Request) -> web.Response:
    edge = edge_of(request)
    from_seq = query_int(request, "from_seq", 0, minimum=0)
    to_seq = query_int(request, "to_seq", 100, minimum=0)
    if to_seq < from_seq:
        raise ApiError(400, "to_seq must not be less than from_seq")
    to_seq = min(to_seq, from_seq + MAX_RANGE - 1)
    entries = await asyncio.get_running_loop().run_in_executor(None, chain.read_range, edge.store, from_seq, to_seq)
    return web.json_response({"entries": entries, "count": len(entries)})


@routes.api("GET", "/api/audit/verify", "Verify the audit hash chain")
async def audit_verify(request: web.Request) -> web.Response:
    reply = await edge_of(request).bridge.ask("audit", Verify(), timeout=120)
    assert isinstance(reply, Verified)
    body: dict[str, Any] = {"valid": reply.valid, "entry_count": reply.entry_count}
    if not reply.valid:
        body.update(broken_at_seq=reply.broken_at_seq, expected=reply.expected, found=reply.found)
    return web.json_response(body)


@routes.api("GET", "/api/audit/agent/{agent_id}", "Audit entries of one agent")
async def audit_agent(request: web.Request) -> web.Response:
    entries = await asyncio.get_running_loop().run_in_executor(
        None, chain.for_agent, edge_of(request).store, request.match_info["agent_id"])
    return web.json_response({"entries": entries, "count": len(entries)})


@routes.api("POST", "/api/audit/export", "Export audit entries as JSON from a seq")
async def audit_export(request: web.Request) -> web.Response:
    body = await read_json(request, required=False)
    from_seq = body.get("from_seq", 0)
    if not isinstance(from_seq, int) or isinstance(from_seq, bool) or from_seq < 0:
        raise ApiError(400, "from_seq must be a non-negative integer")
    edge = edge_of(request)
    entries = await asyncio.get_running_loop().run_in_executor(None, chain.read_from, edge.store, from_seq)
    return web.json_response({"json": json.dumps(entries, separators=(",", ":"), ensure_ascii=False),
                              "entry_count": len(entries)})


@routes.api("POST", "/api/audit/flush", "Force a durable checkpoint of the audit trail")
async def audit_flush(request: web.Request) -> web.Response:
    reply = await edge_of(request).bridge.ask("audit", Flush())
    assert isinstance(reply, Flushed)
    return web.json_response({"flushed": reply.flushed})


@routes.api("GET", "/api/audit", "Legacy audit log, newest first (paginated)")
async def audit_legacy(request: web.Request) -> web.Response:
    edge = edge_of(request)
    page = page_of(request)
    entries = chain.newest_first(edge.store, page.offset, page.limit)
    items = [{k: e.get(k) for k in LEGACY_FIELDS} for e in entries]
    return web.json_response(page.body(items, chain.count(edge.store)))


@routes.api("GET", "/api/permissions/{agent}", "Permissions of an agent")
async def get_permissions(request: web.Request) -> web.Response:
    agent = request.match_info["agent"]
    record = permissions.get(edge_of(request).store, agent)
    if record is None:
        raise ApiError(404, f"no permissions for agent {agent}")
    return web.json_response(record)


@routes.api("PUT", "/api/permissions/{agent}", "Update an agent's permissions (partial)")
async def put_permissions(request: web.Request) -> web.Response:
    agent = request.match_info["agent"]
    body = await read_json(request)
    try:
        permissions.validate_patch(body)
    except permissions.PermissionError_ as exc:
        raise ApiError(400, str(exc)) from None
    await edge_of(request).bridge.ask("permissions", UpdatePermissions(agent, body))
    return web.json_response({"status": "updated", "agent": agent})


@routes.api("GET", "/api/approvals", "Approval requests, pending and history")
async def list_approvals(request: web.Request) -> web.Response:
    return web.json_response(approvals.list_all(edge_of(request).store))


async def _resolve(request: web.Request, approve: bool) -> web.Response:
    raw = request.match_info["id"]
    try:
        uuid.UUID(raw)
    except ValueError:
        raise ApiError(400, f"invalid approval id (not a UUID): {raw}") from None
    reply = await edge_of(request).bridge.ask("approvals", Resolve(raw, approve))
    assert isinstance(reply, Ok)
    return web.json_response(reply.data)


@routes.api("POST", "/api/approvals/{id}/approve", "Approve a pending request")
async def approve(request: web.Request) -> web.Response:
    return await _resolve(request, True)


@routes.api("POST", "/api/approvals/{id}/reject", "Reject a pending request")
async def reject(request: web.Request) -> web.Response:
    return await _resolve(request, False)
