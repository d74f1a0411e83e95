"""§7 Skills: Markdown files with front matter under the workspace's .oxios/skills."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pygit2
import pytest

from oxios_actors.paths import workspace_root
from oxios_actors.workspace import skills

from .test_workspace import raw


@pytest.fixture
def ws(edge: Any) -> Path:
    return workspace_root(edge.home, edge.config)


async def create(client: Any, auth: Any, **body: Any) -> Any:
    return await client.post("/api/skills", json=body, headers=auth)


def test_front_matter_round_trips() -> None:
    for description in ("plain words", "has: a colon", 'quotes "and" \'more\'', "two\nlines", " padded "):
        meta, body = skills.parse(skills.render("x", description, "# Body\n---\nnot front matter"))
        assert meta == {"name": "x", "description": description}
        assert body == "# Body\n---\nnot front matter"
    hand = "---\nname: review\ndescription: 'It''s fine'\n---\n# Review\n"
    assert skills.parse(hand) == ({"name": "review", "description": "It's fine"}, "# Review\n")
    assert skills.parse("# no front matter") == ({}, "# no front matter")


async def test_contract_example_create_get_list_delete(client: Any, auth: Any, ws: Path) -> None:
    r = await client.post("/api/skills", headers={**auth, "Content-Type": "application/json"}, json={
        "name": "deploy", "description": "Deploy the application to production",
        "content": "# Deploy Skill\n\n1. Run tests\n2. Build\n3. Deploy"})
    assert r.status == 200
    assert await r.json() == {"status": "created", "name": "deploy"}
    r = await client.get("/api/skills/deploy", headers=auth)
    assert r.status == 200
    skill = await r.json()
    assert skill == {"name": "deploy", "description": "Deploy the application to production",
                     "content": "# Deploy Skill\n\n1. Run tests\n2. Build\n3. Deploy",
                     "path": str(ws / ".oxios/skills/deploy/SKILL.md")}
    text = Path(skill["path"]).read_text()
    assert text.startswith("---\nname: deploy\ndescription: ")
    r = await client.get("/api/skills", headers=auth)
    listing = await r.json()
    assert {"name": "deploy", "description": "Deploy the application to production"} in listing["items"]
    assert listing["page"] == 1 and listing["limit"] == 50 and listing["total"] >= 1
    r = await client.delete("/api/skills/deploy", headers=auth)
    assert r.status == 200
    assert await r.json() == {"status": "deleted", "name": "deploy"}
    r = await client.get("/api/skills/deploy", headers=auth)
    assert r.status == 404
    assert not (ws / ".oxios/skills/deploy").exists()


async def test_skill_writes_are_committed(client: Any, auth: Any, ws: Path) -> None:
    await create(client, auth, name="committed-skill", description="d", content="c")
    repo = pygit2.Repository(str(ws))
    head = repo.head.peel(pygit2.Commit)
    assert head.message.strip() == "Add skill committed-skill" and head.author.name == "api"
    assert ".oxios/skills/committed-skill/SKILL.md" in [e.path for e in repo.index]
    r = await create(client, auth, name="committed-skill", description="d2", content="c2")
    assert (await r.json())["status"] == "updated"
    assert repo.head.peel(pygit2.Commit).message.strip() == "Update skill committed-skill"
    await client.delete("/api/skills/committed-skill", headers=auth)
    head = repo.head.peel(pygit2.Commit)
    assert head.message.strip() == "Delete skill committed-skill"
    with pytest.raises(KeyError):
        head.tree[".oxios/skills/committed-skill/SKILL.md"]


async def test_pagination_and_order(client: Any, auth: Any) -> None:
    for name in ("pg-c", "pg-a", "pg-b"):
        await create(client, auth, name=name, description=f"skill {name}")
    r = await client.get("/api/skills", params={"limit": 500}, headers=auth)
    names = [s["name"] for s in (await r.json())["items"]]
    assert names == sorted(names) and {"pg-a", "pg-b", "pg-c"} <= set(names)
    r = await client.get("/api/skills", params={"limit": 1, "page": 2}, headers=auth)
    page = await r.json()
    assert page["limit"] == 1 and page["page"] == 2 and len(page["items"]) == 1
    assert page["items"][0]["name"] == names[1] and page["total"] == len(names)


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "x" * 65, "..", "a b", "-dash", "ü"])
async def test_bad_names_are_400(client: Any, auth: Any, ws: Path, name: str) -> None:
    r = await create(client, auth, name=name, description="d")
    assert r.status == 400
    assert "error" in await r.json()
    assert not (ws / ".oxios/evil").exists()


@pytest.mark.parametrize("path", ["/api/skills/%2e%2e", "/api/skills/..%2F..%2Fetc", "/api/skills/.git"])
async def test_path_tricks_in_the_url_are_400(client: Any, auth: Any, path: str) -> None:
    for method in ("GET", "DELETE"):
        r = await raw(client, method, path, headers=auth)
        assert r.status == 400, (method, path)
        assert "invalid skill name" in (await r.json())["error"]


async def test_content_limit_and_required_fields(client: Any, auth: Any) -> None:
    r = await create(client, auth, name="big-ok", description="d", content="a" * 65536)
    assert r.status == 200
    r = await create(client, auth, name="big-no", description="d", content="a" * 65537)
    assert r.status == 413
    r = await create(client, auth, name="big-no", description="d", content="é" * 32769)  # bytes, not chars
    assert r.status == 413
    r = await create(client, auth, name="no-desc")
    assert r.status == 400
    r = await create(client, auth, name="bad-content", description="d", content=["x"])
    assert r.status == 400
    r = await create(client, auth, description="d")
    assert r.status == 400
    r = await create(client, auth, name="empty-content", description="d")
    assert r.status == 200
    r = await client.get("/api/skills/empty-content", headers=auth)
    assert (await r.json())["content"] == ""
    r = await client.post("/api/skills", data=b"{nope", headers={**auth, "Content-Type": "application/json"})
    assert r.status == 400


async def test_delete_unknown_is_404(client: Any, auth: Any) -> None:
    r = await client.delete("/api/skills/never-existed", headers=auth)
    assert r.status == 404
    assert "error" in await r.json()


async def test_hand_written_skill_files_are_listed(client: Any, auth: Any, ws: Path) -> None:
    folder = ws / ".oxios/skills/handmade"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text("---\nname: handmade\ndescription: Made by hand\n---\n# Hand\n")
    (ws / ".oxios/skills/flat.md").write_text("---\nname: flat\ndescription: Older layout\n---\nbody")
    r = await client.get("/api/skills/handmade", headers=auth)
    assert (await r.json())["description"] == "Made by hand"
    r = await client.get("/api/skills/flat", headers=auth)
    assert (await r.json())["content"] == "body"
    r = await client.delete("/api/skills/flat", headers=auth)
    assert r.status == 200 and not (ws / ".oxios/skills/flat.md").exists()
    r = await client.delete("/api/skills/handmade", headers=auth)
    assert r.status == 200
