"""Approvals: holds pending human approvals, answers the waiting actor when a human
decides or the request expires, and survives restarts (requests and the waiting
actor's address are in LMDB)."""

from __future__ import annotations

import pickle
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from ..messages import Failure, Ok
from ..service import DEFERRED, ReplyTo, ServiceActor, rfc3339
from ..store import open_writer, pack, unpack
from . import records
from .messages import ApprovalOutcome, RequestApproval, Resolve

TICK_SECS = 0.5


class Approvals(ServiceActor):
    name = "approvals"
    clock = staticmethod(time.time)  # injectable for tests

    def on_configure(self) -> None:
        self.env = open_writer(self.home, records.DOMAIN)
        self.requests = self.env.open_db(records.REQUESTS_DB.encode())
        self.waiters = self.env.open_db(records.WAITERS_DB.encode())
        self.ticking = False
        self.expire_due()

    def timeout(self) -> float:
        return float(self.section("approvals").get("timeout_secs", 3600))

    def on_RequestApproval(self, msg: RequestApproval) -> Any:
        now = self.clock()
        rid = str(uuid.uuid4())
        record = {"id": rid, "subject": msg.subject, "action": msg.action, "resource": msg.resource,
                  "reason": msg.reason, "created_at": rfc3339(), "status": "pending",
                  "expires_at": rfc3339(datetime.fromtimestamp(now + self.timeout(), UTC)),
                  "expires_ts": now + self.timeout(), "resolved_at": None, "resolved_by": None}
        with self.env.begin(write=True) as txn:
            txn.put(rid.encode(), pack(record), db=self.requests)
            if self.reply_to is not None:
                txn.put(rid.encode(), pickle.dumps(self.reply_to), db=self.waiters)
        self.audit(msg.subject, "approval_requested", f"{msg.action} {msg.resource}".strip(), True, msg.reason)
        self.publish("approval_requested", approval_id=rid, subject=msg.subject, action=msg.action)
        self.arm()
        return DEFERRED

    def on_Resolve(self, msg: Resolve) -> Any:
        with self.env.begin(db=self.requests) as txn:
            raw = txn.get(msg.id.encode())
        record = None if raw is None else unpack(raw)
        if record is None:
            return Failure(404, f"approval request {msg.id} not found")
        if record["status"] != "pending":
            return Failure(404, f"approval request {msg.id} is not pending (it is {record['status']})")
        status = "approved" if msg.approve else "rejected"
        self.finish(record, status, msg.by, f"{status} by {msg.by}")
        return Ok({"status": status, "id": msg.id})

    def finish(self, record: dict[str, Any], status: str, by: str, reason: str) -> None:
        record.update(status=status, resolved_at=rfc3339(), resolved_by=by)
        key = record["id"].encode()
        with self.env.begin(write=True) as txn:
            txn.put(key, pack(record), db=self.requests)
            waiter = txn.pop(key, db=self.waiters)
        self.audit(record["subject"], f"approval_{status}", f"{record['action']} {record['resource']}".strip(),
                   status == "approved", reason)
        self.publish("approval_resolved", approval_id=record["id"], status=status)
        if waiter is not None:
            reply_to: ReplyTo = pickle.loads(waiter)
            # If the waiting agent is gone this becomes a dead letter: nothing else to do.
            self.reply(reply_to, ApprovalOutcome(record["id"], status, reason))

    def pending(self) -> list[dict[str, Any]]:
        with self.env.begin(db=self.requests) as txn:
            return [r for r in (unpack(v) for _, v in txn.cursor().iternext()) if r["status"] == "pending"]

    def expire_due(self) -> None:
        now = self.clock()
        for record in self.pending():
            if record.get("expires_ts", 0) <= now:
                self.finish(record, "expired", "system", "expired without a decision")
        if self.pending():
            self.arm()

    def arm(self) -> None:
        if not self.ticking:
            self.ticking = True
            self.after(TICK_SECS, "expire")

    def on_wakeup(self, payload: Any) -> None:
        if payload == "expire":
            self.ticking = False
            self.expire_due()

    def stats(self) -> dict[str, Any]:
        return {"pending": len(self.pending())}

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.env.close()
