"""Multi-node: worker nodes join the home node's convention on loopback addresses
(127.0.0.1 home, 127.0.0.2 / 127.0.0.3 workers), agents are placed by capability,
a SIGKILLed worker's agents fail over, and a stranger cannot talk to any actor port."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from http_edge.app import close, connect, create_app
from oxios_actors.agents import records
from oxios_actors.agents.messages import AgentSpec, SpawnAgent, Spawned
from oxios_actors.launcher import sweep
from oxios_actors.runtime import ActorRuntime

from .conftest import free_port, track_pgid
from .scripted_llm import ScriptedModel

MEMBERS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


def worker(tmp: Path, home_port: int, addr: str, name: str, caps: list[str]) -> ActorRuntime:
    rt = ActorRuntime(tmp / name, free_port(), addr, allow=MEMBERS, join=f"127.0.0.1:{home_port}",
                      capabilities=caps, node_name=name)
    info = rt.start()
    track_pgid(int(info["admin_pgid"]))
    return rt


async def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def kill_node(rt: ActorRuntime) -> None:
    assert rt.proc is not None and rt.admin_pgid is not None
    rt.proc.kill()
    rt.proc.wait()
    sweep(rt.admin_pgid, grace=0.5)
    rt.proc = None


@pytest.fixture
async def cluster(tmp_path: Path):
    model = ScriptedModel()
    url = await model.start()
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({
        "engine": {"provider": "openai", "base_url": url, "default_model": "scripted", "max_retries": 0},
        "approvals": {"require": []}, "cluster": {"allowed_peers": MEMBERS}}))
    rt = ActorRuntime(home, free_port(), "127.0.0.1", allow=MEMBERS)
    track_pgid(int(rt.start()["admin_pgid"]))
    edge = connect(home, rt.actor_port, allow=MEMBERS)
    workers: list[ActorRuntime] = []
    try:
        yield rt, edge, workers, tmp_path
    finally:
        close(edge)
        for w in workers:
            w.stop()
        rt.stop()
        await model.stop()


async def spawn(edge, goal: str, **requirements: Any) -> str:
    loop = asyncio.get_running_loop()
    reply = await loop.run_in_executor(None, lambda: edge.bridge.ask_sync(
        "agents", SpawnAgent(AgentSpec(goal, requirements=requirements)), 15))
    assert isinstance(reply, Spawned)
    return reply.agent_id


async def test_placement_failover_and_rejoin(cluster):
    rt, edge, workers, tmp = cluster
    workers.append(worker(tmp, rt.actor_port, "127.0.0.2", "w-gpu-1", ["gpu"]))
    workers.append(worker(tmp, rt.actor_port, "127.0.0.3", "w-gpu-2", ["gpu", "docker"]))
    await wait_for(lambda: len(records.list_nodes(edge.store)) == 2, 20, "two workers in the convention")

    agent_id = await spawn(edge, "Long job [script:shell sleep 60]", gpu=True)
    record = await wait_for(lambda: (r := records.get_agent(edge.store, agent_id)) and r.get("pid") and r, 20,
                            "the agent to run")
    assert record["node"] in ("w-gpu-1", "w-gpu-2")
    owner = workers[0] if record["node"] == "w-gpu-1" else workers[1]
    other = workers[1] if owner is workers[0] else workers[0]
    assert os.getpgid(record["pid"]) == owner.admin_pgid  # really a process of that worker node

    docker_id = await spawn(edge, "Docker job [script:answer]", docker=True)
    done = await wait_for(lambda: (r := records.get_agent(edge.store, docker_id)) and
                          r["status"] in ("Completed", "Failed") and r, 20, "the docker job")
    assert done["status"] == "Completed" and done["node"] == "w-gpu-2"
    nowhere = await spawn(edge, "Needs a TPU [script:answer]", tpu=True)
    failed = await wait_for(lambda: (r := records.get_agent(edge.store, nowhere)) and r["status"] == "Failed" and r,
                            10, "an unplaceable agent to fail")
    assert "no node offers" in failed["error"]

    status_app = create_app(edge)
    from aiohttp.test_utils import TestClient, TestServer
    async with TestClient(TestServer(status_app, host="127.0.0.1")) as client:
        token = (rt.home / "api_key").read_text().strip()
        body = await (await client.get("/api/status", headers={"Authorization": f"Bearer {token}"})).json()
        cluster_status = body["components"]["cluster"]
        names = {n["name"] for n in cluster_status["nodes"]}
        assert cluster_status["mode"] == "cluster" and names == {"home", "w-gpu-1", "w-gpu-2"}
        gpu = [n for n in cluster_status["nodes"] if n["name"] == "w-gpu-2"][0]
        assert gpu["capabilities"] == ["docker", "gpu"] and gpu["last_check_in"]
        items = (await (await client.get("/api/agents?limit=500",
                                         headers={"Authorization": f"Bearer {token}"})).json())["items"]
        assert {i["id"]: i["node"] for i in items}[agent_id] == record["node"]

    started = time.monotonic()
    kill_node(owner)
    workers.remove(owner)
    lost = await wait_for(lambda: (r := records.get_agent(edge.store, agent_id)) and r["status"] == "Failed" and r,
                          30, "the lost node's agent to fail")
    took = time.monotonic() - started
    assert lost["error"] == "node lost" and took < 25
    replacement = await wait_for(lambda: [a for a in records.page(edge.store, 0, 500)[0]
                                          if a["name"] == lost["name"] and a["id"] != agent_id
                                          and a["status"] == "Running"], 20, "the requeued agent to run")
    assert replacement[0]["node"] == other.info["node"]
    assert len(records.list_nodes(edge.store)) == 1

    back = worker(tmp, rt.actor_port, owner.bind, owner.info["node"], ["gpu"])
    workers.append(back)
    await wait_for(lambda: len(records.list_nodes(edge.store)) == 2, 20, "the node to rejoin")


async def test_strangers_are_refused_members_are_not(cluster):
    rt, edge, workers, tmp = cluster
    workers.append(worker(tmp, rt.actor_port, "127.0.0.2", "w-plain", []))

    def probe(source: str, port: int) -> bytes | None:
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(1.5)
        try:
            s.connect(("127.0.0.1", port) if port == rt.actor_port else ("127.0.0.2", port))
            return s.recv(16)  # nothing sent: a member's connection waits for a message
        except TimeoutError:
            return None  # held open: the transport is waiting for the rest of a message
        except ConnectionResetError:
            return b""
        finally:
            s.close()

    assert probe("127.0.0.9", rt.actor_port) == b""  # a stranger is cut off at once
    assert probe("127.0.0.2", rt.actor_port) is None  # a member is listened to
    assert probe("127.0.0.9", workers[0].actor_port) == b""  # the workers enforce it too
    listening = [c for p in psutil.process_iter() for c in _conns(p) if c.status == psutil.CONN_LISTEN
                 and c.laddr.port in (rt.actor_port, workers[0].actor_port)]
    assert {c.laddr.ip for c in listening} <= {"127.0.0.1", "127.0.0.2"}


def _conns(p: psutil.Process) -> list[Any]:
    try:
        return p.net_connections(kind="inet")
    except psutil.Error:
        return []
