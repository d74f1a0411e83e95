"""Scheduler throughput: ``python -m benchmarks.scheduler_bench [--quick]``.

One *cycle* is a whole task life through the real Scheduler actor: ``Submit``
(an ask, committed before the reply) -> start decision (committed, ``StartTask``
to the owner) -> the owner's ``TaskFinished`` (committed; frees the slot, starts
the next).  The owner is ``AutoOwner``, an actor that finishes every task at
once, so what is measured is the scheduler's own decision path and its durable
(sync) LMDB commits.

Variants: simpleSystemBase in this process (no sockets: the actor logic and the
commits), and the real multiprocTCPBase runtime through an ``ActorBridge``
(1 submitting thread, then 8).  Results: printed, and written to
benchmarks/results/scheduler-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from thespian.actors import Actor, ActorExitRequest, ActorSystem

from oxios_actors.scheduler.messages import StartTask, Submit, Submitted, TaskFinished

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
TIME_BOUND_SECS = 120.0
CONFIG = {"scheduler": {"max_concurrent": 16, "rate_limit_per_minute": 1_000_000_000,
                        "zombie_timeout_secs": 300}}


class AutoOwner(Actor):
    """Finishes every task it is given at once (a plain tell back to the scheduler)."""

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, StartTask):
            self.send(sender, TaskFinished(msg.task_id, "Completed"))


def log(msg: str) -> None:
    print(f"[scheduler-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def summary(name: str, n: int, elapsed: float, latencies: list[float], done: int) -> dict[str, Any]:
    lat = sorted(latencies)
    return {"name": name, "tasks": n, "finished": done, "elapsed_s": round(elapsed, 3),
            "cycles_per_s": round(done / elapsed, 1) if elapsed else None,
            "submit_p50_ms": round(1000 * statistics.median(lat), 3) if lat else None,
            "submit_p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 3) if lat else None,
            "complete": done >= n}


def bench_simple(n: int) -> dict[str, Any]:
    """simpleSystemBase: Scheduler and AutoOwner in this process."""
    from oxios_actors.messages import Answer, Ask, Configure, Ping

    asys = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        with tempfile.TemporaryDirectory(prefix="oxios-sched-bench-") as home:
            owner = asys.createActor(AutoOwner)
            sched = asys.createActor("oxios_actors.scheduler.actor.Scheduler")
            asys.ask(sched, Configure("scheduler", home, {}, CONFIG), 10)
            latencies: list[float] = []
            t0 = time.monotonic()
            for i in range(n):
                t = time.monotonic()
                reply = asys.ask(sched, Ask("b", Submit(f"bench {i}", i % 4, {}, owner)), 10)
                latencies.append(time.monotonic() - t)
                assert isinstance(reply, Answer) and isinstance(reply.reply, Submitted), reply
                if time.monotonic() - t0 > TIME_BOUND_SECS:
                    break
            done, commits = 0, 0
            while time.monotonic() - t0 < TIME_BOUND_SECS:
                stats = asys.ask(sched, Ask("p", Ping()), 10).reply.stats
                done, commits = stats["finished"], stats["commits"]
                if done >= n:
                    break
            elapsed = time.monotonic() - t0
            asys.tell(sched, ActorExitRequest())
            return {**summary("simpleSystemBase, 1 submitter", n, elapsed, latencies, done),
                    "commits": commits}
    finally:
        asys.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_runtime(n: int, thread_counts: tuple[int, ...]) -> list[dict[str, Any]]:
    """The real runtime (launcher -> admin -> Kernel -> Scheduler), asks through a bridge."""
    from http_edge.bridge import ActorBridge
    from oxios_actors.messages import Ping
    from oxios_actors.runtime import ActorRuntime

    rows = []
    with tempfile.TemporaryDirectory(prefix="oxios-sched-bench-") as tmp:
        home = Path(tmp)
        (home / "config.json").write_text(json.dumps(CONFIG))
        port = free_port()
        runtime = ActorRuntime(home, port)
        log(f"starting the actor system (home {home}, port {port})")
        runtime.start()
        bridge = ActorBridge(port, threads=max(thread_counts))
        try:
            bridge.start()
            owner = bridge.asys.createActor("benchmarks.scheduler_bench.AutoOwner")

            def counters() -> dict[str, int]:
                stats = bridge.ask_sync("scheduler", Ping(), 10.0).stats
                return {"finished": int(stats["finished"]), "commits": int(stats["commits"])}

            for threads in thread_counts:
                rows.append(run_variant(bridge, owner, n, threads, counters))
                log(f"  {rows[-1]['name']}: {rows[-1]['cycles_per_s']} cycles/s")
            bridge.asys.tell(owner, ActorExitRequest())
        finally:
            bridge.close()
            runtime.stop()
    return rows


def run_variant(bridge: Any, owner: Any, n: int, threads: int, counters: Any) -> dict[str, Any]:
    """``n`` cycles submitted from ``threads`` of the bridge's pool (each thread
    holds its own actor-system context); done when the owner finished them all."""
    base = counters()
    latencies: list[float] = []
    lock = threading.Lock()
    t0 = time.monotonic()

    def chunk(k: int) -> None:
        for i in range(k, n, threads):
            if time.monotonic() - t0 > TIME_BOUND_SECS:
                return
            t = time.monotonic()
            reply = bridge.ask_sync("scheduler", Submit(f"bench {i}", i % 4, {}, owner), 10.0)
            assert isinstance(reply, Submitted), reply
            with lock:
                latencies.append(time.monotonic() - t)

    for job in [bridge.pool.submit(chunk, k) for k in range(threads)]:
        job.result()
    done, now = 0, base
    while time.monotonic() - t0 < TIME_BOUND_SECS:
        now = counters()
        done = now["finished"] - base["finished"]
        if done >= n:
            break
        time.sleep(0.005)
    row = summary(f"multiprocTCPBase via bridge, {threads} submitter(s)", n, time.monotonic() - t0,
                  latencies, done)
    row["commits"] = now["commits"] - base["commits"]
    return row


def run(quick: bool) -> dict[str, Any]:
    n_simple, n_runtime = (300, 500) if quick else (3000, 5000)
    stamp = datetime.now(UTC)
    results: dict[str, Any] = {"benchmark": "scheduler", "timestamp": stamp.isoformat(timespec="seconds"),
                               "quick": quick, "config": CONFIG["scheduler"], "rows": []}
    log(f"simpleSystemBase: {n_simple} submit/start/finish cycles")
    results["rows"].append(bench_simple(n_simple))
    log(f"  {results['rows'][-1]['cycles_per_s']} cycles/s")
    log(f"multiprocTCPBase: {n_runtime} cycles per variant")
    results["rows"].extend(bench_runtime(n_runtime, (1, 8)))
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"Scheduler decisions  {results['timestamp']}  (quick={results['quick']})",
             f"{'variant':<48} {'cycles/s':>10} {'tasks':>7} {'commits':>8} {'submit p50 ms':>14} {'p99 ms':>8}  "
             "complete"]
    for r in results["rows"]:
        lines.append(f"{r['name']:<48} {r['cycles_per_s']!s:>10} {r['tasks']:>7} {r['commits']!s:>8} "
                     f"{r['submit_p50_ms']!s:>14} {r['submit_p99_ms']!s:>8}  {'yes' if r['complete'] else 'NO'}")
    lines.append("A cycle = Submit + start decision + TaskFinished, all durable (sync LMDB commits,"
                 " group-committed).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scheduler_bench")
    ap.add_argument("--quick", action="store_true", help="fewer tasks per variant")
    args = ap.parse_args(argv)
    results = run(args.quick)
    print(report(results), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(results["timestamp"]).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"scheduler-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results: {path.relative_to(REPO)}")
    return 0 if all(r["complete"] for r in results["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
