"""Agents as processes: ``python -m benchmarks.agents_bench [--quick]``.

On the real runtime (multiprocTCPBase, temporary home), through the edge's bridge:

* **spawn latency** with the offline provider: ``SpawnAgent`` ask to "agents" ->
  ``Spawned``; then the agent's LMDB record (``records.get_agent``) polled every
  millisecond until ``Running``, until it has a pid (its process announced itself),
  and until ``Completed``.  One at a time (idle system), then a burst from 8
  threads.  Baseline in the same run: ``createActor`` of a trivial actor + one ask
  (raw Thespian: a forked process that answers).
* **kill latency** (``KillAgent`` ask, what ``POST /api/agents/{id}/kill`` sends) of
  an agent inside a long tool call (scripted OpenAI-compatible model, goal
  ``[script:shell sleep N]``, ``approvals.require = []``): until the ask is
  answered, the record is ``Killed``, and the agent process and its ``sleep`` are gone.
* **concurrency and memory**: ramps of long-sleeping agents (25, 50, 100, 200; quick
  10, 20), each level once every agent runs its ``sleep``: PSS of the agent
  processes (psutil ``memory_full_info().pss``) and of their tool processes, PSS of
  the whole actor system, system memory used, CPU the idle system burns.  Stops
  before a level whose projection passes 8 GiB or the time budget.  At the end all
  agents are killed at once (timed) and everything is stopped.

Scheduler decisions/s are in benchmarks/scheduler_bench.py.  Results: a table and
benchmarks/results/agents-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

import psutil

from oxios_actors.agents import records
from oxios_actors.agents.messages import AgentSpec, KillAgent, SpawnAgent, Spawned

from .bench_common import (
    Background,
    ModelThread,
    System,
    cpu_times,
    descendants,
    gone,
    lat_summary,
    leftovers,
    logger,
    machine,
    pss,
    ratio,
    save,
    table,
    timestamp,
    tree,
    wait_quiet,
)

log = logger("agents-bench")
SLEEP = 987  # a distinctive duration: leftover sleepers are easy to find
MEM_BUDGET = 8 * 2**30
TARGET_SPAWN_P50_MS = 50.0
TARGET_AGENTS = 200
TARGET_KILL_S = 2.0
CONFIG = {
    "security": {"rate_limit_per_minute": 100_000_000, "max_execution_time_secs": 3600, "max_memory_mb": 512},
    "scheduler": {"max_concurrent": 500, "rate_limit_per_minute": 1_000_000_000, "zombie_timeout_secs": 3600},
    "exec": {"shell_timeout_secs": 3600},
    "kernel": {"max_agents": 500},
}


def spawn(sys_: System, goal: str, **kw: Any) -> tuple[str, float]:
    t0 = time.monotonic()
    reply = sys_.ask("agents", SpawnAgent(AgentSpec(goal, **kw), notify=sys_.sink), 30)
    assert isinstance(reply, Spawned), reply
    return reply.agent_id, time.monotonic() - t0


def watch(sys_: System, agent_id: str, t0: float, until: str, timeout: float) -> dict[str, float | None]:
    """Polls the record every ms: seconds from t0 to Running, to a pid, to ``until``."""
    out: dict[str, float | None] = {"running": None, "pid": None, "final": None}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = records.get_agent(sys_.edge.store, agent_id) or {}
        now = time.monotonic() - t0
        if out["running"] is None and r.get("status") in ("Running", "Completed"):
            out["running"] = now
        if out["pid"] is None and r.get("pid"):
            out["pid"] = now
        if r.get("status") == until:
            out["final"] = now
            return out
        if r.get("status") in ("Failed", "Killed") and until != r.get("status"):
            log(f"  {agent_id} ended {r.get('status')}: {r.get('error')}")
            return out
        time.sleep(0.001)
    return out


def raw_baseline(sys_: System, n: int) -> dict[str, Any]:
    """createActor of a trivial actor (a forked process) + one ask, then its exit."""
    from thespian.actors import ActorExitRequest

    asys, lat, mem = sys_.edge.bridge.asys, [], []
    for i in range(n):
        before = set(sys_.actor_pids())
        t0 = time.monotonic()
        addr = asys.createActor("benchmarks.echo.Echo")
        assert asys.ask(addr, ("ping", i), 10) == ("ping", i)
        lat.append(time.monotonic() - t0)
        if i < 3:  # the PSS of a trivial actor process: the floor for an agent's
            mem += [pss([p]) for p in set(sys_.actor_pids()) - before]
        asys.tell(addr, ActorExitRequest())
    return {"name": "raw Thespian: createActor + 1 ask", **lat_summary(lat),
            "actor_pss_mib": round(sum(mem) / max(1, len(mem)) / 2**20, 2)}


def spawn_sequential(sys_: System, n: int, scripted: bool = False) -> dict[str, Any]:
    asks: list[float] = []
    running: list[float] = []
    pid: list[float] = []
    done: list[float] = []
    for i in range(n):
        t0 = time.monotonic()
        if scripted:  # one model call over HTTP, no tool
            agent_id, ask_s = spawn(sys_, f"Answer {i} [script:answer]")
        else:
            agent_id, ask_s = spawn(sys_, f"Write a short plan for tool {i}", plan_path=f"plans/bench-{i}.md")
        w = watch(sys_, agent_id, t0, "Completed", 30)
        asks.append(ask_s)
        for dst, key in ((running, "running"), (pid, "pid"), (done, "final")):
            value = w[key]
            if value is not None:
                dst.append(value)
    kind = "scripted-model (HTTP, 1 call)" if scripted else "offline"
    return {"name": f"{kind} agents one at a time (n={n})", "ask": lat_summary(asks),
            "to_running": lat_summary(running), "to_pid": lat_summary(pid), "to_completed": lat_summary(done),
            "completed": len(done)}


def spawn_burst(sys_: System, n: int) -> dict[str, Any]:
    bridge = sys_.edge.bridge
    lock = threading.Lock()
    started: list[tuple[str, float, float]] = []
    t_start = time.monotonic()

    def one(i: int) -> None:
        t0 = time.monotonic()
        agent_id, ask_s = spawn(sys_, f"Write a short plan for burst tool {i}", plan_path=f"plans/burst-{i}.md")
        with lock:
            started.append((agent_id, t0, ask_s))

    for job in [bridge.pool.submit(one, i) for i in range(n)]:
        job.result()
    running, done = [], []
    pending = {a: t0 for a, t0, _ in started}
    first_run: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for agent_id, t0 in list(pending.items()):
            r = records.get_agent(sys_.edge.store, agent_id) or {}
            now = time.monotonic()
            if agent_id not in first_run and r.get("status") in ("Running", "Completed"):
                first_run[agent_id] = now
                running.append(now - t0)
            if r.get("status") in records.FINAL:
                if r["status"] == "Completed":
                    done.append(now - t0)
                del pending[agent_id]
        time.sleep(0.002)
    wall = time.monotonic() - t_start
    return {"name": f"offline agents, burst of {n} from 8 threads", "ask": lat_summary([s[2] for s in started]),
            "to_running": lat_summary(running), "to_completed": lat_summary(done), "completed": len(done),
            "wall_s": round(wall, 2), "completed_per_s": round(len(done) / wall, 1)}


def sleeping(sys_: System, ids: list[str]) -> dict[str, tuple[int, list[int]]]:
    """agent id -> (agent pid, tool pids) for the agents whose ``sleep`` runs."""
    snap, out = tree(), {}
    for agent_id in ids:
        pid = (records.get_agent(sys_.edge.store, agent_id) or {}).get("pid")
        if pid:
            tools = descendants(snap, pid)
            if any(f"sleep {SLEEP}" in snap[t][1] for t in tools if t in snap):
                out[agent_id] = (pid, tools)
    return out


def kill_one(sys_: System) -> dict[str, Any]:
    agent_id, _ = spawn(sys_, f"Wait [script:shell sleep {SLEEP}]")
    deadline = time.monotonic() + 30
    procs: dict[str, tuple[int, list[int]]] = {}
    while time.monotonic() < deadline and not (procs := sleeping(sys_, [agent_id])):
        time.sleep(0.02)
    assert procs, f"{agent_id} never ran its sleep"
    pid, tools = procs[agent_id]
    t0 = time.monotonic()
    sys_.ask("agents", KillAgent(agent_id), 10)
    ask_s = time.monotonic() - t0
    killed = None
    while time.monotonic() - t0 < 10:
        if killed is None and (records.get_agent(sys_.edge.store, agent_id) or {}).get("status") == "Killed":
            killed = time.monotonic() - t0
        if killed is not None and gone([pid, *tools]):
            break
        time.sleep(0.001)
    return {"ask": ask_s, "killed": killed, "gone": time.monotonic() - t0 if gone([pid, *tools]) else None}


def actor_cpu(sys_: System, secs: float, agent_pids: list[int]) -> tuple[float, float]:
    """CPU (% of a core) of the whole actor system and of the agent processes alone."""
    pids = sys_.actor_pids()
    agents = set(agent_pids)

    def sample() -> tuple[float, float]:
        total = mine = 0.0
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system
            if pid in agents:
                mine += t.user + t.system
        return total, mine

    a = sample()
    time.sleep(secs)
    b = sample()
    return round(100.0 * (b[0] - a[0]) / secs, 1), round(100.0 * (b[1] - a[1]) / secs, 1)


def ramp(sys_: System, levels: tuple[int, ...], budget_s: float,
         cpu_window: float = 3.0) -> tuple[list[dict[str, Any]], list[str]]:
    bridge = sys_.edge.bridge
    ids: list[str] = []
    rows: list[dict[str, Any]] = []
    base_used = psutil.virtual_memory().used
    base_pss = pss(sys_.actor_pids())
    rows.append({"agents": 0, "requested": 0, "ramp_s": None, "spawned_per_s": None,
                 "agent_pss_total_mib": 0.0, "agent_pss_avg_mib": None, "tool_pss_avg_mib": None,
                 "system_pss_mib": round(base_pss / 2**20, 1), "system_used_delta_mib": 0.0,
                 "idle_cpu_pct": actor_cpu(sys_, cpu_window, [])[0], "agents_cpu_pct": 0.0,
                 "cpu_s_per_agent_start": None})
    t_all = time.monotonic()
    todo = list(levels)
    while todo:
        level = todo.pop(0)
        if len(rows) > 1:
            last = rows[-1]
            per_agent = (last["system_pss_mib"] * 2**20 - base_pss) / max(1, last["agents"])
            projected = last["system_pss_mib"] * 2**20 + per_agent * (level - last["agents"])
            if projected > MEM_BUDGET or psutil.virtual_memory().available < 2 * 2**30:
                fit = last["agents"] + int((0.95 * MEM_BUDGET - last["system_pss_mib"] * 2**20) / per_agent)
                log(f"  {level} agents would need ~{projected / 2**30:.1f} GiB; about {fit} fit in "
                    f"{MEM_BUDGET / 2**30:.0f} GiB")
                if fit >= last["agents"] + 5 and fit < level:
                    todo = [fit]  # the largest level that fits, then stop
                    continue
                break
            if time.monotonic() - t_all > budget_s:
                log("  stop: time budget")
                break
        cpu0 = cpu_times(sys_.actor_pids())
        t0 = time.monotonic()
        jobs = [bridge.pool.submit(spawn, sys_, f"Wait [script:shell sleep {SLEEP}]") for _ in range(level - len(ids))]
        new, errors = [], []
        for job in jobs:
            try:
                new.append(job.result()[0])
            except Exception as exc:  # e.g. 504: the supervisor did not answer in 30 s
                errors.append(f"{type(exc).__name__}: {exc}")
        ids.extend(new)
        if errors:
            log(f"  {len(errors)} spawn(s) failed at level {level}: {errors[0]}")
        procs: dict[str, tuple[int, list[int]]] = {}
        while time.monotonic() - t0 < 180:
            procs = sleeping(sys_, ids)
            if len(procs) >= len(ids):
                break
            time.sleep(0.25)
        up_s = time.monotonic() - t0
        cpu1 = cpu_times(sys_.actor_pids())
        start_cpu = sum(v - cpu0.get(pid, 0.0) for pid, v in cpu1.items())
        agent_pids = [p for p, _ in procs.values()]
        tool_pids = [t for _, ts in procs.values() for t in ts]
        agents_pss, tools_pss = pss(agent_pids), pss(tool_pids)
        system_pss = pss(sys_.actor_pids()) + tools_pss
        row = {"agents": len(procs), "requested": level, "ramp_s": round(up_s, 2), "spawn_errors": errors,
               "spawned_per_s": round(len(new) / up_s, 1),
               "agent_pss_total_mib": round(agents_pss / 2**20, 1),
               "agent_pss_avg_mib": round(agents_pss / 2**20 / max(1, len(procs)), 2),
               "tool_pss_avg_mib": round(tools_pss / 2**20 / max(1, len(procs)), 2),
               "system_pss_mib": round(system_pss / 2**20, 1),
               "system_used_delta_mib": round((psutil.virtual_memory().used - base_used) / 2**20, 1),
               "cpu_s_per_agent_start": round(start_cpu / max(1, len(new)), 3)}
        row["idle_cpu_pct"], row["agents_cpu_pct"] = actor_cpu(sys_, cpu_window, agent_pids)
        rows.append(row)
        log(f"  {row['agents']}/{level} agents sleeping after {row['ramp_s']} s; agent PSS avg "
            f"{row['agent_pss_avg_mib']} MiB; system PSS {row['system_pss_mib']} MiB; "
            f"idle cpu {row['idle_cpu_pct']}% (agents {row['agents_cpu_pct']}%)")
        if len(procs) < level:
            log(f"  stop: {len(procs)} of {level} agents came up")
            break
    return rows, ids


def kill_all(sys_: System, ids: list[str]) -> dict[str, Any]:
    snap = tree()
    pids = []
    for agent_id in ids:
        pid = (records.get_agent(sys_.edge.store, agent_id) or {}).get("pid")
        if pid:
            pids += [pid, *descendants(snap, pid)]
    t0 = time.monotonic()
    for job in [sys_.edge.bridge.pool.submit(sys_.ask, "agents", KillAgent(a), 30) for a in ids]:
        job.result()
    ask_s = time.monotonic() - t0
    while time.monotonic() - t0 < 60:
        if all((records.get_agent(sys_.edge.store, a) or {}).get("status") in records.FINAL for a in ids) \
                and gone(pids):
            break
        time.sleep(0.02)
    return {"agents": len(ids), "asks_s": round(ask_s, 2), "all_gone_s": round(time.monotonic() - t0, 2),
            "all_gone": gone(pids)}


def run(quick: bool) -> dict[str, Any]:
    n_raw, n_seq, n_burst, n_kill = (5, 10, 10, 3) if quick else (20, 40, 30, 10)
    levels = (10, 20) if quick else (25, 50, 100, 200)
    results: dict[str, Any] = {"benchmark": "agents", "timestamp": timestamp(), "quick": quick,
                               "machine": machine(), "config": CONFIG, "targets": {
                                   "spawn_p50_ms": TARGET_SPAWN_P50_MS, "concurrent_agents": TARGET_AGENTS,
                                   "memory_gib": MEM_BUDGET / 2**30, "kill_s": TARGET_KILL_S}}
    sys_ = System("agents", CONFIG)
    model = ModelThread()
    ids: list[str] = []
    try:
        log(f"starting the actor system (home {sys_.home})")
        sys_.start()
        spawn(sys_, "Write a warm-up plan", plan_path="plans/warm.md")
        results["background_cpu_pct_at_start"] = wait_quiet(3.0 if quick else 45.0, 50.0, log, sys_.actor_pids)
        noise = Background(sys_.actor_pids)
        results["raw_baseline"] = raw_baseline(sys_, n_raw)
        results["sequential"] = spawn_sequential(sys_, n_seq)
        results["burst"] = spawn_burst(sys_, n_burst)
        results["spawn_background_cpu_pct"] = noise.pct()
        seq = results["sequential"]
        seq["to_running_vs_raw"] = ratio(seq["to_running"]["p50_ms"], results["raw_baseline"]["p50_ms"])
        log(f"  spawn -> Running p50 {seq['to_running']['p50_ms']} ms, p99 {seq['to_running']['p99_ms']} ms; "
            f"-> Completed p50 {seq['to_completed']['p50_ms']} ms; raw createActor+ask "
            f"{results['raw_baseline']['p50_ms']} ms")
        url = model.start()
        sys_.update_config({"engine": {"provider": "openai", "base_url": url, "default_model": "scripted",
                                       "max_retries": 0}, "approvals": {"require": []}})
        kills = [kill_one(sys_) for _ in range(n_kill)]
        results["sequential_scripted"] = spawn_sequential(sys_, max(3, n_seq // 4), scripted=True)
        log(f"  scripted agent -> Completed p50 {results['sequential_scripted']['to_completed']['p50_ms']} ms")
        results["kill"] = {k: lat_summary([x[k] for x in kills if x[k] is not None]) for k in ("ask", "killed", "gone")}
        results["kill"]["all_gone"] = all(x["gone"] is not None for x in kills)
        log(f"  kill -> Killed p50 {results['kill']['killed']['p50_ms']} ms; -> processes gone p99 "
            f"{results['kill']['gone']['p99_ms']} ms")
        rows, ids = ramp(sys_, levels, 30.0 if quick else 200.0, 1.5 if quick else 3.0)
        results["ramp"] = rows
        results["kill_all"] = kill_all(sys_, ids)
        ids = []
        log(f"  killed {results['kill_all']['agents']} agents in {results['kill_all']['all_gone_s']} s")
        for r in rows:
            r["idle_cpu_pct_per_agent"] = round((r["agents_cpu_pct"] or 0) / r["agents"], 2) if r["agents"] else None
        most = max((r["agents"] for r in rows), default=0)
        top = max(rows, key=lambda r: r["agents"]) if rows else {}
        results["aims"] = {
            "spawn_p50_ms": seq["to_running"]["p50_ms"],
            "spawn_aim_met": (seq["to_running"]["p50_ms"] or 1e9) < TARGET_SPAWN_P50_MS,
            "most_concurrent_agents": most, "their_system_pss_mib": top.get("system_pss_mib"),
            "concurrency_aim_met": None if quick else (most >= TARGET_AGENTS
                                                       and top.get("system_pss_mib", 1e9) < MEM_BUDGET / 2**20),
            "kill_p99_s": (results["kill"]["gone"]["p99_ms"] or 1e9) / 1000,
            "kill_aim_met": results["kill"]["all_gone"] and (results["kill"]["gone"]["p99_ms"] or 1e9) < 2000}
    finally:
        if ids and sys_.edge is not None:
            try:
                kill_all(sys_, ids)
            except Exception as exc:
                log(f"killing agents: {exc}")
        pgids = set(sys_.pgids)
        sys_.stop()
        if model.thread.is_alive():
            model.stop()
        results["log_findings"] = sys_.findings
        results["leftover_processes"] = leftovers(pgids, [str(sys_.home), f"sleep {SLEEP}"])
    return results


def report(results: dict[str, Any]) -> str:
    out = [f"Agents  {results['timestamp']}  (quick={results['quick']})"]
    rows = [[results["raw_baseline"]["name"], results["raw_baseline"]["p50_ms"], results["raw_baseline"]["p99_ms"],
             None, None, None, None]]
    for key in ("sequential", "burst", "sequential_scripted"):
        r = results[key]
        rows.append([r["name"], r["ask"]["p50_ms"], r["ask"]["p99_ms"], r["to_running"]["p50_ms"],
                     r["to_running"]["p99_ms"], r["to_completed"]["p50_ms"], r["to_completed"]["p99_ms"]])
    out.append(table(["spawn", "ask p50 ms", "ask p99", "->Running p50", "->Running p99", "->Completed p50",
                      "->Completed p99"], rows))
    b = results["burst"]
    out.append(f"burst: {b['completed']} completed in {b['wall_s']} s ({b['completed_per_s']} agents/s); "
               f"->Running p50 = {results['sequential'].get('to_running_vs_raw')} x raw createActor+ask")
    k = results["kill"]
    out.append(f"kill (agent in `sleep`): ask p50 {k['ask']['p50_ms']} ms; ->Killed p50 {k['killed']['p50_ms']} "
               f"p99 {k['killed']['p99_ms']} ms; ->processes gone p50 {k['gone']['p50_ms']} p99 {k['gone']['p99_ms']} "
               f"ms (n={k['gone']['n']})")
    out.append(table(["agents", "ramp s", "spawned/s", "agent PSS avg MiB", "tools PSS avg", "agents PSS MiB",
                      "system PSS MiB", "used delta MiB", "idle cpu %", "agents cpu %", "cpu s/start"],
                     [[r["agents"], r["ramp_s"], r["spawned_per_s"], r["agent_pss_avg_mib"], r["tool_pss_avg_mib"],
                       r["agent_pss_total_mib"], r["system_pss_mib"], r["system_used_delta_mib"], r["idle_cpu_pct"],
                       r["agents_cpu_pct"], r["cpu_s_per_agent_start"]] for r in results["ramp"]]))
    out.append(f"PSS of a trivial Thespian actor process (floor): {results['raw_baseline']['actor_pss_mib']} MiB")
    ka = results["kill_all"]
    out.append(f"kill all {ka['agents']}: asks {ka['asks_s']} s, all processes gone {ka['all_gone_s']} s")
    a = results.get("aims")
    if a:
        out.append(f"Aims: spawn p50 < {TARGET_SPAWN_P50_MS:.0f} ms: {a['spawn_p50_ms']} ms "
                   f"({'met' if a['spawn_aim_met'] else 'NOT met'}); {TARGET_AGENTS} agents in 8 GiB: "
                   f"{a['most_concurrent_agents']} agents, {a['their_system_pss_mib']} MiB "
                   f"({ {True: 'met', False: 'NOT met', None: 'n/a with --quick'}[a['concurrency_aim_met']] }); "
                   f"kill < {TARGET_KILL_S:.0f} s: p99 "
                   f"{a['kill_p99_s']:.3f} s ({'met' if a['kill_aim_met'] else 'NOT met'})")
    if results.get("log_findings"):
        out.append("Warnings/errors in the actor logs: " + "; ".join(results["log_findings"][:8]))
    if results.get("leftover_processes"):
        out.append("LEFTOVER processes (killed): " + "; ".join(results["leftover_processes"]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.agents_bench")
    ap.add_argument("--quick", action="store_true", help="fewer agents (ramp 10, 20)")
    args = ap.parse_args(argv)
    results = run(args.quick)
    print(report(results), flush=True)
    print(f"results: {save('agents', results)}")
    return 0 if not results["leftover_processes"] else 1


if __name__ == "__main__":
    sys.exit(main())
