"""§9 Programs: install from tarballs and git repositories served on loopback, safe
extraction, enable/disable (persisted), uninstall, host requirements, audit."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest
from thespian.actors import ActorSystem

from oxios_actors.messages import Configure, Failure, Ping
from oxios_actors.paths import workspace_root
from oxios_actors.programs import fetch
from oxios_actors.programs.messages import InstallProgram, ProgramInstalled, UninstallProgram
from oxios_actors.system.config import defaults

from .test_runtime import wait_for_new_pid
from .test_workspace import AuditRecorder, ask, raw

MANIFEST = """\
[program]
name = "{name}"
version = "{version}"
description = "A custom Oxios program"
author = "oxios"

[tools.analyze]
description = "Analyze code quality"
command = "sh bin/analyze.sh"
arguments = [{{ name = "path", description = "what to analyze", required = true, default = "." }}]

[tools.report]
description = "Write a report"
command = "sh bin/report.sh"

[host_requirements]
required = ["git", "no-such-tool-oxios-xyz"]
optional = ["python3", "another-missing-tool-oxios"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def entry(name: str, data: bytes | None = None, **attrs: Any) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else 0
    info.mode = 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def program_files(name: str, version: str = "1.0.0", prefix: str = "") -> list[Any]:
    return [entry(f"{prefix}program.toml", MANIFEST.format(name=name, version=version).encode()),
            entry(f"{prefix}SKILL.md", f"# {name} skill\n".encode()),
            entry(f"{prefix}bin/analyze.sh", b"echo analyze\n")]


def make_tar(path: Path, members: list[Any], mode: Literal["w:gz", "w"] = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on loopback, and its base URL."""
    root = tmp_path_factory.mktemp("served")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def git_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """``git daemon`` on loopback exporting a directory of bare repositories."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    base = tmp_path_factory.mktemp("git-served")
    port = free_port()
    proc = subprocess.Popen(["git", "daemon", "--listen=127.0.0.1", f"--port={port}", f"--base-path={base}",
                             "--export-all", "--reuseaddr", str(base)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield base, f"git://127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)


def git_repo(base: Path, name: str, files: dict[str, bytes], links: dict[str, str] | None = None) -> str:
    work = base / f"{name}-work"
    work.mkdir()
    for rel, data in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(data)
    for rel, target in (links or {}).items():
        (work / rel).symlink_to(target)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "program"]):
        subprocess.run(cmd, cwd=work, env=env, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(base / f"{name}.git")], check=True)
    return f"{name}.git"


@pytest.fixture
def ws(edge: Any) -> Path:
    return workspace_root(edge.home, edge.config)


def programs_listing(ws: Path) -> set[str]:
    d = ws / ".oxios/programs"
    return set(os.listdir(d)) if d.is_dir() else set()


async def install(client: Any, auth: Any, source: str) -> Any:
    return await client.post("/api/programs", json={"path": source}, headers=auth)


# -- sources ------------------------------------------------------------------------
@pytest.mark.parametrize("source,kind", [
    ("https://example.com/my-program.tar.gz", "tarball"), ("http://127.0.0.1:8/x.tgz", "tarball"),
    ("https://github.com/example/oxios-program.git", "git"), ("git@github.com:example/prog.git", "git"),
    ("git://127.0.0.1:9418/prog.git", "git"), ("ssh://git@host/prog.git", "git"),
])
def test_remote_sources_are_classified(source: str, kind: str) -> None:
    assert fetch.classify_source(source) == kind


@pytest.mark.parametrize("source", [
    "/tmp/program.tar.gz", "./program", "file:///tmp/prog.git", "file:///tmp/p.tar.gz", "~/prog.git",
    "ftp://host/p.tar.gz", "ext::sh -c touch% /tmp/pwned.git", "git@-oProxyCommand=x:y.git", "",
    "https://", None, 42, "https://host/" + "a" * 8200,
])
async def test_local_and_invalid_sources_are_400(client: Any, auth: Any, source: Any) -> None:
    r = await client.post("/api/programs", json={"path": source}, headers=auth)
    assert r.status == 400
    assert "error" in await r.json()


async def test_path_limit_is_8192_chars(client: Any, auth: Any) -> None:
    r = await install(client, auth, "https://h/" + "a" * (8192 - 10 - 7) + ".tar.gz")  # exactly 8192
    assert r.status == 400 and "8192" not in (await r.json())["error"]  # refused for another reason
    r = await install(client, auth, "https://h/" + "a" * (8192 - 10 - 6) + ".tar.gz")
    assert r.status == 400 and "8192" in (await r.json())["error"]


# -- install, inspect, enable, uninstall ---------------------------------------------------
async def test_install_from_a_tarball(client: Any, auth: Any, served: Any, ws: Path) -> None:
    root, base = served
    make_tar(root / "tar-prog.tar.gz", [entry("tar-prog-1.0/", None, type=tarfile.DIRTYPE, mode=0o755)]
             + program_files("tar-prog", prefix="tar-prog-1.0/"))
    r = await install(client, auth, f"{base}/tar-prog.tar.gz")
    assert r.status == 200, await r.text()
    assert await r.json() == {"status": "installed", "name": "tar-prog", "version": "1.0.0"}
    r = await client.get("/api/programs", headers=auth)
    listing = await r.json()
    assert {"name": "tar-prog", "version": "1.0.0", "description": "A custom Oxios program",
            "author": "oxios", "enabled": True, "tools_count": 2, "has_skill_content": True} in listing["items"]
    assert listing["page"] == 1 and listing["limit"] == 50
    r = await client.get("/api/programs/tar-prog", headers=auth)
    detail = await r.json()
    assert detail["path"] == str(ws / ".oxios/programs/tar-prog")
    assert detail["skill_content"] == "# tar-prog skill\n"
    assert [t["name"] for t in detail["tools"]] == ["analyze", "report"]
    assert detail["tools"][0]["description"] == "Analyze code quality"
    assert detail["tools"][0]["arguments"] == [{"name": "path", "description": "what to analyze",
                                                "required": True, "default": "."}]
    assert (ws / ".oxios/programs/tar-prog/bin/analyze.sh").read_bytes() == b"echo analyze\n"
    assert ".staging" not in programs_listing(ws)
    status = subprocess.run(["git", "status", "--porcelain", "--ignored", ".oxios/programs"], cwd=ws,
                            capture_output=True, text=True).stdout
    assert status.startswith("!!")  # installed programs are not versioned in the workspace


async def test_install_from_git(client: Any, auth: Any, git_served: Any, ws: Path) -> None:
    base, url = git_served
    name = git_repo(base, "git-prog", {"program.toml": MANIFEST.format(name="git-prog", version="2.1").encode(),
                                       "tools/run.sh": b"echo run\n"})
    r = await install(client, auth, f"{url}/{name}")
    assert r.status == 200, await r.text()
    assert await r.json() == {"status": "installed", "name": "git-prog", "version": "2.1"}
    assert (ws / ".oxios/programs/git-prog/tools/run.sh").is_file()
    assert not (ws / ".oxios/programs/git-prog/.git").exists()
    r = await client.get("/api/programs/git-prog", headers=auth)
    assert (await r.json())["skill_content"] is None


async def test_git_checkout_with_an_escaping_symlink_is_refused(client: Any, auth: Any, git_served: Any,
                                                               ws: Path) -> None:
    base, url = git_served
    name = git_repo(base, "evil-git", {"program.toml": MANIFEST.format(name="evil-git", version="1").encode()},
                    links={"passwd": "/etc/passwd", "up": "../../../../.."})
    before = programs_listing(ws)
    r = await install(client, auth, f"{url}/{name}")
    assert r.status == 400 and "points outside" in (await r.json())["error"]
    assert programs_listing(ws) == before
    r = await install(client, auth, f"{url}/no-such-repo.git")
    assert r.status == 400 and "git clone failed" in (await r.json())["error"]
    assert programs_listing(ws) == before


async def test_enable_disable_is_persisted_across_a_restart(client: Any, auth: Any, served: Any,
                                                            edge: Any) -> None:
    root, base = served
    make_tar(root / "toggle.tar.gz", program_files("toggle"))
    assert (await install(client, auth, f"{base}/toggle.tar.gz")).status == 200
    r = await client.post("/api/programs/toggle/disable", headers=auth)
    assert r.status == 200 and await r.json() == {"status": "disabled", "name": "toggle"}
    old = await edge.bridge.ask("programs", Ping())
    os.kill(old.pid, signal.SIGKILL)
    await wait_for_new_pid(edge, "programs", old.pid)
    r = await client.get("/api/programs/toggle", headers=auth)
    assert (await r.json())["enabled"] is False
    make_tar(root / "toggle2.tar.gz", program_files("toggle", version="1.1.0"))  # an upgrade keeps the state
    r = await install(client, auth, f"{base}/toggle2.tar.gz")
    assert (await r.json())["version"] == "1.1.0"
    r = await client.get("/api/programs/toggle", headers=auth)
    assert (await r.json())["enabled"] is False and (await r.json())["version"] == "1.1.0"
    r = await client.post("/api/programs/toggle/enable", headers=auth)
    assert await r.json() == {"status": "enabled", "name": "toggle"}
    r = await client.get("/api/programs", params={"limit": 500}, headers=auth)
    assert next(p for p in (await r.json())["items"] if p["name"] == "toggle")["enabled"] is True
    for action in ("enable", "disable"):
        r = await client.post(f"/api/programs/nope-not-here/{action}", headers=auth)
        assert r.status == 404


async def test_uninstall(client: Any, auth: Any, served: Any, ws: Path) -> None:
    root, base = served
    make_tar(root / "gone.tar.gz", program_files("gone"))
    assert (await install(client, auth, f"{base}/gone.tar.gz")).status == 200
    r = await client.delete("/api/programs/gone", headers=auth)
    assert r.status == 200 and await r.json() == {"status": "uninstalled", "name": "gone"}
    assert not (ws / ".oxios/programs/gone").exists() and ".staging" not in programs_listing(ws)
    assert (await client.get("/api/programs/gone", headers=auth)).status == 404
    assert (await client.delete("/api/programs/gone", headers=auth)).status == 404
    assert (await client.get("/api/programs/gone/host-requirements", headers=auth)).status == 404
    r = await raw(client, "GET", "/api/programs/%2e%2e", headers=auth)
    assert r.status == 400


async def test_host_requirements(client: Any, auth: Any, served: Any) -> None:
    root, base = served
    make_tar(root / "hostreq.tar.gz", program_files("hostreq"))
    assert (await install(client, auth, f"{base}/hostreq.tar.gz")).status == 200
    r = await client.get("/api/programs/hostreq/host-requirements", headers=auth)
    assert r.status == 200
    assert await r.json() == {"program_name": "hostreq", "missing_required": ["no-such-tool-oxios-xyz"],
                              "optional_available": {"python3": True, "another-missing-tool-oxios": False}}


# -- bad archives: 400 and nothing left behind -------------------------------------------------
BAD_ARCHIVES: dict[str, list[Any]] = {
    "absolute": program_files("abs") + [entry("/tmp/oxios-evil-absolute.txt", b"x")],
    "dotdot": program_files("dotdot") + [entry("../../evil-dotdot.txt", b"x")],
    "symlink-out": program_files("symout") + [entry("link", None, type=tarfile.SYMTYPE,
                                                    linkname="../../../../../../etc")],
    "symlink-abs": program_files("symabs") + [entry("passwd", None, type=tarfile.SYMTYPE, linkname="/etc/passwd")],
    "symlink-chain": program_files("chain") + [entry("d", None, type=tarfile.SYMTYPE, linkname="."),
                                               entry("d/x", None, type=tarfile.SYMTYPE, linkname="../../..")],
    "hardlink": program_files("hard") + [entry("pw", None, type=tarfile.LNKTYPE, linkname="/etc/passwd")],
    "chardev": program_files("dev") + [entry("null", None, type=tarfile.CHRTYPE, devmajor=1, devminor=3)],
    "fifo": program_files("fifo") + [entry("pipe", None, type=tarfile.FIFOTYPE)],
    "no-manifest": [entry("README.md", b"# nothing here")],
    "bad-manifest": [entry("program.toml", b"[program]\nname = 'x'\n")],
    "bad-name": [entry("program.toml", MANIFEST.format(name="../evil", version="1").encode())],
    "bad-toml": [entry("program.toml", b"[program\nname=")],
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
async def test_bad_archives_are_400_and_leave_nothing(client: Any, auth: Any, served: Any, ws: Path,
                                                      case: str) -> None:
    root, base = served
    make_tar(root / f"bad-{case}.tar.gz", BAD_ARCHIVES[case])
    before = programs_listing(ws)
    r = await install(client, auth, f"{base}/bad-{case}.tar.gz")
    assert r.status == 400, await r.text()
    assert "error" in await r.json()
    assert programs_listing(ws) == before
    assert not Path("/tmp/oxios-evil-absolute.txt").exists()
    assert not (ws / ".oxios/evil-dotdot.txt").exists() and not (ws / "evil-dotdot.txt").exists()


async def test_broken_downloads_are_400(client: Any, auth: Any, served: Any, ws: Path) -> None:
    root, base = served
    (root / "not-a-tarball.tar.gz").write_text("<html>hello</html>")
    good = make_tar(root / "whole.tar.gz", program_files("truncated")).read_bytes()
    (root / "truncated.tar.gz").write_bytes(good[: len(good) // 2])
    before = programs_listing(ws)
    for name in ("not-a-tarball.tar.gz", "truncated.tar.gz", "does-not-exist.tar.gz"):
        r = await install(client, auth, f"{base}/{name}")
        assert r.status == 400, name
    r = await install(client, auth, f"http://127.0.0.1:{free_port()}/nobody-listens.tar.gz")
    assert r.status == 400
    assert programs_listing(ws) == before


async def test_size_and_count_limits_through_the_config(client: Any, auth: Any, served: Any, ws: Path) -> None:
    root, base = served
    make_tar(root / "many.tar.gz", program_files("many") + [entry(f"f{i}", b"") for i in range(30)])
    (root / "bomb.tar.gz").write_bytes(gzip.compress(
        make_tar(root / "bomb.tar", program_files("bomb") + [entry("zeros", b"\0" * 3_000_000)], "w").read_bytes()))
    make_tar(root / "big.tar.gz", program_files("big") + [entry("blob", os.urandom(300_000))])
    before = programs_listing(ws)
    r = await client.put("/api/config", json={"programs": {"max_files": 20, "max_unpacked_bytes": 1_000_000,
                                                           "max_download_bytes": 200_000}}, headers=auth)
    assert r.status == 200
    try:
        r = await install(client, auth, f"{base}/many.tar.gz")
        assert r.status == 400 and "more than 20 files" in (await r.json())["error"]
        r = await install(client, auth, f"{base}/bomb.tar.gz")
        assert r.status == 400 and "unpacks to more than" in (await r.json())["error"]
        r = await install(client, auth, f"{base}/big.tar.gz")
        assert r.status == 400 and "larger than 200000 bytes" in (await r.json())["error"]
    finally:
        d = defaults()["programs"]
        r = await client.put("/api/config", json={"programs": d}, headers=auth)
        assert r.status == 200
    assert programs_listing(ws) == before


def test_unpack_limits_directly(tmp_path: Path) -> None:
    limits = fetch.Limits(max_files=5, max_unpacked_bytes=100)
    tar = make_tar(tmp_path / "a.tar", [entry(f"f{i}", b"x") for i in range(6)], "w")
    with pytest.raises(fetch.InstallError, match="more than 5 files"):
        fetch.unpack(tar, tmp_path / "out1", limits)
    tar = make_tar(tmp_path / "b.tar", [entry("big", b"x" * 101)], "w")
    with pytest.raises(fetch.InstallError, match="unpacks to more than 100"):
        fetch.unpack(tar, tmp_path / "out2", limits)
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(b"\0" * 10_000_000))
    with pytest.raises(fetch.InstallError, match="unpacks to more than"):
        fetch.decompress(bomb, tmp_path / "bomb.tar", 1_000_000)
    assert (tmp_path / "bomb.tar").stat().st_size <= 1_000_000 + 65536  # stopped at the cap


# -- audit (on simpleSystemBase, where the audit records are visible) --------------------------
def test_install_and_uninstall_are_audited(tmp_path: Path, served: Any) -> None:
    root, base = served
    make_tar(root / "audited.tar.gz", program_files("audited"))
    asys = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        recorder = asys.createActor(AuditRecorder)
        registry = asys.createActor("oxios_actors.programs.registry.ProgramRegistry")
        asys.ask(registry, Configure("programs", str(tmp_path), {"audit": recorder}, defaults()), 10)
        reply = ask(asys, registry, InstallProgram(f"{base}/audited.tar.gz", "api"), 30)
        assert reply == ProgramInstalled("audited", "1.0.0")
        ask(asys, registry, UninstallProgram("audited", "api"))
        failed = ask(asys, registry, InstallProgram(f"{base}/nope.tar.gz", "api"), 30)
        assert isinstance(failed, Failure) and failed.status == 400
        records = asys.ask(recorder, "dump", 5)
        assert [(r.agent_name, r.action, r.resource) for r in records] == [
            ("api", "program_install", "audited"), ("api", "program_uninstall", "audited")]
    finally:
        asys.shutdown()
