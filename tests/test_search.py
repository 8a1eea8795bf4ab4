"""ssu-search: BM25 and embedding ranking over caption segments, the cache, previews, bad queries."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from annotator.search.engine import Searcher, frame_iou
from annotator.search.preview import RING, write_contact_sheet
from annotator.search.rankers import check_query
from annotator.search.segments import Corpus, load_segments, segments_of
from schemas import rle as rle_mod
from schemas.errors import UserError
from schemas.models import Annotation


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSU_CACHE_DIR", str(tmp_path / "cache"))


def _truth(root, clip_id: str, source_id: int, text: str) -> set[int]:
    caps = root.read_annotation(clip_id).source(source_id).frame_captions()
    return {f for f, c in enumerate(caps) if c == text}


def test_exact_caption_ranks_its_segment_first_with_all_its_frames(synth_root) -> None:
    cid = synth_root.annotated_ids()[2]
    src = next(s for s in synth_root.read_annotation(cid).sources if s.captions)
    text = src.captions[-1].text
    hits = Searcher(synth_root).search(text.replace("a ", "the ", 1), top=5).hits
    best = hits[0].segment
    assert (best.clip_id, best.source_id, best.text) == (cid, src.id, text)
    assert best.frames == _truth(synth_root, cid, src.id, text)  # every frame with that caption, nothing else
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))


def test_segments_join_touching_spans_and_keep_separate_ones(synth_root) -> None:
    for cid in synth_root.annotated_ids():
        ann = synth_root.read_annotation(cid)
        for seg in segments_of(ann):
            assert seg.frames == _truth(synth_root, cid, seg.source_id, seg.text)
            assert all(e1 < s2 for (_, e1), (s2, _) in zip(seg.spans, seg.spans[1:], strict=False))


def test_split_restricts_the_clips(synth_root) -> None:
    test_ids = set(synth_root.read_split("test"))
    segs = Searcher(synth_root, split="test").segments
    assert segs and {s.clip_id for s in segs} == test_ids


def test_cache_refreshes_changed_and_removed_annotations(synth_root, tmp_path: Path) -> None:
    preds = tmp_path / "preds" / "annotations"
    preds.mkdir(parents=True)
    ids = synth_root.annotated_ids()[:3]
    for cid in ids:
        shutil.copy(synth_root.annotation_path(cid), preds / f"{cid}.json")
    corpus = Corpus.of(synth_root.path, tmp_path / "preds")
    assert corpus.annotations == preds and corpus.predictions
    _, read = load_segments(corpus)
    assert read == 3
    _, read = load_segments(corpus)
    assert read == 0  # all from the cache
    ann = Annotation.model_validate_json((preds / f"{ids[0]}.json").read_bytes())
    ann.sources[0].set_frame_captions(["a purple zeppelin is droning"] * 300)
    (preds / f"{ids[0]}.json").write_text(ann.model_dump_json())
    (preds / f"{ids[1]}.json").unlink()
    segs, read = load_segments(corpus)
    assert read == 1
    assert {s.clip_id for s in segs} == {ids[0], ids[2]}
    hit = Searcher(synth_root, predictions=tmp_path / "preds").search("purple zeppelin").hits[0]
    assert hit.segment.clip_id == ids[0] and hit.segment.spans == ((0, 300),)


def test_bad_queries_and_folders_are_one_line_errors(synth_root, tmp_path: Path) -> None:
    for q in ("", "   ", "the is a", "a b c"):
        with pytest.raises(UserError, match="QUERY"):
            check_query(q)
    with pytest.raises(UserError, match="no such folder"):
        Searcher(synth_root, predictions=tmp_path / "nope")
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(UserError, match="is a file"):
        Searcher(synth_root, predictions=tmp_path / "f.json")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.json").write_text("{\"clip_id\": 3}")
    with pytest.raises(UserError, match="x.json"):
        Searcher(synth_root, predictions=bad)


def test_cli_table_json_and_usage_errors(synth_root, tmp_path: Path) -> None:
    cid = synth_root.annotated_ids()[0]
    text = next(s for s in synth_root.read_annotation(cid).sources if s.captions).captions[0].text
    run = [sys.executable, "-m", "annotator.search.cli", str(synth_root.path)]
    out = subprocess.run([*run, text, "--top", "3", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["ranker"] == "bm25" and len(doc["hits"]) == 3
    assert doc["hits"][0]["clip_id"] == cid and doc["hits"][0]["caption"] == text
    table = subprocess.run([*run, text, "--top", "2"], capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and cid in table.stdout
    for args in (["the of"], [text, "--top", "0"], [text, "--predictions", str(tmp_path / "none")]):
        bad = subprocess.run([*run, *args], capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) <= 4


def test_preview_outlines_the_region(synth_root, tmp_path: Path) -> None:
    searcher = Searcher(synth_root)
    cid = synth_root.annotated_ids()[1]
    text = next(s for s in synth_root.read_annotation(cid).sources if s.captions).captions[0].text
    hits = searcher.search(text, top=2).hits
    out = write_contact_sheet(hits, synth_root, searcher.corpus, tmp_path / "sheet.png")
    from PIL import Image

    sheet = np.asarray(Image.open(out).convert("RGB"))
    h = hits[0]
    rle = synth_root.read_annotation(cid).source(h.segment.source_id).masks[h.frame]
    mask = rle_mod.decode(rle.model_dump()).astype(bool)
    # the ring's white tone lies just inside the mask border: check the thumbnail there (320 px of 512)
    ys, xs = np.nonzero(mask)
    cx = int(xs.mean())
    top = ys[xs == cx].min() if (xs == cx).any() else ys.min()
    ty, tx = int((top + 1) * 320 / 512), int(cx * 320 / 512)
    assert (sheet[ty:ty + 3, tx] > 200).all(axis=-1).any(), "no white ring at the top of the region"
    assert RING[1] == (255, 255, 255)


def test_embedding_ranker_loads_a_local_model_and_refuses_missing_ones(synth_root, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.search import build_tiny_embedder

    segs, _ = load_segments(Corpus.of(synth_root.path))
    path = build_tiny_embedder([s.text for s in segs], tmp_path / "emb")
    s = Searcher(synth_root, embedder=str(path))
    text = segs[0].text
    hits = s.search(text, top=len(s.segments)).hits
    assert s.ranker.name.startswith("embedder:")
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)  # its own text: cosine 1
    assert all(-1.0001 <= h.score <= 1.0001 for h in hits)
    assert list(tmp_path.glob("cache/search/*.emb-*.npz"))  # vectors cached beside the segments
    with pytest.raises(UserError, match="--embedder .*no such model folder"):
        Searcher(synth_root, embedder=str(tmp_path / "missing"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(UserError, match="not in the local Hugging Face cache"):
        Searcher(synth_root, embedder="someone/no-such-embedder")


def test_retrieval_benchmark_on_the_synthetic_root(synth_root) -> None:
    from bench.search import make_queries, score

    segs, _ = load_segments(Corpus.of(synth_root.path))
    queries = make_queries(segs, 24, seed=0)
    assert {q.text.split()[0] for q in queries} >= {"the"}  # paraphrased, not the stored caption
    m = score(Searcher(synth_root), queries)
    assert m["recall@5"] >= 0.9 and m["frame_iou"] >= 0.8
    assert frame_iou({1, 2}, {2, 3}) == pytest.approx(1 / 3)
