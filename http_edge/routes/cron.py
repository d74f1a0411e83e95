"""§13 Cron jobs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from oxios_actors.cron import records
from oxios_actors.cron.service import CreateJob, DeleteJob, EditJob, TriggerJob

from ..errors import ApiError, read_json
from ..routing import ApiRoutes
from .system import edge_of

routes = ApiRoutes("cron")


def _validated(body: Any, partial: bool) -> dict[str, Any]:
    try:
        return records.validate(body, partial=partial)
    except records.CronError as exc:
        raise ApiError(400, str(exc)) from None


@routes.api("GET", "/api/cron-jobs", "List cron jobs")
async def list_jobs(request: web.Request) -> web.Response:
    return web.json_response({"jobs": records.list_jobs(edge_of(request).store)})


@routes.api("POST", "/api/cron-jobs", "Create a cron job")
async def create(request: web.Request) -> web.Response:
    body = _validated(await read_json(request), partial=False)
    return web.json_response(await edge_of(request).bridge.ask("cron", CreateJob(body)))


@routes.api("GET", "/api/cron-jobs/{id}", "Get a cron job")
async def get_job(request: web.Request) -> web.Response:
    job = records.get_job(edge_of(request).store, request.match_info["id"])
    if job is None:
        raise ApiError(404, f"cron job {request.match_info['id']} not found")
    return web.json_response(job)


@routes.api("DELETE", "/api/cron-jobs/{id}", "Delete a cron job")
async def delete(request: web.Request) -> web.Response:
    return web.json_response(await edge_of(request).bridge.ask("cron", DeleteJob(request.match_info["id"])))


@routes.api("POST", "/api/cron-jobs/{id}/edit", "Update a cron job (partial, validated like create)")
async def edit(request: web.Request) -> web.Response:
    body = _validated(await read_json(request), partial=True)
    return web.json_response(await edge_of(request).bridge.ask("cron", EditJob(request.match_info["id"], body)))


@routes.api("POST", "/api/cron-jobs/{id}/trigger", "Run a cron job now and wait for its result")
async def trigger(request: web.Request) -> web.Response:
    edge = edge_of(request)
    timeout = float(edge.config["orchestrator"]["chat_timeout_secs"]) + 10
    return web.json_response(await edge.bridge.ask("cron", TriggerJob(request.match_info["id"]), timeout=timeout))
