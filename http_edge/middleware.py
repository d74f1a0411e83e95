"""Middleware, outermost first: errors -> metrics -> CORS -> body limit -> rate limit -> auth."""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from oxios_actors.audit.messages import Append, AuditRecord
from oxios_actors.system import auth

from .errors import ApiError, Handler, json_error

if TYPE_CHECKING:
    from .app import Edge

PUBLIC_PATHS = {"/health"}
QUERY_TOKEN_PATHS = {"/api/chat/stream", "/api/events"}


class TokenBucket:
    """Refill ``per_minute / 60`` tokens a second up to a burst of ``per_minute``."""

    __slots__ = ("tokens", "stamp")

    def __init__(self, capacity: float, now: float) -> None:
        self.tokens = capacity
        self.stamp = now


class RateLimiter:
    """One bucket per client key (a valid token, else the peer address), so one
    client cannot starve the others.  The bucket map is an LRU of bounded size."""

    def __init__(self, per_minute: int, max_keys: int = 50_000) -> None:
        self.per_minute = per_minute
        self.max_keys = max_keys
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """0 if allowed, else the seconds until a token is available."""
        now = time.monotonic() if now is None else now
        capacity = float(self.per_minute)
        rate = self.per_minute / 60.0
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(capacity, now)
            if len(self.buckets) > self.max_keys:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if request.path in QUERY_TOKEN_PATHS:
        return request.query.get("token", "")
    return ""


def make_middlewares(edge: Edge) -> list[Middleware]:
    @web.middleware
    async def metrics_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            edge.metrics.observe(request.method, route, status, time.perf_counter() - start)

    @web.middleware
    async def cors_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in edge.config["security"]["cors_origins"]
        if request.method == "OPTIONS" and allowed and "Access-Control-Request-Method" in request.headers:
            return web.Response(status=204, headers={
                "Access-Control-Allow-Origin": origin or "",
                "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type, Last-Event-ID",
                "Access-Control-Max-Age": "600", "Vary": "Origin"})
        response = await handler(request)
        if allowed and not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = origin or ""
            response.headers["Vary"] = "Origin"
        return response

    @web.middleware
    async def body_limit_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        limit = edge.config["edge"]["max_body_bytes"]
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes")
        return await handler(request)

    @web.middleware
    async def rate_limit_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS or not request.path.startswith("/api/"):
            return await handler(request)
        token = bearer(request)
        if token and edge.token_ok(token):
            key = "t:" + hashlib.sha256(token.encode()).hexdigest()[:32]
        else:
            key = "ip:" + (request.remote or "?")
        wait = edge.limiter.take(key)
        if wait > 0:
            return json_error(429, "rate limit exceeded", {"Retry-After": str(max(1, math.ceil(wait)))})
        return await handler(request)

    @web.middleware
    async def auth_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.path in PUBLIC_PATHS or not request.path.startswith("/api/")
                or not edge.config["security"]["auth_enabled"] or request.method == "OPTIONS"):
            return await handler(request)
        token = bearer(request)
        if not edge.token_ok(token):
            edge.failed_auth += 1
            # Audited without the token: who (address), where, and why.
            edge.bridge.tell("audit", Append((AuditRecord(
                f"client:{request.remote or '?'}", "auth_failed", f"{request.method} {request.path}",
                False, "invalid token" if token else "missing token"),)))
            return json_error(401, "missing or invalid bearer token" if token else "authentication required",
                              {"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return [metrics_mw, cors_mw, body_limit_mw, rate_limit_mw, auth_mw]


def check_token(edge: Edge, token: str) -> bool:
    return auth.check_token(edge.store, token, edge.env_key, edge.config["security"]["api_key"])
