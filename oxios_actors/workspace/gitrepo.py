"""The workspace's git repository (pygit2).

Only the Workspace actor writes (``ensure_repo``, ``commit_paths``, ``tag``);
the edge reads the log and the tags with a repository object of its own —
git's object store is safe for concurrent readers.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pygit2

BRANCH = "main"
INITIAL_MESSAGE = "Initial commit"
LOG_LIMIT = 100
GITIGNORE = """\
# Oxios workspace
# Installed programs are fetched from their source; they are not versioned here.
.oxios/programs/
# Temporary files of interrupted atomic writes
.*.oxios-tmp-*
"""

_HEX_RE = re.compile(r"^[0-9a-fA-F]{4,40}$")
_LOCKS = ("index.lock", "HEAD.lock", "packed-refs.lock", "config.lock")


class GitLookupError(LookupError):
    """An unknown commit, or a path that the commit does not contain."""


def signature(name: str, email: str | None = None) -> pygit2.Signature:
    clean = re.sub(r"[<>\n\r]", "", name).strip() or "oxios"
    mail = email or re.sub(r"[^A-Za-z0-9._-]", "-", clean) + "@oxios.local"
    return pygit2.Signature(clean, mail)


def clear_stale_locks(root: Path, older_than: float = 0.0) -> list[str]:
    """Remove lock files that a crashed writer left behind.  Safe because the
    Workspace actor is the only writer: when it (re)starts, any lock is stale."""
    gitdir = root / ".git"
    removed: list[str] = []
    if not gitdir.is_dir():
        return removed
    now = time.time()
    candidates = [gitdir / n for n in _LOCKS] + list((gitdir / "refs").rglob("*.lock"))
    for lock in candidates:
        try:
            if lock.is_file() and now - lock.stat().st_mtime >= older_than:
                lock.unlink()
                removed.append(str(lock.relative_to(gitdir)))
        except OSError:
            continue
    return removed


def ensure_repo(root: Path, committer: pygit2.Signature) -> pygit2.Repository:
    """Open the repository, creating it (``.gitignore`` + "Initial commit" on
    ``main``) when the workspace has none yet."""
    root.mkdir(parents=True, exist_ok=True)
    if (root / ".git").exists():
        repo = pygit2.Repository(str(root))
        if not repo.head_is_unborn:
            return repo
    else:
        repo = pygit2.init_repository(str(root), initial_head=BRANCH)
    # new, or created but never committed (a crash during init)
    gitignore = root / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(GITIGNORE)
    commit_paths(repo, root, [".gitignore"], INITIAL_MESSAGE, committer, committer)
    return repo


def _stage(repo: pygit2.Repository, index: pygit2.Index, root: Path, rel: str) -> None:
    full = root / rel
    if full.is_symlink() or full.is_file():
        if not repo.path_is_ignored(rel):
            index.add(rel)
        return
    if full.is_dir():
        for path in sorted(full.rglob("*")):
            sub = path.relative_to(root).as_posix()
            if ".git" in path.relative_to(root).parts or ".oxios-tmp-" in path.name:
                continue
            if (path.is_symlink() or path.is_file()) and not repo.path_is_ignored(sub):
                index.add(sub)
    # entries under a removed file or directory leave the index
    prefix = rel.rstrip("/") + "/"
    for entry in list(index):
        if (entry.path == rel or entry.path.startswith(prefix)) and not (root / entry.path).exists() \
                and not (root / entry.path).is_symlink():
            index.remove(entry.path)


def commit_paths(repo: pygit2.Repository, root: Path, paths: list[str], message: str,
                 author: pygit2.Signature, committer: pygit2.Signature) -> str | None:
    """Stage ``paths`` (files, directories or removed paths, relative to the
    root; ignored paths are skipped) and commit them on HEAD.  Returns the new
    commit's hash, or None when nothing changed."""
    index = repo.index
    index.read(True)
    for rel in paths:
        _stage(repo, index, root, rel)
    index.write()
    tree = index.write_tree()
    parents: list[pygit2.Oid] = []
    if not repo.head_is_unborn:
        head = repo.head.peel(pygit2.Commit)
        if head.tree_id == tree:
            return None
        parents = [head.id]
    oid = repo.create_commit("HEAD", author, committer, message, tree, parents)
    return str(oid)


def tag(repo: pygit2.Repository, name: str, target: str | None, message: str,
        tagger: pygit2.Signature) -> str:
    commit = repo.head.peel(pygit2.Commit) if target is None else resolve_commit(repo, target)
    if not pygit2.reference_is_valid_name(f"refs/tags/{name}"):
        raise ValueError(f"invalid tag name: {name}")
    if message:
        repo.create_tag(name, commit.id, pygit2.enums.ObjectType.COMMIT, tagger, message)
    else:
        repo.references.create(f"refs/tags/{name}", commit.id, force=True)
    return str(commit.id)


def open_repo(root: Path) -> pygit2.Repository | None:
    if not (root / ".git").exists():
        return None
    try:
        return pygit2.Repository(str(root))
    except pygit2.GitError:
        return None


def rfc3339(seconds: int, offset_minutes: int) -> str:
    tz = timezone(timedelta(minutes=offset_minutes))
    return datetime.fromtimestamp(seconds, tz).isoformat(timespec="seconds")


def log_entries(root: Path, limit: int = LOG_LIMIT) -> list[dict[str, Any]]:
    """The newest ``limit`` commits reachable from HEAD, newest first."""
    repo = open_repo(root)
    if repo is None or repo.head_is_unborn:
        return []
    out = []
    for commit in repo.walk(repo.head.target, pygit2.enums.SortMode.TIME):
        h = str(commit.id)
        out.append({"hash": h, "short_hash": h[:7], "message": commit.message.rstrip("\n"),
                    "timestamp": rfc3339(commit.commit_time, commit.commit_time_offset),
                    "author": commit.author.name})
        if len(out) >= limit:
            break
    return out


def tag_names(root: Path) -> list[str]:
    repo = open_repo(root)
    if repo is None:
        return []
    return sorted(r[len("refs/tags/"):] for r in repo.references if r.startswith("refs/tags/"))


def resolve_commit(repo: pygit2.Repository, hash_: str) -> pygit2.Commit:
    """A commit by full or abbreviated hex hash (nothing else: no ``HEAD~1``, no refs)."""
    if not isinstance(hash_, str) or not _HEX_RE.match(hash_):
        raise ValueError("hash must be 4 to 40 hexadecimal characters")
    try:
        obj: pygit2.Object = repo[hash_]
    except KeyError:
        raise GitLookupError(f"unknown commit: {hash_}") from None
    except ValueError as exc:  # ambiguous prefix
        raise ValueError(f"ambiguous hash {hash_}: {exc}") from None
    if isinstance(obj, pygit2.Commit):
        return obj
    if isinstance(obj, pygit2.Tag):
        try:
            return obj.peel(pygit2.Commit)
        except (pygit2.GitError, ValueError, TypeError):
            pass
    raise GitLookupError(f"not a commit: {hash_}")


def blob_at(repo: pygit2.Repository, hash_: str, rel: str) -> bytes:
    """The content of ``rel`` (a confined, POSIX relative path) at a commit."""
    commit = resolve_commit(repo, hash_)
    try:
        entry = commit.tree[rel]
    except KeyError:
        raise GitLookupError(f"{rel} does not exist in commit {hash_}") from None
    if entry.filemode == pygit2.enums.FileMode.LINK:
        raise ValueError(f"{rel} is a symbolic link in commit {hash_}; not restored")
    obj = repo[entry.id]
    if not isinstance(obj, pygit2.Blob):
        raise ValueError(f"{rel} is a directory in commit {hash_}")
    return bytes(obj.data)
