"""AuditLedger: the only writer of the hash chain.  Appends are group-committed;
an ``Append`` ask is answered only once its entries are durable."""

from __future__ import annotations

from typing import Any

from ..batching import GroupCommit
from ..service import DEFERRED, ServiceActor, rfc3339
from ..store import key_seq, open_writer, pack, seq_key, unpack
from .chain import AGENT_DB, CHAIN_DB, DOMAIN, GENESIS, agent_key, entry_hash, verify_entries
from .messages import Append, Appended, AuditRecord, Flush, Flushed, Verified, Verify


class AuditLedger(ServiceActor):
    name = "audit"

    def on_configure(self) -> None:
        self.env = open_writer(self.home, DOMAIN)
        self.chain = self.env.open_db(CHAIN_DB.encode())
        self.by_agent = self.env.open_db(AGENT_DB.encode())
        self.seq, self.prev_hash = 0, GENESIS
        with self.env.begin(db=self.chain) as txn:
            cursor = txn.cursor()
            if cursor.last():
                self.seq = key_seq(cursor.key())
                self.prev_hash = unpack(cursor.value())["hash"]
        self.group: GroupCommit[AuditRecord] = GroupCommit(self, self.commit, Appended)
        self.on_config_changed()

    def on_config_changed(self) -> None:
        if hasattr(self, "group"):
            grouped = bool(self.section("audit").get("group_commit", True))
            self.group.flush()
            self.group.delay, self.group.max_items = (0.002, 4096) if grouped else (0.0, 1)

    def on_Append(self, msg: Append) -> Any:
        if not msg.records:
            from ..messages import Failure
            return Failure(400, "Append needs at least one record")
        records = [r for r in msg.records if isinstance(r, AuditRecord)]
        if len(records) != len(msg.records):
            from ..messages import Failure
            return Failure(400, "Append takes AuditRecord entries")
        self.group.add(records, self.reply_to)
        return DEFERRED if self.reply_to is not None and self.reply_to.rid is not None else None

    def on_wakeup(self, payload: Any) -> None:
        self.group.on_wakeup(payload)

    def commit(self, records: list[AuditRecord]) -> int:
        first = self.seq + 1
        now = rfc3339()
        seq, prev = self.seq, self.prev_hash
        with self.env.begin(write=True) as txn:
            for r in records:
                seq += 1
                entry = {"seq": seq, "timestamp": now, "agent_name": r.agent_name, "action": r.action,
                         "resource": r.resource, "allowed": bool(r.allowed), "reason": r.reason,
                         "prev_hash": prev}
                entry["hash"] = prev = entry_hash(entry)
                txn.put(seq_key(seq), pack(entry), db=self.chain, append=True)
                txn.put(agent_key(r.agent_name, seq), b"", db=self.by_agent)
        self.seq, self.prev_hash = seq, prev  # only after the commit succeeded
        return first

    def on_Flush(self, msg: Flush) -> Flushed:
        self.group.flush()
        self.env.sync(True)
        return Flushed(self.seq)

    def on_Verify(self, msg: Verify) -> Verified:
        self.group.flush()
        with self.env.begin(db=self.chain) as txn:
            result = verify_entries(unpack(raw) for _, raw in txn.cursor().iternext())
        return Verified(**result)

    def stats(self) -> dict[str, Any]:
        return {"last_seq": self.seq, "batches": self.group.batches, "appended": self.group.items}

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.group.flush()
            self.env.close()
