"""§7 Skills: Markdown files with front matter under the workspace's ``.oxios/skills``."""

from __future__ import annotations

from aiohttp import web

from oxios_actors.workspace import skills
from oxios_actors.workspace.messages import DeleteSkill, PutSkill, SkillDeleted, SkillSaved
from oxios_actors.workspace.pathguard import UnsafePath, check_name

from ..errors import ApiError, read_json
from ..pagination import page_of
from ..routing import ApiRoutes
from .system import edge_of
from .workspace import in_thread, root_of

routes = ApiRoutes("skills")


def _name(request: web.Request) -> str:
    try:
        return check_name(request.match_info["name"], "skill name")
    except UnsafePath as exc:
        raise ApiError(exc.status, exc.message) from None


@routes.api("GET", "/api/skills", "List skills (paginated)")
async def list_skills(request: web.Request) -> web.Response:
    page = page_of(request)
    return web.json_response(page.slice(await in_thread(skills.list_skills, root_of(request))))


@routes.api("GET", "/api/skills/{name}", "Get a skill with its content")
async def get_skill(request: web.Request) -> web.Response:
    name = _name(request)
    skill = await in_thread(skills.get_skill, root_of(request), name)
    if skill is None:
        raise ApiError(404, f"skill not found: {name}")
    return web.json_response(skill)


@routes.api("POST", "/api/skills", "Create a skill (content max 64 KB)",
            request={"type": "object", "required": ["name", "description"], "properties": {
                "name": {"type": "string"}, "description": {"type": "string"},
                "content": {"type": "string", "default": ""}}})
async def create_skill(request: web.Request) -> web.Response:
    body = await read_json(request)
    name, description, content = body.get("name"), body.get("description"), body.get("content", "")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "name is required")
    try:
        check_name(name, "skill name")
    except UnsafePath as exc:
        raise ApiError(exc.status, exc.message) from None
    if not isinstance(description, str) or not description.strip():
        raise ApiError(400, "description is required")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise ApiError(400, "content must be a string")
    if len(content.encode()) > skills.MAX_CONTENT_BYTES:
        raise ApiError(413, f"content exceeds {skills.MAX_CONTENT_BYTES} bytes")
    reply = await edge_of(request).bridge.ask("workspace", PutSkill(name, description, content, "api"))
    assert isinstance(reply, SkillSaved)
    return web.json_response({"status": "created" if reply.created else "updated", "name": name})


@routes.api("DELETE", "/api/skills/{name}", "Delete a skill")
async def delete_skill(request: web.Request) -> web.Response:
    name = _name(request)
    reply = await edge_of(request).bridge.ask("workspace", DeleteSkill(name, "api"))
    assert isinstance(reply, SkillDeleted)
    return web.json_response({"status": "deleted", "name": name})
