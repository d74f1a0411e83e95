"""Actor logic on Thespian's in-process simpleSystemBase: fast, no sockets.

The same actors run on multiprocTCPBase in the other tests (the session runtime)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from thespian.actors import ActorExitRequest, ActorSystem

from oxios_actors.events.messages import LogAdvanced, Publish, Published, Subscribe, Subscribed
from oxios_actors.kernel import Boot, Booted, Directory, GetDirectory
from oxios_actors.messages import Answer, Ask, Configure, Failure, Ping, Pong, ServiceReady


@pytest.fixture
def asys() -> Iterator[ActorSystem]:
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    yield system
    system.shutdown()


def ask(asys: ActorSystem, addr, request, timeout: float = 5.0):
    reply = asys.ask(addr, Ask("r1", request), timeout)
    assert isinstance(reply, Answer) and reply.rid == "r1", reply
    return reply.reply


def test_event_bus_group_commits_tells(asys, tmp_path: Path):
    bus = asys.createActor("oxios_actors.events.bus.EventBus")
    ready = asys.ask(bus, Configure("events", str(tmp_path), {}, {}), 5)
    assert isinstance(ready, ServiceReady)
    for i in range(10):
        asys.tell(bus, Publish(({"type": "agent_output", "agent_id": str(i)},)))
    sent = ask(asys, bus, Publish(({"type": "agent_output", "agent_id": "last"},)))
    assert sent == Published(11, 11)
    stats = ask(asys, bus, Ping()).stats
    assert stats["appended"] == 11
    assert stats["batches"] <= 2  # eleven events, one or two transactions, never eleven


def test_event_bus_notifies_subscribers_once_per_batch(asys, tmp_path: Path):
    bus = asys.createActor("oxios_actors.events.bus.EventBus")
    asys.ask(bus, Configure("events", str(tmp_path), {}, {}), 5)
    assert ask(asys, bus, Subscribe(30)) == Subscribed(0)
    sent = ask(asys, bus, Publish(tuple({"type": "seed_created", "seed_id": str(i)} for i in range(5))))
    assert sent == Published(1, 5)
    note = asys.listen(2)
    assert note == LogAdvanced(5)
    assert asys.listen(0.2) is None


def test_event_bus_recovers_its_position_after_restart(asys, tmp_path: Path):
    bus = asys.createActor("oxios_actors.events.bus.EventBus")
    asys.ask(bus, Configure("events", str(tmp_path), {}, {}), 5)
    ask(asys, bus, Publish(({"type": "agent_started", "agent_id": "a"},) * 3))
    asys.tell(bus, ActorExitRequest())
    time.sleep(0.1)
    bus2 = asys.createActor("oxios_actors.events.bus.EventBus")
    asys.ask(bus2, Configure("events", str(tmp_path), {}, {}), 5)
    assert ask(asys, bus2, Publish(({"type": "agent_started", "agent_id": "b"},))) == Published(4, 4)


def test_service_turns_unknown_messages_and_exceptions_into_failures(asys, tmp_path: Path):
    bus = asys.createActor("oxios_actors.events.bus.EventBus")
    asys.ask(bus, Configure("events", str(tmp_path), {}, {}), 5)
    reply = ask(asys, bus, "not a message type")
    assert isinstance(reply, Failure) and reply.status == 400
    reply = ask(asys, bus, Publish(({"type": "nope"},)))
    assert isinstance(reply, Failure) and reply.status == 400
    assert isinstance(ask(asys, bus, Ping()), Pong)  # still alive


def test_kernel_boots_services_and_restarts_one_that_exits(asys, tmp_path: Path):
    kernel = asys.createActor("oxios_actors.kernel.Kernel")
    me = psutil.Process()
    booted = ask(asys, kernel, Boot(str(tmp_path), me.pid, me.create_time()), 20)
    assert isinstance(booted, Booted)
    assert {"events", "config", "resources", "kernel"} <= set(booted.directory)
    assert (tmp_path / "config.json").exists() and (tmp_path / "api_key").exists()
    asys.tell(booted.directory["events"], ActorExitRequest())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        d = ask(asys, kernel, GetDirectory())
        assert isinstance(d, Directory)
        if d.restarts.get("events") == 1 and d.services["events"] != booted.directory["events"]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("events was not restarted")
    assert isinstance(ask(asys, d.services["events"], Ping()), Pong)
    assert os.getpid() == booted.pid  # simpleSystemBase: everything in this process


def test_unasked_for_messages_are_dropped_not_answered(asys, tmp_path: Path):
    """A reply nobody asked for must not be answered, or two actors could trade
    "not understood" replies forever."""
    bus = asys.createActor("oxios_actors.events.bus.EventBus")
    asys.ask(bus, Configure("events", str(tmp_path), {}, {}), 5)
    asys.tell(bus, Failure(400, "a stray reply"))
    asys.tell(bus, "junk")
    assert asys.listen(0.3) is None
    assert isinstance(ask(asys, bus, Ping()), Pong)
