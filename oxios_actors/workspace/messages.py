"""Messages of the workspace domain (the Workspace actor: files, git, skills).

Paths are POSIX paths relative to the workspace root; the actor confines each
one (``pathguard``) before touching the disk.  ``author`` names who did it —
an agent's name, or ``"api"`` for writes through the REST API — and becomes
the git commit's author and the audit record's ``agent_name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WriteFile:
    """Write a file (parents created) and commit it."""

    path: str
    content: bytes
    author: str = "api"
    message: str | None = None  # commit message; default "Update <path>"


@dataclass(frozen=True)
class FileWritten:
    path: str  # the real path written, relative to the root
    commit: str | None  # None when nothing changed or auto-commit is off


@dataclass(frozen=True)
class CommitPaths:
    """Commit paths another service already wrote under the workspace
    (files, directories, or paths it removed)."""

    paths: tuple[str, ...]
    message: str
    author: str


@dataclass(frozen=True)
class Committed:
    commit: str | None


@dataclass(frozen=True)
class RestoreFile:
    """Write ``path`` as it was at commit ``hash`` (full or abbreviated) and commit it."""

    hash: str
    path: str
    author: str = "api"


@dataclass(frozen=True)
class Restored:
    path: str
    source: str  # the full hash restored from
    commit: str | None


@dataclass(frozen=True)
class VerifyRepo:
    pass


@dataclass(frozen=True)
class RepoVerified:
    report: dict[str, Any]  # {"valid": bool, ...}


@dataclass(frozen=True)
class TagCommit:
    """Tag a commit (HEAD when ``target`` is None); annotated when ``message`` is set."""

    name: str
    target: str | None = None
    message: str = ""


@dataclass(frozen=True)
class Tagged:
    name: str
    target: str


@dataclass(frozen=True)
class PutSkill:
    name: str
    description: str
    content: str = ""
    author: str = "api"


@dataclass(frozen=True)
class SkillSaved:
    name: str
    created: bool  # False when an existing skill was replaced
    path: str


@dataclass(frozen=True)
class DeleteSkill:
    name: str
    author: str = "api"


@dataclass(frozen=True)
class SkillDeleted:
    name: str
