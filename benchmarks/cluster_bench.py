"""Multi-node throughput and failover: ``python -m benchmarks.cluster_bench [--quick]``.

Nodes on this machine, as tests/test_cluster.py runs them: the home runtime on
127.0.0.1 (``allow=MEMBERS``), workers on 127.0.0.2 and 127.0.0.3
(``ActorRuntime(home, port, addr, allow=MEMBERS, join="127.0.0.1:<home port>",
capabilities=[...], node_name=...)``).  Agents with no requirements go to the
least-loaded worker; with no worker, to the home node.

* **throughput**: N agents (offline provider: a plan written with ``file_write``)
  spawned from 8 threads, until every one is ``Completed``: agents/s placed
  (``Running``) and completed with 1 node (home), 2 (home + 1 worker), 3 (home +
  2 workers), and where they ran.  The ratio to the 1-node rate is the scaling.
* **failover** (scripted OpenAI-compatible model, ``[script:shell sleep N]``): a
  long agent runs on a worker; that worker is SIGKILLed (launcher killed, its
  process group swept, as the test does).  Timed from the kill: the agent marked
  ``Failed`` "node lost", and its requeued replacement ``Running`` (with a pid) on
  the other worker.  The killed worker is started again between repetitions.
  ``cluster.node_timeout_secs`` (default 5 s) is the heartbeat silence that
  declares a node lost, so it is the floor of the first number.

Results: a table and benchmarks/results/cluster-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

from oxios_actors.agents import records
from oxios_actors.agents.messages import AgentSpec, KillAgent, SpawnAgent, Spawned
from oxios_actors.launcher import sweep
from oxios_actors.runtime import ActorRuntime

from .bench_common import (
    Background,
    ModelThread,
    System,
    free_port,
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

log = logger("cluster-bench")
MEMBERS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
SLEEP = 986
CONFIG = {"security": {"rate_limit_per_minute": 100_000_000, "max_execution_time_secs": 3600},
          "scheduler": {"max_concurrent": 64, "rate_limit_per_minute": 1_000_000_000, "zombie_timeout_secs": 3600},
          "exec": {"shell_timeout_secs": 3600}, "cluster": {"allowed_peers": MEMBERS}}


class Cluster:
    def __init__(self, sys_: System) -> None:
        self.sys = sys_
        self.workers: dict[str, ActorRuntime] = {}

    def start_worker(self, addr: str, name: str) -> float:
        t0 = time.monotonic()
        rt = ActorRuntime(self.sys.home / name, free_port(addr), addr, allow=MEMBERS,
                          join=f"127.0.0.1:{self.sys.runtime.actor_port}", capabilities=["bench"], node_name=name)
        info = rt.start()
        self.sys.pgids.add(int(info["admin_pgid"]))
        self.workers[name] = rt
        self.wait_nodes(len(self.workers))
        return time.monotonic() - t0

    def wait_nodes(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(records.list_nodes(self.sys.edge.store)) == n:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the convention never had {n} worker(s)")

    def kill_worker(self, name: str) -> None:
        """SIGKILL the node: its launcher, then everything in its admin's process group."""
        rt = self.workers.pop(name)
        assert rt.proc is not None and rt.admin_pgid is not None
        rt.proc.kill()
        rt.proc.wait()
        sweep(rt.admin_pgid, grace=0.5)
        rt.proc = None

    def stop(self) -> None:
        for rt in self.workers.values():
            rt.stop()
        self.workers.clear()


def spawn(sys_: System, goal: str, **kw: Any) -> str:
    reply = sys_.ask("agents", SpawnAgent(AgentSpec(goal, **kw), notify=sys_.sink), 30)
    assert isinstance(reply, Spawned), reply
    return reply.agent_id


def throughput(sys_: System, nodes: int, n: int) -> dict[str, Any]:
    lock = threading.Lock()
    asked: dict[str, float] = {}
    noise = Background(sys_.actor_pids)
    t0 = time.monotonic()

    errors: list[str] = []

    def one(i: int) -> None:
        t = time.monotonic()
        try:
            agent_id = spawn(sys_, f"Write a short plan for part {i} on {nodes} nodes",
                             plan_path=f"plans/cluster-{nodes}-{i}.md")
        except Exception as exc:  # counted: the row reports how many could not be spawned
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
            return
        with lock:
            asked[agent_id] = t

    for job in [sys_.edge.bridge.pool.submit(one, i) for i in range(n)]:
        job.result()
    running: dict[str, float] = {}
    final: dict[str, tuple[float, str, str | None]] = {}
    while len(final) < len(asked) and time.monotonic() - t0 < 180:
        for agent_id, t in asked.items():
            if agent_id in final:
                continue
            r = records.get_agent(sys_.edge.store, agent_id) or {}
            now = time.monotonic()
            if agent_id not in running and r.get("status") in ("Running", *records.FINAL):
                running[agent_id] = now - t
            if r.get("status") in records.FINAL:
                final[agent_id] = (now - t0, r["status"], r.get("node"))
        time.sleep(0.005)
    wall = time.monotonic() - t0
    completed = [f for f in final.values() if f[1] == "Completed"]
    placed_wall = max(running.values(), default=0.0) + (min(asked.values(), default=t0) - t0)
    where: dict[str, int] = {}
    for _, _, node in final.values():
        where[str(node)] = where.get(str(node), 0) + 1
    return {"nodes": nodes, "agents": n, "completed": len(completed), "wall_s": round(wall, 2),
            "completed_per_s": round(len(completed) / wall, 2) if wall else None,
            "placed_per_s": round(len(running) / placed_wall, 2) if placed_wall else None,
            "to_running": lat_summary(list(running.values())),
            "to_final": lat_summary([f[0] for f in final.values()]), "placement": where,
            "failed": {a: r for a, r in final.items() if r[1] != "Completed"} or None, "spawn_errors": errors,
            "background_cpu_pct": noise.pct()}


def failover(cl: Cluster) -> dict[str, Any]:
    sys_ = cl.sys
    agent_id = spawn(sys_, f"Long job [script:shell sleep {SLEEP}]")
    deadline = time.monotonic() + 30
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        record = records.get_agent(sys_.edge.store, agent_id) or {}
        if record.get("pid") and record.get("node") in cl.workers:
            break
        time.sleep(0.02)
    node = record.get("node")
    assert node in cl.workers, f"the long agent did not start on a worker: {record}"
    time.sleep(0.5)  # let its tool start
    t0 = time.monotonic()
    cl.kill_worker(node)
    failed_s = replaced_s = None
    error = None
    replacement = None
    while time.monotonic() - t0 < 60:
        now = time.monotonic() - t0
        if failed_s is None:
            r = records.get_agent(sys_.edge.store, agent_id) or {}
            if r.get("status") == "Failed":
                failed_s, error = now, r.get("error")
        else:
            items, _ = records.page(sys_.edge.store, 0, 100_000)
            for a in items:
                if a["name"] == record["name"] and a["id"] != agent_id and a["status"] == "Running":
                    full = records.get_agent(sys_.edge.store, a["id"]) or {}
                    if full.get("pid"):
                        replacement, replaced_s = full, now
            if replacement is not None:
                break
        time.sleep(0.01)
    return {"killed_node": node, "to_failed_s": None if failed_s is None else round(failed_s, 3),
            "error": error, "to_replacement_running_s": None if replaced_s is None else round(replaced_s, 3),
            "replacement_node": (replacement or {}).get("node"),
            "replacement_id": (replacement or {}).get("id")}


def orphaned_tools() -> list[int]:
    """``sleep`` tool processes that no live node owns any more (no launcher among
    their ancestors): what a SIGKILLed node leaves behind.  Killed here (we started them)."""
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if f"sleep {SLEEP}" not in " ".join(p.info["cmdline"] or []):
                continue
            owners = [" ".join(a.cmdline()) for a in p.parents()]
            if not any("oxios_actors.launcher" in c for c in owners):
                out.append(p.pid)
                p.kill()
        except psutil.Error:
            continue
    return out


def tools_alive() -> int:
    import psutil

    n = 0
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and f"sleep {SLEEP}" in " ".join(p.info["cmdline"] or []):
                n += 1
        except psutil.Error:
            continue
    return n


def remote_kill_done(agents: int, t0: float) -> dict[str, Any]:
    """KillAgent of an agent on a worker only sends it ActorExitRequest (its on_stop kills
    its tools): how long until no ``sleep`` tool of ours is left (at most 15 s)."""
    while tools_alive() and time.monotonic() - t0 < 15:
        time.sleep(0.01)
    left = tools_alive()
    return {"agents": agents, "tools_gone_s": None if left else round(time.monotonic() - t0, 3),
            "tools_still_running": left}


def run(quick: bool) -> dict[str, Any]:
    n, reps = (12, 1) if quick else (40, 3)
    results: dict[str, Any] = {"benchmark": "cluster", "timestamp": timestamp(), "quick": quick,
                               "machine": machine(), "agents_per_run": n, "throughput": [], "failover": []}
    sys_ = System("cluster", CONFIG, allow=MEMBERS)
    cl = Cluster(sys_)
    model = ModelThread()
    long_agents: list[str] = []
    try:
        log(f"starting the home node (home {sys_.home})")
        sys_.start()
        spawn(sys_, "Write a warm-up plan", plan_path="plans/warm.md")
        results["background_cpu_pct_at_start"] = wait_quiet(10.0 if quick else 45.0, 50.0, log, sys_.actor_pids)
        results["worker_join_s"] = []
        for nodes, addr, name in ((1, "", ""), (2, "127.0.0.2", "w-1"), (3, "127.0.0.3", "w-2")):
            if name:
                results["worker_join_s"].append(round(cl.start_worker(addr, name), 2))
                t = time.monotonic()
                try:
                    spawn(sys_, "Write a warm-up plan on the new node", plan_path=f"plans/warm-{name}.md")
                except Exception as exc:  # recorded: a stuck control plane is a finding, not a crash
                    results.setdefault("problems", []).append(
                        f"warm-up SpawnAgent after {name} joined: {exc} ({time.monotonic() - t:.1f} s)")
                    log(f"  PROBLEM: {results['problems'][-1]}")
                time.sleep(2.0)
            row = throughput(sys_, nodes, n)
            results["throughput"].append(row)
            log(f"  {nodes} node(s): {row['completed']}/{n} completed, {row['completed_per_s']} agents/s "
                f"(placed {row['placed_per_s']}/s), on {row['placement']}")
        base = results["throughput"][0]["completed_per_s"]
        for row in results["throughput"]:
            row["ratio_to_1_node"] = ratio(row["completed_per_s"], base)
        url = model.start()
        sys_.update_config({"engine": {"provider": "openai", "base_url": url, "default_model": "scripted",
                                       "max_retries": 0}, "approvals": {"require": []}})
        for i in range(reps):
            if len(cl.workers) < 2:
                missing = "w-1" if "w-1" not in cl.workers else "w-2"
                cl.start_worker("127.0.0.2" if missing == "w-1" else "127.0.0.3", missing)
                time.sleep(1.0)
            t = time.monotonic()
            try:
                f = failover(cl)
            except Exception as exc:  # recorded: a stuck control plane is a finding, not a crash
                results.setdefault("problems", []).append(
                    f"failover {i + 1}: {type(exc).__name__}: {exc} ({time.monotonic() - t:.1f} s)")
                log(f"  PROBLEM: {results['problems'][-1]}")
                continue
            f["orphaned_tool_processes"] = len(orphaned_tools())
            results["failover"].append(f)
            if f["replacement_id"]:
                long_agents.append(f["replacement_id"])
            log(f"  failover {i + 1}: {f['killed_node']} killed; Failed ({f['error']}) after {f['to_failed_s']} s; "
                f"replacement Running on {f['replacement_node']} after {f['to_replacement_running_s']} s")
        t0 = time.monotonic()
        for agent_id in long_agents:
            sys_.ask("agents", KillAgent(agent_id), 10)
        results["remote_kill"] = remote_kill_done(len(long_agents), t0)
        log(f"  killed {len(long_agents)} remote agents: {results['remote_kill']}")
        long_agents = []
        fo = [f for f in results["failover"] if f["to_replacement_running_s"] is not None]
        results["failover_summary"] = {
            "to_failed_s": lat_summary([f["to_failed_s"] for f in fo]),
            "to_replacement_running_s": lat_summary([f["to_replacement_running_s"] for f in fo]),
            "node_timeout_secs": 5.0}
    finally:
        for agent_id in long_agents:
            try:
                sys_.ask("agents", KillAgent(agent_id), 10)
            except Exception as exc:
                log(f"killing {agent_id}: {exc}")
        pgids = set(sys_.pgids)
        cl.stop()
        sys_.stop()
        if model.thread.is_alive():
            model.stop()
        results["log_findings"] = sys_.findings
        results["leftover_processes"] = leftovers(pgids, [str(sys_.home), f"sleep {SLEEP}"])
    return results


def report(results: dict[str, Any]) -> str:
    out = [f"Cluster  {results['timestamp']}  (quick={results['quick']}, {results['agents_per_run']} offline agents "
           "per row, spawned from 8 threads)",
           table(["nodes", "completed", "wall s", "agents/s", "x 1 node", "placed/s", "->Running p50 ms",
                  "p99 ms", "->done p50 ms", "bg cpu%", "placement"],
                 [[r["nodes"], r["completed"], r["wall_s"], r["completed_per_s"], r.get("ratio_to_1_node"),
                   r["placed_per_s"], r["to_running"]["p50_ms"], r["to_running"]["p99_ms"], r["to_final"]["p50_ms"],
                   r["background_cpu_pct"], " ".join(f"{k}:{v}" for k, v in sorted(r["placement"].items()))]
                  for r in results["throughput"]])]
    out.append(f"worker start -> in the convention: {results.get('worker_join_s')} s")
    if results.get("remote_kill"):
        out.append(f"KillAgent of the {results['remote_kill']['agents']} replacement agents on a worker -> their tools "
                   f"gone: {results['remote_kill']['tools_gone_s']} s ({results['remote_kill']['tools_still_running']} "
                   "still running)")
    if results["failover"]:
        out.append(table(["failover", "killed node", "-> Failed s", "error", "-> replacement Running s", "on",
                          "orphaned tools"],
                         [[i + 1, f["killed_node"], f["to_failed_s"], f["error"], f["to_replacement_running_s"],
                           f["replacement_node"], f["orphaned_tool_processes"]]
                          for i, f in enumerate(results["failover"])]))
        out.append("(cluster.node_timeout_secs = 5 s of heartbeat silence declares a node lost)")
    for p in results.get("problems", []):
        out.append(f"PROBLEM: {p}")
    if results.get("log_findings"):
        out.append("Warnings/errors in the actor logs: " + "; ".join(results["log_findings"][:8]))
    if results.get("leftover_processes"):
        out.append("LEFTOVER processes (killed): " + "; ".join(results["leftover_processes"]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cluster_bench")
    ap.add_argument("--quick", action="store_true", help="12 agents per row, 1 failover")
    args = ap.parse_args(argv)
    results = run(args.quick)
    print(report(results), flush=True)
    print(f"results: {save('cluster', results)}")
    return 0 if not results["leftover_processes"] else 1


if __name__ == "__main__":
    sys.exit(main())
