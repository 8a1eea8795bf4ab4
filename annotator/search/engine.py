"""Query -> ranked hits. A hit is a segment (clip, source, caption text, frame spans) with its score; it also
names a representative frame (the middle of its longest span) whose mask the preview outlines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from annotator.search.rankers import BM25Ranker, EmbeddingRanker, Ranker, check_query
from annotator.search.segments import Corpus, Segment, load_segments
from schemas.root import DatasetRoot


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    segment: Segment

    @property
    def frame(self) -> int:
        s, e = max(self.segment.spans, key=lambda se: se[1] - se[0])
        return (s + e - 1) // 2

    def spans_text(self) -> str:
        return ", ".join(f"{s}-{e - 1}" for s, e in self.segment.spans)

    def to_json(self) -> dict:
        seg = self.segment
        return {"rank": self.rank, "score": round(self.score, 6), "clip_id": seg.clip_id, "source_id": seg.source_id,
                "category": seg.category, "caption": seg.text, "spans": [list(s) for s in seg.spans],
                "frames": len(seg.frames), "frame": self.frame}


@dataclass
class SearchResult:
    hits: list[Hit]
    searched: int        # segments searched
    clips: int           # clips they came from
    read: int            # annotation files read from disk (the rest came from the cache)
    ranker: str


class Searcher:
    """An index over one corpus (root or predictions), built once and queried many times (ssu-refine's queue)."""

    def __init__(self, root: DatasetRoot, predictions: Path | None = None, split: str | None = None,
                 embedder: str | None = None, offline: bool = False) -> None:
        self.corpus = Corpus.of(root.path, predictions)
        clip_ids = None if split is None else root.read_split(split)
        self.segments, self.read = load_segments(self.corpus, clip_ids)
        docs = [s.document() for s in self.segments]
        self.ranker: Ranker = (BM25Ranker(docs) if embedder is None
                               else EmbeddingRanker(embedder, docs, cache=self.corpus.cache_file(), offline=offline))

    def search(self, query: str, top: int = 20, min_score: float = 0.0) -> SearchResult:
        """Hits with a score above min_score, best first (ties: clip, source, first frame)."""
        q = check_query(query)
        scores = self.ranker.scores(q)
        order = sorted((i for i in range(len(scores)) if scores[i] > min_score),
                       key=lambda i: (-float(scores[i]), self.segments[i].clip_id, self.segments[i].source_id,
                                      self.segments[i].spans[0][0]))
        hits = [Hit(r + 1, float(scores[i]), self.segments[i]) for r, i in enumerate(order[:top])]
        return SearchResult(hits, len(self.segments), len({s.clip_id for s in self.segments}), self.read,
                            self.ranker.name)

    def clip_ids(self, query: str) -> list[str]:
        """Clips with any matching segment, best first: the refine queue's filter."""
        seen: dict[str, None] = {}
        for h in self.search(query, top=len(self.segments) or 1).hits:
            seen.setdefault(h.segment.clip_id, None)
        return list(seen)


def frame_iou(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0
