"""§4 Agents and §19 Agent groups: agents as processes, driven through the internal API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psutil
import pytest

from oxios_actors.agents import records
from oxios_actors.agents.messages import AgentSpec, GroupSpawned, SpawnAgent, Spawned, SpawnGroup
from oxios_actors.audit import chain
from oxios_actors.events import log as event_log
from oxios_actors.store import unpack

from .scripted_llm import ScriptedModel


async def set_config(client, auth, edge, patch: dict[str, Any]) -> None:
    r = await client.put("/api/config", json=patch, headers=auth)
    assert r.status == 200, await r.text()
    edge.limiter.per_minute = 10**9


@pytest.fixture
async def model(client, auth, edge):
    m = ScriptedModel()
    url = await m.start()
    await set_config(client, auth, edge, {"engine": {"provider": "openai", "base_url": url,
                                                     "default_model": "scripted", "max_retries": 0},
                                          "approvals": {"require": []}})
    yield m
    await set_config(client, auth, edge, {
        "engine": {"provider": "offline", "base_url": "", "default_model": "", "max_retries": 3},
        "approvals": {"require": ["use_tool:shell_exec", "access_path:outside", "manage_programs",
                                  "system_config"]},
        "security": {"max_execution_time_secs": 300, "max_memory_mb": 512},
        "scheduler": {"max_concurrent": 5}})
    await m.stop()


async def spawn(edge, goal: str, **kw: Any) -> str:
    reply = await edge.bridge.ask("agents", SpawnAgent(AgentSpec(goal, **kw)), timeout=15)
    assert isinstance(reply, Spawned)
    return reply.agent_id


async def wait_status(edge, agent_id: str, statuses: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = records.get_agent(edge.store, agent_id)
        if record is not None and record["status"] in statuses:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"{agent_id} never reached {statuses}: {record}")


def event_types(edge, agent_id: str) -> list[str]:
    out = []
    for _, raw in event_log.read_after(edge.store, 0, limit=1_000_000):
        e = unpack(raw)
        if e.get("agent_id") == agent_id:
            out.append(e["type"])
    return out


async def test_offline_agent_writes_its_plan_and_completes(client, auth, edge, home):
    agent_id = await spawn(edge, "Write a short plan for a CLI tool", plan_path="plans/test-plan.md")
    record = await wait_status(edge, agent_id, ("Completed", "Failed"))
    assert record["status"] == "Completed", record
    plan = (home / "workspace" / "plans" / "test-plan.md").read_text()
    assert "Write a short plan for a CLI tool" in plan and "No language model is configured" in plan
    assert record["pid"] != psutil.Process().pid  # it ran in its own process
    for _ in range(100):  # and that process ends once the agent is done
        try:
            if psutil.Process(record["pid"]).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the agent's process outlived its agent")
    for _ in range(100):  # events from several actors, group-committed: wait for the last one
        types = event_types(edge, agent_id)
        if "agent_stopped" in types:
            break
        await asyncio.sleep(0.02)
    assert types[0] == "agent_created" and "agent_started" in types and "agent_stopped" in types
    assert any(e["action"] == "file_write" for e in chain.for_agent(edge.store, agent_id))
    body = await (await client.get("/api/agents?limit=500", headers=auth)).json()
    ids = [a["id"] for a in body["items"]]
    assert agent_id in ids and set(body) == {"items", "total", "page", "limit"}
    item = body["items"][ids.index(agent_id)]
    assert {"id", "name", "status", "created_at", "seed_id"} <= set(item)
    created = [a["created_at"] for a in body["items"]]
    assert created == sorted(created)


async def test_tool_call_round_trip_with_a_real_openai_client(edge, home, model):
    agent_id = await spawn(edge, "Save a note [script:write notes/model.md from-the-model]")
    record = await wait_status(edge, agent_id, ("Completed", "Failed"))
    assert record["status"] == "Completed", record
    assert (home / "workspace" / "notes" / "model.md").read_text() == "from-the-model"
    assert len(model.requests) == 2 and model.requests[0]["tools"]  # tool schemas were offered
    assert model.requests[1]["messages"][-1]["role"] == "tool"


async def test_kill_stops_a_long_tool_call_for_real(client, auth, edge, model):
    agent_id = await spawn(edge, "Wait [script:shell sleep 60]")
    record = await wait_status(edge, agent_id, ("Running",))
    for _ in range(200):  # until the sleep is running under the agent's process
        record = records.get_agent(edge.store, agent_id)
        try:
            if record.get("pid") and any("sleep" in " ".join(c.cmdline())
                                         for c in psutil.Process(record["pid"]).children(recursive=True)):
                break
        except psutil.NoSuchProcess:
            pass
        await asyncio.sleep(0.05)
    sleeper = []
    for c in psutil.Process(record["pid"]).children(recursive=True):
        try:
            if "sleep" in " ".join(c.cmdline()):
                sleeper.append(c)
        except psutil.NoSuchProcess:  # the shell that started sleep may be gone already
            pass
    assert sleeper
    agent_proc = psutil.Process(record["pid"])
    started = time.monotonic()
    r = await client.post(f"/api/agents/{agent_id}/kill", headers=auth)
    assert r.status == 200 and await r.read() == b""
    record = await wait_status(edge, agent_id, ("Killed",), timeout=5)
    gone, alive = psutil.wait_procs([agent_proc, *sleeper], timeout=2)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert time.monotonic() - started < 2.5
    await asyncio.sleep(0.1)
    assert "agent_stopped" in event_types(edge, agent_id)
    r = await client.post("/api/agents/agent-does-not-exist/kill", headers=auth)
    assert r.status == 404 and "error" in await r.json()


async def test_time_limit_is_enforced(client, auth, edge, model):
    await set_config(client, auth, edge, {"security": {"max_execution_time_secs": 1}})
    agent_id = await spawn(edge, "Wait [script:shell sleep 30]")
    record = await wait_status(edge, agent_id, ("Failed", "Completed"), timeout=15)
    assert record["status"] == "Failed" and "time limit" in record["error"]


async def test_memory_limit_is_enforced(client, auth, edge, model):
    await set_config(client, auth, edge, {"security": {"max_memory_mb": 8}})
    agent_id = await spawn(edge, "Wait [script:shell sleep 30]")
    record = await wait_status(edge, agent_id, ("Failed", "Completed"), timeout=15)
    assert record["status"] == "Failed" and "memory limit" in record["error"]


async def test_crashed_agent_process_is_failed_with_a_reason(edge, model):
    agent_id = await spawn(edge, "Crash [script:shell kill -9 $PPID]")
    record = await wait_status(edge, agent_id, ("Failed", "Completed"), timeout=20)
    assert record["status"] == "Failed" and "exited unexpectedly" in record["error"]
    await asyncio.sleep(0.1)
    assert "agent_failed" in event_types(edge, agent_id)


async def test_budget_is_charged_and_exhaustion_stops_the_agent(client, auth, edge, model):
    agent_id = "budgeted-agent"
    r = await client.post(f"/api/budget/{agent_id}", json={"token_budget": 1500, "calls_budget": 100,
                                                          "window_secs": 3600}, headers=auth)
    assert r.status == 200
    await spawn(edge, "Loop forever [script:loop]", agent_id=agent_id, max_iterations=50)
    record = await wait_status(edge, agent_id, ("Failed", "Completed"), timeout=30)
    assert record["status"] == "Failed" and "budget" in record["error"]
    assert "Token budget exceeded" in record["error"]
    status = await (await client.get(f"/api/budget/{agent_id}", headers=auth)).json()
    assert status["calls_remaining"] < 100 and status["tokens_remaining"] < 1500


async def test_concurrency_limit_holds_agents_in_queue(client, auth, edge, model):
    await set_config(client, auth, edge, {"scheduler": {"max_concurrent": 1}})
    first = await spawn(edge, "First [script:shell sleep 30]")
    second = await spawn(edge, "Second [script:answer]")
    await wait_status(edge, first, ("Running",))
    await asyncio.sleep(0.5)
    assert records.get_agent(edge.store, second)["status"] == "Queued"
    await client.post(f"/api/agents/{first}/kill", headers=auth)
    record = await wait_status(edge, second, ("Completed",), timeout=20)
    assert record["status"] == "Completed"
    await client.post(f"/api/agents/{second}/kill", headers=auth)  # a finished agent: no-op, 200


async def test_agent_group_runs_members_in_parallel(client, auth, edge, home):
    members = tuple(AgentSpec(f"Member {i}: outline part {i}", plan_path=f"plans/group-{i}.md") for i in range(3))
    reply = await edge.bridge.ask("agents", SpawnGroup("parallel-build", members, "seed-parent"), timeout=15)
    assert isinstance(reply, GroupSpawned)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        group = records.get_group(edge.store, reply.group_id)
        if group and group["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.1)
    assert group["status"] == "completed", group
    assert group["agent_count"] == 3 and len(group["members"]) == 3
    assert all(m["status"] == "Completed" for m in group["members"])
    listed = await (await client.get("/api/agent-groups", headers=auth)).json()
    assert {"id": reply.group_id, "name": "parallel-build", "agent_count": 3, "status": "completed",
            "created_at": group["created_at"]} in listed
    got = await (await client.get(f"/api/agent-groups/{reply.group_id}", headers=auth)).json()
    assert got["members"][0]["agent_id"].startswith("agent-")
    r = await client.get("/api/agent-groups/group-nope", headers=auth)
    assert r.status == 404
    for _ in range(100):  # the last member's event may still be in the bus's commit window
        types = [unpack(raw)["type"] for _, raw in event_log.read_after(edge.store, 0, limit=1_000_000)]
        if types.count("agent_group_member_completed") >= 3:
            break
        await asyncio.sleep(0.02)
    assert "agent_group_created" in types and types.count("agent_group_member_completed") >= 3


async def test_status_and_metrics_count_agents(client, auth):
    body = await (await client.get("/api/status", headers=auth)).json()
    agents = body["components"]["agents"]
    assert agents["total_forked"] >= 1 and agents["total_completed"] >= 1
    text = await (await client.get("/api/metrics", headers=auth)).text()
    assert f"oxios_agents_forked_total {float(agents['total_forked'])}" in text


async def test_an_agents_own_permissions_bound_its_process(client, auth, edge, model):
    r = await client.put("/api/permissions/limited-agent", json={"max_execution_time_secs": 1}, headers=auth)
    assert r.status == 200
    await spawn(edge, "Wait [script:shell sleep 30]", agent_id="limited-agent")
    record = await wait_status(edge, "limited-agent", ("Failed", "Completed"), timeout=15)
    assert record["status"] == "Failed" and "time limit exceeded (1s)" in record["error"]
