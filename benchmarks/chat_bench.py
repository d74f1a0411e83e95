"""Chat round trips: ``python -m benchmarks.chat_bench [--quick]``.

``POST /api/chat`` against the real edge app, served like ``oxios serve`` by
``benchmarks.server edge`` in its own process (AppRunner on a free 127.0.0.1
port), with the actor system (``ActorRuntime``, temporary home) behind it.  The
load generator is this process: N concurrent sessions, each a closed loop of
chats with its own ``session_id``, for a fixed time (and at most a fixed count).
The message is a clear task ("Write a haiku about unit tests in English",
ambiguity <= 0.2), so every chat runs the whole pipeline: interview -> seed ->
memory -> one agent process (plan written with ``file_write``, committed to git)
-> evaluation -> reply.

1. Offline provider (in-process model), 1, 8 and 32 concurrent sessions: chats/s,
   p50/p99, scaling efficiency, CPU of the actors / edge / load generator.
2. Orchestration overhead: the same chats against an OpenAI-compatible model that
   answers instantly (``InstantModel`` below, its own process: it gives the offline
   provider's answers over HTTP, so the pipeline is the same as in 1 -- the tests'
   ScriptedModel cannot, its one directive cannot answer interview, seed, agent and
   evaluation differently).  Baseline in the same run: the model calls one chat
   made, replayed from this process with the same ``openai`` client, sequentially
   (latency) and from 8 threads (throughput).  overhead = chat - its model calls.

After the warm-up and after each row the actor processes are sampled for 2 s with
no load (idle CPU by service): work that outlives the chats shows up there.

Results: a table and benchmarks/results/chat-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from .bench_common import (
    REPO,
    Background,
    System,
    cpu_by_service,
    cpu_detail,
    cpu_times,
    free_port,
    lat_summary,
    leftovers,
    logger,
    machine,
    ms,
    pct,
    ratio,
    save,
    service_pids,
    table,
    timestamp,
    wait_quiet,
)

log = logger("chat-bench")
MESSAGE = "Write a haiku about unit tests in English"
TARGET_CHATS_PER_S = 50.0
MAX_CHATS_PER_LEVEL = 5000
CONFIG = {"security": {"rate_limit_per_minute": 100_000_000},
          "scheduler": {"max_concurrent": 64, "rate_limit_per_minute": 1_000_000_000}}


# -- the instant model (its own process) ---------------------------------------------------
def serve_model(port: int) -> int:
    """An OpenAI-compatible /v1/chat/completions that answers at once with what the
    offline provider would say (the purpose is read from the system prompt)."""
    from aiohttp import web

    from oxios_actors.llm.base import ChatRequest
    from oxios_actors.llm.offline import OfflineProvider
    from oxios_actors.orchestrator import prompts

    offline = OfflineProvider()
    kinds = ((prompts.INTERVIEW, "interview"), (prompts.SEED, "seed"), (prompts.EVALUATE, "evaluate"),
             (prompts.EVOLVE, "evolve"))
    state: dict[str, Any] = {"requests": 0, "by_purpose": {}, "bodies": []}

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        system = " ".join(str(m.get("content") or "") for m in body["messages"] if m["role"] == "system")
        purpose = next((k for p, k in kinds if p in system), "agent" if body.get("tools") else "chat")
        state["requests"] += 1
        state["by_purpose"][purpose] = state["by_purpose"].get(purpose, 0) + 1
        if len(state["bodies"]) < 200:
            state["bodies"].append(body)
        c = offline.complete(ChatRequest(body["messages"], body.get("tools") or [], body.get("model"),
                                         purpose=purpose))
        message: dict[str, Any] = {"role": "assistant", "content": c.content or None}
        if c.tool_calls:
            message["tool_calls"] = [{"id": t.id, "type": "function", "function": {
                "name": t.name, "arguments": json.dumps(t.arguments)}} for t in c.tool_calls]
        return web.json_response({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": body.get("model", "x"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if c.tool_calls else "stop"}],
            "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                      "total_tokens": c.prompt_tokens + c.completion_tokens}})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({k: v for k, v in state.items() if k != "bodies"})

    async def bodies(request: web.Request) -> web.Response:
        return web.json_response(state["bodies"])

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", completions)
        app.router.add_get("/_stats", stats)
        app.router.add_get("/_bodies", bodies)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(json.dumps({"ready": True, "port": port}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096):  # EOF: the benchmark is gone
                stop.set()

        loop.add_reader(sys.stdin.fileno(), on_stdin)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())
    return 0


class Child:
    """A server process that prints one ``{"ready": true}`` line; stdin is its lifeline."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     cwd=str(REPO), env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60.0)
        line = self.proc.stdout.readline() if ready else b""
        if not line or not json.loads(line).get("ready"):
            self.stop()
            raise RuntimeError(f"{argv} did not start: {line!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for s in (self.proc.stdin, self.proc.stdout):
            if s is not None:
                s.close()


# -- load ------------------------------------------------------------------------------------
async def load(url: str, token: str, sessions: int, duration: float, tag: str) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    phases: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + duration
    count = [0]

    async def worker(k: int, http: aiohttp.ClientSession) -> None:
        sid = f"bench-{tag}-{k}-{os.getpid()}"
        while time.monotonic() < deadline and count[0] < MAX_CHATS_PER_LEVEL:
            count[0] += 1
            t0 = time.monotonic()
            try:
                async with http.post(url + "/api/chat", json={"content": MESSAGE, "session_id": sid},
                                     headers=headers) as r:
                    body = await r.json()
                    if r.status == 200:
                        latencies.append(time.monotonic() - t0)
                        phases[body.get("phase")] = phases.get(body.get("phase"), 0) + 1
                    else:
                        errors[str(r.status)] = errors.get(str(r.status), 0) + 1
            except Exception as exc:  # counted, the loop goes on until the deadline
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http:
        t0 = time.monotonic()
        await asyncio.gather(*(worker(k, http) for k in range(sessions)))
        elapsed = time.monotonic() - t0
    return {"sessions": sessions, "chats": len(latencies), "elapsed_s": round(elapsed, 2),
            "chats_per_s": round(len(latencies) / elapsed, 2), **lat_summary(latencies),
            "errors": errors, "phases": phases}


def measure(sys_: System, names: dict[int, str], edge_pid: int, extra: dict[str, int], url: str, token: str, sessions: int,
            duration: float, tag: str, idle_s: float = 2.0) -> dict[str, Any]:
    groups: dict[str, Callable[[], list[int]]] = {
        "actors": sys_.actor_pids, "edge": lambda: [edge_pid], "loadgen": lambda: [os.getpid()],
        **{k: partial(list, (p,)) for k, p in extra.items()}}
    before = {g: cpu_times(f()) for g, f in groups.items()}
    detail = cpu_detail(sys_.actor_pids())
    noise = Background(sys_.actor_pids)
    row = asyncio.run(load(url, token, sessions, duration, tag))
    row["cpu_by_service_pct"] = cpu_by_service(names, detail, cpu_detail(sys_.actor_pids()), row["elapsed_s"])
    for g, f in groups.items():
        after = cpu_times(f())
        row[f"{g}_cpu_pct"] = round(100 * sum(v - before[g].get(p, 0.0) for p, v in after.items())
                                    / row["elapsed_s"], 1)
    row["background_cpu_pct"] = noise.pct()
    time.sleep(0.5)  # the last replies' events and commits settle
    a = cpu_detail(sys_.actor_pids())
    time.sleep(idle_s)
    row["idle_after_cpu_by_service_pct"] = cpu_by_service(names, a, cpu_detail(sys_.actor_pids()), idle_s)
    return row


def raw_model_calls(base_url: str, bodies: list[dict[str, Any]], per_chat: float, n: int) -> dict[str, Any]:
    """The recorded model requests replayed with the ``openai`` client, sequentially and from 8 threads."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="not-needed", timeout=30, max_retries=0)

    def call(body: dict[str, Any]) -> float:
        t0 = time.monotonic()
        kw = {k: body[k] for k in ("model", "messages", "temperature", "max_tokens", "tools") if k in body}
        client.chat.completions.create(**kw)
        return time.monotonic() - t0

    seq = [call(bodies[i % len(bodies)]) for i in range(n)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        par = list(pool.map(call, [bodies[i % len(bodies)] for i in range(n * 2)]))
    par_s = time.monotonic() - t0
    p50 = pct(seq, 0.5) or 0.0
    return {"calls_per_chat": round(per_chat, 2), "sequential": lat_summary(seq),
            "chat_equivalent_ms": ms(p50 * per_chat), "parallel8_calls_per_s": round(len(par) / par_s, 1),
            "parallel8_chat_equivalents_per_s": round(len(par) / par_s / per_chat, 1)}


def model_stats(port: int) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=10) as r:
        return dict(json.loads(r.read()))


def run(quick: bool) -> dict[str, Any]:
    duration, idle_s = (3.0, 1.0) if quick else (20.0, 2.0)
    levels = (1, 8, 32)
    results: dict[str, Any] = {"benchmark": "chat", "timestamp": timestamp(), "quick": quick, "machine": machine(),
                               "message": MESSAGE, "duration_s": duration, "rows": [], "config": CONFIG,
                               "targets": {"chats_per_s_offline": TARGET_CHATS_PER_S}}
    sys_ = System("chat", CONFIG)
    children: list[Child] = []
    try:
        log(f"starting the actor system (home {sys_.home})")
        sys_.start()
        port = free_port()
        edge = Child(["-m", "benchmarks.server", "edge", "--home", str(sys_.home), "--actor-port",
                      str(sys_.runtime.actor_port), "--port", str(port)])
        children.append(edge)
        url, token = f"http://127.0.0.1:{port}", sys_.token()
        warm = asyncio.run(load(url, token, 2, 2.0 if quick else 3.0, "warm"))  # first chats load the embedding model
        log(f"warm-up: {warm['chats']} chats, p50 {warm['p50_ms']} ms, errors {warm['errors']}")
        names = service_pids(sys_)
        a = cpu_detail(sys_.actor_pids())
        time.sleep(idle_s)
        results["idle_after_warmup_cpu_by_service_pct"] = cpu_by_service(names, a, cpu_detail(sys_.actor_pids()),
                                                                         idle_s)
        log(f"idle cpu after the warm-up chats: {results['idle_after_warmup_cpu_by_service_pct']}")
        results["background_cpu_pct_at_start"] = wait_quiet(3.0 if quick else 45.0, 50.0, log, sys_.actor_pids)
        for c in levels:
            row = measure(sys_, names, edge.proc.pid, {}, url, token, c, duration, f"offline{c}", idle_s)
            row["provider"] = "offline (in-process)"
            results["rows"].append(row)
            log(f"  offline, {c} sessions: {row['chats_per_s']} chats/s p50 {row['p50_ms']} p99 {row['p99_ms']} ms; "
                f"cpu actors {row['actors_cpu_pct']}% edge {row['edge_cpu_pct']}% bg {row['background_cpu_pct']}%; "
                f"errors {row['errors']}")
            log(f"    cpu by service: {row['cpu_by_service_pct']}; idle after: {row['idle_after_cpu_by_service_pct']}")
        one = results["rows"][0]["chats_per_s"]
        for r in results["rows"]:
            r["scaling_efficiency"] = ratio(r["chats_per_s"], one * r["sessions"]) if one else None

        mport = free_port()
        model = Child(["-m", "benchmarks.chat_bench", "serve-model", "--port", str(mport)])
        children.append(model)
        base_url = f"http://127.0.0.1:{mport}/v1"
        sys_.update_config({"engine": {"provider": "openai", "base_url": base_url, "default_model": "instant",
                                       "max_retries": 0}})
        asyncio.run(load(url, token, 2, 2.0, "warm-http"))
        for c in (1,) if quick else (1, 8):
            s0 = model_stats(mport)
            row = measure(sys_, names, edge.proc.pid, {"model": model.proc.pid}, url, token, c, duration, f"http{c}",
                          idle_s)
            s1 = model_stats(mport)
            row["provider"] = "instant OpenAI-compatible model (HTTP)"
            row["model_calls"] = s1["requests"] - s0["requests"]
            row["model_calls_per_chat"] = round(row["model_calls"] / max(1, row["chats"]), 2)
            results["rows"].append(row)
            log(f"  instant model, {c} sessions: {row['chats_per_s']} chats/s p50 {row['p50_ms']} ms; "
                f"{row['model_calls_per_chat']} model calls/chat")
            log(f"    cpu by service: {row['cpu_by_service_pct']}; idle after: {row['idle_after_cpu_by_service_pct']}")
        results["model_calls_by_purpose"] = model_stats(mport)["by_purpose"]
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/_bodies", timeout=10) as r:
            bodies = json.loads(r.read())
        http1 = next(r for r in results["rows"] if r["provider"].startswith("instant") and r["sessions"] == 1)
        http8 = next((r for r in results["rows"] if r["provider"].startswith("instant") and r["sessions"] == 8), None)
        raw = raw_model_calls(base_url, bodies, http1["model_calls_per_chat"], 100 if quick else 400)
        raw["overhead_ms_p50"] = round((http1["p50_ms"] or 0) - (raw["chat_equivalent_ms"] or 0), 1)
        raw["chat_vs_raw_calls_latency"] = ratio(http1["p50_ms"], raw["chat_equivalent_ms"])
        raw["chat8_vs_raw8_throughput"] = ratio(http8["chats_per_s"], raw["parallel8_chat_equivalents_per_s"]) \
            if http8 else None
        results["raw_model_baseline"] = raw
        best = max(r["chats_per_s"] for r in results["rows"] if r["provider"].startswith("offline"))
        results["aims"] = {"best_offline_chats_per_s": best, "chats_aim_met": best >= TARGET_CHATS_PER_S,
                           "scaling_efficiency": {r["sessions"]: r["scaling_efficiency"] for r in results["rows"]
                                                  if r["provider"].startswith("offline")}}
    finally:
        for child in reversed(children):
            child.stop()
        pgids = set(sys_.pgids)
        sys_.stop()
        results["log_findings"] = sys_.findings
        results["leftover_processes"] = leftovers(pgids, [str(sys_.home)])
    return results


def report(results: dict[str, Any]) -> str:
    rows = [[r["provider"], r["sessions"], r["chats"], r["chats_per_s"], r.get("scaling_efficiency"), r["p50_ms"],
             r["p99_ms"], r.get("model_calls_per_chat"), r["actors_cpu_pct"], r["edge_cpu_pct"],
             r["loadgen_cpu_pct"], r.get("model_cpu_pct"), r["background_cpu_pct"], sum(r["errors"].values())]
            for r in results["rows"]]
    out = [f"Chat  {results['timestamp']}  (quick={results['quick']}, {results['duration_s']} s per row, "
           f"\"{results['message']}\")",
           table(["provider", "sessions", "chats", "chats/s", "scaling", "p50 ms", "p99 ms", "calls/chat",
                  "cpu% actors", "edge", "loadgen", "model", "bg", "errors"], rows)]
    raw = results.get("raw_model_baseline")
    if raw:
        out.append(f"raw model calls (openai client, same requests): p50 {raw['sequential']['p50_ms']} ms/call, "
                   f"x{raw['calls_per_chat']} calls = {raw['chat_equivalent_ms']} ms per chat-equivalent; "
                   f"8 threads: {raw['parallel8_calls_per_s']} calls/s = {raw['parallel8_chat_equivalents_per_s']} "
                   f"chat-equivalents/s")
        out.append(f"orchestration overhead (1 session, p50): {raw['overhead_ms_p50']} ms per chat; chat latency = "
                   f"{raw['chat_vs_raw_calls_latency']} x its raw model calls; 8-session throughput = "
                   f"{raw['chat8_vs_raw8_throughput']} x raw calls")
    a = results.get("aims")
    if a:
        out.append(f"Aim: >= {TARGET_CHATS_PER_S:.0f} chats/s (offline): best {a['best_offline_chats_per_s']} "
                   f"({'met' if a['chats_aim_met'] else 'NOT met'}); scaling efficiency {a['scaling_efficiency']}")
    out.append(f"idle cpu % by process after the warm-up chats (no load): "
               f"{results.get('idle_after_warmup_cpu_by_service_pct')}")
    for r in results["rows"]:
        out.append(f"cpu % by process, {r['provider']}, {r['sessions']} sessions: {r['cpu_by_service_pct']}; "
                   f"idle 0.5-2.5 s after: {r['idle_after_cpu_by_service_pct']}")
    if results.get("log_findings"):
        out.append("Warnings/errors in the actor logs: " + "; ".join(results["log_findings"][:8]))
    if results.get("leftover_processes"):
        out.append("LEFTOVER processes (killed): " + "; ".join(results["leftover_processes"]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "serve-model":
        sp = argparse.ArgumentParser(prog="python -m benchmarks.chat_bench serve-model")
        sp.add_argument("--port", type=int, required=True)
        return serve_model(sp.parse_args(args[1:]).port)
    ap = argparse.ArgumentParser(prog="python -m benchmarks.chat_bench")
    ap.add_argument("--quick", action="store_true", help="3 s per row instead of 20, no 8-session model row")
    parsed = ap.parse_args(args)
    results = run(parsed.quick)
    print(report(results), flush=True)
    print(f"results: {save('chat', results)}")
    return 0 if not results["leftover_processes"] else 1


if __name__ == "__main__":
    sys.exit(main())
