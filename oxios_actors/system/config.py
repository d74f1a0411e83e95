"""The typed configuration schema: defaults, validation, atomic persistence.

``$OXIOS_HOME/config.json`` holds it.  ``merge_and_validate`` is the single
definition of what a valid config is; the ConfigService (the only writer) and
the edge (for early 400s) both use it.  Secret fields are write-only: they are
stored but never serialised back out.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"


class ConfigError(ValueError):
    """A config that does not fit the schema; the message says which field and why."""


@dataclass(frozen=True)
class Field:
    kind: str  # "str" | "int" | "float" | "bool" | "list[str]"
    default: Any
    check: Callable[[Any], str | None] | None = None
    secret: bool = False


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def percent(value: Any) -> str | None:
    return None if 0 < value <= 100 else "must be in (0, 100]"


def port(value: Any) -> str | None:
    return None if 1 <= value <= 65535 else "must be between 1 and 65535"


def nonempty(value: Any) -> str | None:
    return None if value.strip() else "must not be empty"


def one_of(*options: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


SCHEMA: dict[str, dict[str, Field]] = {
    "server": {
        "host": Field("str", "127.0.0.1", nonempty),
        "port": Field("int", 4200, port),
    },
    "kernel": {
        "workspace": Field("str", "workspace", nonempty),
        "event_bus_capacity": Field("int", 256, positive),
        "max_agents": Field("int", 16, positive),
        "event_log_retention": Field("int", 1_000_000, positive),
    },
    "engine": {
        "provider": Field("str", "offline", one_of("offline", "openai")),
        "base_url": Field("str", ""),
        "default_model": Field("str", ""),
        "api_key": Field("str", "", secret=True),
        "timeout_secs": Field("int", 120, positive),
        "max_retries": Field("int", 3),
    },
    "scheduler": {
        "max_concurrent": Field("int", 5, positive),
        "rate_limit_per_minute": Field("int", 60, positive),
        "zombie_timeout_secs": Field("int", 300, positive),
    },
    "security": {
        "auth_enabled": Field("bool", True),
        "api_key": Field("str", "", secret=True),
        "allowed_tools": Field("list[str]", ["file_read", "file_write", "list_dir", "shell_exec",
                                             "memory_store", "memory_search"]),
        "allowed_paths": Field("list[str]", []),
        "denied_paths": Field("list[str]", ["/etc/**", "/root/**", "/sys/**", "/proc/**",
                                            ".oxios/**"]),
        "network_access": Field("bool", False),
        "max_execution_time_secs": Field("int", 300, positive),
        "max_memory_mb": Field("int", 512, positive),
        "can_fork": Field("bool", False),
        "cors_origins": Field("list[str]", ["http://localhost:4200"]),
        "rate_limit_per_minute": Field("int", 120, positive),
    },
    "persona": {"default": Field("str", "dev", nonempty)},
    "cluster": {
        "bind": Field("str", "127.0.0.1", nonempty),
        "allowed_peers": Field("list[str]", []),
        "requeue_on_node_loss": Field("bool", True),
        "reregistration_secs": Field("int", 2, positive),
        "node_timeout_secs": Field("float", 5.0, positive),
    },
    "orchestrator": {
        "max_evolutions": Field("int", 3, lambda v: None if v >= 0 else "must not be negative"),
        "parallel_threshold": Field("int", 5, positive),
        "chat_timeout_secs": Field("int", 600, positive),
    },
    "memory": {
        "enabled": Field("bool", True),
        "embedding": Field("str", "minilm", one_of("hash", "minilm")),
        "index_dtype": Field("str", "f32", one_of("f32", "f16")),
    },
    "cron": {
        "enabled": Field("bool", True),
        "run_missed_on_start": Field("bool", True),
    },
    "git": {
        "auto_commit": Field("bool", True),
        "author_name": Field("str", "oxios", nonempty),
        "author_email": Field("str", "oxios@localhost", nonempty),
    },
    "programs": {
        "download_timeout_secs": Field("int", 60, positive),
        "max_download_bytes": Field("int", 50 * 1024 * 1024, positive),
        "max_unpacked_bytes": Field("int", 200 * 1024 * 1024, positive),
        "max_files": Field("int", 5000, positive),
    },
    "audit": {
        "max_entries": Field("int", 100_000, positive),
        "group_commit": Field("bool", True),
    },
    "budget": {"default_window_secs": Field("int", 3600, positive)},
    "exec": {
        "shell_timeout_secs": Field("int", 60, positive),
        "max_output_bytes": Field("int", 1_048_576, positive),
    },
    "approvals": {
        "timeout_secs": Field("int", 3600, positive),
        "require": Field("list[str]", ["use_tool:shell_exec", "access_path:outside",
                                       "manage_programs", "system_config"]),
    },
    "resource_monitor": {
        "interval_secs": Field("float", 60.0, positive),
        "history": Field("int", 60, positive),
        "cpu_threshold": Field("float", 90.0, percent),
        "memory_threshold": Field("float", 90.0, percent),
        "load_threshold": Field("float", 8.0, positive),
    },
    "edge": {
        "ask_timeout_secs": Field("float", 10.0, positive),
        "sse_keepalive_secs": Field("float", 30.0, positive),
        "sse_client_queue": Field("int", 8192, positive),
        "max_body_bytes": Field("int", 10 * 1024 * 1024, positive),
    },
}

#: Fields that need a restart to take effect (everything else hot-reloads).
RESTART_FIELDS = {("server", "host"), ("server", "port"), ("kernel", "workspace")}


def defaults() -> dict[str, Any]:
    return {s: {k: copy.deepcopy(f.default) for k, f in fields.items()}
            for s, fields in SCHEMA.items()}


def _check_kind(path: str, kind: str, value: Any) -> Any:
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    if not ok:
        raise ConfigError(f"{path} must be {'a list of strings' if kind == 'list[str]' else 'a ' + kind}")
    return float(value) if kind == "float" else value


def merge_and_validate(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """``current`` with ``patch`` laid over it, validated as a whole.

    Sections and fields absent from the patch keep their current values; any
    unknown section or field, or a value of the wrong type or range, is an error.
    """
    if not isinstance(patch, dict):
        raise ConfigError("config must be a JSON object")
    merged = copy.deepcopy(current)
    for section, values in patch.items():
        if section not in SCHEMA:
            raise ConfigError(f"unknown config section: {section}")
        if not isinstance(values, dict):
            raise ConfigError(f"{section} must be an object")
        for key, value in values.items():
            spec = SCHEMA[section].get(key)
            if spec is None:
                raise ConfigError(f"unknown config field: {section}.{key}")
            merged.setdefault(section, {})[key] = _check_kind(f"{section}.{key}", spec.kind, value)
    for section, fields in SCHEMA.items():
        for key, spec in fields.items():
            value = merged.setdefault(section, {}).setdefault(key, copy.deepcopy(spec.default))
            value = _check_kind(f"{section}.{key}", spec.kind, value)
            if spec.check is not None:
                problem = spec.check(value)
                if problem:
                    raise ConfigError(f"{section}.{key} {problem}")
    return merged


def public(config: dict[str, Any]) -> dict[str, Any]:
    """The config without secrets (what GET/PUT /api/config return)."""
    out = copy.deepcopy(config)
    for section, fields in SCHEMA.items():
        for key, spec in fields.items():
            if spec.secret:
                out.get(section, {}).pop(key, None)
    return out


def config_path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / CONFIG_FILE


def load(home: str | os.PathLike[str]) -> dict[str, Any]:
    """The persisted config (defaults when there is none yet); raises ConfigError if broken."""
    path = config_path(home)
    if not path.exists():
        return defaults()
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return merge_and_validate(defaults(), data)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write, fsync, rename, fsync the directory: a crash leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def save(home: str | os.PathLike[str], config: dict[str, Any]) -> None:
    write_atomic(config_path(home), json.dumps(config, indent=2, sort_keys=True).encode())
