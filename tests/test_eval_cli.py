"""ssu-eval end to end on the synthetic root: perfect and perturbed predictions, every input format, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from schemas.errors import UserError
from ssuformer.eval_cli import app
from ssuformer.metrics import segmentation_scores

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [*args, "--no-progress", "--no-meteor"], catch_exceptions=True)


def gt_masks(root, clip_id: str) -> np.ndarray:
    from schemas import rle

    ann = root.read_annotation(clip_id)
    return rle.decode_many([ann.semantic_rle(f) for f in range(300)])


def copy_annotations(root, split: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for c in root.read_split(split):
        shutil.copy(root.annotation_path(c), dest / f"{c}.json")
    return dest


def test_perfect_annotation_predictions(synth_root, tmp_path):
    pred = copy_annotations(synth_root, "test", tmp_path / "pred")
    out = tmp_path / "out"
    r = run("--data", str(synth_root.path), "--split", "test", "--predictions", str(pred), "--out", str(out),
            "--protocol", "avsbench")
    assert r.exit_code == 0, r.output
    assert "mIoU" in r.output and "avsbench" in r.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["overall"]["miou"] == pytest.approx(1.0, abs=1e-6)
    assert doc["overall"]["fscore"] == pytest.approx(1.0, abs=1e-6)
    cap = doc["overall"]["captions"]
    assert cap["bleu4"] == pytest.approx(1.0, abs=1e-6) and cap["rouge_l"] == pytest.approx(1.0)
    assert cap["meteor"] is None  # --no-meteor
    meta = doc["meta"]
    assert meta["protocol"] == "avsbench" and meta["batch_frames"] == 20
    assert meta["segmentation_version"] and meta["caption_version"] and meta["pycocoevalcap"] == "1.2"
    md = (out / "metrics.md").read_text()
    assert "| pred | 1.0000 | 1.0000 | 1.0000 | 1.0000 | - |" in md
    assert doc["instances"] is None and "Instances" not in md  # off unless asked


@pytest.mark.slow
def test_perturbed_png_and_npy_predictions(synth_root, tmp_path):
    clip = synth_root.read_split("test")[0]
    gts = gt_masks(synth_root, clip)
    # shifted masks at probability 200/255, nothing predicted in the last 100 frames
    probs = np.roll(gts, 9, axis=2).astype(np.float32) * np.float32(200 / 255)
    probs[200:] = 0
    png_dir = tmp_path / "png" / clip
    png_dir.mkdir(parents=True)
    for f, p in enumerate(probs):
        Image.fromarray(np.round(p * 255).astype(np.uint8), mode="L").save(png_dir / f"{f:05d}.png")
    exp = segmentation_scores(probs, gts, "avsegformer")
    assert 0.05 < exp["miou"] < 0.95  # really perturbed
    out = tmp_path / "out_png"
    r = run("--data", str(synth_root.path), "--predictions", str(tmp_path / "png"), "--out", str(out),
            "--protocol", "avsegformer")
    assert r.exit_code == 0, r.output
    got = json.loads((out / "metrics.json").read_text())["overall"]
    assert got["miou"] == pytest.approx(exp["miou"], abs=1e-9)
    assert got["fscore"] == pytest.approx(exp["fscore"], abs=1e-9)
    assert "captions" not in got  # PNG predictions carry no captions
    # the same probabilities as .npy (float16 keeps the file small; the float32 values are identical)
    npy_dir = tmp_path / "npy"
    npy_dir.mkdir()
    np.save(npy_dir / f"{clip}.npy", (np.round(probs * 255) / 255).astype(np.float16))
    p16 = (np.round(probs * 255) / 255).astype(np.float16).astype(np.float32)
    exp = segmentation_scores(p16, gts)  # per-frame, the default
    r = run("--data", str(synth_root.path), "--predictions", str(npy_dir), "--out", str(tmp_path / "o3"))
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "o3" / "metrics.json").read_text())["overall"]
    assert got["miou"] == pytest.approx(exp["miou"], abs=1e-9)
    assert got["fscore"] == pytest.approx(exp["fscore"], abs=1e-9)


@pytest.mark.slow
def test_per_category_with_one_bad_clip(synth_root, tmp_path):
    pred = copy_annotations(synth_root, "train", tmp_path / "pred")
    bad = synth_root.read_split("train")[0]
    ann = synth_root.read_annotation(bad)
    for s in ann.sources:  # nothing segmented, nothing said
        s.masks = [None] * 300
        s.captions = []
    ann.sources[0].set_frame_captions(["a purple elephant is singing"] * 300)
    (pred / f"{bad}.json").write_text(ann.model_dump_json())
    out = tmp_path / "out"
    r = run("--data", str(synth_root.path), "--split", "train", "--predictions", str(pred), "--out", str(out),
            "--per-category")
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "metrics.json").read_text())
    bad_cat = synth_root.catalog.get(bad).category
    cats = doc["per_category"]
    assert set(cats) == {synth_root.catalog.get(c).category for c in synth_root.read_split("train")}
    for cat, sc in cats.items():
        if cat == bad_cat:
            assert sc["miou"] < 0.5 and sc["captions"]["bleu4"] < 0.5
        else:
            assert sc["miou"] == pytest.approx(1.0) and sc["captions"]["bleu4"] == pytest.approx(1.0)
    assert doc["overall"]["miou"] < 1.0
    assert f"{bad_cat} (1 clip)" in (out / "metrics.md").read_text()


def test_mismatches_are_user_errors(synth_root, tmp_path):
    clip = synth_root.read_split("test")[0]
    empty = tmp_path / "other"
    empty.mkdir()
    (empty / "not_a_clip.npy").write_bytes(b"")
    r = run("--data", str(synth_root.path), "--predictions", str(empty))
    assert isinstance(r.exception, UserError) and "no prediction for 1 of 1 test clips" in str(r.exception)

    small_logits = tmp_path / "size"
    small_logits.mkdir()
    np.save(small_logits / f"{clip}.npy", np.full((300, 64, 64), 2.0, np.float32))  # checked before resampling
    r = run("--data", str(synth_root.path), "--predictions", str(small_logits))
    assert isinstance(r.exception, UserError) and "sigmoid" in str(r.exception)

    bools = tmp_path / "bools"
    bools.mkdir()
    np.save(bools / f"{clip}.npy", np.zeros((300, 64, 64), bool))
    r = run("--data", str(synth_root.path), "--predictions", str(bools))
    assert isinstance(r.exception, UserError) and "uint8" in str(r.exception)

    wrong_frames = tmp_path / "frames" / clip
    wrong_frames.mkdir(parents=True)
    for f in range(3):
        Image.fromarray(np.zeros((512, 512), np.uint8), mode="L").save(wrong_frames / f"{f}.png")
    r = run("--data", str(synth_root.path), "--predictions", str(wrong_frames.parent))
    assert isinstance(r.exception, UserError) and "3 frames" in str(r.exception)

    logits = tmp_path / "logits"
    logits.mkdir()
    np.save(logits / f"{clip}.npy", np.full((300, 512, 512), -3, np.float16))
    r = run("--data", str(synth_root.path), "--predictions", str(logits))
    assert isinstance(r.exception, UserError) and "sigmoid" in str(r.exception)

    r = run("--data", str(synth_root.path))
    assert isinstance(r.exception, UserError) and "--checkpoint" in str(r.exception)


@pytest.mark.slow
def test_predict_layout_probabilities_or_binary(synth_root, tmp_path):
    """ssuformer.predict's layout: uint8 probabilities at the model's size in probs/, binary annotations in
    annotations/. The probability path is pinned to an independent computation: torch's bilinear resampling
    of the same maps, scored by segmentation_scores (itself pinned to the per-threshold reference)."""
    torch = pytest.importorskip("torch")
    clip = synth_root.read_split("test")[0]
    gts = gt_masks(synth_root, clip)
    small = torch.nn.functional.interpolate(torch.from_numpy(np.roll(gts, 7, axis=1)).float()[:, None], size=(48, 48),
                                            mode="area")[:, 0].numpy()  # a blurred, shifted truth at 48x48
    rng = np.random.default_rng(0)
    q = np.clip(np.rint(small * 230 + rng.integers(0, 25, small.shape)), 0, 255).astype(np.uint8)
    pred = tmp_path / "pred"
    (pred / "probs").mkdir(parents=True)
    np.save(pred / "probs" / f"{clip}.npy", q)
    copy_annotations(synth_root, "test", pred / "annotations")  # perfect binary masks and captions
    (pred / "predictions.json").write_text("{}")
    big = torch.nn.functional.interpolate(torch.from_numpy(q.astype(np.float32) / np.float32(255))[:, None],
                                          size=(512, 512), mode="bilinear", align_corners=False)[:, 0]
    for protocol in ("per-frame", "avsbench"):
        exp = segmentation_scores(big.clamp(0, 1).numpy(), gts, protocol)
        r = run("--data", str(synth_root.path), "--predictions", str(pred), "--out", str(tmp_path / protocol),
                "--protocol", protocol, "--no-captions")
        assert r.exit_code == 0, r.output
        assert "scored probabilities (uint8, 48x48 resampled to 512x512) of 1 clip" in r.output
        doc = json.loads((tmp_path / protocol / "metrics.json").read_text())
        assert doc["meta"]["masks"]["scored"] == "probabilities"
        assert doc["meta"]["masks"]["compared_at"].startswith("512x512")
        assert doc["overall"]["miou"] == pytest.approx(exp["miou"], abs=2e-6)
        assert doc["overall"]["fscore"] == pytest.approx(exp["fscore"], abs=2e-6)
        assert 0.3 < doc["overall"]["fscore"] < 0.99
        # every protocol from the same counting pass, the chosen one equal to the table's
        assert set(doc["protocols"]) == {"per-frame", "avsbench", "avsegformer"}
        assert doc["protocols"][protocol]["miou"] == doc["overall"]["miou"]
        other = "avsegformer" if protocol == "per-frame" else "per-frame"
        assert doc["protocols"][other]["miou"] == pytest.approx(
            segmentation_scores(big.clamp(0, 1).numpy(), gts, other)["miou"], abs=2e-6)
    r = run("--data", str(synth_root.path), "--predictions", str(pred), "--out", str(tmp_path / "bin"),
            "--masks", "binary")
    assert r.exit_code == 0, r.output
    assert "scored binary annotation masks of 1 clip" in r.output
    doc = json.loads((tmp_path / "bin" / "metrics.json").read_text())
    assert doc["overall"]["miou"] == pytest.approx(1.0) and doc["overall"]["captions"]["bleu4"] == pytest.approx(1.0)
    r = run("--data", str(synth_root.path), "--predictions", str(pred / "annotations"), "--masks", "probabilities")
    assert isinstance(r.exception, UserError) and "has no <clip_id>.npy" in str(r.exception)


def test_missing_checkpoint_is_a_user_error(synth_root, tmp_path):
    r = run("--data", str(synth_root.path), "--checkpoint", str(tmp_path / "nope.pt"))
    assert isinstance(r.exception, UserError) and "does not exist" in str(r.exception)


def test_cli_one_line_error_exit_2(synth_root, tmp_path):
    r = subprocess.run([sys.executable, "-m", "ssuformer.eval_cli", "--data", str(synth_root.path),
                        "--predictions", str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: --predictions")


def _instances(ann) -> list[int]:
    """Per source: frames where it has a non-empty mask (an instance)."""
    from schemas import rle

    return [sum(1 for m in s.masks if m is not None and rle.area(m.model_dump()) > 0) for s in ann.sources]


@pytest.mark.slow
def test_instances_through_the_cli(synth_root, tmp_path):
    """The test clip predicted source by source, exactly, except that its second source is missed and its first
    source says what the second one does: the counts follow exactly, AP and per-source BLEU drop."""
    clip = synth_root.read_split("test")[0]
    pred = copy_annotations(synth_root, "test", tmp_path / "pred" / "annotations")
    bad = synth_root.read_annotation(clip)
    assert len(bad.sources) >= 2
    total, dropped = sum(_instances(bad)), sum(_instances(bad)[1:])
    t0, t1 = bad.sources[0].captions[0].text, bad.sources[1].captions[0].text
    assert t0 != t1
    for span in bad.sources[0].captions:
        span.text = t1
    bad.sources = bad.sources[:1]
    (pred / f"{clip}.json").write_text(bad.model_dump_json())
    out = tmp_path / "out"
    r = run("--data", str(synth_root.path), "--predictions", str(pred.parent), "--out", str(out), "--instances")
    assert r.exit_code == 0, r.output
    assert "instances: one mask and caption per sounding source" in r.output
    inst = json.loads((out / "metrics.json").read_text())["instances"]
    assert inst["gt_instances"] == total and inst["pred_instances"] == total - dropped
    assert (inst["matched"], inst["missed"], inst["unmatched"]) == (total - dropped, dropped, 0)
    assert inst["miou"] == pytest.approx((total - dropped) / total)  # the other instances are exact
    assert inst["recall"] == pytest.approx((total - dropped) / total) and inst["precision"] == 1.0
    # precision 1 up to that recall, then nothing: COCO's 101-point AP is the recall, to one point
    assert inst["ap"] == pytest.approx(inst["recall"], abs=0.011) and inst["ap"] == inst["ap50"] == inst["ap75"]
    cap = inst["captions"]
    assert cap["bleu4"] < 0.5 and cap["meteor"] is None and cap["empty_candidates"] == 0
    assert cap["pairs"] == sum(1 for f, c in enumerate(bad.sources[0].frame_captions())
                               if c and bad.sources[0].masks[f] is not None)
    md = (out / "metrics.md").read_text()
    assert "## Instances" in md and f"| {total - dropped} | {dropped} | 0 |" in md

    npy_only = tmp_path / "npy"
    npy_only.mkdir()
    np.save(npy_only / f"{clip}.npy", np.zeros((300, 8, 8), np.float32))
    r = run("--data", str(synth_root.path), "--predictions", str(npy_only), "--instances")
    assert isinstance(r.exception, UserError) and f"clip {clip} has no <clip_id>.json" in str(r.exception)


@pytest.mark.slow
@pytest.mark.parametrize("flag", [True, None])
def test_checkpoint_switches_instances_on(synth_root, tmp_path, monkeypatch, flag):
    """With --checkpoint, --instances defaults to the checkpoint's model.instances (a missing key: off)."""
    import ssuformer.checkpoint
    import ssuformer.predict

    seen = []

    def fake_predict(checkpoint, root, split, out_dir, progress=True, instance_nms=None):  # noqa: ANN001, ANN202
        seen.append(instance_nms)  # predict_root's signature
        return copy_annotations(synth_root, split, out_dir / "annotations").parent

    monkeypatch.setattr(ssuformer.predict, "predict_root", fake_predict)
    monkeypatch.setattr(ssuformer.checkpoint, "read_checkpoint",
                        lambda p: {"config": {"model": {} if flag is None else {"instances": flag}}})
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"")
    r = run("--data", str(synth_root.path), "--checkpoint", str(ckpt), "--no-captions")
    assert r.exit_code == 0, r.output
    assert seen == [None]  # the checkpoint's own instance_nms unless --instance-nms says otherwise
    inst = json.loads((tmp_path / "best_eval_test" / "metrics.json").read_text())["instances"]
    assert (inst is not None) == bool(flag)
    if flag:
        assert inst["miou"] == pytest.approx(1.0) and inst["ap"] == pytest.approx(1.0) and "captions" not in inst
        r = run("--data", str(synth_root.path), "--checkpoint", str(ckpt), "--no-captions", "--no-instances",
                "--out", str(tmp_path / "off"))
        assert json.loads((tmp_path / "off" / "metrics.json").read_text())["instances"] is None
        r = run("--data", str(synth_root.path), "--checkpoint", str(ckpt), "--no-captions", "--instance-nms", "0.2",
                "--out", str(tmp_path / "nms"))
        assert r.exit_code == 0, r.output
        assert seen[-1] == 0.2
