"""The tool-call pipeline an agent's actor runs: Permissions → (Approvals, the step
waits while the actor keeps handling messages) → execute → AuditLedger → done.

Every step is a message, so a kill or pause can arrive between any two of them,
and a long shell command is polled by timer, never waited on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..approvals.messages import ApprovalOutcome, RequestApproval
from ..audit.messages import Append, Appended, AuditRecord
from ..batching import poll_interval
from ..messages import Failure
from ..paths import workspace_root
from ..permissions.messages import Check, Decision
from ..service import ServiceActor
from . import executors, registry
from .executors import ShellRun, ToolResult

Done = Callable[[ToolResult], None]


@dataclass
class Call:
    call_id: str
    agent: str
    spec: registry.ToolSpec
    args: dict[str, Any]
    on_done: Done
    decision: Decision | None = None
    started: float = 0.0
    shell: ShellRun | None = None
    future: Future[ToolResult] | None = None
    result: ToolResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resource(self) -> str:
        if self.decision is not None and self.decision.resolved_path:
            return self.decision.resolved_path
        for key in ("command", "url", "query"):
            if key in self.args:
                return str(self.args[key])[:500]
        return self.spec.name.split("_")[0]


def _memory_result(reply: Any) -> ToolResult:
    from ..memory.messages import Recalled, Remembered

    if isinstance(reply, Remembered):
        return ToolResult(True, f"stored memory {reply.id}", meta={"id": reply.id})
    if isinstance(reply, Recalled):
        lines = [f"- ({e.get('similarity', 0):.2f}) {e.get('content', '')[:500]}" for e in reply.entries]
        return ToolResult(True, "\n".join(lines) or "no memories found", meta={"count": len(reply.entries)})
    return ToolResult(False, error=f"memory: unexpected reply {type(reply).__name__}")


class ToolPipeline:
    def __init__(self, actor: ServiceActor) -> None:
        self.actor = actor
        self.calls: dict[str, Call] = {}
        self.threads: ThreadPoolExecutor | None = None
        self.ticking = False

    # -- entry ------------------------------------------------------------
    def start(self, call_id: str, agent: str, tool: str, args: dict[str, Any], on_done: Done) -> None:
        spec = registry.TOOLS.get(tool)
        if spec is None:
            on_done(ToolResult(False, error=f"unknown tool: {tool}"))
            return
        problem = registry.check_args(spec, args)
        if problem is not None:
            on_done(ToolResult(False, error=f"{tool}: {problem}"))
            return
        call = Call(call_id, agent, spec, dict(args), on_done)
        self.calls[call_id] = call
        path = args.get(spec.path_arg, ".") if spec.path_arg else None
        check = Check(agent, tool, path, spec.writes, spec.network)
        if not self.actor.ask_service("permissions", f"{call_id}:check", check):
            self.finish(call, ToolResult(False, error="the permissions service is not available"), audit=False)

    # -- answers ----------------------------------------------------------
    def on_answer(self, rid: str, reply: Any) -> bool:
        call_id, _, step = rid.rpartition(":")
        call = self.calls.get(call_id)
        if call is None:
            return False
        if isinstance(reply, Failure):
            self.finish(call, ToolResult(False, error=reply.error), audit=step != "audit")
        elif step == "check" and isinstance(reply, Decision):
            self.decided(call, reply)
        elif step == "approval" and isinstance(reply, ApprovalOutcome):
            if reply.status == "approved":
                self.execute(call)
            else:
                self.deny(call, f"approval {reply.status}: {reply.reason}")
        elif step == "memory":
            self.finish(call, _memory_result(reply))
        elif step == "spawn":
            agent_id = getattr(reply, "agent_id", None)
            self.finish(call, ToolResult(True, f"spawned sub-agent {agent_id}", meta={"agent_id": agent_id})
                        if agent_id else ToolResult(False, error=f"could not spawn: {reply!r}"))
        elif step == "audit" and isinstance(reply, Appended):
            self.calls.pop(call.call_id, None)
            assert call.result is not None
            call.on_done(call.result)
        return True

    def decided(self, call: Call, decision: Decision) -> None:
        call.decision = decision
        if not decision.allowed:
            self.deny(call, decision.reason)
        elif decision.needs_approval:
            request = RequestApproval(f"agent:{call.agent}", decision.needs_approval, call.resource,
                                      f"{call.agent} wants to run {call.spec.name} on {call.resource}")
            if not self.actor.ask_service("approvals", f"{call.call_id}:approval", request):
                self.deny(call, "approval required but the approvals service is not available")
        else:
            self.execute(call)

    def deny(self, call: Call, reason: str) -> None:
        self.finish(call, ToolResult(False, error=f"denied: {reason}"), allowed=False, reason=reason)

    # -- execution --------------------------------------------------------
    def execute(self, call: Call) -> None:
        assert call.decision is not None
        limits = call.decision.limits
        cfg = self.actor.section("exec")
        max_output = int(cfg.get("max_output_bytes", 1_048_576))
        timeout = float(limits.get("max_execution_time_secs", 300))
        path = call.decision.resolved_path
        call.started = time.monotonic()
        name = call.spec.name
        try:
            if name == "shell_exec":
                call.shell = ShellRun(call.args["command"], workspace_root(self.actor.home, self.actor.config),
                                      timeout=min(timeout, float(cfg.get("shell_timeout_secs", timeout))),
                                      memory_mb=int(limits.get("max_memory_mb", 512)),
                                      max_output=max_output, agent=call.agent)
            elif name in ("file_read", "file_write", "list_dir", "http_fetch"):
                fn: Callable[[], ToolResult] = {
                    "file_read": lambda: executors.file_read(str(path)),
                    "file_write": lambda: executors.file_write(str(path), call.args["content"]),
                    "list_dir": lambda: executors.list_dir(str(path)),
                    "http_fetch": lambda: executors.http_fetch(call.args["url"], min(timeout, 60), max_output),
                }[name]
                if self.threads is None:
                    self.threads = ThreadPoolExecutor(2, thread_name_prefix="oxios-tool")
                call.future = self.threads.submit(fn)
            else:
                self.delegate(call)
                return
        except Exception as exc:  # could not even start: that is the tool's result
            self.finish(call, ToolResult(False, error=f"{name} failed to start: {exc}"))
            return
        self.tick()

    def delegate(self, call: Call) -> None:
        """Tools served by another service (memory); answered through on_answer."""
        from ..agents.messages import AgentSpec, SpawnAgent
        from ..memory.messages import Remember, SearchSemantic

        args = call.args
        if call.spec.name == "spawn_agent":
            spec = AgentSpec(args["goal"], name=f"sub-agent of {call.agent}: {args['goal'][:80]}")
            if not self.actor.ask_service("agents", f"{call.call_id}:spawn", SpawnAgent(spec)):
                self.finish(call, ToolResult(False, error="the agent supervisor is not available"))
            return
        if call.spec.name == "memory_store":
            request: Any = Remember(args["content"], args.get("memory_type", "fact"), tuple(args.get("tags", ())),
                                    float(args.get("importance", 0.5)), source=call.agent)
        else:
            request = SearchSemantic(args["query"], None, int(args.get("limit", 5)))
        if not self.actor.ask_service("memory", f"{call.call_id}:memory", request):
            self.finish(call, ToolResult(False, error="the memory service is not available"))

    def tick(self) -> None:
        if not self.ticking:
            self.ticking = True
            started = [c.started for c in self.calls.values() if c.result is None and c.started]
            waited = time.monotonic() - min(started) if started else 0.0
            self.actor.after(poll_interval(waited), "tool-poll")

    def on_wakeup(self, payload: Any) -> bool:
        if payload != "tool-poll":
            return False
        self.ticking = False
        now = time.monotonic()
        for call in [c for c in self.calls.values() if c.result is None and c.started]:
            result: ToolResult | None = None
            if call.shell is not None:
                result = call.shell.poll(now - call.started)
            elif call.future is not None and call.future.done():
                exc = call.future.exception()
                result = call.future.result() if exc is None else ToolResult(False, error=f"{exc}")
            if result is not None:
                self.finish(call, result)
        if any(c.result is None and c.started for c in self.calls.values()):
            self.tick()
        return True

    # -- end --------------------------------------------------------------
    def finish(self, call: Call, result: ToolResult, *, allowed: bool = True, reason: str | None = None,
               audit: bool = True) -> None:
        call.result = result
        if not audit:
            self.calls.pop(call.call_id, None)
            call.on_done(result)
            return
        if reason is None:
            reason = "ok" if result.ok else (result.error or "failed")
        if result.ok and call.spec.name == "file_write":
            self.commit(call)
        record = AuditRecord(call.agent, call.spec.name, call.resource, allowed, reason)
        if not self.actor.ask_service("audit", f"{call.call_id}:audit", Append((record,))):
            self.calls.pop(call.call_id, None)
            call.on_done(result)

    def commit(self, call: Call) -> None:
        """An agent's write becomes a git commit (authored by the agent) in the workspace."""
        from ..workspace.messages import CommitPaths

        assert call.decision is not None and call.decision.resolved_path
        root = workspace_root(self.actor.home, self.actor.config)
        try:
            rel = Path(call.decision.resolved_path).relative_to(root)
        except ValueError:
            return  # outside the workspace (approved): nothing to version
        workspace = self.actor.directory.get("workspace")
        if workspace is not None:
            self.actor.send(workspace, CommitPaths((str(rel),), f"{call.agent}: write {rel}", call.agent))

    def kill_all(self) -> None:
        """Stop every running tool now (the tools' processes die with them)."""
        for call in list(self.calls.values()):
            if call.shell is not None and call.result is None:
                call.shell.kill()
        self.calls.clear()
        if self.threads is not None:
            self.threads.shutdown(wait=False, cancel_futures=True)
