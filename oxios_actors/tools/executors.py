"""Running the tools themselves.  Called only after Permissions (and, when the policy
says so, a human) allowed the call; limits come from the agent's permissions."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_READ_BYTES = 1_048_576


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    output: str = ""
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def file_read(path: str) -> ToolResult:
    p = Path(path)
    if not p.is_file():
        return ToolResult(False, error=f"not a file: {path}")
    data = p.read_bytes()[:MAX_READ_BYTES]
    return ToolResult(True, data.decode("utf-8", errors="replace"), meta={"bytes": len(data)})


def file_write(path: str, content: str) -> ToolResult:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.oxios-tmp")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, p)
    return ToolResult(True, f"wrote {len(content.encode())} bytes to {path}", meta={"bytes": len(content.encode())})


def list_dir(path: str) -> ToolResult:
    p = Path(path)
    if not p.is_dir():
        return ToolResult(False, error=f"not a directory: {path}")
    entries = sorted(p.iterdir(), key=lambda e: (not e.is_dir(), e.name))
    return ToolResult(True, "\n".join(e.name + ("/" if e.is_dir() else "") for e in entries),
                      meta={"entries": len(entries)})


def http_fetch(url: str, timeout: float, max_bytes: int) -> ToolResult:
    if not url.startswith(("http://", "https://")):
        return ToolResult(False, error="only http(s) URLs can be fetched")
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (scheme checked)
        body = resp.read(max_bytes + 1)
        status = resp.status
    return ToolResult(True, body[:max_bytes].decode("utf-8", errors="replace"),
                      meta={"status": status, "truncated": len(body) > max_bytes})


class ShellRun:
    """A shell command in its own process group: time limit by the caller's clock,
    memory by RLIMIT_AS, output to a temp file (no pipe can fill), environment scrubbed."""

    def __init__(self, command: str, cwd: Path, *, timeout: float, memory_mb: int, max_output: int,
                 agent: str) -> None:
        self.timeout = timeout
        self.max_output = max_output
        self.out = tempfile.TemporaryFile()
        limit = memory_mb * 1024 * 1024

        def limits() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8",
               "OXIOS_AGENT": agent}
        self.proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=limits, close_fds=True)
        self.timed_out = False

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def poll(self, elapsed: float) -> ToolResult | None:
        """None while running; the result once it exits or runs out of time."""
        code = self.proc.poll()
        if code is None:
            if elapsed < self.timeout:
                return None
            self.timed_out = True
            self.kill()
            code = self.proc.returncode
        self.out.seek(0)
        data = self.out.read(self.max_output + 1)
        self.out.close()
        text = data[:self.max_output].decode("utf-8", errors="replace")
        if len(data) > self.max_output:
            text += f"\n[output truncated at {self.max_output} bytes]"
        meta = {"exit_code": code, "truncated": len(data) > self.max_output}
        if self.timed_out:
            return ToolResult(False, text, f"timed out after {self.timeout:g}s", {**meta, "timed_out": True})
        text += f"\n[exit code {code}]"
        return ToolResult(code == 0, text, None if code == 0 else f"exit code {code}", meta)
