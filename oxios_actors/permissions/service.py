"""Permissions: the only writer of per-agent permission records, and the judge of
every tool call (tools, paths on their real location, network, approval policy)."""

from __future__ import annotations

from typing import Any

from ..messages import Failure
from ..paths import workspace_root
from ..service import ServiceActor
from ..store import open_writer, pack, unpack
from . import records
from .messages import Check, Decision, EnsurePermissions, PermissionsRecord, UpdatePermissions

NETWORK_TOOLS = {"http_fetch"}


class Permissions(ServiceActor):
    name = "permissions"

    def on_configure(self) -> None:
        self.env = open_writer(self.home, records.DOMAIN)
        self.db = self.env.open_db(records.AGENTS_DB.encode())

    @property
    def workspace(self) -> Any:
        return workspace_root(self.home, self.config)

    def load(self, agent: str) -> dict[str, Any] | None:
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(agent.encode())
        return None if raw is None else unpack(raw)

    def store(self, record: dict[str, Any]) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(record["agent_name"].encode(), pack(record))

    def on_UpdatePermissions(self, msg: UpdatePermissions) -> Any:
        if not msg.agent_name or len(msg.agent_name) > 256:
            return Failure(400, "agent name must be 1 to 256 characters")
        try:
            patch = records.validate_patch(msg.patch)
        except records.PermissionError_ as exc:
            return Failure(400, str(exc))
        record = self.load(msg.agent_name) or records.defaults(
            msg.agent_name, self.section("security"), self.workspace)
        record.update(patch)
        self.store(record)
        self.audit("api", "permission_change", msg.agent_name, True,
                   "changed: " + ", ".join(sorted(patch)) if patch else "created with defaults")
        return PermissionsRecord(record)

    def on_EnsurePermissions(self, msg: EnsurePermissions) -> PermissionsRecord:
        record = self.load(msg.agent_name)
        if record is None:
            record = records.defaults(msg.agent_name, self.section("security"), self.workspace)
            self.store(record)
        return PermissionsRecord(record)

    def on_Check(self, msg: Check) -> Decision:
        record = self.load(msg.agent_name)
        if record is None:
            return Decision(False, f"agent {msg.agent_name} has no permissions record")
        limits = {"max_execution_time_secs": record["max_execution_time_secs"],
                  "max_memory_mb": record["max_memory_mb"], "can_fork": record["can_fork"]}
        if msg.tool not in record["allowed_tools"]:
            return Decision(False, f"tool {msg.tool} is not allowed for {msg.agent_name}", limits=limits)
        if msg.tool == "spawn_agent" and not record["can_fork"]:
            return Decision(False, f"{msg.agent_name} may not spawn sub-agents (can_fork is false)", limits=limits)
        if (msg.network or msg.tool in NETWORK_TOOLS) and not record["network_access"]:
            return Decision(False, f"{msg.agent_name} has no network access", limits=limits)
        require = set(self.section("approvals").get("require", []))
        approval = f"use_tool:{msg.tool}" if f"use_tool:{msg.tool}" in require else None
        resolved = None
        reason = f"tool {msg.tool} allowed"
        if msg.path is not None:
            resolved = records.resolve(msg.path, self.workspace)
            verdict, reason = records.path_verdict(resolved, record, self.workspace)
            if verdict == "denied":
                return Decision(False, reason, resolved_path=resolved, limits=limits)
            if verdict == "outside":
                if not (msg.write and "access_path:outside" in require):
                    return Decision(False, reason, resolved_path=resolved, limits=limits)
                approval = approval or f"access_path:{resolved}"
        return Decision(True, reason, approval, resolved, limits)

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.env.close()
