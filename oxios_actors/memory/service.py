"""Memory: the actor that owns the memory store (§8).

A write is embedded, committed to LMDB (entry and vector, durable) and added to its type's HNSW
index, then written to the workspace (the day's file, or a knowledge file of its own) before the
reply; the workspace service is asked to commit that file, the write is audited and a
``memory_stored`` event (ids only, never content) published.  Index files are saved a few
seconds after the last write and on stop; after a crash the indexes are verified and caught up
from LMDB, or rebuilt from it (see ``index``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from ..messages import Failure
from ..paths import workspace_root
from ..service import ServiceActor, rfc3339
from ..workspace.messages import CommitPaths
from . import files
from .bank import MemoryBank
from .embedding import make_embedder
from .messages import (
    BackgroundStep,
    IndexesSaved,
    Recalled,
    Remember,
    Remembered,
    SaveIndexes,
    SearchKeywords,
    SearchSemantic,
)
from .records import (
    MEMORY_TYPES,
    MemoryInputError,
    check_content,
    check_filter_type,
    check_importance,
    check_limit,
    check_query,
    check_tags,
)

log = logging.getLogger("oxios.memory")

SAVE_DELAY_SECS = 5.0
SAVE = "save-indexes"
RECALLED_IDS_MAX = 50


class Memory(ServiceActor):
    name = "memory"

    def on_configure(self) -> None:
        mem = self.section("memory")
        self.embedding = str(mem.get("embedding", "minilm"))
        self.bank = MemoryBank(self.home, make_embedder(self.embedding),
                               str(mem.get("index_dtype", "f32")))
        self.save_pending = False
        self.background_pending = False
        self.commits = 0
        self.stored = 0
        self.recalled = 0
        if self.bank.report.rebuilt:
            log.warning("memory: rebuilt HNSW indexes from LMDB: %s", self.bank.report.rebuilt)
        self.continue_background()

    def continue_background(self) -> None:
        """Keep one chain of BackgroundStep messages going while there is work."""
        if not self.background_pending and (self.bank.reembedding or self.bank.indexes.rebuilding):
            self.background_pending = True
            self.send(self.myAddress, BackgroundStep())

    def on_config_changed(self) -> None:
        if not hasattr(self, "bank"):
            return
        mem = self.section("memory")
        embedding = str(mem.get("embedding", self.embedding))
        if embedding != self.embedding:
            self.embedding = embedding
            self.bank.switch_model(make_embedder(embedding))
        self.bank.switch_dtype(str(mem.get("index_dtype", self.bank.indexes.dtype)))
        self.continue_background()

    def enabled(self) -> bool:
        return bool(self.section("memory").get("enabled", True))

    # -- writes ------------------------------------------------------------------------------
    def on_Remember(self, msg: Remember) -> Any:
        if not self.enabled():
            return Failure(503, "memory is disabled (memory.enabled is false)")
        try:
            content, tags = check_content(msg.content), check_tags(list(msg.tags))
            importance = check_importance(msg.importance)
        except MemoryInputError as exc:
            return Failure(exc.status, exc.message)
        if msg.memory_type not in MEMORY_TYPES:
            return Failure(400, "memory_type must be one of " + ", ".join(MEMORY_TYPES))
        workspace = workspace_root(self.home, self.config)
        created_at, entry_id = rfc3339(), str(uuid.uuid4())
        if msg.memory_type == "knowledge":
            path = files.knowledge_path(workspace, content, tags, entry_id)
        else:
            path = files.daily_path(workspace, created_at)
        relative = str(path.relative_to(workspace))
        entry = self.bank.remember(entry_id, content, msg.memory_type, tags, importance,
                                   msg.source, created_at, relative)
        try:
            if msg.memory_type == "knowledge":
                files.write_knowledge(path, content)
            else:
                files.append_daily(path, entry)
        except OSError as exc:  # the entry is stored (LMDB is the truth); only its file is missing
            log.error("memory: cannot write %s: %s", path, exc)
        else:
            self.commit_files([relative], f"memory: {msg.memory_type} {entry['id']}", msg.source)
        self.schedule_save()
        self.stored += 1
        self.audit(msg.source, "memory_write", entry["id"])
        self.publish("memory_stored", memory_id=entry["id"], memory_type=msg.memory_type)
        return Remembered(entry["id"], relative)

    def commit_files(self, paths: list[str], message: str, author: str) -> None:
        """Ask the workspace service (if there is one) to commit what was written; it honours
        ``git.auto_commit``.  The answer comes back to ``on_answer``."""
        self.commits += 1
        self.ask_service("workspace", f"memory-commit-{self.commits}",
                         CommitPaths(tuple(paths), message, author))

    def on_answer(self, rid: str, reply: Any) -> None:
        if isinstance(reply, Failure):
            log.warning("memory: the workspace could not commit (%s): %s", rid, reply.error)

    def schedule_save(self) -> None:
        if not self.save_pending:
            self.save_pending = True
            self.after(SAVE_DELAY_SECS, SAVE)

    def on_wakeup(self, payload: Any) -> None:
        if payload == SAVE:
            self.save_pending = False
            self.bank.indexes.save_dirty()

    def on_SaveIndexes(self, msg: SaveIndexes) -> IndexesSaved:
        return IndexesSaved(tuple(self.bank.indexes.save_dirty()))

    def on_BackgroundStep(self, msg: BackgroundStep) -> None:
        self.background_pending = False
        self.bank.background_step()
        self.continue_background()

    # -- reads -------------------------------------------------------------------------------
    def _search_args(self, msg: SearchKeywords | SearchSemantic) -> tuple[str, str | None, int] | Failure:
        if not self.enabled():
            return Failure(503, "memory is disabled (memory.enabled is false)")
        try:
            return check_query(msg.query), check_filter_type(msg.memory_type), check_limit(msg.limit)
        except MemoryInputError as exc:
            return Failure(exc.status, exc.message)

    def _recalled(self, mode: str, memory_type: str | None, entries: list[dict[str, Any]],
                  engine: str | None) -> Recalled:
        self.recalled += 1
        self.publish("memory_recalled", mode=mode, memory_type=memory_type, count=len(entries),
                     memory_ids=[e["id"] for e in entries[:RECALLED_IDS_MAX]])
        return Recalled(tuple(entries), engine)

    def on_SearchKeywords(self, msg: SearchKeywords) -> Any:
        args = self._search_args(msg)
        if isinstance(args, Failure):
            return args
        query, memory_type, limit = args
        return self._recalled("keyword", memory_type,
                              self.bank.search_keywords(query, memory_type, limit), None)

    def on_SearchSemantic(self, msg: SearchSemantic) -> Any:
        args = self._search_args(msg)
        if isinstance(args, Failure):
            return args
        query, memory_type, limit = args
        return self._recalled("semantic", memory_type,
                              self.bank.search_semantic(query, memory_type, limit), "hnsw")

    # -- lifecycle ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        if not hasattr(self, "bank"):
            return {}
        return {**self.bank.stats(), "stored": self.stored, "recalled": self.recalled,
                "embedding": self.embedding}

    def on_stop(self) -> None:
        if hasattr(self, "bank"):
            self.bank.close()


__all__ = ["Memory"]
