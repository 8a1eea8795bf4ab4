"""ssu-bench: the learning benchmark's pieces, and a few-step end-to-end run that writes the report files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES
from schemas.errors import UserError
from schemas.media import read_wav
from schemas.models import Annotation
from schemas.root import DatasetRoot

# The smallest settings the pipeline accepts: 32 px frames, 5 frames per clip, masks every 30th frame.
FAST = ["--set", "data.image_size=32", "--set", "data.frames=5", "--set", "train.run_val=false",
        "--max-steps", "1", "--mask-stride", "30", "--no-progress"]


def test_dense_passes_cover_every_frame_once() -> None:
    from ssuformer.data import sample_frames
    from ssuformer.predict import _dense_frames

    passes = _dense_frames(sample_frames(10), 1)
    assert passes is not None and len(passes) == 30
    assert sorted(f for p in passes for f in p) == list(range(NUM_FRAMES))
    assert all(np.diff(p).tolist() == [30] * 9 for p in passes)  # each pass: one frame per second
    every3 = _dense_frames(sample_frames(10), 3)
    assert every3 is not None and sorted(f for p in every3 for f in p) == list(range(0, NUM_FRAMES, 3))
    assert _dense_frames(sample_frames(7), 1) is None  # 300 % 7: masks stay at the sampled frames
    assert _dense_frames(sample_frames(10), 0) is None


def test_ladder_rungs_come_from_their_config_files() -> None:
    """Table V, as the rung files (ssuformer/configs/{baseline,focal,mcm,rcc,mohe}.yaml) say it."""
    from bench.ladder import RUNGS, rung_overrides, switched_keys

    assert switched_keys(list(RUNGS.values())) == ["model.mcm", "model.rcc", "model.mohe", "loss.text"]
    table = {name: [o.split("=")[1] for o in sets] for name, sets in rung_overrides().items()}
    assert table == {"baseline": ["false", "false", "false", "ce"], "focal": ["false", "false", "false", "focal"],
                     "mcm": ["true", "false", "false", "focal"], "rcc": ["true", "true", "false", "focal"],
                     "mohe": ["true", "true", "true", "focal"]}


def test_audio_controls(synth_root_copy: DatasetRoot, tmp_path: Path) -> None:
    from bench.steps import AudioControl, audio_control_root

    src = synth_root_copy.path
    zero = DatasetRoot.open(audio_control_root(src, tmp_path / "zero", AudioControl.zero, seed=0))
    shuf = DatasetRoot.open(audio_control_root(src, tmp_path / "shuffle", AudioControl.shuffle, seed=0))
    train = synth_root_copy.read_split("train")
    assert zero.read_split("train") == train and zero.read_annotation(train[0]) == synth_root_copy.read_annotation(
        train[0])
    originals = {c: read_wav(src / "audio" / f"{c}.wav")[0] for c in train}
    for c in train:
        wav, sr = read_wav(zero.path / "audio" / f"{c}.wav")
        assert sr == 16000 and len(wav) == 160000 and not wav.any()
        moved, _ = read_wav(shuf.path / "audio" / f"{c}.wav")
        assert not np.array_equal(moved, originals[c])  # nobody keeps their own sound ...
        assert any(np.array_equal(moved, o) for o in originals.values())  # ... but it is a sound of the split


def test_union_baseline_covers_the_truth(synth_root_copy: DatasetRoot, tmp_path: Path) -> None:
    from bench.steps import most_frequent_caption, trivial_predictions

    out, caption = trivial_predictions(synth_root_copy.path, tmp_path / "base", "test", progress=False)
    counts: dict[str, int] = {}
    for c in synth_root_copy.read_split("train"):
        for t in synth_root_copy.read_annotation(c).frame_captions():
            if t:
                counts[t] = counts.get(t, 0) + 1
    assert caption == most_frequent_caption(synth_root_copy) == max(counts, key=counts.get)
    clip = synth_root_copy.read_split("test")[0]

    pred = Annotation.model_validate_json((out / "annotations" / f"{clip}.json").read_bytes())
    gt = synth_root_copy.read_annotation(clip)
    for f in (0, 100, 299):
        union = rle_mod.decode(pred.semantic_rle(f))
        truth = rle_mod.decode(gt.semantic_rle(f))
        assert truth.any() and not (truth & ~union).any()  # the sounding objects are inside the union ...
        assert union.sum() > truth.sum()                   # ... which also holds the silent ones
    assert set(pred.frame_captions()) == {caption}


@pytest.mark.slow
def test_learning_end_to_end_writes_the_report(synth_root_copy: DatasetRoot, tmp_path: Path) -> None:
    from bench.cli import app

    out = tmp_path / "bench"
    res = CliRunner().invoke(app, ["learning", "--out", str(out), "--data", str(synth_root_copy.path), *FAST],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for name in ("report.md", "report.json", "loss.png", "metrics.png", "strip.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    doc = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in doc["runs"]] == ["audio-visual", "audio-blind (zero)"]
    for r in doc["runs"]:
        assert r["steps"] == 1 and 0.0 <= r["test"]["miou"] <= 1.0 and "captions" in r["test"]
        probe = r["audio_probe"]
        assert 0.0 <= probe["mean_abs_prob_change"] <= 1.0 and 0.0 <= probe["iou_own_audio"] <= 1.0
        preds = Path(r["predictions"])
        assert sorted(p.stem for p in preds.glob("*.json")) == synth_root_copy.read_split("test")
    base = doc["baseline"]["test"]
    assert base["miou"] > 0.2  # the union of all objects overlaps the sounding ones a lot
    assert {t["key"] for t in doc["targets"]} == {"miou", "bleu4", "blind_gap"}
    md = (out / "report.md").read_text()
    assert "audio-blind (zero)" in md and "![strip](strip.png)" in md and "Audio probe" in md
    assert "| run | mIoU | F-score | BLEU-4 |" in md and "instance mIoU" not in md
    # the control really trained on silence
    blind = out / "root-audio-zero"
    assert not read_wav(blind / "audio" / f"{synth_root_copy.read_split('train')[0]}.wav")[0].any()


@pytest.mark.slow
def test_ladder_mohe_rung_end_to_end(synth_root_copy: DatasetRoot, tmp_path: Path) -> None:
    """The one rung with extra machinery: a tiny random LLaVA is built, cached per clip and routed by MoHE."""
    from bench.cli import app

    out = tmp_path / "ladder"
    res = CliRunner().invoke(app, ["ladder", "--out", str(out), "--data", str(synth_root_copy.path),
                                   "--rungs", "+MoHE", "--clip-epochs", "0", *FAST], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "ladder.json").read_text())
    assert [r["name"] for r in doc["runs"]] == ["+MoHE"]
    from ssuformer.checkpoint import read_checkpoint

    flags = [read_checkpoint(r["checkpoint"])["config"] for r in doc["runs"]]
    assert [(c["model"]["mohe"], c["model"]["rcc"], c["loss"]["text"]) for c in flags] == [(True, True, "focal")]
    assert list((synth_root_copy.path / ".cache").glob("expert-*/meta.json"))  # the tiny expert was cached
    assert "| +MoHE | 0 |" in (out / "ladder.md").read_text()
    bad = CliRunner().invoke(app, ["ladder", "--out", str(out), "--data", str(synth_root_copy.path),
                                   "--rungs", "nope"])
    assert isinstance(bad.exception, UserError) and "--rungs" in str(bad.exception)


@pytest.mark.slow
def test_learning_instances_end_to_end(synth_root_copy: DatasetRoot, tmp_path: Path) -> None:
    """SSUFormer-I through the benchmark: per-instance scores, its own targets, the semantic run side by side."""
    from bench.cli import app

    semantic = tmp_path / "semantic.json"  # a semantic run's report (only its test scores are read)
    semantic.write_text(json.dumps({"runs": [{"name": "audio-visual", "test": {"miou": 0.5, "fscore": 0.6}}]}))
    out = tmp_path / "bench-i"
    res = CliRunner().invoke(app, ["learning", "--config", "bench_i", "--out", str(out), "--data",
                                   str(synth_root_copy.path), "--compare", str(semantic), *FAST],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "report.json").read_text())
    assert {t["key"] for t in doc["targets"]} == {"instance_miou", "source_bleu4", "blind_gap", "union_vs_semantic"}
    union = next(t for t in doc["targets"] if t["key"] == "union_vs_semantic")
    assert union["achieved"] == pytest.approx(0.5 - doc["runs"][0]["test"]["miou"])
    for r in doc["runs"]:
        inst = r["test"]["instances"]
        assert inst["gt_instances"] > 0 and inst["matched"] + inst["missed"] == inst["gt_instances"]
        assert inst["miou"] is not None and 0.0 <= inst["miou"] <= 1.0
        for p in Path(r["predictions"]).glob("*.json"):  # one source per predicted instance, with its scores
            ann = Annotation.model_validate_json(p.read_bytes())
            assert all(s.scores is not None for s in ann.sources)
    md = (out / "report.md").read_text()
    assert "| run | mIoU | F-score | BLEU-4 |" in md and "| run | union mIoU | instance mIoU | mask AP |" in md
    assert str(semantic) in md and (out / "strip.png").stat().st_size > 0
    assert "instance-matched mIoU" in res.output  # the targets line


def test_compare_is_checked_before_any_work(tmp_path: Path) -> None:
    from bench.cli import app

    bad = tmp_path / "report.json"
    bad.write_text("{}")
    for path, why in ((tmp_path / "missing.json", "cannot read it"), (bad, "not the report.json")):
        res = CliRunner().invoke(app, ["learning", "--config", "bench_i", "--out", str(tmp_path / "out"),
                                       "--compare", str(path)])
        assert isinstance(res.exception, UserError) and why in str(res.exception), res.output  # exit 2 via run_cli
        assert not (tmp_path / "out").exists()  # no root made, nothing trained


@pytest.mark.slow  # trains every rung of two seeds (a few steps each)
def test_ladder_two_seeds_is_a_resumable_batch(synth_root_copy: DatasetRoot, tmp_path: Path) -> None:
    """Seeds as a batch: a finished run is read, not retrained; the report names what is missing; the pretrained
    tiny CLIP is what MCM/RCC load; the audio-blind control of +RCC trains on silence."""
    import torch

    from bench.cli import app
    from ssuformer.checkpoint import read_checkpoint

    out, root = tmp_path / "ladder", str(synth_root_copy.path)
    args = ["ladder", "--out", str(out), "--data", root, "--rungs", "+RCC", "--clip-epochs", "2", *FAST]
    res = CliRunner().invoke(app, [*args, "--seeds", "0"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    first = out / "runs" / "seed0" / "rcc" / "result.json"
    stamp = first.stat().st_mtime_ns
    md = (out / "ladder.md").read_text()
    assert "Missing: none" in md and "| +RCC (audio-blind) | 0 |" in md
    res = CliRunner().invoke(app, [*args, "--seeds", "0,1"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert first.stat().st_mtime_ns == stamp  # finished: only read
    doc = json.loads((out / "ladder.json").read_text())
    assert sorted((r["seed"], r["rung"]) for r in doc["runs"]) == [
        (0, "+RCC"), (0, "+RCC (audio-blind)"), (1, "+RCC"), (1, "+RCC (audio-blind)")]
    run = doc["runs"][0]
    assert {"colour_accuracy", "shape_accuracy", "position_accuracy"} <= set(run["test"]["captions"])
    assert "mean of 2" in (out / "ladder.md").read_text()
    # the frozen CLIP of the runs is the pretrained one, not a random one
    clip_state = torch.load(out / "clip" / "clip.pt", weights_only=True)
    model = read_checkpoint(run["checkpoint"])["model"]
    key = "text_model.embeddings.token_embedding.weight"
    assert torch.equal(model[f"clip.clip.{key}"], clip_state[key])
    blind = [r for r in doc["runs"] if r["rung"] == "+RCC (audio-blind)"][0]
    assert blind["root"].endswith("root-audio-zero") and run["root"] == root
    res = CliRunner().invoke(app, [*args, "--seeds", "0,1,2", "--report-only"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "+RCC (seed 2): not started" in (out / "ladder.md").read_text()


@pytest.mark.slow  # trains two packages side by side
def test_train_step_bench_compares_before_and_after(synth_root: DatasetRoot) -> None:
    """bench/train_step.py trains the old commit's package and this one side by side on the same seed: both
    report steps/s, and their losses agree (the speed work keeps the maths)."""
    import re
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "bench" / "train_step.py"
    res = subprocess.run([sys.executable, str(script), "--data", str(synth_root.path), "--steps", "2", "--threads",
                          "1", "--set", "data.image_size=32", "--set", "data.frames=5"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "/old/ssuformer" in res.stdout and "speed-up" in res.stdout
    diff = float(re.search(r"loss difference ([0-9.]+) %", res.stdout).group(1))
    assert diff < 0.1, res.stdout
