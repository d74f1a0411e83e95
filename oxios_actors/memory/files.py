"""The memory files in the workspace: ``memory/<YYYY-MM-DD>.md`` (category ``daily``, the day's
entries appended) and ``memory/knowledge/<slug>.md`` (category ``knowledge``, one file per
knowledge entry).  The Memory actor writes them; the edge lists and reads them.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any

from ..system.config import write_atomic

MEMORY_DIR = "memory"
KNOWLEDGE_DIR = "knowledge"
SUFFIX = ".md"
MAX_SLUG = 60
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class BadName(ValueError):
    """A name that could step outside ``memory/`` (or is not a memory name at all)."""


def memory_dir(workspace: Path) -> Path:
    return workspace / MEMORY_DIR


def knowledge_dir(workspace: Path) -> Path:
    return workspace / MEMORY_DIR / KNOWLEDGE_DIR


def slug(text: str) -> str:
    """Lowercase ASCII words joined by '-', at most ``MAX_SLUG`` characters, cut at a word."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    out = ""
    for word in words:
        candidate = f"{out}-{word}" if out else word
        if len(candidate) > MAX_SLUG:
            break
        out = candidate
    return out or (words[0][:MAX_SLUG] if words else "")


def knowledge_name(content: str, tags: tuple[str, ...], entry_id: str) -> str:
    """The file name (without ``.md``) a knowledge entry is given: a slug of its first line
    (a Markdown heading counts), else of its first tag, else of its id."""
    first_line = next((line for line in content.splitlines() if line.strip()), "")
    return (slug(first_line.lstrip("#").strip()) or (slug(tags[0]) if tags else "")
            or f"knowledge-{entry_id[:8]}")


def check_name(name: str) -> str:
    """The bare name (``.md`` dropped) if it can only mean a file directly in a memory folder."""
    if name.endswith(SUFFIX):
        name = name[:-len(SUFFIX)]
    if not _NAME.match(name) or ".." in name:
        raise BadName(f"invalid memory name: {name!r}")
    return name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def daily_path(workspace: Path, created_at: str) -> Path:
    return memory_dir(workspace) / f"{created_at[:10]}{SUFFIX}"


def knowledge_path(workspace: Path, content: str, tags: tuple[str, ...], entry_id: str) -> Path:
    """A free file name for a new knowledge entry (``-2``, ``-3``... when the name is taken)."""
    folder = knowledge_dir(workspace)
    base = knowledge_name(content, tags, entry_id)
    name, n = base, 1
    while (folder / f"{name}{SUFFIX}").exists():
        n += 1
        name = f"{base}-{n}"
    return folder / f"{name}{SUFFIX}"


def append_daily(path: Path, entry: dict[str, Any]) -> None:
    """Append one entry to its day's file (created with a heading); fsynced before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    tags = ", ".join(entry["tags"]) or "-"
    block = (f"\n## {entry['created_at'][11:19]} {entry['type']} ({entry['id']})\n\n"
             f"- importance: {entry['importance']}\n- tags: {tags}\n\n"
             f"{entry['content'].rstrip()}\n")
    # A new version is written beside the file and renamed over it, so the workspace
    # never commits a file that is half written (it may be reading it right now).
    old = "" if created else path.read_text(encoding="utf-8")
    head = f"# Memory {path.name[:-len(SUFFIX)]}\n" if created else ""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(old + head + block)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_knowledge(path: Path, content: str) -> None:
    """Write a knowledge entry's file (atomically: it appears whole or not at all)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if content.endswith("\n") else content + "\n"
    write_atomic(path, text.encode("utf-8"), mode=0o644)


def _names(folder: Path) -> list[str]:
    try:
        found = [p.name[:-len(SUFFIX)] for p in folder.iterdir()
                 if p.name.endswith(SUFFIX) and not p.name.startswith(".") and p.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [n for n in found if _NAME.match(n)]


def list_files(workspace: Path) -> list[dict[str, str]]:
    """Daily files newest first, then knowledge files by name."""
    daily = sorted(_names(memory_dir(workspace)), reverse=True)
    knowledge = sorted(_names(knowledge_dir(workspace)))
    return ([{"name": n, "category": "daily"} for n in daily]
            + [{"name": n, "category": "knowledge"} for n in knowledge])


def read_file(workspace: Path, name: str) -> dict[str, str] | None:
    """``{name, category, content}`` from ``memory/`` then ``memory/knowledge/``; None if neither.
    Raises BadName for a name that is not a plain memory name."""
    bare = check_name(name)
    for folder, category in ((memory_dir(workspace), "daily"), (knowledge_dir(workspace), "knowledge")):
        path = folder / f"{bare}{SUFFIX}"
        try:
            if path.is_file() and path.resolve().parent == folder.resolve():
                return {"name": bare, "category": category,
                        "content": path.read_text(encoding="utf-8", errors="replace")}
        except OSError:
            continue
    return None
