"""The durable event log and the SSE stream (§21, DESIGN rule 5)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from http_edge.fanout import EventFanout, SseClient
from oxios_actors.events import log as event_log
from oxios_actors.events.messages import Publish, Published


async def publish(edge, *events: dict[str, Any]) -> Published:
    reply = await edge.bridge.ask("events", Publish(tuple(events)))
    assert isinstance(reply, Published)
    return reply


async def read_events(resp, n: int, timeout: float = 10.0) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    seq = None

    async def go() -> None:
        nonlocal seq
        while len(out) < n:
            line = (await resp.content.readline()).decode()
            if not line:
                raise AssertionError("stream ended")
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("data: "):
                out.append((seq, json.loads(line[6:])))

    await asyncio.wait_for(go(), timeout)
    return out


async def test_publish_is_durable_ordered_and_sanitised(edge):
    first = await publish(edge, {"type": "agent_started", "agent_id": "a1"},
                          {"type": "agent_output", "agent_id": "a1", "content": "secret", "output": "x"})
    assert first.last_seq == first.first_seq + 1
    records = event_log.read_after(edge.store, first.first_seq - 1, first.last_seq)
    from oxios_actors.store import unpack
    decoded = [unpack(r) for _, r in records]
    assert [d["type"] for d in decoded] == ["agent_started", "agent_output"]
    assert "content" not in decoded[1] and "output" not in decoded[1]
    assert decoded[0]["timestamp"].endswith("+00:00")


async def test_unknown_event_types_are_refused(edge):
    from http_edge.errors import ApiError
    with pytest.raises(ApiError) as info:
        await publish(edge, {"type": "not_a_contract_event"})
    assert info.value.status == 400


async def test_sse_streams_new_events_with_ids(client, auth, edge):
    async with client.get("/api/events", headers=auth) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        await asyncio.sleep(0.2)
        sent = await publish(edge, *({"type": "phase_started", "phase": f"p{i}"} for i in range(5)))
        got = await read_events(resp, 5)
    assert [s for s, _ in got] == list(range(sent.first_seq, sent.last_seq + 1))
    assert [e["phase"] for _, e in got] == [f"p{i}" for i in range(5)]
    assert all(e["type"] == "phase_started" for _, e in got)


async def test_sse_tells_are_batched_and_delivered(client, auth, edge):
    """Fire-and-forget publishes (what actors do) are group-committed and still all arrive."""
    async with client.get("/api/events", headers=auth) as resp:
        await asyncio.sleep(0.2)
        start = event_log.last_seq(edge.store)
        addr = edge.bridge.directory["events"]
        for i in range(50):
            edge.bridge.asys.tell(addr, Publish(({"type": "agent_output", "agent_id": f"t{i}"},)))
        got = await read_events(resp, 50)
    assert [s for s, _ in got] == list(range(start + 1, start + 51))
    assert [e["agent_id"] for _, e in got] == [f"t{i}" for i in range(50)]


async def test_sse_resumes_from_last_event_id_without_loss_or_duplicates(client, auth, edge):
    base = await publish(edge, *({"type": "agent_created", "agent_id": f"r{i}"} for i in range(3)))
    resume_from = base.first_seq  # pretend the client saw only the first one
    missed = await publish(edge, *({"type": "agent_created", "agent_id": f"m{i}"} for i in range(4)))
    async with client.get("/api/events", headers={**auth, "Last-Event-ID": str(resume_from)}) as resp:
        backlog = await read_events(resp, 2 + 4)
        live = await publish(edge, {"type": "agent_created", "agent_id": "live"})
        after = await read_events(resp, 1)
    seqs = [s for s, _ in backlog + after]
    assert seqs == list(range(resume_from + 1, live.last_seq + 1))
    assert len(set(seqs)) == len(seqs)
    assert missed.last_seq in seqs


async def test_sse_bad_last_event_id_is_400(client, auth):
    r = await client.get("/api/events", headers={**auth, "Last-Event-ID": "abc"})
    assert r.status == 400
    assert "error" in await r.json()


async def test_sse_requires_auth_and_accepts_query_token(client, token):
    assert (await client.get("/api/events")).status == 401
    async with client.get(f"/api/events?token={token}") as resp:
        assert resp.status == 200


async def test_sse_keepalive_comment(client, auth, edge):
    old = edge.config["edge"]["sse_keepalive_secs"]
    edge.config["edge"]["sse_keepalive_secs"] = 0.2
    try:
        async with client.get("/api/events", headers=auth) as resp:
            lines = [(await asyncio.wait_for(resp.content.readline(), 5)).decode() for _ in range(4)]
        assert ": ping\n" in lines
    finally:
        edge.config["edge"]["sse_keepalive_secs"] = old


def test_slow_client_is_dropped_not_waited_for():
    client = SseClient(limit=10)
    client.offer(b"x" * 100, 6)
    client.offer(b"y" * 100, 4)
    assert not client.dropped and client.pending == 10
    client.offer(b"z", 1)
    assert client.dropped and client.pending == 10 and not client.chunks


async def test_fanout_drops_only_the_slow_client(edge):
    fan = EventFanout(edge.store, client_limit=3)
    fast, _ = fan.register()
    slow, _ = fan.register()
    start = fan.position
    await publish(edge, *({"type": "agent_output", "agent_id": str(i)} for i in range(2)))
    fan.advance(start + 2)
    await asyncio.sleep(0.05)
    fast.take()  # the fast client keeps up, the slow one never reads
    await publish(edge, *({"type": "agent_output", "agent_id": str(i)} for i in range(2)))
    fan.advance(start + 4)
    await asyncio.sleep(0.05)
    assert slow.dropped and slow not in fan.clients
    assert not fast.dropped and fast in fan.clients
    assert fast.take().count(b"id: ") == 2
