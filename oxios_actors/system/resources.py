"""ResourceMonitor: samples CPU, memory and load on a timer into an LMDB ring.

Environment ``resources``: db ``history`` maps ``seq_key(n)`` to a snapshot;
only the newest ``resource_monitor.history`` samples are kept.
"""

from __future__ import annotations

import os
from typing import Any

import psutil

from ..service import ServiceActor, rfc3339
from ..store import ReadOnlyStore, key_seq, open_writer, pack, seq_key
from .messages import Sample, TakeSample

DOMAIN = "resources"
HISTORY_DB = "history"


def snapshot() -> dict[str, Any]:
    vm = psutil.virtual_memory()
    load1, load5, load15 = os.getloadavg()
    return {
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "memory_percent": float(vm.percent),
        "memory_used_mb": int((vm.total - vm.available) // (1024 * 1024)),
        "memory_total_mb": int(vm.total // (1024 * 1024)),
        "load_avg_1m": round(load1, 2),
        "load_avg_5m": round(load5, 2),
        "load_avg_15m": round(load15, 2),
        "timestamp": rfc3339(),
    }


def history(store: ReadOnlyStore, last_n: int) -> list[dict[str, Any]]:
    """The newest ``last_n`` samples, newest first."""
    out = []
    for _, snap in store.items(DOMAIN, HISTORY_DB, reverse=True):
        out.append(snap)
        if len(out) >= last_n:
            break
    return out


def newest_seq(store: ReadOnlyStore) -> int:
    """The key of the newest sample (0 when there is none): it changes only when a sample is added."""
    found = store.db(DOMAIN, HISTORY_DB)
    if found is None:
        return 0
    env, db = found
    with env.begin(db=db) as txn:
        cursor = txn.cursor()
        return key_seq(cursor.key()) if cursor.last() else 0


def overloaded(snap: dict[str, Any], thresholds: dict[str, Any]) -> bool:
    return (snap["cpu_percent"] >= thresholds["cpu_threshold"]
            or snap["memory_percent"] >= thresholds["memory_threshold"]
            or snap["load_avg_1m"] >= thresholds["load_threshold"])


class ResourceMonitor(ServiceActor):
    name = "resources"

    def on_configure(self) -> None:
        self.env = open_writer(self.home, DOMAIN)
        self.db = self.env.open_db(HISTORY_DB.encode())
        with self.env.begin(db=self.db) as txn:
            cursor = txn.cursor()
            self.seq = key_seq(cursor.key()) if cursor.last() else 0
        psutil.cpu_percent(interval=None)  # prime the CPU counter
        self.record()
        self.timer = 0
        self.current_interval = self.interval()
        self.after(self.current_interval, ("sample", self.timer))

    def interval(self) -> float:
        return float(self.section("resource_monitor").get("interval_secs", 60.0))

    def record(self) -> None:
        keep = int(self.section("resource_monitor").get("history", 60))
        snap = snapshot()
        self.seq += 1
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(seq_key(self.seq), pack(snap))
            cursor = txn.cursor()
            excess = txn.stat(self.db)["entries"] - keep
            if excess > 0 and cursor.first():
                for _ in range(excess):
                    cursor.delete()

    def on_wakeup(self, payload: Any) -> None:
        # Only the newest timer chain samples; an interval change starts a new chain.
        if payload == ("sample", self.timer):
            self.record()
            self.after(self.current_interval, ("sample", self.timer))

    def on_config_changed(self) -> None:
        if self.interval() != self.current_interval:
            self.timer += 1
            self.current_interval = self.interval()
            self.after(self.current_interval, ("sample", self.timer))

    def on_TakeSample(self, msg: TakeSample) -> Sample:
        return Sample(snapshot())

    def stats(self) -> dict[str, Any]:
        return {"samples": self.seq}

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.env.close()
