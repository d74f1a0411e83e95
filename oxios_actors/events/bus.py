"""EventBus: appends events to the LMDB log in batches and tells subscribers.

Tells are group-committed: the first event into an empty buffer arms a short
timer, and everything that arrives before it fires goes into one transaction
(or sooner, when the buffer is full).  Subscribers (the edges) get one
``LogAdvanced`` per batch, never one message per event.
"""

from __future__ import annotations

import time
from typing import Any

from thespian.actors import ActorAddress

from ..messages import Failure
from ..service import DEFERRED, ServiceActor, rfc3339
from ..store import key_seq, open_writer, pack, seq_key
from .log import DOMAIN, LOG_DB, sanitize
from .messages import LogAdvanced, Publish, Published, Subscribe, Subscribed

FLUSH_DELAY_SECS = 0.002
MAX_BUFFER = 2048
DEFAULT_RETENTION = 1_000_000


class EventBus(ServiceActor):
    name = "events"

    def on_configure(self) -> None:
        self.env = open_writer(self.home, DOMAIN)
        self.log_db = self.env.open_db(LOG_DB.encode())
        with self.env.begin(db=self.log_db) as txn:
            cursor = txn.cursor()
            self.seq = key_seq(cursor.key()) if cursor.last() else 0
            self.count = txn.stat(self.log_db)["entries"]
        self.buffer: list[dict[str, Any]] = []
        self.waiting: list[tuple[Any, int, int]] = []  # (reply_to, offset in buffer, count)
        self.armed = False
        self.subscribers: dict[str, tuple[ActorAddress, float]] = {}
        self.appended = 0
        self.batches = 0

    def stats(self) -> dict[str, Any]:
        return {"last_seq": self.seq, "appended": self.appended, "batches": self.batches,
                "subscribers": len(self.subscribers), "retained": self.count}

    def on_Publish(self, msg: Publish) -> Any:
        try:
            events = [sanitize(e) for e in msg.events]
        except ValueError as exc:
            return Failure(400, str(exc))
        offset = len(self.buffer)
        self.buffer.extend(events)
        if self.reply_to is not None and self.reply_to.rid is not None:
            # An ask wants the seqs: commit now (with whatever else is waiting).
            self.waiting.append((self.reply_to, offset, len(events)))
            self.flush()
            return DEFERRED
        if len(self.buffer) >= MAX_BUFFER:
            self.flush()
        elif not self.armed:
            self.armed = True
            self.after(FLUSH_DELAY_SECS, "flush")
        return None

    def on_wakeup(self, payload: Any) -> None:
        if payload == "flush":
            self.armed = False
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        now = rfc3339()
        first = self.seq + 1
        with self.env.begin(write=True, db=self.log_db) as txn:
            for event in self.buffer:
                self.seq += 1
                record = {"seq": self.seq, "timestamp": now, **event}
                txn.put(seq_key(self.seq), pack(record), append=True)
            self.count += len(self.buffer)
            retention = int(self.section("kernel").get("event_log_retention", DEFAULT_RETENTION))
            if self.count > retention:
                cursor = txn.cursor()
                cursor.first()
                for _ in range(self.count - retention):
                    cursor.delete()
                self.count = retention
        self.appended += len(self.buffer)
        self.batches += 1
        self.buffer = []
        # Committed (sync) before anyone hears of it.
        for reply_to, offset, n in self.waiting:
            self.reply(reply_to, Published(first + offset, first + offset + n - 1))
        self.waiting = []
        self.notify()

    def notify(self) -> None:
        now = time.monotonic()
        for key, (addr, expires) in list(self.subscribers.items()):
            if expires < now:
                del self.subscribers[key]
            else:
                self.send(addr, LogAdvanced(self.seq))

    def on_Subscribe(self, msg: Subscribe) -> Subscribed:
        assert self.reply_to is not None
        addr = self.reply_to.address
        self.subscribers[str(addr)] = (addr, time.monotonic() + max(1.0, msg.lease_secs))
        return Subscribed(self.seq)

    def on_stop(self) -> None:
        self.flush()
        self.env.close()
