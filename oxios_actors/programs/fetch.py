"""Fetching a program: classify the source, download or clone it, unpack safely.

Every step is bounded: a deadline for the download or clone, a byte limit on
what is downloaded and on what it unpacks to, a file-count limit.  Archives are
decompressed in bounded steps (a gzip bomb stops at the limit), members are
checked before extraction (no absolute paths, no ``..``, no devices or FIFOs,
no links leaving the tree), extraction itself runs with tarfile's ``data``
filter, and the result is scanned once more (a git checkout can contain
symlinks too).  Anything wrong is an ``InstallError`` (HTTP 400).
"""

from __future__ import annotations

import bz2
import lzma
import os
import posixpath
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .manifest import MANIFEST_FILE

MAX_SOURCE_CHARS = 8192
CHUNK = 64 * 1024
_SCP_RE = re.compile(r"^git@[A-Za-z0-9][A-Za-z0-9.-]*:[^\s-][^\s]*$")
_GIT_SCHEMES = ("https", "http", "git", "ssh")


class InstallError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    timeout_secs: float = 60.0
    max_download_bytes: int = 50 * 1024 * 1024
    max_unpacked_bytes: int = 200 * 1024 * 1024
    max_files: int = 5000

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> Limits:
        d = cls()
        return cls(float(section.get("download_timeout_secs", d.timeout_secs)),
                   int(section.get("max_download_bytes", d.max_download_bytes)),
                   int(section.get("max_unpacked_bytes", d.max_unpacked_bytes)),
                   int(section.get("max_files", d.max_files)))


def classify_source(source: Any) -> str:
    """``"git"`` or ``"tarball"``; InstallError for anything else (local paths included)."""
    if not isinstance(source, str) or not source.strip():
        raise InstallError("path is required (a git URL or an http(s) tarball URL)")
    if len(source) > MAX_SOURCE_CHARS:
        raise InstallError(f"path is longer than {MAX_SOURCE_CHARS} characters")
    if source != source.strip() or any(c in source for c in "\x00\r\n\t "):
        raise InstallError("path must not contain whitespace or control characters")
    if source.startswith("git@"):
        if not _SCP_RE.match(source):
            raise InstallError("invalid git@ URL")
        return "git"
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme in _GIT_SCHEMES and parts.hostname and parts.path.rstrip("/").endswith(".git"):
        return "git"
    if scheme in ("http", "https") and parts.hostname:
        return "tarball"
    raise InstallError("only remote sources can be installed: a git URL (.git suffix or git@) "
                       "or an http(s) tarball URL; local paths are not allowed")


# -- tarballs ---------------------------------------------------------------
class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Any:
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise InstallError(f"refusing to follow a redirect to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download(url: str, dest: Path, limits: Limits) -> None:
    deadline = time.monotonic() + limits.timeout_secs
    opener = urllib.request.build_opener(_HttpOnlyRedirects)
    request = urllib.request.Request(url, headers={"User-Agent": "oxios-program-installer"})
    try:
        with opener.open(request, timeout=limits.timeout_secs) as resp, open(dest, "wb") as out:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limits.max_download_bytes:
                raise InstallError(f"download is larger than {limits.max_download_bytes} bytes")
            total = 0
            while chunk := resp.read(CHUNK):
                total += len(chunk)
                if total > limits.max_download_bytes:
                    raise InstallError(f"download is larger than {limits.max_download_bytes} bytes")
                if time.monotonic() > deadline:
                    raise InstallError(f"download took longer than {limits.timeout_secs}s")
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise InstallError(f"download failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InstallError(f"download failed: {reason}") from None


def decompress(archive: Path, out: Path, cap: int) -> Path:
    """A plain tar file: gzip, bzip2 and xz are inflated in bounded steps to ``out``."""
    with open(archive, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        return _inflate_zlib(archive, out, cap)
    if magic[:3] == b"BZh":
        return _inflate_stream(archive, out, cap, bz2.BZ2Decompressor())
    if magic == b"\xfd7zXZ\x00":
        return _inflate_stream(archive, out, cap, lzma.LZMADecompressor())
    return archive


def _too_big(cap: int) -> InstallError:
    return InstallError(f"archive unpacks to more than {cap} bytes")


def _inflate_zlib(archive: Path, out: Path, cap: int) -> Path:
    inflater, total = zlib.decompressobj(16 + zlib.MAX_WBITS), 0
    with open(archive, "rb") as src, open(out, "wb") as dst:
        try:
            while not inflater.eof and (data := src.read(CHUNK)):
                while data:
                    piece = inflater.decompress(data, CHUNK)
                    total += len(piece)
                    if total > cap:
                        raise _too_big(cap)
                    dst.write(piece)
                    data = inflater.unconsumed_tail
                    if inflater.eof:
                        break
        except zlib.error as exc:
            raise InstallError(f"bad archive: {exc}") from None
    if not inflater.eof:
        raise InstallError("bad archive: the compressed stream is truncated")
    return out


def _inflate_stream(archive: Path, out: Path, cap: int, inflater: Any) -> Path:
    total = 0
    with open(archive, "rb") as src, open(out, "wb") as dst:
        try:
            while not inflater.eof and (data := src.read(CHUNK)):
                piece = inflater.decompress(data, CHUNK)
                while True:
                    total += len(piece)
                    if total > cap:
                        raise _too_big(cap)
                    dst.write(piece)
                    if inflater.eof or inflater.needs_input:
                        break
                    piece = inflater.decompress(b"", CHUNK)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise InstallError(f"bad archive: {exc}") from None
    if not inflater.eof:
        raise InstallError("bad archive: the compressed stream is truncated")
    return out


def _inside(path: str) -> bool:
    norm = posixpath.normpath(path)
    return not (norm == ".." or norm.startswith("../") or posixpath.isabs(norm))


def check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    if "\x00" in name or not name.strip("./"):
        if member.isdir():
            return  # "./" — the archive's own root
        raise InstallError(f"bad archive: invalid member name {name!r}")
    if name.startswith("/") or posixpath.isabs(name):
        raise InstallError(f"bad archive: absolute path {name!r}")
    if ".." in name.split("/"):
        raise InstallError(f"bad archive: '..' in member {name!r}")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise InstallError(f"bad archive: device or FIFO {name!r}")
    if member.issym():
        if posixpath.isabs(member.linkname) or not _inside(
                posixpath.join(posixpath.dirname(name), member.linkname)):
            raise InstallError(f"bad archive: symlink {name!r} points outside the program")
    elif member.islnk():
        if posixpath.isabs(member.linkname) or not _inside(member.linkname):
            raise InstallError(f"bad archive: hard link {name!r} points outside the program")
    elif not (member.isreg() or member.isdir()):
        raise InstallError(f"bad archive: unsupported member type for {name!r}")


def unpack(tar_path: Path, dest: Path, limits: Limits) -> None:
    try:
        with tarfile.open(tar_path, "r:") as tf:
            members: list[tarfile.TarInfo] = []
            total = 0
            for member in tf:
                if len(members) >= limits.max_files:
                    raise InstallError(f"bad archive: more than {limits.max_files} files")
                check_member(member)
                if member.isreg():
                    total += member.size
                    if total > limits.max_unpacked_bytes:
                        raise _too_big(limits.max_unpacked_bytes)
                members.append(member)
            dest.mkdir(parents=True, exist_ok=True)
            tf.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise InstallError(f"bad archive: {exc}") from None
    except (tarfile.TarError, EOFError) as exc:
        raise InstallError(f"bad archive: not a readable tar archive ({exc})") from None


# -- git --------------------------------------------------------------------
def _tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def clone(url: str, dest: Path, limits: Limits) -> None:
    """Shallow clone with the git CLI: a hard deadline (the process group is
    killed), a size bound checked while it runs, and only network transports
    (``file``, ``ext`` and the rest are disabled)."""
    if shutil.which("git") is None:
        raise InstallError("git is not installed on this host", status=500)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(dest.parent),
           "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_SSH_COMMAND": "ssh -o BatchMode=yes", "GIT_ASKPASS": "/bin/false"}
    cmd = ["git", "-c", "protocol.allow=never"]
    for scheme in _GIT_SCHEMES:
        cmd += ["-c", f"protocol.{scheme}.allow=always"]
    cmd += ["-c", "core.hooksPath=" + os.devnull, "clone", "--depth", "1", "--no-tags",
            "--single-branch", "--quiet", "--", url, str(dest)]
    deadline = time.monotonic() + limits.timeout_secs
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                env=env, cwd=str(dest.parent), start_new_session=True)
        problem = None
        while proc.poll() is None:
            time.sleep(0.1)
            if time.monotonic() > deadline:
                problem = f"git clone took longer than {limits.timeout_secs}s"
            elif dest.exists() and _tree_bytes(dest) > limits.max_download_bytes + limits.max_unpacked_bytes:
                problem = "the repository is larger than the install limits"
            if problem:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise InstallError(problem)
        err.seek(0)
        message = err.read().decode("utf-8", "replace").strip()[-500:]
    if proc.returncode != 0:
        raise InstallError(f"git clone failed: {message or 'exit status ' + str(proc.returncode)}")
    shutil.rmtree(dest / ".git", ignore_errors=True)


# -- after fetching -----------------------------------------------------------
def scan_tree(root: Path, limits: Limits) -> None:
    """The fetched tree: within the limits, only files, directories and links that stay inside."""
    base = os.path.realpath(root)
    count, total = 0, 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            count += 1
            if count > limits.max_files:
                raise InstallError(f"bad archive: more than {limits.max_files} files")
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                if real != base and not real.startswith(base + os.sep):
                    raise InstallError(f"bad archive: link {os.path.relpath(path, root)!r} "
                                       "points outside the program")
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
                if total > limits.max_unpacked_bytes:
                    raise _too_big(limits.max_unpacked_bytes)
            elif not stat.S_ISDIR(st.st_mode):
                raise InstallError(f"bad archive: special file {os.path.relpath(path, root)!r}")


def program_root(fetched: Path) -> Path:
    """The directory holding ``program.toml``: the top, or a single top-level folder."""
    if (fetched / MANIFEST_FILE).is_file():
        return fetched
    entries = [e for e in fetched.iterdir() if e.name != ".git"]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() \
            and (entries[0] / MANIFEST_FILE).is_file():
        return entries[0]
    raise InstallError("bad program: no program.toml at the top of the archive or repository")
