"""The whole chain on real VGG-Sound clips, as a user runs it: ssu-collect -> ssu-annotate (tiny models with
forced outputs, see tests/tiny_models.py) -> refine (the controller: an eraser stroke and a caption edit, then
refiner accept and reviewer accept) -> ssu-export splits + hf -> ssu-train (tiny, 2 steps) -> ssu-eval
--checkpoint. Every hand-over is checked for what the next stage reads, not only for exit codes.

The tiny models' masks and captions are noise; only the refined mask and caption mean anything, and the tests
follow them into the export and the training run. The CLIs run in-process through their `main` (what the
console scripts call), so torch & co. are imported once. The chain runs once per module (the `chain` fixture,
each stage on first use); each stage's hand-over is its own test.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from tiny_models import annotate_flags, build_forced_models

from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES
from schemas.models import Annotation, CatalogRow, ClipStatus, Split
from schemas.root import DatasetRoot
from schemas.validate import Report, validate_root

KEYWORDS = ("playing piano", "orchestra", "cow lowing")  # one real clip each in ../shared/data/media/vggsound
FRAME = 37            # a frame the tiny SSUFormer samples (data.frames 4: 37, 112, 187, 262)
ERASE = (256, 256, 64)  # x, y, radius of the refiner's eraser stroke
CAPTION = "a jazz xylophonist plays"  # 'z', 'x' and 'j' are in no word the tiny captioner knows
T = TypeVar("T")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::FutureWarning")]


def cli(main: Callable[[], None], prog: str, args: list[str]) -> str:
    """Run a console script's main in-process like `prog args...`; return its stdout (exit 0 required)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        mp.setattr(sys, "argv", [prog, *args])
        warnings.simplefilter("ignore")
        with pytest.raises(SystemExit) as e:
            main()
    assert e.value.code in (0, None), \
        f"{prog} {' '.join(args)} exited {e.value.code}:\n{out.getvalue()}\n{err.getvalue()}"
    return out.getvalue()


def mask(ann, frame: int) -> np.ndarray:
    return rle_mod.decode(ann.semantic_rle(frame)).astype(bool)


def once(stage: Callable[[Chain], T]) -> Callable[[Chain], T]:
    """A stage runs once, on first use; a stage that failed fails every later use (its folder is half-made)."""
    name = stage.__name__

    @functools.wraps(stage)
    def run(self: Chain) -> T:
        if name not in self.done:
            try:
                self.done[name] = (True, stage(self))
            except BaseException as e:
                self.done[name] = (False, e)
                raise
        ok, value = self.done[name]
        if not ok:
            pytest.fail(f"stage {name} failed earlier: {value!r}")
        return value

    return run


@dataclass
class Collected:
    output: str
    ids: list[str]  # the clips, sorted
    rows: list[CatalogRow]  # the catalog right after ssu-collect


@dataclass
class Annotated:
    output: str
    auto: dict[str, Annotation]  # clip -> its automatic draft
    catalog: dict[str, CatalogRow]  # the rows right after ssu-annotate
    report: Report  # ssu-validate of the root then


@dataclass
class Refined:
    views: dict[tuple[str, str], tuple[ClipStatus, bool]]  # (clip, step) -> the view's (status, read_only)
    refined: dict[str, Annotation]
    catalog: dict[str, CatalogRow]  # the rows right after the reviews
    report: Report


@dataclass
class Exported:
    output: str
    splits: dict[Split, list[str]]
    eval_split: str  # what ssu-eval scores: test, or train when the split left test empty
    hf: Path


@dataclass
class Trained:
    output: str
    run: Path
    checkpoint: Path


class Chain:
    """The chain in one folder for the module: each stage is a method run once, on first use, after the
    stages it reads (so each test may run alone, in any order). Each test checks one stage's hand-over."""

    def __init__(self, shared_data: Path, tmp: Path) -> None:
        self.shared_data = shared_data
        self.tmp = tmp
        self.root_path, self.run = tmp / "root", tmp / "run"
        self.done: dict[str, tuple[bool, Any]] = {}  # stage -> (succeeded, its result or error)

    @functools.cached_property
    def root(self) -> DatasetRoot:  # opened once ssu-collect has made it
        return DatasetRoot.open(self.root_path)

    @once
    def collect(self) -> Collected:
        """The three clips from the official VGG-Sound test list and their local copies."""
        from collection.cli import main as collect_main

        out = cli(collect_main, "ssu-collect",
                  [str(self.root_path), "--source", "vggsound",
                   "--index", str(self.shared_data / "index/vggsound/test.csv"),
                   "--media-dir", str(self.shared_data / "media/vggsound"), "--keywords", ",".join(KEYWORDS),
                   "--per-keyword", "1", "--available-only", "--seed", "0", "--quiet", "--strict"])
        rows = self.root.catalog.rows()
        return Collected(out, sorted(r.clip_id for r in rows), rows)

    @once
    def annotate(self) -> Annotated:
        """The tiny audio tagger hears nothing (CLAP noise ~1/3 < 0.5), so the gate is off."""
        from annotator.draft.cli import main as annotate_main

        ids = self.collect().ids
        models = build_forced_models(self.tmp / "models")
        out = cli(annotate_main, "ssu-annotate",
                  [str(self.root_path), *annotate_flags(models), "--no-gate", "--max-instances", "1"])
        root = self.root
        return Annotated(out, {c: root.read_annotation(c) for c in ids}, {c: root.catalog.get(c) for c in ids},
                         validate_root(self.root_path, media=False))

    @once
    def refine(self) -> Refined:
        """An eraser stroke and a caption edit per clip, submitted by a refiner, accepted by a reviewer."""
        from annotator.refine.auth import Role, UserStore, add_user
        from annotator.refine.controller import Controller
        from annotator.refine.state import Decision

        ids = self.collect().ids
        self.annotate()
        users = self.tmp / "users.toml"
        add_user(users, "alice", "alice-pw", Role.refiner)
        add_user(users, "rita", "rita-pw", Role.reviewer)
        ctl = Controller(self.root_path, UserStore(users))  # no models: brush, eraser and text need none
        ctl.open_session("s-alice", "alice")
        ctl.open_session("s-rita", "rita")
        views: dict[tuple[str, str], tuple[ClipStatus, bool]] = {}
        for c in ids:
            v = ctl.open_clip("s-alice", c)
            views[c, "alice opens"] = (v.status, v.read_only)
            source = v.sources[0].id
            # the page's edits: an eraser dab (a one-point stroke) and the caption of the span over FRAME
            v = ctl.stroke("s-alice", v.revision, FRAME, source, [list(ERASE[:2])], ERASE[2], erase=True)
            rows = [[a, b, CAPTION if int(a) <= FRAME < int(b) else text] for a, b, text in v.spans]
            v = ctl.set_spans("s-alice", v.revision, source, rows)
            v = ctl.decide("s-alice", v.revision, Decision.accept)
            views[c, "alice accepts"] = (v.status, v.read_only)
            v = ctl.open_clip("s-rita", c)
            views[c, "rita opens"] = (v.status, v.read_only)
            v = ctl.decide("s-rita", v.revision, Decision.accept)
            views[c, "rita accepts"] = (v.status, v.read_only)
        root = self.root
        return Refined(views, {c: root.read_annotation(c) for c in ids}, {c: root.catalog.get(c) for c in ids},
                       validate_root(self.root_path, media=False))

    @once
    def export(self) -> Exported:
        """Splits of the accepted clips, then the Hugging Face layout."""
        from annotator.export.cli import main as export_main

        self.refine()
        out = cli(export_main, "ssu-export", ["splits", str(self.root_path), "--seed", "0"])
        splits = self.root.splits()
        # With one clip per category a 75/10/15 split may leave val and test empty: then ssu-eval scores train.
        eval_split = "test" if splits.get("test") else "train"
        cli(export_main, "ssu-export", ["hf", str(self.root_path), "--out", str(self.tmp / "hf")])
        return Exported(out, splits, eval_split, self.tmp / "hf")

    @once
    def train(self) -> Trained:
        """The tiny SSUFormer for 2 steps."""
        from ssuformer.train_cli import main as train_main

        self.export()
        out = cli(train_main, "ssu-train",
                  ["--data", str(self.root_path), "--config", "tiny", "--out", str(self.run), "--seed", "0",
                   "--device", "cpu", "--max-steps", "2", "--set", "train.epochs=2", "--set", "train.batch_size=2",
                   "--no-progress"])
        ckpt = self.run / "best.pt" if (self.run / "best.pt").is_file() else self.run / "last.pt"
        return Trained(out, self.run, ckpt)

    @once
    def evaluate(self) -> Path:
        """Predict the split with the checkpoint and score it against the refined annotations: the eval folder."""
        from ssuformer.eval_cli import main as eval_main

        split, ckpt = self.export().eval_split, self.train().checkpoint
        cli(eval_main, "ssu-eval", ["--data", str(self.root_path), "--split", split, "--checkpoint", str(ckpt),
                                    "--no-meteor", "--no-progress"])
        return self.run / f"{ckpt.stem}_eval_{split}"


@pytest.fixture(scope="module")
def chain(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return Chain(shared_data, tmp_path_factory.mktemp("chain"))


def test_collect_brings_the_three_clips(chain: Chain) -> None:
    done = chain.collect()
    assert sorted(r.category for r in done.rows) == sorted(KEYWORDS)
    assert all(r.status is ClipStatus.collected for r in done.rows)
    root = chain.root
    for c in done.ids:  # what ssu-annotate reads
        assert root.clip_path(c).is_file() and root.audio_path(c).is_file()


def test_annotate_drafts_every_clip(chain: Chain) -> None:
    done = chain.annotate()
    assert "annotated 3," in done.output and "failed 0" in done.output, done.output
    assert sorted(done.auto) == chain.collect().ids
    for c, ann in done.auto.items():
        assert ann.status is ClipStatus.auto and done.catalog[c].status is ClipStatus.auto
        assert ann.sources and ann.sources[0].category == done.catalog[c].category
        masks = [mask(ann, f) for f in range(0, NUM_FRAMES, 15)]
        assert all(m.any() for m in masks), f"{c}: empty auto masks"
        assert {sp.by for sp in ann.sources[0].mask_by} == {"sam", "sam2"}  # SAM's seed, SAM2 everywhere else
        caps = ann.frame_captions()
        assert all(caps), f"{c}: frames without a caption"
        assert ann.sources[0].captions[0].by == "captioner"
    assert done.report.ok, done.report.problems


def test_refine_erases_edits_and_accepts(chain: Chain) -> None:
    done, auto = chain.refine(), chain.annotate().auto
    for c in chain.collect().ids:
        assert done.views[c, "alice opens"] == (ClipStatus.in_progress, False)  # (status, read_only)
        assert done.views[c, "alice accepts"][0] is ClipStatus.needs_review
        assert done.views[c, "rita opens"][1] is False
        assert done.views[c, "rita accepts"][0] is ClipStatus.accepted
    from annotator.refine.tools import stroke_shape

    disc = stroke_shape([list(ERASE[:2])], ERASE[2])  # what the page's eraser removes (drawn as the editor draws)
    for c, ann in done.refined.items():
        assert ann.status is ClipStatus.accepted and done.catalog[c].status is ClipStatus.accepted
        m = mask(ann, FRAME)
        assert np.array_equal(m, mask(auto[c], FRAME) & ~disc) and m.any() and not m[disc].any()
        assert ann.frame_captions()[FRAME] == CAPTION
        assert "person:alice" in ann.agents
    assert done.report.ok, done.report.problems


def test_export_splits_and_hf_hold_the_refined_clips(chain: Chain) -> None:
    import pyarrow.parquet as pq

    done, ids = chain.export(), chain.collect().ids
    auto, refined = chain.annotate().auto, chain.refine().refined
    placed = [c for s in ("train", "val", "test") for c in done.splits.get(s, [])]
    assert sorted(placed) == ids, (done.splits, done.output)  # every accepted clip in exactly one split
    assert done.splits["train"], done.output  # ssu-train needs a train split with captions
    shards = sorted((done.hf / "data").glob("*.parquet"))
    split_of = {c: s.value for s, cs in done.splits.items() for c in cs}
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


def test_train_learns_from_the_refined_captions(chain: Chain) -> None:
    from ssuformer.tokenizer import CaptionTokenizer

    done = chain.train()
    assert "trained to step 2" in done.output, done.output
    vocab = CaptionTokenizer.load(done.run / "tokenizer.json").tok.get_vocab()
    assert {"z", "x", "j"} <= set(vocab), "the tokenizer never saw the refined caption"
    log = (done.run / "log.csv").read_text().splitlines()
    head = log[0].split(",")
    train_rows = [dict(zip(head, line.split(","), strict=True)) for line in log[1:]]
    train_rows = [r for r in train_rows if r["phase"] == "train"]
    assert train_rows and all(float(r["text"]) > 0 for r in train_rows)  # a caption loss was computed


def test_eval_scores_the_checkpoint_against_the_refined_annotations(chain: Chain) -> None:
    folder, exported = chain.evaluate(), chain.export()
    metrics = json.loads((folder / "metrics.json").read_text())
    overall = metrics["overall"]
    assert 0.0 <= overall["miou"] <= 1.0 and overall["captions"]["bleu4"] is not None, metrics
    preds = sorted((folder / "predictions" / "annotations").glob("*.json"))
    assert [p.stem for p in preds] == sorted(exported.splits[exported.eval_split])
