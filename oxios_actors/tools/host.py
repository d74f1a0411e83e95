"""ToolHost: an actor that runs tool calls for a named agent through the pipeline.

Agent actors embed the same ``ToolPipeline``; the host is also the internal API
(used by the tests, the orchestrator and operators) to run one tool call as an agent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ..service import DEFERRED, ServiceActor
from .executors import ToolResult
from .pipeline import ToolPipeline


@dataclass(frozen=True)
class RunTool:
    agent_name: str
    tool: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KillTools:
    pass


class ToolHost(ServiceActor):
    name = "tools"

    def __init__(self) -> None:
        super().__init__()
        self.pipeline = ToolPipeline(self)

    def on_RunTool(self, msg: RunTool) -> Any:
        reply_to = self.reply_to

        def done(result: ToolResult) -> None:
            self.reply(reply_to, result)

        self.pipeline.start(uuid.uuid4().hex, msg.agent_name, msg.tool, dict(msg.args), done)
        return DEFERRED

    def on_KillTools(self, msg: KillTools) -> ToolResult:
        self.pipeline.kill_all()
        return ToolResult(True, "killed")

    def on_answer(self, rid: str, reply: Any) -> None:
        self.pipeline.on_answer(rid, reply)

    def on_wakeup(self, payload: Any) -> None:
        self.pipeline.on_wakeup(payload)

    def on_stop(self) -> None:
        self.pipeline.kill_all()
