"""ssu-bench loop with a tiny budget: two rounds of train -> draft -> score -> refine on the shared synthetic
root, the figures' rules on hand-made annotations, and the AUROC on a known ranking."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SIZE
from schemas.models import RLE, Annotation, ClipStatus, SoundSource

TINY = ["data.image_size=32", "data.frames=2", "data.workers=0", "model.hidden=32", "model.heads=2",
        "model.fusion_blocks=1", "model.audio_queries=4", "model.mask_layers=1", "model.caption_layers=1",
        "model.max_caption_tokens=12", "model.vocab_size=100", "model.visual.tiny_dims=[8,16,32,64]",
        "model.audio.tiny_channels=[4,8]", "model.clip.tiny_hidden=16", "model.clip.tiny_image_size=16",
        "model.instances=true", "train.batch_size=2", "train.lr=0.003", "train.schedule=constant",
        "train.warmup_steps=0"]


def test_auroc_is_the_mann_whitney_statistic():
    from bench.loop import auroc

    # positives at 0.35 and 0.8, negatives at 0.1 and 0.4: 3 of the 4 (pos, neg) pairs are ordered right
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auroc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)  # a tie counts half
    assert auroc(np.array([0.1, 0.2]), np.array([1, 1])) is None  # one class only: undefined


def _square(x: int, y: int, w: int) -> RLE:
    m = np.zeros((SIZE, SIZE), bool)
    m[y:y + w, x:x + w] = True
    return RLE(**rle_mod.encode(m))


def _ann(masks: list[list[RLE | None]], scores: list[list[float | None]] | None = None) -> Annotation:
    sources = []
    for i, ms in enumerate(masks):
        src = SoundSource(id=i, category="circle", masks=ms)
        if scores is not None:
            src.scores = scores[i]
        sources.append(src)
    return Annotation(clip_id="c", sources=sources)


def test_source_frame_rules():
    """Frame 0: the truth's source drawn exactly (conf 0.9) plus a draft of nothing (conf 0.2): slots 1.0 and 0.
    Frame 1: the truth's source half covered (IoU 0.5) at conf 0.7. Frame 2: the truth's source missed (slot 0,
    no draft instance). Elsewhere nothing either side."""
    from bench.loop import source_frame_ious

    a, far = _square(0, 0, 100), _square(300, 300, 40)
    t = [None] * NUM_FRAMES
    t[0], t[1], t[2] = a, _square(0, 0, 100), a
    d1: list = [None] * NUM_FRAMES
    d2: list = [None] * NUM_FRAMES
    s1: list = [None] * NUM_FRAMES
    s2: list = [None] * NUM_FRAMES
    d1[0], s1[0], d2[0], s2[0] = a, 0.9, far, 0.2
    big = np.zeros((SIZE, SIZE), bool)
    big[0:100, 0:50] = True  # half of the 100x100 square: IoU 0.5
    d1[1], s1[1] = RLE(**rle_mod.encode(big)), 0.7
    slots, drafts = source_frame_ious(_ann([t]), _ann([d1, d2], [s1, s2]))
    assert slots == pytest.approx([1.0, 0.0, 0.5, 0.0])
    assert drafts == [(0.9, pytest.approx(1.0)), (0.2, 0.0), (0.7, pytest.approx(0.5))]


@pytest.mark.slow  # trains two rounds
@pytest.mark.usefixtures("one_torch_thread")
def test_loop_cli_tiny_budget(synth_root, tmp_path: Path):
    from bench.cli import app
    from schemas.root import DatasetRoot
    from ssuformer.metrics.instances import InstanceMeter

    out = tmp_path / "loop"
    args = ["loop", "--out", str(out), "--data", str(synth_root.path), "--config", "tiny", "--initial", "2",
            "--batch", "2", "--rounds", "2", "--steps", "3", "--mask-stride", "30", "--no-progress"]
    for s in TINY:
        args += ["--set", s]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads((out / "loop.json").read_text())
    rows = data["rounds"]
    assert [r["refined"] for r in rows] == [2, 4] and all(len(r["drafted"]) == 2 for r in rows)
    order = sorted(synth_root.annotated_ids())
    assert rows[0]["drafted"] == order[2:4] and rows[1]["drafted"] == order[4:6]
    assert (out / "loop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 1 | 4 | 2 |" in (out / "loop.md").read_text()
    work = DatasetRoot.open(out / "work")
    for r in rows:
        ckpt = Path(r["checkpoint"])
        sha = hashlib.sha256(ckpt.read_bytes()).hexdigest()
        meter = InstanceMeter(captions=False)
        for cid in r["drafted"]:
            draft = Annotation.model_validate_json((out / "rounds" / str(r["round"]) / "drafts" / f"{cid}.json")
                                                   .read_text())
            assert draft.agents["ssuformer"].params["checkpoint_sha256"] == sha  # drafted by that round's model
            meter.update(synth_root.read_annotation(cid), draft)
            # refined afterwards: the truth, accepted
            assert work.read_annotation(cid).sources == synth_root.read_annotation(cid).sources
            assert work.catalog.get(cid).status is ClipStatus.accepted
        scores = meter.compute()
        assert r["miou"] == pytest.approx(scores["miou"])  # the figure is the meter's on the kept drafts
        assert r["touch"] is not None and 0 <= r["touch"] <= 1 and r["source_frames"] > 0
        assert r["auroc"] is None or 0 <= r["auroc"] <= 1
    assert work.read_split("train") == order
    from schemas.validate import validate_root

    report = validate_root(work.path, media=False)
    assert report.ok, [str(p) for p in report.problems]
    work.close()
