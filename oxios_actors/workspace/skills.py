"""Skills: Markdown files with front matter under ``<workspace>/.oxios/skills``.

One folder per skill holding ``SKILL.md``::

    ---
    name: deploy
    description: "Deploy the application to production"
    ---
    # Deploy Skill ...

The folder name is the skill's identifier.  A flat ``<name>.md`` file (the
older layout) is read too.  The Workspace actor writes; the edge reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .pathguard import UnsafePath, check_name, confine

SKILLS_DIR = ".oxios/skills"
SKILL_FILE = "SKILL.md"
MAX_CONTENT_BYTES = 64 * 1024


def skill_rel(name: str) -> str:
    return f"{SKILLS_DIR}/{check_name(name, 'skill name')}/{SKILL_FILE}"


def _quote(value: str) -> str:
    """A front matter value that parses back to itself (JSON strings are valid YAML)."""
    plain = value and value == value.strip() and not any(c in value for c in ":#\"'\n\r{}[],&*!|>%@`")
    return value if plain else json.dumps(value, ensure_ascii=False)


def render(name: str, description: str, content: str) -> str:
    return f"---\nname: {_quote(name)}\ndescription: {_quote(description)}\n---\n{content}"


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except ValueError:
            return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    return value


def parse(text: str) -> tuple[dict[str, str], str]:
    """(front matter fields, body).  Text without front matter is all body."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    meta: dict[str, str] = {}
    for i in range(1, len(lines)):
        line = lines[i]
        if line.strip() == "---":
            return meta, "\n".join(lines[i + 1:])
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t")):
            meta[key.strip()] = _unquote(value)
    return {}, text  # unterminated front matter: treat as plain Markdown


def _files(root: Path) -> dict[str, Path]:
    base = root / SKILLS_DIR
    found: dict[str, Path] = {}
    if not base.is_dir():
        return found
    for entry in sorted(base.iterdir()):  # "x" sorts before "x.md": the folder wins
        if entry.is_dir():
            name, rel = entry.name, f"{SKILLS_DIR}/{entry.name}/{SKILL_FILE}"
        elif entry.suffix == ".md":
            name, rel = entry.stem, f"{SKILLS_DIR}/{entry.name}"
        else:
            continue
        try:
            check_name(name)
            path = confine(root, rel)
        except UnsafePath:
            continue
        if path.is_file():
            found.setdefault(name, path)
    return found


def _load(name: str, path: Path) -> dict[str, Any]:
    meta, body = parse(path.read_text(encoding="utf-8", errors="replace"))
    return {"name": name, "description": meta.get("description", ""), "content": body,
            "path": str(path)}


def list_skills(root: Path) -> list[dict[str, Any]]:
    """``{name, description}`` of every skill, by name."""
    out = []
    for name, path in sorted(_files(root).items()):
        skill = _load(name, path)
        out.append({"name": skill["name"], "description": skill["description"]})
    return out


def get_skill(root: Path, name: str) -> dict[str, Any] | None:
    """``{name, description, content, path}`` or None.  Raises UnsafePath for a bad name."""
    check_name(name, "skill name")
    for candidate in (f"{SKILLS_DIR}/{name}/{SKILL_FILE}", f"{SKILLS_DIR}/{name}.md"):
        path = confine(root, candidate)
        if path.is_file():
            return _load(name, path)
    return None


def skill_paths(root: Path, name: str) -> list[str]:
    """The workspace-relative paths that make up skill ``name`` (for deletion)."""
    check_name(name, "skill name")
    out = []
    for candidate in (f"{SKILLS_DIR}/{name}", f"{SKILLS_DIR}/{name}.md"):
        path = root / candidate
        if path.is_dir() or path.is_file():
            confine(root, candidate)
            out.append(candidate)
    return out
