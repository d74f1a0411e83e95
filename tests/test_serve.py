"""``oxios serve`` as a user runs it: start, answer, stop, and leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def ours(home: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "status", "environ"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if str(home) in " ".join(p.info["cmdline"] or []) or \
                    (p.info["environ"] or {}).get("OXIOS_HOME") == str(home):
                found.append(p)
        except psutil.Error:
            continue
    return found


def wait_gone(home: Path, timeout: float = 20.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = ours(home)
        if not left:
            return []
        time.sleep(0.2)
    return ours(home)


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Server:
    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.env = {**os.environ, "OXIOS_HOME": str(home), "OXIOS_ACTOR_PORT": str(free_port()),
                    **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oxios_actors.cli", "serve", "--port", str(self.port), *args],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("server exited:\n" + "".join(self.lines))
            self.lines.append(line)
            if "serving on" in line:
                return
        raise AssertionError("server did not start:\n" + "".join(self.lines))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def kill_all(self) -> None:
        for p in ours(self.home):
            try:
                p.kill()
            except psutil.Error:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def server_home(tmp_path: Path) -> Path:
    return tmp_path / "home"  # does not exist yet: serve must create it


def test_serve_answers_with_printed_key_and_sigterm_leaves_nothing(server_home):
    s = Server(server_home)
    try:
        s.wait_ready()
        text = "".join(s.lines)
        key_file = server_home / "api_key"
        assert str(key_file) in text
        token = key_file.read_text().strip()
        assert get(s.url("/health")) == (200, {"status": "ok", "version": "0.2.0-alpha"})
        status, body = get(s.url("/api/status"), token)
        assert status == 200 and body["status"] == "running"
        assert get(s.url("/api/status"))[0] == 401
        assert len(ours(server_home)) >= 5
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(30) == 0
        assert wait_gone(server_home) == []
    finally:
        s.kill_all()


def test_sigkill_of_serve_still_ends_the_actor_system(server_home):
    s = Server(server_home)
    try:
        s.wait_ready()
        s.proc.kill()  # no cleanup code runs in serve: the launcher sees its stdin close
        s.proc.wait()
        assert wait_gone(server_home) == []
    finally:
        s.kill_all()


def test_sigkill_of_launcher_ends_the_actor_system(server_home):
    s = Server(server_home)
    try:
        s.wait_ready()
        launcher = [p for p in psutil.Process(s.proc.pid).children()
                    if "oxios_actors.launcher" in " ".join(p.cmdline())]
        assert len(launcher) == 1
        launcher[0].kill()  # the kernel notices its launcher is gone and ends the group
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(30)
        assert wait_gone(server_home) == []
    finally:
        s.kill_all()


def test_oxios_api_key_env_is_honoured(server_home):
    s = Server(server_home, env={"OXIOS_API_KEY": "env-secret-0123456789"})
    try:
        s.wait_ready()
        assert "OXIOS_API_KEY" in "".join(s.lines)
        assert not (server_home / "api_key").exists()  # nothing generated when a key is configured
        assert get(s.url("/api/status"), "env-secret-0123456789")[0] == 200
        assert get(s.url("/api/status"), "wrong")[0] == 401
    finally:
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(30)
        s.kill_all()


def test_refuses_public_host_without_auth_unless_insecure(server_home):
    server_home.mkdir(parents=True)
    (server_home / "config.json").write_text(json.dumps({"security": {"auth_enabled": False}}))
    s = Server(server_home, "--host", "0.0.0.0")
    out, _ = s.proc.communicate(timeout=60)
    assert s.proc.returncode == 2
    assert "refusing" in out and "--insecure" in out
    assert wait_gone(server_home) == []


def test_actor_port_in_use_is_a_clear_error(server_home):
    import socket
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        s = Server(server_home, env={"OXIOS_ACTOR_PORT": str(blocker.getsockname()[1])})
        out, _ = s.proc.communicate(timeout=60)
        assert s.proc.returncode == 1
        assert "in use" in out
        assert wait_gone(server_home) == []
    finally:
        blocker.close()
