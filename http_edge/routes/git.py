"""§16 Git: log, tags, verify, restore."""

from __future__ import annotations

from aiohttp import web

from oxios_actors.workspace import gitrepo
from oxios_actors.workspace.messages import RepoVerified, Restored, RestoreFile, VerifyRepo

from ..errors import ApiError, read_json
from ..routing import ApiRoutes
from .system import edge_of
from .workspace import in_thread, root_of

routes = ApiRoutes("git")

#: Verification re-hashes every object; give it more time than an ordinary ask.
VERIFY_TIMEOUT_SECS = 300.0

LOG_SCHEMA = {"type": "object", "properties": {"entries": {"type": "array", "items": {
    "type": "object", "properties": {k: {"type": "string"} for k in
                                     ("hash", "short_hash", "message", "timestamp", "author")}}}}}


@routes.api("GET", "/api/git/log", "Git commit log (up to 100 entries, newest first)", response=LOG_SCHEMA)
async def git_log(request: web.Request) -> web.Response:
    entries = await in_thread(gitrepo.log_entries, root_of(request), gitrepo.LOG_LIMIT)
    return web.json_response({"entries": entries})


@routes.api("GET", "/api/git/tags", "List git tags")
async def git_tags(request: web.Request) -> web.Response:
    return web.json_response({"tags": await in_thread(gitrepo.tag_names, root_of(request))})


@routes.api("POST", "/api/git/verify", "Verify repository integrity (re-hash objects, walk history)")
async def git_verify(request: web.Request) -> web.Response:
    reply = await edge_of(request).bridge.ask("workspace", VerifyRepo(), timeout=VERIFY_TIMEOUT_SECS)
    assert isinstance(reply, RepoVerified)
    return web.json_response(reply.report)


@routes.api("POST", "/api/git/restore", "Restore a file from a commit (written and committed)",
            request={"type": "object", "required": ["hash", "path"], "properties": {
                "hash": {"type": "string"}, "path": {"type": "string"}}})
async def git_restore(request: web.Request) -> web.Response:
    body = await read_json(request)
    hash_, path = body.get("hash"), body.get("path")
    if not isinstance(hash_, str) or not hash_:
        raise ApiError(400, "hash is required (a full or abbreviated commit hash)")
    if not isinstance(path, str) or not path:
        raise ApiError(400, "path is required")
    reply = await edge_of(request).bridge.ask("workspace", RestoreFile(hash_, path, "api"))
    assert isinstance(reply, Restored)
    return web.json_response({"restored": reply.path, "from": hash_})
