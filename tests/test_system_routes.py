"""§3 System, §18 Resources, §22 Host tools, §23 Metrics against the real actor system."""

from __future__ import annotations

import asyncio
import json
import stat

from oxios_actors.system import config as schema


async def test_status_reports_real_components(client, auth):
    r = await client.get("/api/status", headers=auth)
    body = await r.json()
    assert body["service"] == "oxios" and body["status"] == "running"
    assert body["channels"] == ["web"]
    assert body["uptime"].endswith("s")
    comps = body["components"]
    assert comps["state_store"] == {"healthy": True, "detail": None}
    assert comps["event_bus"] == {"healthy": True, "detail": None}
    assert set(comps["memory"]) == {"enabled", "index_size", "total_entries"}
    assert set(comps["agents"]) == {"active_count", "total_forked", "total_completed", "total_failed"}


async def test_config_get_has_defaults_and_no_secrets(client, auth):
    body = await (await client.get("/api/config", headers=auth)).json()
    assert body["server"] == {"host": "127.0.0.1", "port": 4200}
    assert body["security"]["auth_enabled"] is True
    assert body["scheduler"]["max_concurrent"] == 5
    assert "api_key" not in body["security"] and "api_key" not in body["engine"]


async def test_config_put_validates_whole_object_persists_and_hot_reloads(client, auth, home, edge):
    r = await client.put("/api/config", json={"kernel": {"max_agents": 0}}, headers=auth)
    assert r.status == 400 and "kernel.max_agents" in (await r.json())["error"]
    r = await client.put("/api/config", json={"nope": {}}, headers=auth)
    assert r.status == 400 and "unknown config section" in (await r.json())["error"]
    r = await client.put("/api/config", json={"security": {"bogus": 1}}, headers=auth)
    assert r.status == 400
    r = await client.put("/api/config", json={"resource_monitor": {"cpu_threshold": 101}}, headers=auth)
    assert r.status == 400
    before = json.loads((home / "config.json").read_text())
    assert before["scheduler"]["max_concurrent"] == 5  # the failed PUTs changed nothing

    r = await client.put("/api/config", json={"scheduler": {"max_concurrent": 7},
                                              "security": {"rate_limit_per_minute": 999}}, headers=auth)
    assert r.status == 200
    body = await r.json()
    assert body["scheduler"]["max_concurrent"] == 7 and body["server"]["port"] == 4200
    on_disk = json.loads((home / "config.json").read_text())
    assert on_disk["scheduler"]["max_concurrent"] == 7
    assert stat.S_IMODE((home / "config.json").stat().st_mode) == 0o600
    assert edge.limiter.per_minute == 999  # hot-reloaded in the edge
    edge.limiter.per_minute = 10**9
    got = await (await client.get("/api/config", headers=auth)).json()
    assert got["scheduler"]["max_concurrent"] == 7


async def test_config_put_contract_example(client, auth, edge):
    """The §3 curl example (0.0.0.0 and auth disabled) is accepted; host/port need a restart."""
    example = {"server": {"host": "0.0.0.0", "port": 4200}, "security": {"auth_enabled": False}}
    r = await client.put("/api/config", json=example, headers=auth)
    try:
        assert r.status == 200
        assert r.headers["X-Oxios-Restart-Required"] == "server.host"
        body = await r.json()
        assert body["server"]["host"] == "0.0.0.0" and body["security"]["auth_enabled"] is False
        assert (await client.get("/api/status")).status == 200  # auth off, hot-reloaded
    finally:
        r = await client.put("/api/config", json={"server": {"host": "127.0.0.1"},
                                                  "security": {"auth_enabled": True}})
        assert r.status == 200
        edge.limiter.per_minute = 10**9
    assert (await client.get("/api/status")).status == 401


def test_schema_merge_keeps_unmentioned_fields_and_checks_types():
    base = schema.defaults()
    merged = schema.merge_and_validate(base, {"git": {"auto_commit": False}})
    assert merged["git"]["auto_commit"] is False and merged["git"]["author_name"] == "oxios"
    for bad in ({"server": {"port": 0}}, {"server": {"port": True}}, {"kernel": {"workspace": ""}},
                {"exec": {"shell_timeout_secs": 0}}, {"security": {"cors_origins": [1]}},
                {"engine": {"provider": "magic"}}, {"server": []}):
        try:
            schema.merge_and_validate(base, bad)
        except schema.ConfigError:
            continue
        raise AssertionError(f"accepted {bad}")


async def test_generated_key_file_is_private(home, token):
    assert token.startswith("oxk_") and len(token) > 30
    assert stat.S_IMODE((home / "api_key").stat().st_mode) == 0o600
    # registered hashed: the plaintext is nowhere in the token store
    raw = b"".join(p.read_bytes() for p in (home / "state" / "auth").glob("*.mdb"))
    assert token.encode() not in raw


async def test_resources_snapshot_history_and_overload(client, auth, edge):
    snap = await (await client.get("/api/resources", headers=auth)).json()
    assert set(snap) == {"cpu_percent", "memory_percent", "memory_used_mb", "memory_total_mb",
                         "load_avg_1m", "load_avg_5m", "load_avg_15m", "timestamp"}
    assert 0 < snap["memory_total_mb"] and 0 <= snap["memory_percent"] <= 100
    r = await client.put("/api/config", json={"resource_monitor": {"interval_secs": 0.1}}, headers=auth)
    assert r.status == 200
    edge.limiter.per_minute = 10**9
    try:
        for _ in range(100):
            hist = await (await client.get("/api/resources/history?last_n=5", headers=auth)).json()
            if hist["count"] == 5:
                break
            await asyncio.sleep(0.1)
        assert hist["count"] == 5
        stamps = [s["timestamp"] for s in hist["snapshots"]]
        assert stamps == sorted(stamps, reverse=True)  # newest first
        r = await client.get("/api/resources/history?last_n=zero", headers=auth)
        assert r.status == 400
        over = await (await client.get("/api/resources/overload", headers=auth)).json()
        assert over["threshold"] == {"cpu_percent": 90.0, "memory_percent": 90.0, "load_avg": 8.0}
        assert over["overloaded"] is False or over["overloaded"] is True
        r = await client.put("/api/config", json={"resource_monitor": {"memory_threshold": 0.01}},
                             headers=auth)
        over = await (await client.get("/api/resources/overload", headers=auth)).json()
        assert over["overloaded"] is True
    finally:
        await client.put("/api/config", json={"resource_monitor": {"interval_secs": 60.0,
                                                                   "memory_threshold": 90.0}}, headers=auth)
        edge.limiter.per_minute = 10**9


async def test_host_tools(client, auth):
    body = await (await client.get("/api/host-tools", headers=auth)).json()
    assert body["all_required_present"] is True and body["missing_required"] == []
    assert body["optional_available"]["git"] is True
    assert body["optional_available"]["python3"] is True


async def test_metrics_are_prometheus_text(client, auth):
    await client.get("/api/status", headers=auth)
    r = await client.get("/api/metrics", headers=auth)
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = await r.text()
    for name in ("oxios_agents_forked_total", "oxios_agents_completed_total", "oxios_agents_failed_total"):
        assert f"# TYPE {name} counter" in text and f"\n{name} " in text
    assert 'oxios_http_requests_total{method="GET",route="/api/status",status="200"}' in text
    assert 'oxios_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/status"}' in text
