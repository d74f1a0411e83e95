"""Key layout, validation and path rules of the permissions domain (actor and edge).

Environment ``permissions``: db ``agents`` maps the agent name to its record
``{agent_name, allowed_tools, allowed_paths, denied_paths, network_access,
max_execution_time_secs, max_memory_mb, can_fork}``.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

from ..store import ReadOnlyStore

DOMAIN = "permissions"
AGENTS_DB = "agents"

FIELD_KINDS: dict[str, str] = {
    "allowed_tools": "list[str]", "allowed_paths": "list[str]", "denied_paths": "list[str]",
    "network_access": "bool", "max_execution_time_secs": "int", "max_memory_mb": "int", "can_fork": "bool",
}


class PermissionError_(ValueError):
    pass


def defaults(agent_name: str, security: dict[str, Any], workspace: Path) -> dict[str, Any]:
    return {
        "agent_name": agent_name,
        "allowed_tools": list(security.get("allowed_tools", [])),
        "allowed_paths": list(security.get("allowed_paths") or [str(workspace)]),
        "denied_paths": list(security.get("denied_paths", [])),
        "network_access": bool(security.get("network_access", False)),
        "max_execution_time_secs": int(security.get("max_execution_time_secs", 300)),
        "max_memory_mb": int(security.get("max_memory_mb", 512)),
        "can_fork": bool(security.get("can_fork", False)),
    }


def validate_patch(patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise PermissionError_("permissions must be a JSON object")
    for key, value in patch.items():
        kind = FIELD_KINDS.get(key)
        if kind is None:
            raise PermissionError_(f"unknown permissions field: {key}")
        ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool) and value > 0,
            "list[str]": isinstance(value, list) and all(isinstance(v, str) and v for v in value),
        }[kind]
        if not ok:
            wanted = {"bool": "a boolean", "int": "a positive integer",
                      "list[str]": "a list of non-empty strings"}[kind]
            raise PermissionError_(f"{key} must be {wanted}")
    return patch


def get(store: ReadOnlyStore, agent_name: str) -> dict[str, Any] | None:
    return store.get(DOMAIN, AGENTS_DB, agent_name.encode())


# -- path rules -------------------------------------------------------------
_GLOB = set("*?[")


def resolve(path: str, workspace: Path) -> str:
    """The real path (symlinks and ``..`` resolved); relative paths are in the workspace."""
    p = Path(path).expanduser()
    return os.path.realpath(p if p.is_absolute() else workspace / p)


def _pattern(pattern: str, workspace: Path) -> str:
    """A rule pattern as an absolute pattern whose fixed prefix is a real path."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts:
        if _GLOB & set(part):
            break
        fixed.append(part)
    base = Path(*fixed) if fixed else Path(".")
    base = base if base.is_absolute() else workspace / base
    rest = parts[len(fixed):]
    return os.path.join(os.path.realpath(base), *rest)


def matches(real_path: str, pattern: str, workspace: Path) -> bool:
    pat = _pattern(pattern, workspace)
    if not (_GLOB & set(pat)):
        return real_path == pat or real_path.startswith(pat.rstrip("/") + "/")
    if pat.endswith("/**"):
        root = pat[:-3]
        if not (_GLOB & set(root)):
            return real_path == root or real_path.startswith(root.rstrip("/") + "/")
    return fnmatch.fnmatchcase(real_path, pat.replace("**", "*"))


def path_verdict(real_path: str, record: dict[str, Any], workspace: Path) -> tuple[str, str]:
    """("denied" | "allowed" | "outside", reason).  Denied globs beat allowed ones."""
    for pattern in record.get("denied_paths", []):
        if matches(real_path, pattern, workspace):
            return "denied", f"path {real_path} is denied by rule {pattern}"
    for pattern in record.get("allowed_paths", []):
        if matches(real_path, pattern, workspace):
            return "allowed", f"path {real_path} is allowed by rule {pattern}"
    return "outside", f"path {real_path} is outside the agent's allowed paths"
