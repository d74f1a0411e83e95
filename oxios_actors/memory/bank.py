"""MemoryBank: the memory store itself -- LMDB entries and vectors, the HNSW indexes, the
embedder, keyword and semantic search, re-embedding after a model change.  Plain Python, so the
actor (``service.Memory``) stays thin and the benchmark runs the very same code.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import numpy as np

from ..store import key_seq, open_writer, pack, seq_key, state_dir, unpack
from .embedding import Embedder
from .index import SYNC_REBUILD_MAX, Indexes, OpenReport
from .records import (
    DOMAIN,
    ENTRIES_DB,
    MEMORY_TYPES,
    META_DB,
    VECTORS_DB,
    keyword_hits,
    keywords,
    public,
    rank_key,
)

REEMBED_BATCH = 64
REBUILD_BATCH = 2048


class MemoryBank:
    def __init__(self, home: str | Path, embedder: Embedder, dtype: str = "f32",
                 sync_rebuild_max: int = SYNC_REBUILD_MAX) -> None:
        self.env = open_writer(home, DOMAIN)
        self.entries_db = self.env.open_db(ENTRIES_DB.encode())
        self.vectors_db = self.env.open_db(VECTORS_DB.encode())
        self.meta_db = self.env.open_db(META_DB.encode())
        self.embedder = embedder
        self.indexes = Indexes(state_dir(home, DOMAIN) / "hnsw", self.env, self.vectors_db,
                               self.meta_db, embedder.dim, dtype, sync_rebuild_max)
        with self.env.begin() as txn:
            cursor = txn.cursor(db=self.vectors_db)
            last = key_seq(cursor.key()) if cursor.last() else 0
            self.next_key = max(last + 1, self._meta(txn, "next_key") or 1)
            stored_model = self._meta(txn, "model")
            self.reembedding = bool(self._meta(txn, "reembed"))
        self.reembed_cursor = 0
        self.reembedded = 0
        if stored_model != embedder.model_id:
            self._start_reembed(first=stored_model is None and last == 0)
        self.report = self.indexes.open(embedder.model_id,
                                        "re-embedding in progress" if self.reembedding else None)

    # -- meta --------------------------------------------------------------------------------
    def _meta(self, txn: Any, name: str) -> Any:
        raw = txn.get(name.encode(), db=self.meta_db)
        return None if raw is None else unpack(raw)

    def _start_reembed(self, first: bool = False) -> None:
        with self.env.begin(write=True, db=self.meta_db) as txn:
            txn.put(b"model", pack(self.embedder.model_id))
            if not first:
                txn.put(b"reembed", pack(True))
        self.reembedding = not first
        self.reembed_cursor = 0

    # -- writing -----------------------------------------------------------------------------
    def remember(self, entry_id: str, content: str, memory_type: str, tags: tuple[str, ...],
                 importance: float, source: str, created_at: str, file: str = "") -> dict[str, Any]:
        """Embed and store one entry (committed, durable) and add it to its index."""
        vector = self.embedder.embed([content])[0]
        key = self.next_key
        entry: dict[str, Any] = {"id": entry_id, "key": key, "type": memory_type, "content": content,
                 "tags": list(tags), "importance": importance, "created_at": created_at,
                 "source": source, "file": file}
        with self.env.begin(write=True) as txn:
            txn.put(entry_id.encode(), pack(entry), db=self.entries_db)
            txn.put(seq_key(key), pack({"id": entry_id, "type": memory_type,
                                        "model": self.embedder.model_id,
                                        "vec": vector.astype(np.float32).tobytes()}),
                    db=self.vectors_db, append=True)
            txn.put(b"next_key", pack(key + 1), db=self.meta_db)
        self.next_key = key + 1
        self.indexes.add(memory_type, np.array([key], dtype=np.uint64), vector[None, :])
        return entry

    # -- searching ---------------------------------------------------------------------------
    def search_keywords(self, query: str, memory_type: str | None, limit: int) -> list[dict[str, Any]]:
        words = keywords(query)
        if not words:
            return []
        scored: list[tuple[tuple[float, int, str], dict[str, Any]]] = []
        with self.env.begin(db=self.entries_db) as txn:
            for _, raw in txn.cursor():
                entry = unpack(raw)
                if memory_type is not None and entry["type"] != memory_type:
                    continue
                hits = keyword_hits(entry, words)
                if hits:
                    scored.append((rank_key(entry, hits), entry))
        best = heapq.nsmallest(limit, scored, key=lambda pair: pair[0])
        return [public(entry) for _, entry in best]

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.embed([query])[0]

    def search_vector(self, vector: np.ndarray, memory_type: str | None,
                      limit: int) -> list[dict[str, Any]]:
        """Nearest entries: 2 x limit candidates from each index searched, merged, best ``limit``."""
        types = [memory_type] if memory_type is not None else list(MEMORY_TYPES)
        found = self.indexes.search(vector, types, 2 * limit)
        out: list[dict[str, Any]] = []
        with self.env.begin() as txn:
            for key, distance in found:
                raw = txn.get(seq_key(key), db=self.vectors_db)
                entry_raw = None if raw is None else txn.get(unpack(raw)["id"].encode(),
                                                             db=self.entries_db)
                if entry_raw is None:
                    continue
                distance = min(max(distance, 0.0), 2.0)
                item = public(unpack(entry_raw))
                item["similarity"] = round(1.0 - distance, 6)
                item["distance"] = round(distance, 6)
                out.append(item)
                if len(out) >= limit:
                    break
        return out

    def search_semantic(self, query: str, memory_type: str | None, limit: int) -> list[dict[str, Any]]:
        return self.search_vector(self.embed_query(query), memory_type, limit)

    # -- model and dtype changes -------------------------------------------------------------
    def switch_model(self, embedder: Embedder) -> None:
        """Use another embedding model: indexes restart from the vectors it already made and
        every other vector is re-embedded (``reembed_step``) -- searches meanwhile see the
        entries done so far."""
        if embedder.model_id == self.embedder.model_id:
            return
        self.embedder = embedder
        self._start_reembed()
        self.report = self.indexes.open(embedder.model_id, "embedding model changed")

    def switch_dtype(self, dtype: str) -> None:
        if dtype != self.indexes.dtype:
            self.indexes.dtype = dtype
            self.report = self.indexes.open(self.embedder.model_id, "index dtype changed")

    def background_step(self) -> bool:
        """One step of pending background work -- an index rebuild, then re-embedding; True
        while some is left."""
        if self.indexes.rebuilding:
            return self.indexes.rebuild_step(REBUILD_BATCH) or self.reembedding
        return self.reembed_step()

    def reembed_step(self, batch: int = REEMBED_BATCH) -> bool:
        """Re-embed up to ``batch`` stale vectors; False once none is left (the indexes are then
        saved and the pass is recorded as finished)."""
        if not self.reembedding:
            return False
        model = self.embedder.model_id
        stale: list[tuple[int, dict[str, Any]]] = []
        with self.env.begin() as txn:
            cursor = txn.cursor(db=self.vectors_db)
            ok = cursor.set_range(seq_key(self.reembed_cursor + 1))
            while ok and len(stale) < batch:
                key, record = key_seq(cursor.key()), unpack(cursor.value())
                self.reembed_cursor = key
                if record["model"] != model:
                    raw = txn.get(record["id"].encode(), db=self.entries_db)
                    if raw is not None:
                        stale.append((key, unpack(raw)))
                ok = cursor.next()
        if stale:
            vectors = self.embedder.embed([entry["content"] for _, entry in stale])
            with self.env.begin(write=True, db=self.vectors_db) as txn:
                for (key, entry), vec in zip(stale, vectors, strict=True):
                    txn.put(seq_key(key), pack({"id": entry["id"], "type": entry["type"],
                                                "model": model, "vec": vec.tobytes()}))
            for (key, entry), vec in zip(stale, vectors, strict=True):
                self.indexes.add(entry["type"], np.array([key], dtype=np.uint64), vec[None, :])
            self.reembedded += len(stale)
        if len(stale) == batch:
            return True
        self.indexes.save_dirty()
        with self.env.begin(write=True, db=self.meta_db) as txn:
            txn.delete(b"reembed")
        self.reembedding = False
        return False

    # -- state -------------------------------------------------------------------------------
    def counts(self) -> tuple[int, int]:
        with self.env.begin() as txn:
            return (int(txn.stat(self.entries_db)["entries"]), int(txn.stat(self.vectors_db)["entries"]))

    def stats(self) -> dict[str, Any]:
        entries, vectors = self.counts()
        report: OpenReport = self.report
        return {"entries": entries, "vectors": vectors, "model": self.embedder.model_id,
                "dtype": self.indexes.dtype, "index": self.indexes.sizes(),
                "index_memory_bytes": self.indexes.memory_bytes(),
                "reembedding": self.reembedding, "reembedded": self.reembedded,
                "rebuilding": sorted(self.indexes.rebuilding),
                "opened": {"loaded": report.loaded, "rebuilt": report.rebuilt,
                           "caught_up": report.caught_up},
                "index_saves": self.indexes.saves}

    def close(self) -> None:
        self.indexes.save_dirty()
        self.env.close()
