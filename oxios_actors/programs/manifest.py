"""``program.toml``: the manifest of an installed program, and its host check.

    [program]
    name = "my-program"        # required, like a skill name
    version = "1.0.0"          # required
    description = "..."        # required
    author = "oxios"           # required

    [tools.analyze]
    description = "Analyze code quality"
    command = "python3 analyze.py"
    arguments = [{ name = "path", description = "...", required = true, default = "." }]

    [host_requirements]
    required = ["python3"]
    optional = ["rg"]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..workspace.pathguard import NAME_RE

MANIFEST_FILE = "program.toml"
SKILL_FILE = "SKILL.md"
MAX_MANIFEST_BYTES = 256 * 1024

#: A host tool is a bare command name looked up on PATH — never a path, so a
#: manifest cannot make the host run a file it shipped.
TOOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
TOOL_CHECK_TIMEOUT_SECS = 5.0


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    command: str
    arguments: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "command": self.command,
                "arguments": [dict(a) for a in self.arguments]}


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    description: str
    author: str
    tools: tuple[Tool, ...] = ()
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


def _str(table: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = table.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ManifestError(f"{where}.{key} must be a non-empty string")
    return value


def _argument(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} must be a table")
    arg: dict[str, Any] = {"name": _str(raw, "name", where),
                           "description": _str(raw, "description", where, required=False),
                           "required": raw.get("required", True)}
    if not isinstance(arg["required"], bool):
        raise ManifestError(f"{where}.required must be a boolean")
    if "default" in raw:
        if not isinstance(raw["default"], (str, int, float, bool)):
            raise ManifestError(f"{where}.default must be a string, number or boolean")
        arg["default"] = raw["default"]
    return arg


def _tools(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(t, str) and TOOL_RE.match(t) for t in raw):
        raise ManifestError("host_requirements lists must hold bare command names")
    return tuple(raw)


def parse_manifest(text: str) -> Manifest:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"program.toml is not valid TOML: {exc}") from None
    program = data.get("program")
    if not isinstance(program, dict):
        raise ManifestError("program.toml has no [program] table")
    name = _str(program, "name", "program")
    if not NAME_RE.match(name):
        raise ManifestError(f"program.name {name!r} is not a valid name (letters, digits, '.', '_', '-')")
    tools_table = data.get("tools", {})
    if not isinstance(tools_table, dict):
        raise ManifestError("[tools] must be a table of tables")
    tools = []
    for tool_name, raw in sorted(tools_table.items()):
        where = f"tools.{tool_name}"
        if not isinstance(raw, dict):
            raise ManifestError(f"[{where}] must be a table")
        args = raw.get("arguments", [])
        if not isinstance(args, list):
            raise ManifestError(f"{where}.arguments must be a list")
        tools.append(Tool(tool_name, _str(raw, "description", where, required=False),
                          _str(raw, "command", where, required=False),
                          tuple(_argument(a, f"{where}.arguments[{i}]") for i, a in enumerate(args))))
    host = data.get("host_requirements", {})
    if not isinstance(host, dict):
        raise ManifestError("[host_requirements] must be a table")
    return Manifest(name, _str(program, "version", "program"), _str(program, "description", "program"),
                    _str(program, "author", "program"), tuple(tools),
                    _tools(host.get("required")), _tools(host.get("optional")))


def load_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_FILE
    if not path.is_file() or path.is_symlink():
        raise ManifestError("no program.toml found")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ManifestError("program.toml is too large")
    try:
        return parse_manifest(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ManifestError("program.toml is not UTF-8") from None


def tool_present(tool: str) -> bool:
    """Present if ``<tool> --version`` (or ``-v``, ``version``) exits 0."""
    if not TOOL_RE.match(tool):
        return False
    path = shutil.which(tool)
    if path is None:
        return False
    for args in (["--version"], ["-v"], ["version"]):
        try:
            done = subprocess.run([path, *args], capture_output=True, stdin=subprocess.DEVNULL,
                                  timeout=TOOL_CHECK_TIMEOUT_SECS)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return True
    return False


def host_requirements(manifest: Manifest) -> dict[str, Any]:
    return {"program_name": manifest.name,
            "missing_required": [t for t in manifest.required if not tool_present(t)],
            "optional_available": {t: tool_present(t) for t in manifest.optional}}
