"""AgentGroup: runs several agents in parallel toward one parent seed and reports
each member's outcome; the AgentSupervisor persists the group and completes it
when every member has finished."""

from __future__ import annotations

from typing import Any

from ..service import ServiceActor
from .messages import AgentResult, GroupMemberDone, GroupMembers, RunGroup, SpawnAgent, Spawned


class AgentGroup(ServiceActor):
    name = "group"

    def on_RunGroup(self, msg: RunGroup) -> None:
        assert self.reply_to is not None
        self.supervisor = self.reply_to.address
        self.group_id = msg.group_id
        self.expected = len(msg.members)
        self.spawned: list[str] = []
        self.early: list[AgentResult] = []
        for i, spec in enumerate(msg.members):
            self.send(self.supervisor, _ask(f"member:{i}", SpawnAgent(spec, self.myAddress, msg.group_id)))

    def on_answer(self, rid: str, reply: Any) -> None:
        if isinstance(reply, Spawned):
            self.spawned.append(reply.agent_id)
            if len(self.spawned) == self.expected:
                self.send(self.supervisor, GroupMembers(self.group_id, tuple(self.spawned)))
                for result in self.early:
                    self.send(self.supervisor, GroupMemberDone(self.group_id, result))
                self.early = []
        else:  # a member could not even be spawned: it counts as failed
            self.spawned.append(f"unspawned-{self.group_id}-{rid}")
            error = getattr(reply, "error", repr(reply))
            self.early.append(AgentResult(self.spawned[-1], "Failed", "", f"not spawned: {error}",
                                          group_id=self.group_id))
            if len(self.spawned) == self.expected:
                self.send(self.supervisor, GroupMembers(self.group_id, tuple(self.spawned)))
                for result in self.early:
                    self.send(self.supervisor, GroupMemberDone(self.group_id, result))
                self.early = []

    def on_AgentResult(self, msg: AgentResult) -> None:
        if len(self.spawned) < self.expected:
            self.early.append(msg)  # the group record lists its members first
        else:
            self.send(self.supervisor, GroupMemberDone(self.group_id, msg))


def _ask(rid: str, request: Any) -> Any:
    from ..messages import Ask
    return Ask(rid, request)
