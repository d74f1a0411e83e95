"""§3 System, §18 Resources, §22 Host tools, §23 Metrics."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from typing import Any

from aiohttp import web

from oxios_actors import __version__
from oxios_actors.agents.records import read_counters
from oxios_actors.events import log as event_log
from oxios_actors.memory.records import stats as memory_stats
from oxios_actors.messages import Ping, Pong
from oxios_actors.system import resources
from oxios_actors.system.config import ConfigError, merge_and_validate, public
from oxios_actors.system.messages import ConfigUpdated, Sample, TakeSample, UpdateConfig

from ..errors import ApiError, query_int, read_json
from ..routing import ApiRoutes

routes = ApiRoutes("system")

REQUIRED_TOOLS = ("sh",)
OPTIONAL_TOOLS = ("git", "docker", "node", "npm", "cargo", "python3", "rg", "curl")
HOST_TOOLS_TTL = 60.0


def edge_of(request: web.Request) -> Any:
    from ..app import EDGE
    return request.app[EDGE]


def format_uptime(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h}h {m}m {s}s"


@routes.api("GET", "/health", "Health check", auth=False,
            response={"type": "object", "properties": {"status": {"type": "string"},
                                                       "version": {"type": "string"}}})
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


BUS_HEALTH_TTL = 1.0


async def bus_health(edge: Any) -> dict[str, Any]:
    """A real ping of the EventBus, shared by the status requests of the same second
    (concurrent requests wait for the one ping in flight)."""
    now = time.monotonic()
    cached = edge.extra.get("bus_health")
    if cached is not None and now - cached[0] < BUS_HEALTH_TTL:
        return dict(cached[1])
    pending = edge.extra.get("bus_ping")
    if pending is None:
        async def ping() -> dict[str, Any]:
            try:
                pong = await edge.bridge.ask("events", Ping(), timeout=2.0)
                result: dict[str, Any] = ({"healthy": True, "detail": None} if isinstance(pong, Pong)
                                          else {"healthy": False, "detail": "unexpected reply"})
            except ApiError as exc:
                result = {"healthy": False, "detail": exc.message}
            edge.extra["bus_health"] = (time.monotonic(), result)
            return result

        pending = edge.extra["bus_ping"] = asyncio.ensure_future(ping())
        pending.add_done_callback(lambda _: edge.extra.pop("bus_ping", None))
    return dict(await asyncio.shield(pending))


@routes.api("GET", "/api/status", "System status with component health")
async def status(request: web.Request) -> web.Response:
    edge = edge_of(request)
    problems = edge.store.check()
    bus = await bus_health(edge)
    counters = read_counters(edge.store)
    return web.json_response({
        "service": "oxios",
        "status": "running",
        "version": __version__,
        "channels": ["web"],
        "uptime": format_uptime(edge.uptime()),
        "components": {
            "state_store": {"healthy": not problems, "detail": "; ".join(problems) or None},
            "event_bus": bus,
            "memory": memory_stats(edge.store, edge.config["memory"]["enabled"]),
            "agents": {"active_count": counters["active"], "total_forked": counters["forked"],
                       "total_completed": counters["completed"], "total_failed": counters["failed"]},
            "cluster": cluster_status(edge),
        },
    })


def cluster_status(edge: Any) -> dict[str, Any]:
    from oxios_actors.agents.records import list_nodes

    workers = list_nodes(edge.store)
    home = {"name": "home", "role": "home", "capabilities": ["oxios.home"],
            "agents": max(0, read_counters(edge.store)["active"] - sum(n.get("agents", 0) for n in workers)),
            "last_check_in": None, "status": "up"}
    nodes = [home] + [{"name": n["name"], "role": "worker",
                       "capabilities": sorted(c for c in str(n["capabilities"].get("oxios.capabilities", ""))
                                              .split(",") if c),
                       "agents": n.get("agents", 0), "last_check_in": n.get("last_check_in"),
                       "joined_at": n.get("joined_at"), "status": n.get("status", "up")} for n in workers]
    return {"mode": "cluster" if workers else "single", "nodes": nodes}


@routes.api("GET", "/api/config", "Get the configuration (secrets omitted)")
async def get_config(request: web.Request) -> web.Response:
    return web.json_response(public(edge_of(request).config))


@routes.api("PUT", "/api/config", "Update the configuration",
            request={"type": "object", "description": "a (partial) OxiosConfig"})
async def put_config(request: web.Request) -> web.Response:
    edge = edge_of(request)
    body = await read_json(request)
    try:
        merge_and_validate(edge.config, body)  # early 400 without a round trip
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from None
    reply = await edge.bridge.ask("config", UpdateConfig(body))
    assert isinstance(reply, ConfigUpdated)
    edge.apply_config(reply.full)
    headers = {"X-Oxios-Restart-Required": ",".join(reply.needs_restart)} if reply.needs_restart else None
    return web.json_response(reply.public, headers=headers)


def _tool_present(tool: str) -> bool:
    if shutil.which(tool) is None:
        return False
    for args in (["--version"], ["-v"], ["version"]):
        try:
            if subprocess.run([tool, *args], capture_output=True, timeout=5).returncode == 0:
                return True
        except (OSError, subprocess.SubprocessError):
            continue
    return False


def check_host_tools(required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    missing = [t for t in required if shutil.which(t) is None]
    return {"all_required_present": not missing, "missing_required": missing,
            "optional_available": {t: _tool_present(t) for t in optional}}


@routes.api("GET", "/api/host-tools", "Check host tools")
async def host_tools(request: web.Request) -> web.Response:
    edge = edge_of(request)
    cached = edge.extra.get("host_tools")
    if cached is None or time.monotonic() - cached[0] > HOST_TOOLS_TTL:
        result = await asyncio.get_running_loop().run_in_executor(
            None, check_host_tools, REQUIRED_TOOLS, OPTIONAL_TOOLS)
        cached = edge.extra["host_tools"] = (time.monotonic(), result)
    return web.json_response(cached[1])


@routes.api("GET", "/api/resources", "Current resource snapshot")
async def resources_now(request: web.Request) -> web.Response:
    reply = await edge_of(request).bridge.ask("resources", TakeSample())
    assert isinstance(reply, Sample)
    return web.json_response(reply.snapshot)


@routes.api("GET", "/api/resources/history", "Recent resource snapshots, newest first")
async def resources_history(request: web.Request) -> web.Response:
    edge = edge_of(request)
    last_n = min(query_int(request, "last_n", 30, minimum=1), edge.config["resource_monitor"]["history"])
    # The ring changes once per sample interval: keep the encoded answer until it does.
    key = (resources.newest_seq(edge.store), last_n)
    cached = edge.extra.get("history")
    if cached is None or cached[0] != key:
        snaps = resources.history(edge.store, last_n)
        cached = edge.extra["history"] = (key, json.dumps({"snapshots": snaps, "count": len(snaps)}).encode())
    return web.Response(body=cached[1], content_type="application/json")


@routes.api("GET", "/api/resources/overload", "Is the system overloaded")
async def resources_overload(request: web.Request) -> web.Response:
    edge = edge_of(request)
    rm = edge.config["resource_monitor"]
    latest = resources.history(edge.store, 1)
    return web.json_response({
        "overloaded": bool(latest) and resources.overloaded(latest[0], rm),
        "threshold": {"cpu_percent": rm["cpu_threshold"], "memory_percent": rm["memory_threshold"],
                      "load_avg": rm["load_threshold"]},
    })


@routes.api("GET", "/api/metrics", "Prometheus metrics")
async def metrics(request: web.Request) -> web.Response:
    body = edge_of(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


__all__ = ["routes", "event_log"]
