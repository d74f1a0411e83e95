"""Messages of the orchestrator."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chat:
    """One user message; answered with ``ChatReply`` when the phases are done."""

    content: str
    user_id: str = "default"
    session_id: str = ""
    message_id: str = ""


@dataclass(frozen=True)
class ChatReply:
    id: str
    echo: str
    reply: str
    session_id: str
    phase: str
    seed_id: str | None = None
    passed: bool | None = None


@dataclass(frozen=True)
class RunSeedTask:
    """Run a goal as a task without the interview (cron jobs): seed → execute →
    evaluate → evolve; answered with ``ChatReply`` (``passed`` set)."""

    goal: str
    constraints: tuple[str, ...] = ()
    acceptance_criteria: tuple[str, ...] = ()
    priority: str = "Normal"
    session_id: str = ""
    source: str = "cron"


@dataclass(frozen=True)
class DeleteSession:
    id: str
