"""Memory benchmark: semantic search over 10k (and, unless ``--quick``, 100k) entries.

``python -m benchmarks.memory_bench [--quick]`` prints a table and writes
``benchmarks/results/memory-<UTC timestamp>.json``; ``run(quick)`` returns the same dict.

It drives the Memory actor's own code (``MemoryBank``: LMDB, the per-type usearch HNSW
indexes, the embedder) in this process, without HTTP.  A synthetic corpus of short English
sentences is embedded with the real model (all-MiniLM-L6-v2 int8 ONNX, one CPU thread per
process, two processes for the corpus) and written to LMDB in one transaction; opening the bank
then rebuilds the index from LMDB (timed).  Per size it measures:

* index alone: p50/p99 of one HNSW query (2 x limit candidates, limit 10), query vectors given;
* end to end: p50/p99 of ``search_semantic`` -- embed the query text, search, fetch the entries;
* recall@10 of what the API returns against exact brute-force (numpy) cosine search over the
  same vectors, for queries that are not in the corpus;
* embeddings/s (one text per call as a POST does, and batched), index memory, RSS, file sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from oxios_actors.memory.bank import MemoryBank
from oxios_actors.memory.embedding import Embedder, MiniLMEmbedder
from oxios_actors.memory.records import DOMAIN, ENTRIES_DB, META_DB, VECTORS_DB
from oxios_actors.store import open_writer, pack, seq_key, state_dir

RESULTS = Path(__file__).resolve().parent / "results"
SIZES_QUICK = (10_000,)
SIZES_FULL = (10_000, 100_000)
QUERIES = 200
LIMIT = 10
TARGET_RECALL = 0.95
TARGET_P99_MS = 30.0
NOW = "2026-05-17T10:30:00+00:00"

SUBJECTS = ["the scheduler", "an agent", "the memory index", "our build", "the user", "a cron job",
            "the audit ledger", "the web edge", "the reviewer", "the deploy script", "my laptop",
            "the database", "a junior developer", "the team lead", "the test suite", "the cache"]
VERBS = ["restarts", "stores", "evaluates", "compresses", "ignores", "schedules", "approves",
         "rejects", "summarises", "forgets", "migrates", "benchmarks", "documents", "breaks",
         "rebuilds", "monitors", "refactors", "translates", "archives", "deletes"]
PREPS = ["after", "before", "during", "because of", "without", "despite", "next to", "instead of"]
TAILS = ["", "again", "on Tuesdays", "with high priority", "in the workspace", "for the release",
         "at midnight", "when the budget runs out", "twice a day", "by accident"]


def word_list(limit: int = 6000) -> list[str]:
    """Plain lowercase words from the model's own vocabulary (no ## pieces, no numbers)."""
    import gzip

    from oxios_actors.memory.embedding import VOCAB_FILE

    with gzip.open(VOCAB_FILE, "rt", encoding="utf-8") as f:
        words = [w for w in f.read().split("\n") if w.isalpha() and w.isascii() and len(w) >= 4]
    return words[:limit]


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = word_list()
    out = []
    for _ in range(n):
        parts = [rng.choice(SUBJECTS), rng.choice(VERBS), "the", rng.choice(words), rng.choice(words),
                 rng.choice(PREPS), "the", rng.choice(words), rng.choice(TAILS)]
        out.append(" ".join(p for p in parts if p).capitalize() + ".")
    return out


# -- embedding in worker processes ---------------------------------------------------------------

_WORKER: MiniLMEmbedder | None = None


def _embed_chunk(texts: list[str]) -> np.ndarray:
    global _WORKER
    if _WORKER is None:
        _WORKER = MiniLMEmbedder(threads=1)
    return _WORKER.embed(texts)


def embed_corpus(texts: list[str], processes: int, model: str) -> tuple[np.ndarray, float | None]:
    """The corpus vectors and the seconds they took (None when they came from the cache in the
    temp folder: embedding 100k texts takes minutes, and they are always the same)."""
    digest = hashlib.sha256(("\n".join(texts) + model).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "oxios-memory-bench" / f"corpus-{len(texts)}-{digest}.npy"
    if cache.exists():
        return np.load(cache), None
    chunks = [texts[i:i + 2000] for i in range(0, len(texts), 2000)]
    started = time.perf_counter()
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_embed_chunk, chunks))
    took = time.perf_counter() - started
    vectors = np.concatenate(parts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors, took


def embedding_rates(embedder: Embedder, texts: list[str]) -> dict[str, float]:
    embedder.embed(texts[:8])  # warm up
    started = time.perf_counter()
    for text in texts:
        embedder.embed([text])
    single = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    embedder.embed(texts)
    batched = len(texts) / (time.perf_counter() - started)
    return {"single_per_s": round(single, 1), "batched_per_s": round(batched, 1)}


# -- one size ----------------------------------------------------------------------------------

def write_store(home: Path, texts: list[str], vectors: np.ndarray, model: str) -> None:
    env = open_writer(home, DOMAIN)
    entries, vecs, meta = (env.open_db(n.encode()) for n in (ENTRIES_DB, VECTORS_DB, META_DB))
    with env.begin(write=True) as txn:
        for key, (text, vec) in enumerate(zip(texts, vectors, strict=True), start=1):
            eid = str(uuid.UUID(int=key))
            txn.put(eid.encode(), pack({"id": eid, "key": key, "type": "fact", "content": text,
                                        "tags": [], "importance": 0.5, "created_at": NOW,
                                        "source": "bench", "file": ""}), db=entries)
            txn.put(seq_key(key), pack({"id": eid, "type": "fact", "model": model,
                                        "vec": vec.astype(np.float32).tobytes()}), db=vecs, append=True)
        txn.put(b"model", pack(model), db=meta)
        txn.put(b"next_key", pack(len(texts) + 1), db=meta)
    env.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def bench_size(n: int, texts: list[str], vectors: np.ndarray, queries: list[str], qvecs: np.ndarray,
               embedder: Embedder, dtype: str) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"oxios-membench-{n}-"))
    try:
        write_store(home, texts[:n], vectors[:n], embedder.model_id)
        rss0 = psutil.Process().memory_info().rss
        started = time.perf_counter()
        bank = MemoryBank(home, embedder, dtype, sync_rebuild_max=n)  # timed: the whole rebuild
        rebuild_s = time.perf_counter() - started
        rss1 = psutil.Process().memory_info().rss
        # exact neighbours: brute force over the same (normalised) vectors
        exact = np.argsort(-(qvecs @ vectors[:n].T), axis=1)[:, :LIMIT] + 1  # keys start at 1
        index_lat, hits_api, hits_raw = [], 0, 0
        for qv, truth in zip(qvecs, exact, strict=True):
            t = time.perf_counter()
            found = bank.indexes.search(qv, ["fact"], 2 * LIMIT)
            index_lat.append(time.perf_counter() - t)
            hits_api += len({k for k, _ in found[:LIMIT]} & set(truth.tolist()))
            raw = bank.indexes.by_type["fact"].index.search(qv, LIMIT)
            hits_raw += len({int(k) for k in raw.keys} & set(truth.tolist()))
        e2e_lat = []
        for q in queries:
            t = time.perf_counter()
            bank.search_semantic(q, None, LIMIT)
            e2e_lat.append(time.perf_counter() - t)
        index_bytes = bank.indexes.memory_bytes()
        bank.close()
        files = state_dir(home, DOMAIN)
        return {
            "entries": n, "dtype": dtype, "rebuild_from_lmdb_s": round(rebuild_s, 2),
            "index_alone": percentiles(index_lat), "end_to_end": percentiles(e2e_lat),
            "recall_at_10": round(hits_api / (LIMIT * len(qvecs)), 4),
            "recall_at_10_k10": round(hits_raw / (LIMIT * len(qvecs)), 4),
            "index_memory_mb": round(index_bytes / 2**20, 1),
            "rss_growth_mb": round((rss1 - rss0) / 2**20, 1),
            "index_file_mb": round((files / "hnsw" / "fact.usearch").stat().st_size / 2**20, 1),
            "lmdb_mb": round((files / "data.mdb").stat().st_size / 2**20, 1),
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(quick: bool) -> dict[str, Any]:
    sizes = SIZES_QUICK if quick else SIZES_FULL
    n_max = max(sizes)
    load_before = os.getloadavg()[0]
    texts = sentences(n_max, seed=1)
    queries = sentences(QUERIES, seed=2)
    embedder = MiniLMEmbedder(threads=1)
    rates = embedding_rates(embedder, queries)
    processes = min(2, os.cpu_count() or 1)
    vectors, corpus_s = embed_corpus(texts, processes, embedder.model_id)
    qvecs = embedder.embed(queries)
    results = []
    for n in sizes:
        for dtype in ("f32", "f16"):
            results.append(bench_size(n, texts, vectors, queries, qvecs, embedder, dtype))
    top = [r for r in results if r["entries"] == n_max and r["dtype"] == "f32"][0]
    return {
        "benchmark": "memory", "quick": quick, "model": embedder.model_id,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "queries": QUERIES, "limit": LIMIT,
        # other work on the machine shows up in the p99s (the embedding above all): say how much
        "loadavg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "embeddings": {**rates, "corpus_processes": processes,
                       "corpus_per_s": None if corpus_s is None else round(n_max / corpus_s, 1)},
        "sizes": results,
        "targets": {"recall_at_10": TARGET_RECALL, "p99_end_to_end_ms": TARGET_P99_MS,
                    "at_entries": n_max,
                    "recall_met": top["recall_at_10"] >= TARGET_RECALL,
                    "p99_met": top["end_to_end"]["p99_ms"] < TARGET_P99_MS},
    }


def table(result: dict[str, Any]) -> str:
    e = result["embeddings"]
    load = result["loadavg_1m"]
    lines = [f"memory benchmark ({result['model']}, {result['cpus']} CPUs, {result['queries']} queries, "
             f"limit {result['limit']}, load average {load['before']} -> {load['after']})",
             f"embeddings/s: {e['single_per_s']} one per call, {e['batched_per_s']} batched, "
             f"{e['corpus_per_s'] or 'cached'} corpus ({e['corpus_processes']} processes)",
             f"{'entries':>8} {'dtype':>5} {'index p50/p99 ms':>17} {'e2e p50/p99 ms':>16} "
             f"{'recall@10':>9} {'rebuild s':>9} {'index MB':>8} {'file MB':>7}"]
    for r in result["sizes"]:
        ia, ee = r["index_alone"], r["end_to_end"]
        lines.append(f"{r['entries']:>8} {r['dtype']:>5} {ia['p50_ms']:>8.2f}/{ia['p99_ms']:<8.2f} "
                     f"{ee['p50_ms']:>7.2f}/{ee['p99_ms']:<8.2f} {r['recall_at_10']:>9.4f} "
                     f"{r['rebuild_from_lmdb_s']:>9.1f} {r['index_memory_mb']:>8.1f} {r['index_file_mb']:>7.1f}")
    t = result["targets"]
    lines.append(f"targets at {t['at_entries']}: recall@10 >= {t['recall_at_10']}: "
                 f"{'met' if t['recall_met'] else 'NOT met'}; p99 end to end < {t['p99_end_to_end_ms']} ms: "
                 f"{'met' if t['p99_met'] else 'NOT met'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.memory_bench")
    ap.add_argument("--quick", action="store_true", help="10k entries only")
    args = ap.parse_args(argv)
    result = run(args.quick)
    print(table(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"memory-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
