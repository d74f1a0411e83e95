"""Messages of the agents domain: the internal API the orchestrator, cron and the
tests use to run agents, and the supervisor <-> agent protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgentSpec:
    """What an agent is asked to do.  ``plan_path`` (workspace-relative) is where
    its output document goes; ``requirements`` are matched against node capabilities."""

    goal: str
    name: str = ""
    seed_id: str | None = None
    system_prompt: str = ""
    model: str | None = None
    priority: str = "Normal"
    requirements: dict[str, Any] = field(default_factory=dict)
    max_iterations: int = 8
    plan_path: str | None = None
    context: tuple[str, ...] = ()
    agent_id: str | None = None
    session_id: str | None = None  # carried into the agent's events (WebSocket chat streams)


@dataclass(frozen=True)
class SpawnAgent:
    """Create an agent and queue its task; the answer is ``Spawned`` at once, the
    outcome (``AgentResult``) is sent to ``notify`` (default: the sender) later."""

    spec: AgentSpec
    notify: Any = None
    group_id: str | None = None


@dataclass(frozen=True)
class Spawned:
    agent_id: str
    task_id: str


@dataclass(frozen=True)
class KillAgent:
    agent_id: str
    reason: str = "killed by request"


@dataclass(frozen=True)
class AgentResult:
    agent_id: str
    status: str  # Completed | Failed | Killed
    output: str = ""
    error: str | None = None
    seed_id: str | None = None
    group_id: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SpawnGroup:
    """Run ``members`` in parallel toward one parent seed; ``GroupResult`` goes to
    ``notify`` (default: the sender) when every member has finished."""

    name: str
    members: tuple[AgentSpec, ...]
    parent_seed_id: str | None = None
    notify: Any = None


@dataclass(frozen=True)
class GroupSpawned:
    group_id: str
    agent_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupResult:
    group_id: str
    status: str  # completed | failed
    results: tuple[AgentResult, ...]


# -- supervisor <-> agent ---------------------------------------------------------
@dataclass(frozen=True)
class RunAgent:
    agent_id: str
    spec: AgentSpec
    limits: dict[str, Any]


@dataclass(frozen=True)
class AgentStarted:
    agent_id: str
    pid: int
    started: float


@dataclass(frozen=True)
class AgentFinished:
    agent_id: str
    status: str
    output: str = ""
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


# -- group actor <-> supervisor ----------------------------------------------------
@dataclass(frozen=True)
class RunGroup:
    group_id: str
    members: tuple[AgentSpec, ...]
    parent_seed_id: str | None


@dataclass(frozen=True)
class GroupMemberDone:
    group_id: str
    result: AgentResult


@dataclass(frozen=True)
class GroupMembers:
    group_id: str
    agent_ids: tuple[str, ...]
