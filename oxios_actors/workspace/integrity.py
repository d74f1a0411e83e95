"""Repository verification: re-hash every object, then walk the history.

Loose objects are read and hashed here in Python rather than through libgit2:
libgit2 (1.9) spins forever inflating a truncated loose object, and a
verifier must report corruption, not hang on it.  Packed objects are read
through pygit2 and re-hashed the same way.  Then every ref is followed through
commits, trees and tags, and each object it reaches must exist and be intact.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

MAX_ERRORS = 100
_LOOSE_RE = re.compile(r"^[0-9a-f]{38}$")
_TYPE_NAMES = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}


class CorruptObject(ValueError):
    pass


@dataclass
class Report:
    objects_checked: int = 0
    commits_checked: int = 0
    corrupt: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)

    def as_dict(self) -> dict[str, Any]:
        valid = not (self.corrupt or self.missing or self.errors)
        out: dict[str, Any] = {"valid": valid, "objects_checked": self.objects_checked,
                               "commits_checked": self.commits_checked}
        if not valid:
            out.update(corrupt_objects=sorted(self.corrupt), missing_objects=sorted(self.missing),
                       errors=self.errors)
        return out


def hash_object(kind: str, data: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()


def read_loose(path: Path) -> tuple[str, bytes]:
    """(type, content) of a loose object file; CorruptObject if it is damaged."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorruptObject(f"unreadable: {exc.strerror}") from None
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(raw)
    except zlib.error as exc:
        raise CorruptObject(f"cannot inflate: {exc}") from None
    if not inflater.eof:
        raise CorruptObject("truncated (the compressed stream ends early)")
    header, sep, body = data.partition(b"\0")
    parts = header.split(b" ")
    if not sep or len(parts) != 2 or parts[0].decode("latin-1") not in _TYPE_NAMES.values():
        raise CorruptObject("bad object header")
    kind = parts[0].decode()
    if not parts[1].isdigit() or int(parts[1]) != len(body):
        raise CorruptObject(f"size mismatch (header says {parts[1].decode('latin-1')}, "
                            f"content is {len(body)} bytes)")
    return kind, body


def links(kind: str, data: bytes) -> list[tuple[str, str]]:
    """The objects an object points to, as (hex, expected type)."""
    out: list[tuple[str, str]] = []
    if kind == "commit":
        for line in data.split(b"\n"):
            if not line:
                break
            if line.startswith(b"tree "):
                out.append((line[5:].decode("latin-1"), "tree"))
            elif line.startswith(b"parent "):
                out.append((line[7:].decode("latin-1"), "commit"))
    elif kind == "tag":
        target, ttype = "", ""
        for line in data.split(b"\n"):
            if not line:
                break
            if line.startswith(b"object "):
                target = line[7:].decode("latin-1")
            elif line.startswith(b"type "):
                ttype = line[5:].decode("latin-1")
        if target:
            out.append((target, ttype))
    elif kind == "tree":
        i = 0
        while i < len(data):
            sp = data.index(b" ", i)
            nul = data.index(b"\0", sp)
            mode = data[i:sp]
            oid = data[nul + 1:nul + 21].hex()
            if len(oid) != 40:
                raise CorruptObject("truncated tree entry")
            if mode != b"160000":  # gitlinks (submodules) live in another repository
                out.append((oid, "tree" if mode in (b"40000", b"040000") else "blob"))
            i = nul + 21
    return out


def verify(root: Path) -> dict[str, Any]:
    """Verify the repository of the workspace at ``root``."""
    gitdir = root / ".git"
    report = Report()
    if not gitdir.is_dir():
        report.error("the workspace has no git repository")
        return report.as_dict()
    kinds: dict[str, str] = {}
    edges: dict[str, list[tuple[str, str]]] = {}

    def record(oid: str, kind: str, body: bytes) -> None:
        report.objects_checked += 1
        actual = hash_object(kind, body)
        if actual != oid:
            report.corrupt[oid] = "hash mismatch"
            report.error(f"object {oid}: hash mismatch (content hashes to {actual})")
            return
        try:
            edges[oid] = links(kind, body)
        except (ValueError, CorruptObject) as exc:
            report.corrupt[oid] = "unparseable"
            report.error(f"object {oid}: unparseable {kind}: {exc}")
            return
        kinds[oid] = kind

    objects = gitdir / "objects"
    for sub in sorted(objects.glob("[0-9a-f][0-9a-f]")):
        for path in sorted(sub.iterdir()):
            if not _LOOSE_RE.match(path.name):
                continue
            oid = sub.name + path.name
            try:
                kind, body = read_loose(path)
            except CorruptObject as exc:
                report.objects_checked += 1
                report.corrupt[oid] = str(exc)
                report.error(f"object {oid}: {exc}")
                continue
            record(oid, kind, body)

    repo = pygit2.Repository(str(root))
    for oid_obj in repo.odb:  # packed objects (loose ones were read above)
        oid = str(oid_obj)
        if oid in kinds or oid in report.corrupt:
            continue
        try:
            type_num, data = repo.odb.read(oid_obj)
        except (pygit2.GitError, KeyError, ValueError) as exc:
            report.objects_checked += 1
            report.corrupt[oid] = str(exc)
            report.error(f"object {oid}: {exc}")
            continue
        record(oid, _TYPE_NAMES.get(type_num, "?"), bytes(data))

    _walk(repo, kinds, edges, report)
    return report.as_dict()


def _walk(repo: pygit2.Repository, kinds: dict[str, str], edges: dict[str, list[tuple[str, str]]],
          report: Report) -> None:
    queue: deque[tuple[str, str, str]] = deque()
    for name in repo.references:
        try:
            target = repo.references[name].resolve().target
        except (pygit2.GitError, KeyError) as exc:
            report.error(f"ref {name}: cannot be resolved: {exc}")
            continue
        queue.append((str(target), "", f"ref {name}"))
    seen: set[str] = set()
    while queue:
        oid, expected, via = queue.popleft()
        if oid in seen:
            continue
        seen.add(oid)
        if oid in report.corrupt:
            report.error(f"{via} reaches corrupt object {oid}")
            continue
        kind = kinds.get(oid)
        if kind is None:
            report.missing[oid] = via
            report.error(f"{via} reaches missing object {oid}")
            continue
        if expected and kind != expected:
            report.error(f"{via} expects a {expected} at {oid}, found a {kind}")
        if kind == "commit":
            report.commits_checked += 1
        for child, child_kind in edges.get(oid, []):
            queue.append((child, child_kind, f"{kind} {oid}"))
