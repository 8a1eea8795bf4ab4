"""The whole chain on real VGG-Sound clips, as a user runs it: ssu-collect -> ssu-annotate (tiny models with
forced outputs, see tests/tiny_models.py) -> refine (the controller: an eraser stroke and a caption edit, then
refiner accept and reviewer accept) -> ssu-export splits + hf -> ssu-train (tiny, 2 steps) -> ssu-eval
--checkpoint. Every hand-over is checked for what the next stage reads, not only for exit codes.

The tiny models' masks and captions are noise; only the refined mask and caption mean anything, and the test
follows them into the export and the training run. The CLIs run in-process through their `main` (what the
console scripts call), so torch & co. are imported once.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tiny_models import annotate_flags, build_forced_models

from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES
from schemas.models import ClipStatus
from schemas.root import DatasetRoot
from schemas.validate import validate_root

KEYWORDS = ("playing piano", "orchestra", "cow lowing")  # one real clip each in ../shared/data/media/vggsound
FRAME = 37            # a frame the tiny SSUFormer samples (data.frames 4: 37, 112, 187, 262)
ERASE = (256, 256, 64)  # x, y, radius of the refiner's eraser stroke
CAPTION = "a jazz xylophonist plays"  # 'z', 'x' and 'j' are in no word the tiny captioner knows

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::FutureWarning")]


def cli(main: Callable[[], None], prog: str, args: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> str:
    """Run a console script's main in-process like `prog args...`; return its stdout (exit 0 required)."""
    monkeypatch.setattr(sys, "argv", [prog, *args])
    with pytest.raises(SystemExit) as e, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main()
    out = capsys.readouterr()
    assert e.value.code in (0, None), f"{prog} {' '.join(args)} exited {e.value.code}:\n{out.out}\n{out.err}"
    return out.out


def mask(ann, frame: int) -> np.ndarray:
    return rle_mod.decode(ann.semantic_rle(frame)).astype(bool)


def test_collect_annotate_refine_export_train_eval(shared_data: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    from annotator.draft.cli import main as annotate_main
    from annotator.export.cli import main as export_main
    from collection.cli import main as collect_main
    from ssuformer.eval_cli import main as eval_main
    from ssuformer.train_cli import main as train_main

    root_path, run = tmp_path / "root", tmp_path / "run"
    models = build_forced_models(tmp_path / "models")

    # -- collect: the three clips from the official VGG-Sound test list and their local copies ---------------
    cli(collect_main, "ssu-collect",
        [str(root_path), "--source", "vggsound", "--index", str(shared_data / "index/vggsound/test.csv"),
         "--media-dir", str(shared_data / "media/vggsound"), "--keywords", ",".join(KEYWORDS),
         "--per-keyword", "1", "--available-only", "--seed", "0", "--quiet", "--strict"], monkeypatch, capsys)
    root = DatasetRoot.open(root_path)
    rows = root.catalog.rows()
    assert sorted(r.category for r in rows) == sorted(KEYWORDS)
    assert all(r.status is ClipStatus.collected for r in rows)
    ids = sorted(r.clip_id for r in rows)
    for c in ids:  # what ssu-annotate reads
        assert root.clip_path(c).is_file() and root.audio_path(c).is_file()

    # -- annotate: the tiny audio tagger hears nothing (CLAP noise ~1/3 < 0.5), so the gate is off --------------
    out = cli(annotate_main, "ssu-annotate",
              [str(root_path), *annotate_flags(models), "--no-gate", "--max-instances", "1"], monkeypatch, capsys)
    assert "annotated 3," in out and "failed 0" in out, out
    auto = {}
    for c in ids:
        ann = root.read_annotation(c)
        assert ann.status is ClipStatus.auto and root.catalog.get(c).status is ClipStatus.auto
        assert ann.sources and ann.sources[0].category == root.catalog.get(c).category
        masks = [mask(ann, f) for f in range(0, NUM_FRAMES, 15)]
        assert all(m.any() for m in masks), f"{c}: empty auto masks"
        assert {sp.by for sp in ann.sources[0].mask_by} == {"sam", "sam2"}  # SAM's seed, SAM2 everywhere else
        caps = ann.frame_captions()
        assert all(caps), f"{c}: frames without a caption"
        assert ann.sources[0].captions[0].by == "captioner"
        auto[c] = ann
    report = validate_root(root_path, media=False)
    assert report.ok, report.problems

    # -- refine: an eraser stroke and a caption edit per clip, submitted by a refiner, accepted by a reviewer ---
    from annotator.refine.auth import Role, UserStore, add_user
    from annotator.refine.controller import Controller
    from annotator.refine.tools import stroke_shape

    users = tmp_path / "users.toml"
    add_user(users, "alice", "alice-pw", Role.refiner)
    add_user(users, "rita", "rita-pw", Role.reviewer)
    ctl = Controller(root_path, UserStore(users))  # no models: brush, eraser and text need none
    ctl.open_session("s-alice", "alice")
    ctl.open_session("s-rita", "rita")
    for c in ids:
        v = ctl.open_clip("s-alice", c)
        assert not v.read_only and v.status is ClipStatus.in_progress
        source = v.sources[0].id
        v = ctl.stroke("s-alice", v.revision, FRAME, source, [list(ERASE[:2])], ERASE[2], erase=True)
        rows = [[a, b, CAPTION if int(a) <= FRAME < int(b) else text] for a, b, text in v.spans]
        v = ctl.set_spans("s-alice", v.revision, source, rows)
        v = ctl.decide("s-alice", v.revision, "accept")
        assert v.status is ClipStatus.needs_review
        v = ctl.open_clip("s-rita", c)
        assert not v.read_only
        v = ctl.decide("s-rita", v.revision, "accept")
        assert v.status is ClipStatus.accepted
    refined = {}
    disc = stroke_shape([list(ERASE[:2])], ERASE[2])
    for c in ids:
        ann = root.read_annotation(c)
        assert ann.status is ClipStatus.accepted and root.catalog.get(c).status is ClipStatus.accepted
        m = mask(ann, FRAME)
        assert np.array_equal(m, mask(auto[c], FRAME) & ~disc) and m.any() and not m[disc].any()
        assert ann.frame_captions()[FRAME] == CAPTION
        assert "person:alice" in ann.agents
        refined[c] = ann
    report = validate_root(root_path, media=False)
    assert report.ok, report.problems

    # -- export: splits of the accepted clips, then the Hugging Face layout ----------------------------------
    out = cli(export_main, "ssu-export", ["splits", str(root_path), "--seed", "0"], monkeypatch, capsys)
    splits = root.splits()
    placed = [c for s in ("train", "val", "test") for c in splits.get(s, [])]
    assert sorted(placed) == ids, (splits, out)  # every accepted clip in exactly one split
    train = splits["train"]
    assert train, out  # ssu-train needs a train split with captions
    # With one clip per category a 75/10/15 split may leave val and test empty: then ssu-eval scores train.
    eval_split = "test" if splits.get("test") else "train"
    cli(export_main, "ssu-export", ["hf", str(root_path), "--out", str(tmp_path / "hf")], monkeypatch, capsys)
    import pyarrow.parquet as pq

    shards = sorted((tmp_path / "hf" / "data").glob("*.parquet"))
    split_of = {c: s.value for s, cs in splits.items() for c in cs}
    exported_ids = []
    for shard in shards:  # <split>-NNNNN-of-MMMMM.parquet; `datasets` users know val as "validation"
        split = {"validation": "val"}.get(shard.name.split("-")[0], shard.name.split("-")[0])
        rows = pq.read_table(shard, columns=["clip_id", "status"]).to_pylist()
        assert all(split_of[r["clip_id"]] == split and r["status"] == "accepted" for r in rows), (shard, rows)
        exported_ids += [r["clip_id"] for r in rows]
    assert sorted(exported_ids) == ids
    table = pq.ParquetDataset(shards).read(columns=["clip_id", "captions", "semantic_masks"]).to_pylist()
    for r in table:
        c = r["clip_id"]
        assert r["captions"][FRAME] == CAPTION
        exported = rle_mod.decode(r["semantic_masks"][FRAME]).astype(bool)
        assert np.array_equal(exported, mask(refined[c], FRAME))
        assert not np.array_equal(exported, mask(auto[c], FRAME))  # the refined mask, not the draft

    # -- train: the tiny SSUFormer for 2 steps; it must have trained on the refined captions -----------------
    out = cli(train_main, "ssu-train",
              ["--data", str(root_path), "--config", "tiny", "--out", str(run), "--seed", "0", "--device", "cpu",
               "--max-steps", "2", "--set", "train.epochs=2", "--set", "train.batch_size=2", "--no-progress"],
              monkeypatch, capsys)
    assert "trained to step 2" in out, out
    from ssuformer.tokenizer import CaptionTokenizer

    vocab = CaptionTokenizer.load(run / "tokenizer.json").tok.get_vocab()
    assert {"z", "x", "j"} <= set(vocab), "the tokenizer never saw the refined caption"
    log = (run / "log.csv").read_text().splitlines()
    head = log[0].split(",")
    train_rows = [dict(zip(head, line.split(","), strict=True)) for line in log[1:]]
    train_rows = [r for r in train_rows if r["phase"] == "train"]
    assert train_rows and all(float(r["text"]) > 0 for r in train_rows)  # a caption loss was computed
    ckpt = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"

    # -- eval: predict the split with the checkpoint and score it against the refined annotations -------------
    out = cli(eval_main, "ssu-eval",
              ["--data", str(root_path), "--split", eval_split, "--checkpoint", str(ckpt), "--no-meteor",
               "--no-progress"], monkeypatch, capsys)
    metrics = json.loads((run / f"{ckpt.stem}_eval_{eval_split}" / "metrics.json").read_text())
    overall = metrics["overall"]
    assert 0.0 <= overall["miou"] <= 1.0 and overall["captions"]["bleu4"] is not None, metrics
    preds = sorted((run / f"{ckpt.stem}_eval_{eval_split}" / "predictions" / "annotations").glob("*.json"))
    assert [p.stem for p in preds] == sorted(splits[eval_split])
