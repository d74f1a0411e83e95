"""Shared fixtures: one real actor system (multiprocTCPBase, own ports) and one
edge for the session, plus a leak check after the whole run."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from http_edge.app import Edge, close, connect, create_app
from oxios_actors.runtime import ActorRuntime

_PGIDS: set[int] = set()
_MARKERS: list[str] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_runtime(home: Path) -> ActorRuntime:
    rt = ActorRuntime(home, free_port())
    info = rt.start()
    _PGIDS.add(int(info["admin_pgid"]))
    return rt


@pytest.fixture(scope="session", autouse=True)
def _leak_marker(tmp_path_factory: pytest.TempPathFactory) -> None:
    _MARKERS.append(str(tmp_path_factory.getbasetemp()))


def track_pgid(pgid: int) -> None:
    _PGIDS.add(pgid)


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oxios-home")


@pytest.fixture(scope="session")
def runtime(home: Path) -> Iterator[ActorRuntime]:
    rt = start_runtime(home)
    yield rt
    rt.stop()


@pytest.fixture(scope="session")
def edge(runtime: ActorRuntime, home: Path) -> Iterator[Edge]:
    e = connect(home, runtime.actor_port)
    yield e
    close(e)


@pytest.fixture(scope="session")
def token(edge: Edge, home: Path) -> str:
    return (home / "api_key").read_text().strip()


@pytest.fixture(scope="session")
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture(scope="session")
async def client(edge: Edge) -> AsyncIterator[TestClient]:
    edge.limiter.per_minute = 10**9  # tests measure behaviour, not the default limit
    app = create_app(edge)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def our_processes() -> list[psutil.Process]:
    """Processes this test run started that are still alive (zombies excluded)."""
    me = os.getpid()
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if p.pid == me or p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmd = " ".join(p.info["cmdline"] or [])
            ours = any(m in cmd for m in _MARKERS) and "pytest" not in cmd
            if os.getpgid(p.pid) in _PGIDS or ours:
                found.append(p)
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaked = psutil.wait_procs(our_processes(), timeout=5)[1]
    if leaked:
        lines = [f"  {p.pid} {' '.join(p.cmdline())[:120]}" for p in leaked if p.is_running()]
        if lines:
            print("\nLEAKED PROCESSES after the test run:\n" + "\n".join(lines))
            session.exitstatus = 1
