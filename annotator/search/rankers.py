"""Two rankers over segment documents, one interface: `scores(query) -> float per document`.

- BM25 (bm25s, Lucene's variant, English stop words): offline and model-free; the default.
- Embeddings: a sentence-embedding model (a Hugging Face folder or hub id, e.g. a MiniLM sentence transformer),
  mean-pooled over tokens and L2-normalised; a document's score is its cosine similarity with the query.
  Document vectors are cached beside the segment cache, keyed by the model and the text.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from schemas import atomic
from schemas.errors import UserError

# bm25s' default token pattern: the query check must see the words the index sees.
TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")


def query_terms(query: str) -> list[str]:
    """The words of a query that can match anything: lower-cased, 2+ characters, not stop words."""
    from bm25s.stopwords import STOPWORDS_EN

    return [t for t in TOKEN_RE.findall(query.lower()) if t not in STOPWORDS_EN]


def check_query(query: str) -> str:
    q = query.strip()
    if not q:
        raise UserError("QUERY is empty; describe the region, e.g. \"a red triangle at the top is whistling\"")
    if not query_terms(q):
        raise UserError(f"QUERY {query!r} has only stop words or one-letter words; name what sounds, its "
                        "colour, place or sound, e.g. \"violin on the left\"")
    return q


class Ranker(Protocol):
    name: str

    def scores(self, query: str) -> np.ndarray: ...


class BM25Ranker:
    name = "bm25"

    def __init__(self, documents: list[str]) -> None:
        import bm25s

        self._n = len(documents)
        self._bm25 = bm25s.BM25()
        if documents:
            tokens = bm25s.tokenize(documents, stopwords="en", show_progress=False)
            self._bm25.index(tokens, show_progress=False)
            self._vocab = tokens.vocab

    def scores(self, query: str) -> np.ndarray:
        if not self._n:
            return np.zeros(0, np.float32)
        known = [t for t in query_terms(query) if t in self._vocab]
        if not known:
            return np.zeros(self._n, np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)


def _is_local(source: str) -> bool:
    p = Path(source).expanduser()
    return p.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1


def _offline(flag: bool) -> bool:
    return flag or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def missing_embedder(source: str, why: str = "") -> UserError:
    if _is_local(source):
        return UserError(f"--embedder {source}: no such model folder{why}; download a sentence-embedding model "
                         "on a machine with network and pass --embedder /path/to/it")
    return UserError(f"--embedder {source}: weights are not in the local Hugging Face cache{why}; on a machine "
                     f"with network run `huggingface-cli download {source} --local-dir <dir>`, copy <dir> here and "
                     "pass --embedder <dir>")


class EmbeddingRanker:
    """Cosine similarity of mean-pooled transformer embeddings (the sentence-transformers recipe)."""

    def __init__(self, source: str, documents: list[str], cache: Path | None = None, offline: bool = False,
                 batch: int = 64) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.name = f"embedder:{source}"
        if _is_local(source) and not Path(source).expanduser().exists():
            raise missing_embedder(source)
        kw = {"local_files_only": _offline(offline) or _is_local(source)}
        try:
            self._tok = AutoTokenizer.from_pretrained(source, **kw)
            self._model = AutoModel.from_pretrained(source, **kw).eval()
        except OSError as e:
            raise missing_embedder(source, f" ({str(e).splitlines()[0][:120]})") from None
        self._torch = torch
        self._batch = batch
        self._docs = self._cached(documents, cache, source)

    def embed(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), self._batch):
                enc = self._tok(texts[i:i + self._batch], padding=True, truncation=True, return_tensors="pt")
                hidden = self._model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                v = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(v, dim=-1).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    def _cached(self, documents: list[str], cache: Path | None, source: str) -> np.ndarray:
        """Vectors of the documents; unique texts are embedded once and kept in an .npz beside the segments."""
        unique = sorted(set(documents))
        known: dict[str, np.ndarray] = {}
        path = None
        if cache is not None:
            key = hashlib.sha256(str(Path(source).expanduser().resolve() if _is_local(source) else source)
                                 .encode()).hexdigest()[:12]
            path = cache.with_name(f"{cache.stem}.emb-{key}.npz")
            try:
                with np.load(path) as z:
                    known = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))
            except (OSError, ValueError, KeyError):
                known = {}
        todo = [t for t in unique if t not in known]
        if todo:
            known.update(zip(todo, self.embed(todo), strict=True))
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with atomic.atomic_path(path, suffix=".npz") as tmp:
                        np.savez(tmp, texts=np.array(list(known)), vectors=np.stack(list(known.values())))
                except OSError:
                    pass
        if not documents:
            return np.zeros((0, 1), np.float32)
        return np.stack([known[d] for d in documents])

    def scores(self, query: str) -> np.ndarray:
        if not len(self._docs):
            return np.zeros(0, np.float32)
        return (self._docs @ self.embed([query])[0]).astype(np.float32)
