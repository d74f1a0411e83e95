"""Reading and writing workspace files (shared by the Workspace actor and the edge).

Reads are served by the edge straight from disk; writes happen only in the
Workspace actor.  Every path goes through ``pathguard.confine`` first.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from pathlib import Path
from typing import Any

from .pathguard import UnsafePath, confine

#: Largest body ``PUT /api/workspace/file`` accepts (1 MiB).
MAX_WRITE_BYTES = 1024 * 1024

CONTENT_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    ".toml": "application/toml",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html",
    ".css": "text/css",
    ".js": "application/javascript",
}
DEFAULT_CONTENT_TYPE = "text/plain"

_TMP_MARK = ".oxios-tmp-"


def content_type(path: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(path)[1].lower(), DEFAULT_CONTENT_TYPE)


def list_dir(root: Path, rel: str) -> list[dict[str, Any]]:
    """One level of the tree: directories first, then files, each group by name.

    Symlinks are reported as what they are (not followed), so a link pointing
    outside the workspace reveals nothing about its target."""
    target = confine(root, rel)
    if not target.exists():
        raise FileNotFoundError(rel)
    if not target.is_dir():
        raise UnsafePath(400, f"not a directory: {rel}")
    dirs: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    with os.scandir(target) as it:
        for entry in it:
            if _TMP_MARK in entry.name:
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                size = 0 if is_dir else entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
            (dirs if is_dir else files).append({"name": entry.name, "is_dir": is_dir, "size": size})
    dirs.sort(key=lambda e: e["name"])
    files.sort(key=lambda e: e["name"])
    return dirs + files


def read_file(root: Path, rel: str) -> bytes:
    """The bytes of a workspace file; FileNotFoundError, IsADirectoryError or UnsafePath."""
    target = confine(root, rel)
    if target == root.resolve():
        raise IsADirectoryError(rel)
    try:  # O_NONBLOCK: a FIFO must not hang the reader; O_NOFOLLOW: no symlink swapped in
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(403, "path traversal denied: the path is a symlink") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(rel)
        if not stat.S_ISREG(mode):
            raise UnsafePath(400, f"not a regular file: {rel}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def write_file(root: Path, rel: str, data: bytes) -> Path:
    """Write ``data`` atomically (temp file + rename); parents are created only
    after the path was confined.  Returns the real path written."""
    target = confine(root, rel)
    base = root.resolve()
    if target == base:
        raise UnsafePath(400, "path must name a file")
    if target.is_dir():
        raise UnsafePath(400, f"is a directory: {rel}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if Path(os.path.realpath(target.parent)) != target.parent:  # a symlink raced in
        raise UnsafePath(403, "path traversal denied: the path resolves outside the workspace")
    tmp = target.parent / f".{target.name[:200]}{_TMP_MARK}{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return target


def remove_tree(path: Path) -> None:
    """Remove a file or directory tree without following symlinks out of it."""
    import shutil

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
