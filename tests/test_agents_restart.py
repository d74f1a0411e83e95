"""After the whole system dies (kill -9), live agents are reconciled, never left Running."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import psutil

from http_edge.app import close, connect
from oxios_actors.agents import records
from oxios_actors.agents.messages import AgentSpec, SpawnAgent, Spawned
from oxios_actors.launcher import sweep

from .conftest import start_runtime, track_pgid
from .scripted_llm import ScriptedModel


async def test_system_kill_then_restart_fails_interrupted_agents(tmp_path: Path):
    home = tmp_path / "restart-home"
    home.mkdir()
    model = ScriptedModel()
    url = await model.start()
    (home / "config.json").write_text(json.dumps({
        "engine": {"provider": "openai", "base_url": url, "default_model": "scripted"},
        "approvals": {"require": []}}))
    rt = start_runtime(home)
    edge = connect(home, rt.actor_port)
    try:
        reply = await asyncio.get_running_loop().run_in_executor(
            None, lambda: edge.bridge.ask_sync("agents", SpawnAgent(AgentSpec("Wait [script:shell sleep 60]")), 15))
        assert isinstance(reply, Spawned)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            record = records.get_agent(edge.store, reply.agent_id)
            if record and record["status"] == "Running" and record.get("pid"):
                break
            await asyncio.sleep(0.05)
        agent_pid = record["pid"]
        # the whole system dies at once: launcher, admin, every actor
        pgid = rt.admin_pgid
        rt.proc.kill()
        rt.proc.wait()
        sweep(pgid, grace=0.5)
        assert not psutil.pid_exists(agent_pid) or psutil.Process(agent_pid).status() == psutil.STATUS_ZOMBIE
    finally:
        close(edge)
        rt.proc = None
    rt2 = start_runtime(home)
    edge2 = connect(home, rt2.actor_port)
    try:
        record = records.get_agent(edge2.store, reply.agent_id)
        assert record["status"] == "Failed" and record["error"] == "interrupted by restart"
        counters = records.read_counters(edge2.store)
        assert counters["active"] == 0 and counters["failed"] >= 1
    finally:
        close(edge2)
        rt2.stop()
        await model.stop()
    track_pgid(rt2.admin_pgid)
