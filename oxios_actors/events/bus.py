"""EventBus: appends events to the LMDB log in batches and tells subscribers.

Publishes are group-committed (see ``batching.GroupCommit``).  Subscribers (the
edges) get one ``LogAdvanced`` per batch, never one message per event, and hold
a lease they renew; a subscriber that stops renewing is forgotten.
"""

from __future__ import annotations

import time
from typing import Any

from thespian.actors import ActorAddress

from ..batching import GroupCommit
from ..messages import Failure
from ..service import DEFERRED, ServiceActor, rfc3339
from ..store import key_seq, open_writer, pack, seq_key
from .log import DOMAIN, LOG_DB, sanitize
from .messages import LogAdvanced, Publish, Published, Subscribe, Subscribed

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
        self.subscribers: dict[str, tuple[ActorAddress, float]] = {}
        self.group: GroupCommit[dict[str, Any]] = GroupCommit(self, self.commit, Published,
                                                             after=self.notify)

    def stats(self) -> dict[str, Any]:
        return {"last_seq": self.seq, "appended": self.group.items, "batches": self.group.batches,
                "subscribers": len(self.subscribers), "retained": self.count}

    def on_Publish(self, msg: Publish) -> Any:
        if not msg.events:
            return Failure(400, "Publish needs at least one event")
        try:
            events = [sanitize(e) for e in msg.events]
        except ValueError as exc:
            return Failure(400, str(exc))
        self.group.add(events, self.reply_to)
        return DEFERRED if self.reply_to is not None and self.reply_to.rid is not None else None

    def on_wakeup(self, payload: Any) -> None:
        self.group.on_wakeup(payload)

    def commit(self, events: list[dict[str, Any]]) -> int:
        now = rfc3339()
        first = self.seq + 1
        with self.env.begin(write=True, db=self.log_db) as txn:
            for event in events:
                self.seq += 1
                txn.put(seq_key(self.seq), pack({"seq": self.seq, "timestamp": now, **event}), append=True)
            self.count += len(events)
            retention = int(self.section("kernel").get("event_log_retention", DEFAULT_RETENTION))
            if self.count > retention:
                cursor = txn.cursor()
                cursor.first()
                for _ in range(self.count - retention):
                    cursor.delete()
                self.count = retention
        return first  # committed (sync): only now do askers and subscribers hear of it

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
        if hasattr(self, "env"):
            self.group.flush()
            self.env.close()
