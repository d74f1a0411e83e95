"""Messages of the approvals domain."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestApproval:
    """Asked by the actor whose step needs a human.  The answer (``ApprovalOutcome``)
    comes when a human approves or rejects, or when the request expires."""

    subject: str  # "agent:<name>"
    action: str  # one of the §20 actions, e.g. "use_tool:shell_exec"
    resource: str
    reason: str


@dataclass(frozen=True)
class ApprovalOutcome:
    id: str
    status: str  # approved | rejected | expired
    reason: str


@dataclass(frozen=True)
class Resolve:
    id: str
    approve: bool
    by: str = "api"
