"""Messages of the permissions domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UpdatePermissions:
    """Partial update: only the given fields change; creates the record from the
    configured defaults when the agent has none."""

    agent_name: str
    patch: dict[str, Any]


@dataclass(frozen=True)
class EnsurePermissions:
    """Give an agent the default permissions unless it already has a record."""

    agent_name: str


@dataclass(frozen=True)
class PermissionsRecord:
    record: dict[str, Any]


@dataclass(frozen=True)
class Check:
    """May ``agent_name`` run ``tool`` (on ``path``, if it touches one; with ``write``
    when it changes it; with ``network`` when it reaches out)?"""

    agent_name: str
    tool: str
    path: str | None = None
    write: bool = False
    network: bool = False


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    needs_approval: str | None = None  # the approval action (e.g. "use_tool:shell_exec")
    resolved_path: str | None = None
    limits: dict[str, Any] = field(default_factory=dict)
