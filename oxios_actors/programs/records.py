"""Where programs live and what the API shows of them (shared by the
ProgramRegistry actor and the edge).

Files: ``<workspace>/.oxios/programs/<name>/`` (``program.toml``, optional
``SKILL.md``, the program's files); the directory is git-ignored — a program
is fetched from its source, not versioned in the workspace.

State: environment ``programs``, db ``state`` maps the name (UTF-8) to
``{enabled, installed_at, last_modified, source, version}``.  A program
directory without a record (copied in by hand) counts as enabled.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..store import ReadOnlyStore
from ..workspace.pathguard import check_name, confine
from .manifest import SKILL_FILE, Manifest, ManifestError, load_manifest

DOMAIN = "programs"
STATE_DB = "state"
PROGRAMS_DIR = ".oxios/programs"
STAGING = ".staging"


def programs_dir(root: Path) -> Path:
    return root / PROGRAMS_DIR


def program_dir(root: Path, name: str) -> Path:
    """The confined directory of program ``name``; UnsafePath for a bad name."""
    check_name(name, "program name")
    return confine(root, f"{PROGRAMS_DIR}/{name}")


def read_states(store: ReadOnlyStore) -> dict[str, dict[str, Any]]:
    return {key.decode(): value for key, value in store.items(DOMAIN, STATE_DB)}


def installed(root: Path) -> dict[str, tuple[Path, Manifest]]:
    """Every program directory with a valid manifest, by name."""
    base = programs_dir(root)
    found: dict[str, tuple[Path, Manifest]] = {}
    if not base.is_dir():
        return found
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            manifest = load_manifest(entry)
        except (ManifestError, OSError):
            continue
        if manifest.name == entry.name:
            found[entry.name] = (entry, manifest)
    return found


def load(root: Path, name: str) -> tuple[Path, Manifest] | None:
    path = program_dir(root, name)
    if not path.is_dir():
        return None
    try:
        manifest = load_manifest(path)
    except (ManifestError, OSError):
        return None
    return (path, manifest) if manifest.name == name else None


def _enabled(states: Mapping[str, dict[str, Any]], name: str) -> bool:
    return bool(states.get(name, {}).get("enabled", True))


def summary(path: Path, manifest: Manifest, states: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    return {"name": manifest.name, "version": manifest.version, "description": manifest.description,
            "author": manifest.author, "enabled": _enabled(states, manifest.name),
            "tools_count": len(manifest.tools), "has_skill_content": (path / SKILL_FILE).is_file()}


def list_programs(root: Path, states: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [summary(path, manifest, states) for path, manifest in installed(root).values()]


def detail(root: Path, name: str, states: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    found = load(root, name)
    if found is None:
        return None
    path, manifest = found
    skill = path / SKILL_FILE
    content = skill.read_text(encoding="utf-8", errors="replace") \
        if skill.is_file() and not skill.is_symlink() else None
    return {"name": manifest.name, "version": manifest.version, "description": manifest.description,
            "author": manifest.author, "enabled": _enabled(states, manifest.name),
            "tools": [t.as_dict() for t in manifest.tools], "skill_content": content,
            "path": str(path),
            "host_requirements": {"required": list(manifest.required),
                                  "optional": list(manifest.optional)}}
