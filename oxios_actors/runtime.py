"""ActorRuntime: runs the launcher as a child process and stops it cleanly.

Used by ``oxios serve`` and by the tests, so both start and stop the actor
system the same way."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class RuntimeStartError(RuntimeError):
    pass


class ActorRuntime:
    def __init__(self, home: str | os.PathLike[str], actor_port: int, bind: str = "127.0.0.1", *,
                 allow: list[str] | None = None, join: str = "", capabilities: list[str] | None = None,
                 node_name: str = "", reregistration_secs: int = 2) -> None:
        self.home = Path(home)
        self.actor_port = actor_port
        self.bind = bind
        self.extra: list[str] = ["--reregistration-secs", str(reregistration_secs)]
        if allow:
            self.extra += ["--allow", ",".join(allow)]
        if join:
            self.extra += ["--join", join]
        for cap in capabilities or []:
            self.extra += ["--capability", cap]
        if node_name:
            self.extra += ["--node-name", node_name]
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    def start(self, timeout: float = 60.0) -> dict[str, Any]:
        self.home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oxios_actors.launcher", "--home", str(self.home),
             "--actor-port", str(self.actor_port), "--bind", self.bind, *self.extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        try:
            self.info = json.loads(line) if line else {}
        except json.JSONDecodeError:
            self.info = {"ready": False, "error": line.decode(errors="replace")}
        if not self.info.get("ready"):
            self.stop()
            raise RuntimeStartError(self.info.get("error") or "actor system did not start in time")
        return self.info

    def stop(self, timeout: float = 25.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        pgid = self.info.get("admin_pgid")
        if pgid:  # belt and braces: the launcher sweeps, but it may have been killed
            from .launcher import sweep
            sweep(int(pgid), grace=1.0)

    @property
    def admin_pgid(self) -> int | None:
        return self.info.get("admin_pgid")
