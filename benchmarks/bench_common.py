"""Shared helpers of the component benchmarks (audit, agents, chat, cluster).

Each benchmark starts its own actor system (``ActorRuntime`` on a free loopback
port, a temporary ``OXIOS_HOME``), connects the edge (``http_edge.app.connect``)
and asks services through ``edge.bridge.ask_sync``.  At the end it stops
everything and looks for anything left behind (killed and reported).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from thespian.actors import Actor, ActorExitRequest

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
HOST = "127.0.0.1"


def logger(prefix: str) -> Callable[[str], None]:
    def log(msg: str) -> None:
        print(f"[{prefix} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
    return log


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float | None:
    """q-quantile (0..1) by nearest rank, in the unit of ``values``."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(1000.0 * value, 2)


def lat_summary(latencies: list[float]) -> dict[str, Any]:
    return {"n": len(latencies), "p50_ms": ms(pct(latencies, 0.5)), "p99_ms": ms(pct(latencies, 0.99)),
            "mean_ms": ms(statistics.fmean(latencies)) if latencies else None,
            "max_ms": ms(max(latencies)) if latencies else None}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.2f}"
    return str(v)


class Background:
    """CPU used on the machine by processes that are not ours during a window, in % of
    one core (the noise of a shared machine, reported next to each measurement).
    Ours: this process, its descendants, and ``extra()`` (the actor system's process
    groups: Thespian's admin daemonizes, so its actors are not our descendants)."""

    def __init__(self, extra: Callable[[], list[int]] | None = None) -> None:
        self.extra = extra
        self.t0 = time.monotonic()
        self.busy0 = self.busy()
        self.ours0 = self.ours()

    @staticmethod
    def busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) \
            - getattr(t, "guest_nice", 0.0)

    def ours(self) -> dict[int, float]:
        me = psutil.Process()
        pids = {me.pid}
        try:
            pids |= {c.pid for c in me.children(recursive=True)}
        except psutil.Error:
            pass
        if self.extra is not None:
            pids |= set(self.extra())
        out = {}
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
                out[pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return out

    def pct(self) -> float:
        elapsed = time.monotonic() - self.t0
        now = self.ours()
        ours = sum(v - self.ours0.get(pid, 0.0) for pid, v in now.items())
        other = (self.busy() - self.busy0) - ours
        return round(max(0.0, 100.0 * other / elapsed), 1) if elapsed > 0 else 0.0


class Sink(Actor):
    """Counts what it is told; answers an ``Ask`` with the count.  Used as the raw
    transport baseline, and as the ``notify`` target of spawned agents: an actor always
    takes its messages, where an external context only does while it is inside an ask."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        from oxios_actors.messages import Answer, Ask

        if isinstance(msg, Ask):
            self.count += 1
            self.send(sender, Answer(msg.rid, self.count))
        elif not isinstance(msg, ActorExitRequest):
            self.count += 1


class System:
    """One actor system (home node) with a temporary home and a connected edge."""

    def __init__(self, name: str, config: dict[str, Any], *, allow: list[str] | None = None,
                 connect_edge: bool = True, edge_threads: int = 8) -> None:
        from oxios_actors.runtime import ActorRuntime

        self.home = Path(tempfile.mkdtemp(prefix=f"oxios-{name}-bench-"))
        (self.home / "config.json").write_text(json.dumps(config))
        self.runtime = ActorRuntime(self.home, free_port(), "127.0.0.1", allow=allow)
        self.allow = allow
        self.edge: Any = None
        self.pgids: set[int] = set()
        self.connect_edge = connect_edge
        self.edge_threads = edge_threads
        self.findings: list[str] = []
        self._sink: Any = None

    @property
    def sink(self) -> Any:
        """A Sink actor in this system (created by ``start``, stopped with the system)."""
        return self._sink

    def start(self) -> System:
        info = self.runtime.start()
        self.pgids.add(int(info["admin_pgid"]))
        if self.connect_edge:
            from http_edge.app import connect

            self.edge = connect(self.home, self.runtime.actor_port, threads=self.edge_threads,
                                allow=self.allow)
            self.edge.limiter.per_minute = 10**9
            self._sink = self.edge.bridge.asys.createActor("benchmarks.bench_common.Sink")  # main thread only
        return self

    def ask(self, service: str, message: Any, timeout: float = 10.0) -> Any:
        return self.edge.bridge.ask_sync(service, message, timeout)

    def update_config(self, patch: dict[str, Any]) -> dict[str, Any]:
        from oxios_actors.system.messages import ConfigUpdated, UpdateConfig

        reply = self.ask("config", UpdateConfig(patch), 10)
        assert isinstance(reply, ConfigUpdated), reply
        self.edge.apply_config(reply.full)
        self.edge.limiter.per_minute = 10**9
        return reply.full

    def token(self) -> str:
        return (self.home / "api_key").read_text().strip()

    def actor_pids(self) -> list[int]:
        out = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(p.pid) in self.pgids:
                    out.append(p.pid)
            except (ProcessLookupError, psutil.Error):
                pass
        return out

    def stop(self, keep_home: bool = False) -> None:
        if self.edge is not None and self._sink is not None:
            try:
                self.edge.bridge.asys.tell(self._sink, ActorExitRequest())
            except Exception:  # the system may be gone already
                pass
        if self.edge is not None:
            from http_edge.app import close

            try:
                close(self.edge)
            except Exception as exc:  # keep stopping the rest
                print(f"closing the edge: {exc}", file=sys.stderr)
            self.edge = None
        self.runtime.stop()
        self.findings = log_findings(self.home)
        if keep_home or os.environ.get("OXIOS_BENCH_KEEP_HOME"):
            print(f"home kept at {self.home}", file=sys.stderr)
        else:
            shutil.rmtree(self.home, ignore_errors=True)


def log_findings(home: Path, limit: int = 25) -> list[str]:
    """Distinct WARNING/ERROR lines of the actor logs under ``home`` (worker homes
    included), timestamps and pids stripped, with a count: what went wrong inside."""
    import re

    counts: dict[str, int] = {}
    for path in sorted(home.rglob("logs/*.log")):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if not re.search(r"\b(WARNING|ERROR|CRITICAL|ERR|Warn)\b", line) or "HTTP Request" in line:
                continue
            text = re.sub(r"^[\d\-: ,.]+", "", line)
            text = re.sub(r"\bp\d+\b|0x[0-9a-f]+|:\d{4,5}\b|\(\d{4}\)", "#", text)[:200]
            key = f"{path.relative_to(home)}: {text}"
            counts[key] = counts.get(key, 0) + 1
    return [f"{n} x {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]]


def leftovers(pgids: set[int], markers: list[str]) -> list[str]:
    """Processes we started that are still alive (in our admins' process groups, children
    of this process, or naming one of our temp homes): killed, and listed."""
    me = os.getpid()
    found: list[psutil.Process] = []
    for _ in range(20):  # a launcher's sweep may still be finishing
        found = []
        try:
            children = {c.pid for c in psutil.Process(me).children(recursive=True)}
        except psutil.Error:
            children = set()
        for p in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if p.pid == me or p.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                cmd = " ".join(p.info["cmdline"] or [])
                if p.pid in children or any(m and m in cmd for m in markers) or os.getpgid(p.pid) in pgids:
                    found.append(p)
            except (psutil.Error, ProcessLookupError):
                continue
        if not found:
            return []
        time.sleep(0.25)
    out = []
    for p in found:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
            p.kill()
        except psutil.Error:
            pass
    return out


def machine() -> dict[str, Any]:
    vm = psutil.virtual_memory()
    return {"cpus": psutil.cpu_count(), "mem_total_mib": vm.total // 2**20, "python": sys.version.split()[0],
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save(name: str, results: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(results["timestamp"]).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))]
    for r in cells:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


def wait_quiet(max_secs: float, limit: float, log: Callable[[str], None] | None = None,
               extra: Callable[[], list[int]] | None = None) -> float:
    """Wait (at most ``max_secs``) until other processes use < ``limit``% of a core for
    two 1-s windows in a row; returns the last reading (the noise we start with)."""
    deadline = time.monotonic() + max_secs
    quiet, value = 0, 0.0
    while True:
        noise = Background(extra)
        time.sleep(1.0)
        value = noise.pct()
        quiet = quiet + 1 if value < limit else 0
        if quiet >= 2 or time.monotonic() >= deadline:
            if log is not None and value >= limit:
                log(f"background cpu still {value:.0f}% of a core after {max_secs:.0f}s; measuring anyway")
            return value


class ModelThread:
    """tests.scripted_llm.ScriptedModel on its own event loop in a thread."""

    def __init__(self) -> None:
        from tests.scripted_llm import ScriptedModel

        self.model = ScriptedModel()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="scripted-model", daemon=True)

    def start(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self.model.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.model.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def tree() -> dict[int, tuple[int, str]]:
    out = {}
    for p in psutil.process_iter(["pid", "ppid", "cmdline"]):
        try:
            out[p.pid] = (p.info["ppid"], " ".join(p.info["cmdline"] or []))
        except psutil.Error:
            pass
    return out


def descendants(snapshot: dict[int, tuple[int, str]], pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for child, (ppid, _) in snapshot.items():
        kids.setdefault(ppid, []).append(child)
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except psutil.Error:
            pass
    return total


def gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


def cpu_times(pids: list[int]) -> dict[int, float]:
    """pid -> cpu seconds, its reaped children's included (short-lived agents count)."""
    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return out


def service_pids(sys_: System) -> dict[int, str]:
    """pid -> service name (each service answers Ping with its pid); other actor
    processes (agents, the admin, the kernel, the launcher) are grouped by the caller."""
    from oxios_actors.messages import Ping, Pong

    out = {}
    for name in list(sys_.edge.bridge.directory):
        try:
            pong = sys_.ask(name, Ping(), 5)
        except Exception:  # a service that does not answer is left out
            continue
        if isinstance(pong, Pong):
            out[pong.pid] = name
    return out


def cpu_detail(pids: list[int]) -> dict[int, tuple[float, float, int]]:
    """pid -> (own cpu s, cpu s of its reaped children, ppid)."""
    out = {}
    for pid in pids:
        try:
            p = psutil.Process(pid)
            t = p.cpu_times()
            out[pid] = (t.user + t.system, t.children_user + t.children_system, p.ppid())
        except psutil.Error:
            pass
    return out


def cpu_by_service(names: dict[int, str], before: dict[int, tuple[float, float, int]],
                   after: dict[int, tuple[float, float, int]], secs: float) -> dict[str, float]:
    """% of a core per service over a window.  Agent processes (children of the
    supervisor, "agents") are counted together, the exited ones through the
    supervisor's reaped-children time; other actor processes are "other"."""
    sup = next((pid for pid, n in names.items() if n == "agents"), None)
    out: dict[str, float] = {}

    def add(key: str, v: float) -> None:
        out[key] = out.get(key, 0.0) + 100.0 * v / secs

    for pid, (own, kids, ppid) in after.items():
        b = before.get(pid, (0.0, 0.0, 0))
        key = names.get(pid) or ("agent processes" if ppid == sup else "other (admin, kernel, launcher)")
        add(key, own - b[0])
        add("agent processes" if pid == sup else key, kids - b[1])
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v >= 0.5}
