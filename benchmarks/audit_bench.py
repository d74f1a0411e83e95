"""Audit ledger throughput: ``python -m benchmarks.audit_bench [--quick]``.

Durable appends/s through the real ``AuditLedger`` actor on the multiprocTCPBase
runtime, in two modes measured in the same run:

* group commit (``audit.group_commit`` true, the default): entries that arrive
  while a 2 ms timer runs share one LMDB transaction (one fsync);
* one entry per transaction (``PUT /api/config {"audit": {"group_commit": false}}``,
  sent here as ``UpdateConfig`` to the ConfigService): every ``Append`` commits alone.

Arrival patterns (each bounded by count and time):

* *burst of tells from an actor*: ``Burster``, an actor in the same system, sends
  N ``Append`` tells of 1 entry (how services call ``self.audit``) then one ``Append``
  ask; the ask is answered once its entry -- the last -- is durable, so N+1 entries
  are durable when the answer arrives;
* *burst of tells from outside*: the same from this process's actor-system context;
* *8 concurrent askers*: 8 threads, each a loop of ``Append`` asks of 1 entry
  (each answered only when durable);
* *1 asker*: one thread, asks of 1 entry (durable-append latency with no company).

Then the chain is filled to 100k entries (10k with --quick) and ``Verify`` (what
``GET /api/audit/verify`` asks, timeout 120 s) is timed, next to the same check run
in this process over the same LMDB (``verify_entries`` on a read-only view): the
cost without the actor hop.  Results: a table, and
benchmarks/results/audit-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from functools import partial
from typing import Any

from thespian.actors import Actor, ActorExitRequest

from oxios_actors.audit.messages import Append, Appended, AuditRecord, Verified, Verify
from oxios_actors.messages import Answer, Ask, Ping

from .bench_common import (
    Background,
    System,
    lat_summary,
    leftovers,
    logger,
    machine,
    ratio,
    save,
    table,
    timestamp,
    wait_quiet,
)

log = logger("audit-bench")
TIME_BOUND_SECS = 60.0
TARGET_APPENDS_PER_S = 20_000.0
TARGET_VERIFY_S = 2.0
RECORD = AuditRecord("bench-agent", "file_write", "notes/bench.md", True, None)


CHUNK = 500  # sends per handler turn: Thespian drops queued transmits beyond ~1,050


class Burster(Actor):
    """On ``("burst", target, n, per_message)``: n tells of ``Append`` (``per_message``
    entries each; a bare tuple when the target is the Sink), then the same as an ask;
    answers ``("done", messages)`` when the ask is answered (everything before it is
    then durable: the ledger handles one sender's messages in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.client: Any = None

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, tuple) and msg and msg[0] == "burst":
            _, self.target, n, per = msg
            self.client, self.left = sender, int(n)
            self.msg = Append((RECORD,) * int(per)) if per else ("tick", 1)
            self.more()
        elif isinstance(msg, tuple) and msg and msg[0] == "more":
            self.more()
        elif isinstance(msg, Answer) and self.client is not None:
            self.send(self.client, ("done", msg.reply))
            self.client = None

    def more(self) -> None:
        k = min(CHUNK, self.left)
        for _ in range(k):
            self.send(self.target, self.msg)
        self.left -= k
        if self.left:
            self.send(self.myAddress, ("more",))
        else:
            self.send(self.target, Ask("burst-end", self.msg))


def ledger_stats(sys_: System) -> dict[str, int]:
    s = sys_.ask("audit", Ping(), 30).stats
    return {"last_seq": int(s["last_seq"]), "batches": int(s["batches"]), "appended": int(s["appended"])}


def row(name: str, mode: str, n: int, elapsed: float, before: dict[str, int], after: dict[str, int],
        noise: Background, latencies: list[float] | None = None) -> dict[str, Any]:
    commits = after["batches"] - before["batches"]
    appended = after["appended"] - before["appended"]
    out = {"variant": name, "mode": mode, "entries": n, "durable": after["last_seq"] - before["last_seq"],
           "elapsed_s": round(elapsed, 3), "appends_per_s": round(n / elapsed, 1) if elapsed else None,
           "commits": commits, "entries_per_commit": round(appended / commits, 1) if commits else None,
           "background_cpu_pct": noise.pct(), "complete": after["last_seq"] - before["last_seq"] >= n}
    if latencies is not None:
        out["ask_latency"] = lat_summary(latencies)
    return out


def burst_from_actor(sys_: System, burster: Any, target: Any, n: int, per: int, mode: str) -> dict[str, Any]:
    """n tells + 1 ask from the Burster; ``per`` entries per message (0: the raw Sink)."""
    bridge = sys_.edge.bridge
    before, noise = ledger_stats(sys_), Background(sys_.actor_pids)
    t0 = time.monotonic()
    reply = bridge.asys.ask(burster, ("burst", target, n, per), TIME_BOUND_SECS * 2)
    elapsed = time.monotonic() - t0
    ok = isinstance(reply, tuple) and reply[0] == "done"
    if not ok:
        log(f"  burster did not finish: {reply!r}")
    after = ledger_stats(sys_)
    if per == 0:  # the Sink: messages/s through the transport, no ledger
        got = reply[1] if ok else 0
        return {"variant": "raw Thespian: burst of tells actor -> counting actor + final ask",
                "mode": "baseline", "entries": n + 1, "durable": None, "elapsed_s": round(elapsed, 3),
                "appends_per_s": round((n + 1) / elapsed, 1), "messages_per_s": round((n + 1) / elapsed, 1),
                "commits": None, "entries_per_commit": None, "background_cpu_pct": noise.pct(),
                "complete": got >= n + 1, "received": got}
    name = f"burst of tells from an actor ({per} entr{'y' if per == 1 else 'ies'}/msg) + final ask"
    r = row(name, mode, (n + 1) * per, elapsed, before, after, noise)
    r["messages_per_s"] = round((n + 1) / elapsed, 1)
    return r


def burst_from_outside(sys_: System, n: int, mode: str) -> dict[str, Any]:
    bridge = sys_.edge.bridge
    ctx, addr = bridge._control_ctx, bridge.directory["audit"]
    one = Append((RECORD,))
    before, noise = ledger_stats(sys_), Background(sys_.actor_pids)
    t0 = time.monotonic()
    sent = 0
    for _ in range(n):
        ctx.tell(addr, one)
        sent += 1
        if time.monotonic() - t0 > TIME_BOUND_SECS:
            break
    sent_s = time.monotonic() - t0
    reply = sys_.ask("audit", Append((RECORD,)), TIME_BOUND_SECS * 2)
    elapsed = time.monotonic() - t0
    assert isinstance(reply, Appended), reply
    after = ledger_stats(sys_)
    r = row("burst of tells from this process + final ask", mode, sent + 1, elapsed, before, after, noise)
    r["send_only_s"] = round(sent_s, 3)
    return r


def askers(sys_: System, threads: int, n: int, mode: str) -> dict[str, Any]:
    bridge = sys_.edge.bridge
    latencies: list[float] = []
    lock = threading.Lock()
    done = [0]
    before, noise = ledger_stats(sys_), Background(sys_.actor_pids)
    t0 = time.monotonic()

    def loop(k: int) -> None:
        mine = []
        for _ in range(k, n, threads):
            if time.monotonic() - t0 > TIME_BOUND_SECS:
                break
            t = time.monotonic()
            reply = bridge.ask_sync("audit", Append((RECORD,)), 30.0)
            mine.append(time.monotonic() - t)
            assert isinstance(reply, Appended), reply
        with lock:
            latencies.extend(mine)
            done[0] += len(mine)

    for job in [bridge.pool.submit(loop, k) for k in range(threads)]:
        job.result()
    elapsed = time.monotonic() - t0
    after = ledger_stats(sys_)
    name = f"asks of 1 entry, {threads} concurrent caller{'s' if threads > 1 else ''}"
    return row(name, mode, done[0], elapsed, before, after, noise, latencies)


def fill(sys_: System, total: int) -> float:
    """Appends 1,000-entry asks until the chain holds ``total`` entries; returns the time."""
    t0 = time.monotonic()
    have = ledger_stats(sys_)["last_seq"]
    while have < total and time.monotonic() - t0 < TIME_BOUND_SECS * 3:
        k = min(1000, total - have)
        reply = sys_.ask("audit", Append((RECORD,) * k), 60)
        assert isinstance(reply, Appended), reply
        have = reply.last_seq
    return time.monotonic() - t0


def verify(sys_: System, repeats: int) -> dict[str, Any]:
    from oxios_actors.audit.chain import CHAIN_DB, DOMAIN, verify_entries
    from oxios_actors.store import unpack

    times, result = [], None
    for _ in range(repeats):
        t0 = time.monotonic()
        result = sys_.ask("audit", Verify(), 120)
        times.append(time.monotonic() - t0)
        assert isinstance(result, Verified), result
    local = []
    store = sys_.edge.store
    for _ in range(repeats):
        found = store.db(DOMAIN, CHAIN_DB)
        assert found is not None
        env, db = found
        t0 = time.monotonic()
        with env.begin(db=db) as txn:
            verify_entries(unpack(raw) for _, raw in txn.cursor().iternext())
        local.append(time.monotonic() - t0)
    assert result is not None
    return {"entries": result.entry_count, "valid": result.valid,
            "verify_ask_s": [round(t, 3) for t in times], "verify_ask_best_s": round(min(times), 3),
            "in_process_s": [round(t, 3) for t in local], "in_process_best_s": round(min(local), 3),
            "ask_vs_in_process": ratio(min(times), min(local)),
            "us_per_entry": round(1e6 * min(times) / max(1, result.entry_count), 2)}


def run(quick: bool) -> dict[str, Any]:
    n_burst, n_ask1, n_ask8, n_verify = (1000, 200, 800, 10_000) if quick else (10_000, 1000, 8000, 100_000)
    quiet_wait = 10.0 if quick else 60.0
    results: dict[str, Any] = {"benchmark": "audit", "timestamp": timestamp(), "quick": quick,
                               "machine": machine(), "rows": [], "targets": {
                                   "durable_appends_per_s_in_bursts": TARGET_APPENDS_PER_S,
                                   "verify_100k_s": TARGET_VERIFY_S}}
    sys_ = System("audit", {"security": {"rate_limit_per_minute": 100_000_000}})
    markers = [str(sys_.home)]
    burster = sink = None
    try:
        log(f"starting the actor system (home {sys_.home})")
        sys_.start()
        asys = sys_.edge.bridge.asys
        burster = asys.createActor("benchmarks.audit_bench.Burster")
        sink = asys.createActor("benchmarks.bench_common.Sink")
        ledger = sys_.edge.bridge.directory["audit"]
        sys_.ask("audit", Append((RECORD,)), 10)  # warm the ledger's process and the connection
        burst_from_actor(sys_, burster, sink, 50, 0, "warm-up")
        results["background_cpu_pct_at_start"] = wait_quiet(quiet_wait, 50.0, log, sys_.actor_pids)
        r = burst_from_actor(sys_, burster, sink, n_burst, 0, "baseline")
        results["rows"].append(r)
        log(f"  {r['variant']}: {r['messages_per_s']} msgs/s")
        for mode, grouped in (("group commit", True), ("1 txn per Append", False)):
            sys_.update_config({"audit": {"group_commit": grouped}})
            log(f"mode: {mode}")
            for job in (partial(burst_from_actor, sys_, burster, ledger, n_burst, 1, mode),
                        partial(burst_from_outside, sys_, n_burst, mode),
                        partial(askers, sys_, 8, n_ask8, mode),
                        partial(askers, sys_, 1, n_ask1, mode),
                        partial(burst_from_actor, sys_, burster, ledger, n_burst // 100, 100, mode)):
                r = job()
                results["rows"].append(r)
                log(f"  {r['variant']}: {r['appends_per_s']} appends/s, {r['entries_per_commit']} per commit, "
                    f"bg cpu {r['background_cpu_pct']}%")
        sys_.update_config({"audit": {"group_commit": True}})
        for r in results["rows"]:
            if r["mode"] == "group commit":
                off = next(o for o in results["rows"]
                           if o["mode"] == "1 txn per Append" and o["variant"] == r["variant"])
                r["ratio_to_one_per_txn"] = ratio(r["appends_per_s"], off["appends_per_s"])
            if r["mode"] != "baseline":
                base = results["rows"][0]["messages_per_s"]
                r["messages_per_s"] = r.get("messages_per_s") or r["appends_per_s"]  # 1 entry/msg
                r["ratio_msgs_to_raw_thespian"] = ratio(r["messages_per_s"], base)
        log(f"filling the chain to {n_verify} entries")
        results["fill_s"] = round(fill(sys_, n_verify), 2)
        results["verify"] = verify(sys_, 3)
        v = results["verify"]
        log(f"  verify of {v['entries']} entries: {v['verify_ask_best_s']} s (in process {v['in_process_best_s']} s)")
        best_burst = max(r["appends_per_s"] or 0 for r in results["rows"]
                         if r["mode"] == "group commit" and "(100 entries" not in r["variant"])
        batched = max(r["appends_per_s"] or 0 for r in results["rows"]
                      if r["mode"] == "group commit" and "(100 entries" in r["variant"])
        results["aims"] = {
            "best_group_commit_appends_per_s": best_burst,
            "appends_aim_met": best_burst >= TARGET_APPENDS_PER_S,
            "batched_100_per_msg_appends_per_s": batched,
            "verify_s_per_100k": round(v["verify_ask_best_s"] * 100_000 / max(1, v["entries"]), 3),
            "verify_aim_met": v["verify_ask_best_s"] * 100_000 / max(1, v["entries"]) < TARGET_VERIFY_S}
    finally:
        if burster is not None and sys_.edge is not None:
            sys_.edge.bridge.asys.tell(burster, ActorExitRequest())
            sys_.edge.bridge.asys.tell(sink, ActorExitRequest())
        pgids = set(sys_.pgids)
        sys_.stop()
        results["log_findings"] = sys_.findings
        results["leftover_processes"] = leftovers(pgids, markers)
    return results


def report(results: dict[str, Any]) -> str:
    rows = [[r["variant"], r["mode"], r["entries"], r["appends_per_s"], r.get("ratio_to_one_per_txn"),
             r.get("messages_per_s"), r.get("ratio_msgs_to_raw_thespian"),
             r["commits"], r["entries_per_commit"], (r.get("ask_latency") or {}).get("p50_ms"),
             (r.get("ask_latency") or {}).get("p99_ms"), r["background_cpu_pct"],
             "yes" if r["complete"] else "NO"]
            for r in results["rows"]]
    out = [f"Audit ledger  {results['timestamp']}  (quick={results['quick']})",
           table(["variant", "mode", "entries", "appends/s", "x 1/txn", "msgs/s", "x raw", "commits", "per commit",
                  "ask p50 ms", "ask p99 ms", "bg cpu%", "durable"], rows)]
    v = results.get("verify")
    if v:
        out.append(f"Verify {v['entries']:,} entries: ask {v['verify_ask_best_s']} s (runs {v['verify_ask_s']}), "
                   f"in process {v['in_process_best_s']} s; {v['us_per_entry']} us/entry; valid={v['valid']}")
    a = results.get("aims")
    if a:
        out.append(f"Aims: >= {TARGET_APPENDS_PER_S:,.0f} durable appends/s in bursts: best "
                   f"{a['best_group_commit_appends_per_s']:,.0f} with 1 entry/message "
                   f"({'met' if a['appends_aim_met'] else 'NOT met'}), "
                   f"{a['batched_100_per_msg_appends_per_s']:,.0f} with 100 entries/message; "
                   f"verify 100k < {TARGET_VERIFY_S} s: {a['verify_s_per_100k']} s per 100k "
                   f"({'met' if a['verify_aim_met'] else 'NOT met'})")
    if results.get("log_findings"):
        out.append("Warnings/errors in the actor logs: " + "; ".join(results["log_findings"][:8]))
    if results.get("leftover_processes"):
        out.append("LEFTOVER processes (killed): " + "; ".join(results["leftover_processes"]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.audit_bench")
    ap.add_argument("--quick", action="store_true", help="fewer entries (10k for verify)")
    args = ap.parse_args(argv)
    results = run(args.quick)
    print(report(results), flush=True)
    print(f"results: {save('audit', results)}")
    return 0 if all(r["complete"] for r in results["rows"]) and not results["leftover_processes"] else 1


if __name__ == "__main__":
    sys.exit(main())
