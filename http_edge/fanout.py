"""SSE fan-out: reads new events from the LMDB log once per batch and hands the
encoded bytes to every connected client's bounded buffer.

A client whose buffer would exceed its limit is marked dropped and disconnected;
nothing ever waits for a slow client, and the bus never hears of it.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Any

from oxios_actors.events import log as event_log
from oxios_actors.store import ReadOnlyStore, unpack

READ_BATCH = 5000
POLL_SECS = 1.0


def encode(records: list[tuple[int, bytes]]) -> bytes:
    parts = []
    for seq, raw in records:
        record: dict[str, Any] = unpack(raw)
        record.pop("seq", None)
        data = json.dumps(record, separators=(",", ":"), default=str)
        parts.append(f"id: {seq}\ndata: {data}\n\n")
    return "".join(parts).encode()


class SseClient:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: deque[bytes] = deque()
        self.pending = 0
        self.dropped = False
        self.ready = asyncio.Event()

    def offer(self, blob: bytes, count: int) -> None:
        if self.dropped:
            return
        if self.pending + count > self.limit:
            self.dropped = True
            self.chunks.clear()
        else:
            self.chunks.append(blob)
            self.pending += count
        self.ready.set()

    def take(self) -> bytes:
        blob = b"".join(self.chunks)
        self.chunks.clear()
        self.pending = 0
        self.ready.clear()
        return blob


class EventFanout:
    def __init__(self, store: ReadOnlyStore, client_limit: int = 8192) -> None:
        self.store = store
        self.client_limit = client_limit
        self.clients: set[SseClient] = set()
        self.listeners: set[Callable[[list[dict[str, Any]]], None]] = set()
        self.position = event_log.last_seq(store)
        self.target = self.position
        self.delivered = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        for task in (self._poller, self._task):
            if task is not None:
                task.cancel()
        for client in list(self.clients):
            client.dropped = True
            client.ready.set()

    def register(self) -> tuple[SseClient, int]:
        """A new client and the seq it will receive events after (no await in between,
        so backlog up to that seq plus fan-out after it is gap- and duplicate-free)."""
        client = SseClient(self.client_limit)
        self.clients.add(client)
        return client, self.position

    def unregister(self, client: SseClient) -> None:
        self.clients.discard(client)

    def advance(self, seq: int) -> None:
        """Called (on the loop) when the bus says the log reached ``seq``."""
        if seq > self.target:
            self.target = seq
        if self.target > self.position and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self.position < self.target:
            records = event_log.read_after(self.store, self.position, self.target, READ_BATCH)
            if not records:
                # trimmed by retention, or not visible yet: catch up to what exists
                self.position = max(self.position, min(self.target, event_log.last_seq(self.store)))
                break
            blob = encode(records)
            self.position = records[-1][0]
            if self.listeners:
                decoded = [{"seq": seq, **unpack(raw)} for seq, raw in records]
                for listener in list(self.listeners):
                    listener(decoded)
            count = len(records)
            for client in list(self.clients):
                client.offer(blob, count)
                if client.dropped:
                    self.dropped += 1
                    self.clients.discard(client)
            self.delivered += count * len(self.clients)
            await asyncio.sleep(0)

    async def _poll(self) -> None:
        """Safety net: if a LogAdvanced is ever lost, the log itself is the truth."""
        while True:
            await asyncio.sleep(POLL_SECS)
            try:
                self.advance(event_log.last_seq(self.store))
            except Exception:
                pass
