"""Assembles the edge: state, middleware, routes, startup and cleanup."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from oxios_actors import __version__
from oxios_actors.store import ReadOnlyStore
from oxios_actors.system.messages import ConfigUpdated, GetConfig

from .bridge import ActorBridge
from .errors import error_middleware
from .fanout import EventFanout
from .metrics import EdgeMetrics
from .middleware import RateLimiter, check_token, make_middlewares
from .routes import TABLES
from .routing import ApiRoutes, openapi

TOKEN_CACHE_SECS = 5.0


@dataclass
class Edge:
    """Everything a handler needs, in one typed object (``request.app[EDGE]``)."""

    home: Path
    bridge: ActorBridge
    store: ReadOnlyStore
    config: dict[str, Any]
    env_key: str = ""
    started: float = field(default_factory=time.monotonic)
    failed_auth: int = 0
    fanout: EventFanout | None = None
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(120))
    metrics: EdgeMetrics = field(init=False)
    extra: dict[str, Any] = field(default_factory=dict)
    _token_cache: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = EdgeMetrics(self)
        self.apply_config(self.config)

    def token_ok(self, token: str) -> bool:
        """Checked against the store at most once every few seconds per token (the auth
        and rate-limit layers both ask); config changes clear the cache."""
        now = time.monotonic()
        hit = self._token_cache.get(token)
        if hit is not None and hit > now:
            return True
        ok = check_token(self, token)
        if ok:
            if len(self._token_cache) > 1024:
                self._token_cache.clear()
            self._token_cache[token] = now + TOKEN_CACHE_SECS
        return ok

    def uptime(self) -> float:
        return time.monotonic() - self.started

    def apply_config(self, full: dict[str, Any]) -> None:
        """Hot-reload what the edge owns (rate limit, auth, CORS, SSE limits)."""
        self.config = full
        self._token_cache.clear()
        per_minute = full["security"]["rate_limit_per_minute"]
        if per_minute != self.limiter.per_minute:
            self.limiter = RateLimiter(per_minute)
        if self.fanout is not None:
            self.fanout.client_limit = full["edge"]["sse_client_queue"]


EDGE = web.AppKey("edge", Edge)


def create_app(edge: Edge) -> web.Application:
    app = web.Application(middlewares=[error_middleware, *make_middlewares(edge)],
                          client_max_size=edge.config["edge"]["max_body_bytes"])
    app[EDGE] = edge
    for table in TABLES:
        app.router.add_routes(table)

    async def on_startup(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        edge.fanout = EventFanout(edge.store, edge.config["edge"]["sse_client_queue"])
        edge.fanout.start()
        edge.bridge.start_control(loop, edge.fanout.advance)

    async def on_shutdown(app: web.Application) -> None:
        if edge.fanout is not None:
            await edge.fanout.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


def connect(home: str | os.PathLike[str], actor_port: int, *, threads: int = 4, bind: str = "127.0.0.1",
            allow: list[str] | None = None) -> Edge:
    """Connect to a running actor system (blocking; call before the loop serves)."""
    bridge = ActorBridge(actor_port, threads=threads, bind=bind, allow=allow)
    bridge.start()
    reply = bridge.ask_sync("config", GetConfig(), 10.0)
    assert isinstance(reply, ConfigUpdated)
    bridge.timeout = reply.full["edge"]["ask_timeout_secs"]
    return Edge(home=Path(home), bridge=bridge, store=ReadOnlyStore(home), config=reply.full,
                env_key=os.environ.get("OXIOS_API_KEY", ""))


def close(edge: Edge) -> None:
    edge.bridge.close()
    edge.store.close()


def openapi_document() -> dict[str, Any]:
    tables: list[ApiRoutes] = list(TABLES)
    return openapi(tables, __version__)
