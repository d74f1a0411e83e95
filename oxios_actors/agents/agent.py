"""Agent: one actor, one OS process, one task.

The work is a sequence of small steps, each a message: reserve budget → LLM call
(on a worker thread, polled by timer) → settle budget → tool calls through the
pipeline (Permissions → Approvals → execute → Audit) → next step.  A kill, a
deadline or a reply can therefore arrive between any two steps.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..batching import poll_interval
from ..budget.messages import Record, Reserve, Reserved
from ..cluster.node import capability_check
from ..llm import Completion, ProviderError, make_provider
from ..llm.base import ChatRequest, estimate_tokens
from ..messages import Failure
from ..service import ServiceActor
from ..tools import registry
from ..tools.executors import ToolResult
from ..tools.pipeline import ToolPipeline
from .messages import AgentFinished, AgentSpec, AgentStarted, RunAgent

POLL_SECS = 0.02
RESERVE_HEADROOM = 256

SYSTEM = ("You are an Oxios agent working in a git-versioned workspace. Use the tools to do the task; "
          "paths are relative to the workspace. When the task is done, answer with a short report of "
          "what you did and stop calling tools.")


class Agent(ServiceActor):
    name = "agent"

    @staticmethod
    def actorSystemCapabilityCheck(capabilities: dict[str, Any], requirements: dict[str, Any]) -> bool:
        """Placement: the supervisor names the node (``oxios.node``) an agent must run on."""
        return capability_check(capabilities, requirements)

    def __init__(self) -> None:
        super().__init__()
        self.pipeline = ToolPipeline(self)
        self.pool: ThreadPoolExecutor | None = None
        self.pending: Future[Completion] | None = None
        self.supervisor: Any = None
        self.done = False
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "llm_calls": 0, "tool_calls": 0}
        self.queue: list[dict[str, Any]] = []

    def on_RunAgent(self, msg: RunAgent) -> None:
        assert self.reply_to is not None
        self.supervisor = self.reply_to.address
        self.agent_id, self.spec, self.limits = msg.agent_id, msg.spec, msg.limits
        self.iterations = 0
        self.send(self.supervisor, AgentStarted(self.agent_id, os.getpid(), time.time()))
        self.provider = make_provider(self.section("engine"))
        spec: AgentSpec = msg.spec
        system = "\n\n".join(p for p in (spec.system_prompt, SYSTEM) if p)
        task = spec.goal + ("\n\nContext:\n" + "\n".join(spec.context) if spec.context else "")
        if spec.plan_path:
            task += f"\n\nWrite your output document to {spec.plan_path}. [plan:{spec.plan_path}]"
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system},
                                               {"role": "user", "content": task}]
        self.after(float(self.limits.get("max_execution_time_secs", 300)), "deadline")
        self.publish("agent_output", agent_id=self.agent_id, kind="started")
        self.step()

    # -- steps ----------------------------------------------------------------
    def step(self) -> None:
        if self.done:
            return
        if self.iterations >= self.spec.max_iterations:
            last = next((m["content"] for m in reversed(self.messages) if m["role"] == "assistant"), "")
            self.finish("Completed", last or "stopped after the iteration limit",
                        None if last else f"no answer within {self.spec.max_iterations} iterations")
            return
        self.iterations += 1
        self.reserved = estimate_tokens(self.messages) + RESERVE_HEADROOM
        if not self.ask_service("budget", "reserve", Reserve(self.agent_id, self.reserved)):
            self.call_llm(None)

    def call_llm(self, window: float | None) -> None:
        self.window = window
        request = ChatRequest(self.messages, registry.describe(), self.spec.model, purpose="agent")
        if self.pool is None:
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="oxios-llm")
        self.pending = self.pool.submit(self.provider.complete, request)
        self.llm_started = time.monotonic()
        self.after(POLL_SECS, "llm-poll")

    def on_answer(self, rid: str, reply: Any) -> None:
        if self.done:
            return
        if rid == "reserve":
            if isinstance(reply, Failure):
                self.finish("Failed", "", f"budget: {reply.error}")
            elif isinstance(reply, Reserved) and reply.ok:
                self.call_llm(reply.window_start)
            else:
                self.finish("Failed", "", f"budget: reservation refused ({reply!r})")
            return
        if rid != "settle":
            self.pipeline.on_answer(rid, reply)

    def on_wakeup(self, payload: Any) -> None:
        if self.done:
            return
        if payload == "deadline":
            limit = self.limits.get("max_execution_time_secs", 300)
            self.pipeline.kill_all()
            self.finish("Failed", "", f"time limit exceeded ({limit}s)")
        elif payload == "llm-poll":
            self.poll_llm()
        else:
            self.pipeline.on_wakeup(payload)

    def poll_llm(self) -> None:
        if self.pending is None:
            return
        if not self.pending.done():
            self.after(poll_interval(time.monotonic() - self.llm_started), "llm-poll")
            return
        future, self.pending = self.pending, None
        try:
            completion = future.result()
        except ProviderError as exc:
            self.finish("Failed", "", f"model error: {exc}")
            return
        except Exception as exc:
            self.finish("Failed", "", f"model call failed: {type(exc).__name__}: {exc}")
            return
        self.usage["prompt_tokens"] += completion.prompt_tokens
        self.usage["completion_tokens"] += completion.completion_tokens
        self.usage["llm_calls"] += 1
        budget = self.directory.get("budget")
        if budget is not None:  # settle the reservation with what was really used (tell)
            self.send(budget, Record(self.agent_id, self.reserved, completion.total_tokens or self.reserved,
                                     self.window))
        self.publish("agent_output", agent_id=self.agent_id, kind="llm", tokens=completion.total_tokens,
                     tool_calls=len(completion.tool_calls))
        assistant: dict[str, Any] = {"role": "assistant", "content": completion.content}
        if completion.tool_calls:
            assistant["tool_calls"] = [{"id": c.id, "type": "function",
                                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                                       for c in completion.tool_calls]
            self.messages.append(assistant)
            self.queue = [{"id": c.id, "name": c.name, "args": c.arguments} for c in completion.tool_calls]
            self.next_tool()
        else:
            self.messages.append(assistant)
            self.finish("Completed", completion.content)

    def next_tool(self) -> None:
        if not self.queue:
            self.step()
            return
        call = self.queue.pop(0)
        self.usage["tool_calls"] += 1

        def done(result: ToolResult) -> None:
            text = result.output if result.ok else f"error: {result.error}\n{result.output}".strip()
            self.messages.append({"role": "tool", "tool_call_id": call["id"], "content": text[:16_000]})
            self.publish("agent_output", agent_id=self.agent_id, kind="tool", tool=call["name"], ok=result.ok)
            self.next_tool()

        self.pipeline.start(uuid.uuid4().hex, self.agent_id, call["name"], call["args"], done)

    # -- end ----------------------------------------------------------------------
    def finish(self, status: str, output: str, error: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        if self.supervisor is not None:
            self.send(self.supervisor, AgentFinished(self.agent_id, status, output[:65_536], error, self.usage))

    def on_stop(self) -> None:
        self.done = True
        self.pipeline.kill_all()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
