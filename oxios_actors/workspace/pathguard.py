"""Path safety for everything that touches the workspace: one definition, used by
the Workspace actor (writes) and the edge (reads).

A client-supplied path is checked twice, before anything is created on disk:
lexically (not empty, no NUL, not absolute, no ``..`` component, nothing inside
``.git``) and then on the *resolved real path* (symlinks followed), which must
still lie inside the workspace root.  Symlinks pointing outside the workspace
are therefore refused whether they are the file itself or one of its parents.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MAX_PATH_CHARS = 4096

#: Skill and program names: a plain file-name-safe word, no separators, no dots first.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_DRIVE_RE = re.compile(r"^[A-Za-z]:")


class UnsafePath(ValueError):
    """A path that must not be used; ``status`` is 400 (malformed) or 403 (escape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parts_of(rel: str) -> list[str]:
    """The components of a relative path; raises UnsafePath for anything else."""
    if not isinstance(rel, str):
        raise UnsafePath(400, "path must be a string")
    if "\x00" in rel:
        raise UnsafePath(400, "path must not contain NUL bytes")
    if len(rel) > MAX_PATH_CHARS:
        raise UnsafePath(400, f"path is longer than {MAX_PATH_CHARS} characters")
    if rel.startswith(("/", "\\")) or _DRIVE_RE.match(rel):
        raise UnsafePath(403, "path traversal denied: absolute paths are not allowed")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." or ".." in p.split("\\") for p in parts):
        raise UnsafePath(403, "path traversal denied: '..' is not allowed")
    if any(p.lower() == ".git" for p in parts):
        raise UnsafePath(403, "path traversal denied: the repository metadata (.git) is off limits")
    return parts


def confine(root: Path, rel: str) -> Path:
    """The real path of ``rel`` under ``root``; raises UnsafePath if it escapes.

    Nothing is created: a path whose parents do not exist yet resolves as far as
    it exists, so a symlinked parent pointing outside is caught before ``mkdir``.
    """
    parts = parts_of(rel)
    base = root.resolve()
    if not parts:
        return base
    try:
        target = Path(os.path.realpath(base.joinpath(*parts)))
    except (OSError, RuntimeError, ValueError) as exc:
        raise UnsafePath(400, f"cannot resolve path: {exc}") from None
    if target != base and base not in target.parents:
        raise UnsafePath(403, "path traversal denied: the path resolves outside the workspace")
    if any(p.lower() == ".git" for p in target.relative_to(base).parts):
        raise UnsafePath(403, "path traversal denied: the repository metadata (.git) is off limits")
    return target


def relative(root: Path, target: Path) -> str:
    """``target`` (a confined real path) as a POSIX path relative to the root."""
    return target.relative_to(root.resolve()).as_posix()


def check_name(name: object, what: str = "name") -> str:
    """A skill or program name, or UnsafePath(400)."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UnsafePath(400, f"invalid {what}: use 1-64 letters, digits, '.', '_' or '-', "
                              "starting with a letter or digit")
    return name
