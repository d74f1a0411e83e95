"""The actor runtime: supervision and restart from LMDB, loopback-only sockets, bridge failures."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psutil
import pytest

from http_edge.errors import ApiError
from oxios_actors.events import log as event_log
from oxios_actors.events.messages import Publish, Published
from oxios_actors.kernel import Directory, GetDirectory
from oxios_actors.messages import Ping, Pong
from oxios_actors.system.messages import ConfigUpdated, GetConfig


def process_tree(pgid: int, launcher_pid: int) -> list[psutil.Process]:
    procs = [psutil.Process(launcher_pid)]
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                procs.append(p)
        except (psutil.Error, ProcessLookupError):
            pass
    return procs


def test_every_listening_socket_is_on_loopback(runtime, edge):
    procs = process_tree(runtime.admin_pgid, runtime.proc.pid) + [psutil.Process()]
    listening = []
    for p in procs:
        for c in p.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                listening.append((p.pid, c.laddr.ip, c.laddr.port))
    assert len(procs) >= 5  # launcher, admin, logger, kernel, services
    assert any(port == runtime.actor_port for _, _, port in listening)
    offenders = [entry for entry in listening if entry[1] not in ("127.0.0.1", "::1")]
    assert not offenders, f"sockets not on loopback: {offenders}"


async def wait_for_new_pid(edge, service: str, old_pid: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pong = await edge.bridge.ask(service, Ping(), timeout=1.0)
            if isinstance(pong, Pong) and pong.pid != old_pid:
                return pong.pid
        except ApiError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{service} was not restarted within {timeout}s")


async def test_killed_event_bus_comes_back_with_its_log(edge):
    before = await edge.bridge.ask("events", Publish(({"type": "agent_created", "agent_id": "k1"},)))
    assert isinstance(before, Published)
    old = await edge.bridge.ask("events", Ping())
    started = time.monotonic()
    os.kill(old.pid, signal.SIGKILL)
    new_pid = await wait_for_new_pid(edge, "events", old.pid)
    took = time.monotonic() - started
    assert new_pid != old.pid and took < 10
    after = await edge.bridge.ask("events", Publish(({"type": "agent_created", "agent_id": "k2"},)))
    assert after.first_seq == before.last_seq + 1  # recovered its position: no reuse, no gap
    assert event_log.read_after(edge.store, before.last_seq - 1, before.last_seq)  # old data still there
    directory = await edge.bridge.ask("kernel", GetDirectory())
    assert isinstance(directory, Directory) and directory.restarts.get("events", 0) >= 1


async def test_killed_config_service_recovers_persisted_config(client, auth, edge):
    r = await client.put("/api/config", json={"budget": {"default_window_secs": 1234}}, headers=auth)
    assert r.status == 200
    old = await edge.bridge.ask("config", Ping())
    os.kill(old.pid, signal.SIGKILL)
    await wait_for_new_pid(edge, "config", old.pid)
    reply = await edge.bridge.ask("config", GetConfig())
    assert isinstance(reply, ConfigUpdated)
    assert reply.public["budget"]["default_window_secs"] == 1234


async def test_ask_timeout_is_504_and_poison_is_500(edge):
    silent = edge.bridge.asys.createActor("tests.actors.Silent")
    crasher = edge.bridge.asys.createActor("tests.actors.Crasher")
    with pytest.raises(ApiError) as info:
        await edge.bridge.ask_address(silent, Ping(), timeout=0.5)
    assert info.value.status == 504
    with pytest.raises(ApiError) as info:
        await edge.bridge.ask_address(crasher, Ping(), timeout=5)
    assert info.value.status == 500
    # the contexts still work afterwards, and a late reply is never taken for another
    pong = await edge.bridge.ask("events", Ping())
    assert isinstance(pong, Pong)
    from thespian.actors import ActorExitRequest
    edge.bridge.asys.tell(silent, ActorExitRequest())
    edge.bridge.asys.tell(crasher, ActorExitRequest())


async def test_unknown_service_is_503(edge):
    with pytest.raises(ApiError) as info:
        await edge.bridge.ask("no-such-service", Ping())
    assert info.value.status == 503


async def test_event_loop_is_not_blocked_by_slow_asks(edge):
    silent = edge.bridge.asys.createActor("tests.actors.Silent")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    with pytest.raises(ApiError):
        await edge.bridge.ask_address(silent, Ping(), timeout=0.5)
    task.cancel()
    assert ticks >= 20  # the loop kept running while the ask waited
    from thespian.actors import ActorExitRequest
    edge.bridge.asys.tell(silent, ActorExitRequest())
