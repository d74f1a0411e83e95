"""What each tool is, for the pipeline (which argument is a path, does it write or
reach the network) and for LLM providers (name, description, JSON schema)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    path_arg: str | None = None
    writes: bool = False
    network: bool = False

    def schema(self) -> dict[str, Any]:
        """OpenAI-style function description."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def _obj(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


STR = {"type": "string"}

TOOLS: dict[str, ToolSpec] = {t.name: t for t in (
    ToolSpec("file_read", "Read a text file from the workspace.",
             _obj(["path"], path={**STR, "description": "path relative to the workspace"}), path_arg="path"),
    ToolSpec("file_write", "Write (create or replace) a text file in the workspace; parents are created.",
             _obj(["path", "content"], path=STR, content=STR), path_arg="path", writes=True),
    ToolSpec("list_dir", "List a directory of the workspace (one level).",
             _obj([], path={**STR, "default": "."}), path_arg="path"),
    ToolSpec("shell_exec", "Run a shell command in the workspace (time and memory limited).",
             _obj(["command"], command=STR)),
    ToolSpec("http_fetch", "Fetch a URL over HTTP(S) (needs network access).",
             _obj(["url"], url=STR), network=True),
    ToolSpec("memory_store", "Store a memory entry (fact, episode or knowledge).",
             _obj(["content"], content=STR, memory_type={"type": "string", "enum": ["fact", "episode", "knowledge"]},
                  tags={"type": "array", "items": STR}, importance={"type": "number"})),
    ToolSpec("memory_search", "Search memory semantically.",
             _obj(["query"], query=STR, limit={"type": "integer", "minimum": 1})),
    ToolSpec("spawn_agent", "Start a sub-agent on a goal (needs can_fork); returns its id at once.",
             _obj(["goal"], goal=STR)),
)}


def describe() -> list[dict[str, Any]]:
    return [t.schema() for t in TOOLS.values()]


def check_args(spec: ToolSpec, args: Any) -> str | None:
    """A reason the arguments do not fit the schema, or None."""
    if not isinstance(args, dict):
        return "arguments must be an object"
    props = spec.parameters["properties"]
    for key in spec.parameters["required"]:
        if key not in args:
            return f"missing argument: {key}"
    for key, value in args.items():
        if key not in props:
            return f"unknown argument: {key}"
        kind = props[key].get("type")
        ok = {"string": isinstance(value, str), "integer": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool),
              "array": isinstance(value, list)}.get(kind, True)
        if not ok:
            return f"argument {key} must be of type {kind}"
    return None
