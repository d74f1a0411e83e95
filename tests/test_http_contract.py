"""HTTP behaviour every route shares: errors, auth, limits, pagination, routes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from http_edge.app import openapi_document
from http_edge.errors import ApiError
from http_edge.middleware import RateLimiter
from http_edge.pagination import page_of
from http_edge.routes import TABLES
from oxios_actors import __version__

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "api-reference.md"


async def test_health_is_public(client):
    r = await client.get("/health")
    assert r.status == 200
    assert await r.json() == {"status": "ok", "version": __version__}


async def test_api_requires_a_valid_token(client, auth):
    r = await client.get("/api/status")
    assert r.status == 401
    assert "error" in await r.json()
    r = await client.get("/api/status", headers={"Authorization": "Bearer not-the-key"})
    assert r.status == 401
    assert (await r.json())["error"]
    r = await client.get("/api/status", headers=auth)
    assert r.status == 200


async def test_env_key_and_static_key_are_accepted(client, edge, auth):
    edge.env_key = "env-key-0123456789abcdef"
    try:
        r = await client.get("/api/status", headers={"Authorization": "Bearer env-key-0123456789abcdef"})
        assert r.status == 200
    finally:
        edge.env_key = ""  # fixed for a process's life in production; forget what was cached
        edge.apply_config(edge.config)
    r = await client.get("/api/status", headers={"Authorization": "Bearer env-key-0123456789abcdef"})
    assert r.status == 401
    r = await client.put("/api/config", json={"security": {"api_key": "static-key-0123456789"}}, headers=auth)
    assert r.status == 200
    assert "api_key" not in (await r.json())["security"]  # secrets never come back
    try:
        r = await client.get("/api/status", headers={"Authorization": "Bearer static-key-0123456789"})
        assert r.status == 200
    finally:
        await client.put("/api/config", json={"security": {"api_key": ""}}, headers=auth)


async def test_unknown_route_and_wrong_method_are_json(client, auth):
    r = await client.get("/api/does-not-exist", headers=auth)
    assert r.status == 404
    assert "not found" in (await r.json())["error"]
    r = await client.delete("/api/status", headers=auth)
    assert r.status == 405
    assert "not allowed" in (await r.json())["error"]


async def test_malformed_json_and_bad_fields_are_400(client, auth):
    r = await client.put("/api/config", data=b"{not json", headers={**auth, "Content-Type": "application/json"})
    assert r.status == 400
    assert "malformed JSON" in (await r.json())["error"]
    r = await client.put("/api/config", json=[1, 2], headers=auth)
    assert r.status == 400
    r = await client.put("/api/config", json={"server": {"port": "eighty"}}, headers=auth)
    assert r.status == 400
    assert "server.port" in (await r.json())["error"]


async def test_body_over_10_mb_is_413(client, auth):
    r = await client.put("/api/config", data=b"x" * (10 * 1024 * 1024 + 1),
                         headers={**auth, "Content-Type": "application/json"})
    assert r.status == 413
    assert "error" in await r.json()


async def test_rate_limit_answers_429_with_retry_after_per_client(client, edge, auth):
    old = edge.limiter
    edge.limiter = RateLimiter(3)
    try:
        statuses = [(await client.get("/api/status", headers=auth)).status for _ in range(3)]
        assert statuses == [200, 200, 200]
        r = await client.get("/api/status", headers=auth)
        assert r.status == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert (await r.json())["error"] == "rate limit exceeded"
        # another client (no valid token -> keyed by address) has its own bucket
        other = await client.get("/api/status")
        assert other.status == 401
        # /health is never limited
        assert (await client.get("/health")).status == 200
    finally:
        edge.limiter = old


def test_token_bucket_refills_at_rate_and_caps_at_burst():
    rl = RateLimiter(60)  # one token a second, burst 60
    assert all(rl.take("a", now=0.0) == 0 for _ in range(60))
    assert rl.take("a", now=0.0) == pytest.approx(1.0)
    assert rl.take("a", now=1.0) == 0
    assert rl.take("b", now=1.0) == 0  # separate bucket
    assert rl.take("a", now=1000.0) == 0
    assert sum(rl.take("a", now=1000.0) == 0 for _ in range(100)) == 59  # capped at burst


@pytest.mark.parametrize("query,expected", [
    ("", (1, 50, 0)), ("page=0", (1, 50, 0)), ("page=-3", (1, 50, 0)), ("page=3&limit=10", (3, 10, 20)),
    ("limit=501", (1, 500, 0)), ("limit=100000&page=2", (2, 500, 500)),
])
def test_pagination(query, expected):
    p = page_of(make_mocked_request("GET", "/x?" + query))
    assert (p.page, p.limit, p.offset) == expected


@pytest.mark.parametrize("query", ["page=abc", "limit=x", "limit=0"])
def test_pagination_rejects_bad_values(query):
    with pytest.raises(ApiError) as info:
        page_of(make_mocked_request("GET", "/x?" + query))
    assert info.value.status == 400


def test_every_route_is_in_the_contract_and_documented():
    if not SPEC.exists():
        pytest.skip(f"contract not found at {SPEC}")
    spec = SPEC.read_text()
    table = set(re.findall(r"\| `(GET|POST|PUT|DELETE)` \| `([^`]+)` \|", spec))
    assert len(table) == 76
    for t in TABLES:
        for route in t:
            assert isinstance(route, web.RouteDef)
            path = re.sub(r"\{tail:.*\}", "{*path}", route.path)
            assert (route.method, path) in table, f"{route.method} {route.path} is not in the contract"
            assert route.handler.__api__.summary
    doc = openapi_document()
    assert doc["paths"]["/api/status"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in doc["paths"]["/health"]["get"]
