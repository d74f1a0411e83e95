"""Workspace: the only writer of the workspace's tracked files and of its git
repository (one writer, so no two commits ever race for ``index.lock``).

Other services that write under the workspace (memory, seeds) send
``CommitPaths`` afterwards.  Every path is confined by ``pathguard`` before
anything is created.  On (re)start it clears lock files a crashed writer left
behind and creates the repository if there is none.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

import pygit2

from ..messages import Failure
from ..paths import workspace_root
from ..service import ServiceActor
from . import gitrepo, skills
from .files import remove_tree, write_file
from .integrity import verify
from .messages import (
    CommitPaths,
    Committed,
    DeleteSkill,
    FileWritten,
    PutSkill,
    RepoVerified,
    Restored,
    RestoreFile,
    SkillDeleted,
    SkillSaved,
    TagCommit,
    Tagged,
    VerifyRepo,
    WriteFile,
)
from .pathguard import UnsafePath, check_name, confine, parts_of, relative

log = logging.getLogger("oxios.workspace")

#: A lock older than this, met during a commit, is treated as left by a crash.
STALE_LOCK_SECS = 10.0

_CLIENT_ERRNOS = {errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG, errno.EINVAL,
                  errno.ELOOP}


def _os_failure(exc: OSError, what: str) -> Failure:
    status = 400 if exc.errno in _CLIENT_ERRNOS else 500
    return Failure(status, f"cannot {what}: {exc.strerror or exc}")


class Workspace(ServiceActor):
    name = "workspace"

    def on_configure(self) -> None:
        self.root: Path = workspace_root(self.home, self.config)
        self.counts = {"writes": 0, "commits": 0, "restores": 0, "verifications": 0,
                       "denied": 0, "locks_cleared": 0}
        self.broken: str | None = None
        try:
            cleared = gitrepo.clear_stale_locks(self.root)
            if cleared:
                log.warning("workspace: removed stale git locks %s", ", ".join(cleared))
            self.counts["locks_cleared"] += len(cleared)
            self.repo = gitrepo.ensure_repo(self.root, self.committer())
        except (OSError, pygit2.GitError) as exc:
            log.error("workspace %s is unusable: %s", self.root, exc)
            self.broken = str(exc)

    # -- helpers ----------------------------------------------------------
    def committer(self) -> pygit2.Signature:
        git = self.section("git")
        return gitrepo.signature(str(git.get("author_name", "oxios")),
                                 str(git.get("author_email", "oxios@localhost")))

    def commit(self, paths: list[str], message: str, author: str) -> str | None:
        if not self.section("git").get("auto_commit", True):
            return None
        args = (self.repo, self.root, paths, message, gitrepo.signature(author), self.committer())
        try:
            oid = gitrepo.commit_paths(*args)
        except pygit2.GitError as exc:
            if "lock" not in str(exc).lower() or not gitrepo.clear_stale_locks(self.root, STALE_LOCK_SECS):
                raise
            self.counts["locks_cleared"] += 1
            oid = gitrepo.commit_paths(*args)
        if oid is not None:
            self.counts["commits"] += 1
        return oid

    def denied(self, author: str, action: str, path: str, exc: UnsafePath) -> Failure:
        self.counts["denied"] += 1
        if exc.status == 403:
            self.audit(author, action, str(path)[:1024], allowed=False, reason=exc.message)
        return Failure(exc.status, exc.message)

    def unusable(self) -> Failure | None:
        return Failure(503, f"the workspace is unusable: {self.broken}") if self.broken else None

    # -- files ------------------------------------------------------------
    def on_WriteFile(self, msg: WriteFile) -> Any:
        if (fail := self.unusable()) is not None:
            return fail
        try:
            target = write_file(self.root, msg.path, bytes(msg.content))
        except UnsafePath as exc:
            return self.denied(msg.author, "workspace_write", msg.path, exc)
        except OSError as exc:
            return _os_failure(exc, f"write {msg.path}")
        rel = relative(self.root, target)
        self.counts["writes"] += 1
        oid = self.commit([rel], msg.message or f"Update {rel}", msg.author)
        self.audit(msg.author, "workspace_write", rel, True, None)
        return FileWritten(rel, oid)

    def on_CommitPaths(self, msg: CommitPaths) -> Any:
        if (fail := self.unusable()) is not None:
            return fail
        rels = []
        for path in msg.paths:
            try:
                confine(self.root, path)
                rels.append("/".join(parts_of(path)))
            except UnsafePath as exc:
                return self.denied(msg.author, "git_commit", path, exc)
        oid = self.commit(rels, msg.message, msg.author)
        if oid is not None:
            self.audit(msg.author, "git_commit", oid, True, msg.message[:200])
        return Committed(oid)

    # -- git --------------------------------------------------------------
    def on_RestoreFile(self, msg: RestoreFile) -> Any:
        if (fail := self.unusable()) is not None:
            return fail
        try:
            confine(self.root, msg.path)
            rel = "/".join(parts_of(msg.path))
            if not rel:
                raise UnsafePath(400, "path must name a file")
            commit = gitrepo.resolve_commit(self.repo, msg.hash)
            data = gitrepo.blob_at(self.repo, str(commit.id), rel)
            target = write_file(self.root, rel, data)
        except UnsafePath as exc:
            return self.denied(msg.author, "git_restore", msg.path, exc)
        except gitrepo.GitLookupError as exc:
            return Failure(404, str(exc))
        except ValueError as exc:
            return Failure(400, str(exc))
        except OSError as exc:
            return _os_failure(exc, f"restore {msg.path}")
        written = relative(self.root, target)
        self.counts["restores"] += 1
        oid = self.commit([written], f"Restore {rel} from {str(commit.id)[:7]}", msg.author)
        self.audit(msg.author, "git_restore", rel, True, f"from {commit.id}")
        return Restored(rel, str(commit.id), oid)

    def on_VerifyRepo(self, msg: VerifyRepo) -> Any:
        if (fail := self.unusable()) is not None:
            return fail
        self.counts["verifications"] += 1
        return RepoVerified(verify(self.root))

    def on_TagCommit(self, msg: TagCommit) -> Any:
        if (fail := self.unusable()) is not None:
            return fail
        try:
            target = gitrepo.tag(self.repo, msg.name, msg.target, msg.message, self.committer())
        except gitrepo.GitLookupError as exc:
            return Failure(404, str(exc))
        except (ValueError, pygit2.GitError) as exc:
            return Failure(400, str(exc))
        return Tagged(msg.name, target)

    # -- skills -----------------------------------------------------------
    def on_PutSkill(self, msg: PutSkill) -> Any:
        if (fail := self.unusable()) is not None:
            return fail
        if not isinstance(msg.description, str) or not msg.description.strip():
            return Failure(400, "description is required")
        if not isinstance(msg.content, str):
            return Failure(400, "content must be a string")
        if len(msg.content.encode()) > skills.MAX_CONTENT_BYTES:
            return Failure(413, f"content exceeds {skills.MAX_CONTENT_BYTES} bytes")
        try:
            rel = skills.skill_rel(msg.name)
            created = skills.get_skill(self.root, msg.name) is None
            target = write_file(self.root, rel, skills.render(msg.name, msg.description,
                                                              msg.content).encode())
        except UnsafePath as exc:
            return self.denied(msg.author, "skill_write", str(msg.name), exc)
        except OSError as exc:
            return _os_failure(exc, f"write skill {msg.name}")
        self.commit([relative(self.root, target)],
                    f"{'Add' if created else 'Update'} skill {msg.name}", msg.author)
        self.audit(msg.author, "skill_write", msg.name, True, None)
        return SkillSaved(msg.name, created, str(target))

    def on_DeleteSkill(self, msg: DeleteSkill) -> Any:
        if (fail := self.unusable()) is not None:
            return fail
        try:
            check_name(msg.name, "skill name")
            paths = skills.skill_paths(self.root, msg.name)
        except UnsafePath as exc:
            return self.denied(msg.author, "skill_delete", str(msg.name), exc)
        if not paths:
            return Failure(404, f"skill not found: {msg.name}")
        try:
            for rel in paths:
                remove_tree(self.root / rel)
        except OSError as exc:
            return _os_failure(exc, f"delete skill {msg.name}")
        self.commit(paths, f"Delete skill {msg.name}", msg.author)
        self.audit(msg.author, "skill_delete", msg.name, True, None)
        return SkillDeleted(msg.name)

    def stats(self) -> dict[str, Any]:
        return dict(getattr(self, "counts", {}))
