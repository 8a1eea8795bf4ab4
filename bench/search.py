"""Retrieval benchmark of ssu-search on the synthetic source, where the truth is known.

    .venv/bin/python bench/search.py                          # 120-clip root, seed 0, BM25 + tiny embedder
    .venv/bin/python bench/search.py --root /tmp/r --queries 200

Queries are paraphrases of the test split's captions ("the red triangle in the top left is whistling" for the
caption "a red triangle in the top left is whistling", also reordered: "red triangle whistling in the top
left"), searched over the whole root (all splits). For each query the truth is one (clip, source) and the frames
where that source carries that caption. Printed: recall@1/5/10 of the right clip (clips ranked by their best
hit) and the mean frame IoU between the truth's frames and the frames of the best hit of the right clip and
source (0 when it is not in the top 10), and the R@1 that a perfect ranker would get where several clips carry
the very same caption (it must guess among them). The embedding ranker runs on a tiny random model, which proves the
plumbing only: its figures say nothing about a real sentence embedder.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from annotator.search.engine import Searcher, frame_iou
from annotator.search.segments import Corpus, Segment, load_segments
from schemas.root import DatasetRoot

CAPTION_RE = re.compile(r"^an? (?P<colour>\w+) (?P<shape>\w+) (?P<pos>(?:in|on|at) the [\w ]+?) is (?P<verb>\w+)$")
TEMPLATES = (
    "the {colour} {shape} {pos} is {verb}",
    "{colour} {shape} {verb} {pos}",
    "{verb} {shape}, {colour}, {pos}",
)


@dataclass(frozen=True)
class Query:
    text: str
    truth: Segment


def make_queries(segments: list[Segment], n: int, seed: int) -> list[Query]:
    """Paraphrased queries from the synthetic grammar, one per sampled segment."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(segments))[:n]
    out = []
    for k, i in enumerate(pick):
        m = CAPTION_RE.match(segments[i].text)
        if m is None:
            raise ValueError(f"not a synthetic caption: {segments[i].text!r}")
        out.append(Query(TEMPLATES[k % len(TEMPLATES)].format(**m.groupdict()), segments[i]))
    return out


def tie_bound(searcher: Searcher, queries: list[Query]) -> float:
    """R@1 of a perfect ranker that breaks ties at random: the synthetic grammar gives the same caption to
    objects of several clips (same colour, shape, place and sound), and no ranker can tell those apart."""
    clips_of: dict[str, set[str]] = {}
    for s in searcher.segments:
        clips_of.setdefault(s.text, set()).add(s.clip_id)
    return float(np.mean([1 / len(clips_of[q.truth.text]) for q in queries]))


def score(searcher: Searcher, queries: list[Query], depth: int = 10) -> dict[str, float]:
    rec = {1: 0, 5: 0, 10: 0}
    ious = []
    for q in queries:
        hits = searcher.search(q.text, top=max(200, depth)).hits
        clips: list[str] = []
        for h in hits:
            if h.segment.clip_id not in clips:
                clips.append(h.segment.clip_id)
        for k in rec:
            rec[k] += q.truth.clip_id in clips[:k]
        same = [h for h in hits[:depth] if (h.segment.clip_id, h.segment.source_id) ==
                (q.truth.clip_id, q.truth.source_id)]
        ious.append(frame_iou(same[0].segment.frames, q.truth.frames) if same else 0.0)
    n = len(queries)
    return {**{f"recall@{k}": v / n for k, v in rec.items()}, "frame_iou": float(np.mean(ious))}


def build_tiny_embedder(texts: list[str], out: Path, seed: int = 0) -> Path:
    """A random 1-layer BERT with a word-level tokenizer trained on `texts`, saved as a Hugging Face folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=64))
    fast.save_pretrained(out)
    model.save_pretrained(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, help="synthetic root (made with ssu-synth when absent)")
    ap.add_argument("--clips", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--no-embedder", action="store_true", help="BM25 only")
    a = ap.parse_args()
    import os

    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    os.environ.setdefault("SSU_CACHE_DIR", str(work / "cache"))
    root_path = a.root or work / "root"
    if not (root_path / "ssu.json").exists():
        from collection.synth import make_synthetic_root

        t0 = time.perf_counter()
        make_synthetic_root(root_path, clips=a.clips, seed=a.seed)
        print(f"made {root_path} ({a.clips} clips, seed {a.seed}) in {time.perf_counter() - t0:.0f} s")
    root = DatasetRoot.open(root_path)
    corpus = Corpus.of(root.path)
    test_segments, _ = load_segments(corpus, root.read_split("test"))
    queries = make_queries(test_segments, a.queries, a.seed)
    print(f"load average {os.getloadavg()[0]:.2f}; {len(queries)} queries from the test split's "
          f"{len(test_segments)} segments, searched over all {len(root.annotated_ids())} clips")
    rankers = [("bm25", None)]
    if not a.no_embedder:
        texts = [s.text for s in load_segments(corpus)[0]]
        rankers.append(("tiny random embedder (plumbing only)", str(build_tiny_embedder(texts, work / "emb"))))
    print(f"a perfect ranker that breaks ties at random: R@1 {tie_bound(Searcher(root), queries):.3f} "
          "(identical captions in several clips)")
    print(f"{'ranker':38} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'frame IoU':>10} {'ms/query':>9}")
    for name, emb in rankers:
        searcher = Searcher(root, embedder=emb)
        t0 = time.perf_counter()
        m = score(searcher, queries)
        ms = 1000 * (time.perf_counter() - t0) / len(queries)
        print(f"{name:38} {m['recall@1']:6.3f} {m['recall@5']:6.3f} {m['recall@10']:6.3f} {m['frame_iou']:10.3f} "
              f"{ms:9.1f}")


if __name__ == "__main__":
    main()
