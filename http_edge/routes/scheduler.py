"""§10 Scheduler: live statistics (an ask: ``rate_remaining`` is live) and the
task lists (read from LMDB, one consistent snapshot)."""

from __future__ import annotations

from aiohttp import web

from oxios_actors.scheduler import records
from oxios_actors.scheduler.messages import GetStats, SchedulerStats

from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("scheduler")

_INT = {"type": "integer"}
_TASK = {"type": "object", "properties": {
    "id": {"type": "string"}, "description": {"type": "string"},
    "priority": {"type": "string", "enum": ["Low", "Normal", "High", "Critical"]},
    "status": {"type": "string", "enum": ["Queued", "Running", "Completed", "Failed", "Cancelled"]},
    "created_at": {"type": "string"}, "error": {"type": "string", "nullable": True}}}


@routes.api("GET", "/api/scheduler/stats", "Scheduler statistics",
            response={"type": "object", "properties": {
                "queued": _INT, "running": _INT, "max_concurrent": _INT,
                "rate_limit_per_minute": _INT, "rate_remaining": _INT}})
async def scheduler_stats(request: web.Request) -> web.Response:
    reply = await edge_of(request).bridge.ask("scheduler", GetStats())
    assert isinstance(reply, SchedulerStats)
    return web.json_response(reply.as_json())


@routes.api("GET", "/api/scheduler/tasks", "List queued and running tasks",
            response={"type": "object", "properties": {
                "queued": {"type": "array", "items": _TASK},
                "running": {"type": "array", "items": _TASK}}})
async def scheduler_tasks(request: web.Request) -> web.Response:
    return web.json_response(records.task_lists(edge_of(request).store))


__all__ = ["routes"]
