"""ssu-annotate --drafter: a tiny SSUFormer-I checkpoint drafts the collected clips of a synthetic root.

The drafts are the checkpoint's own instance predictions (the same masks and scores ssu-eval's predict_root
writes for the clip), with status auto, provenance (sha256, config, inference settings) and a confidence
exactly where a mask is; clips people are refining are never touched, auto drafts are redone only with
--force; the drafted root validates and exports with its confidence; a semantic-only checkpoint is refused
with one line (exit 2); Ray actors give the same drafts."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from schemas.models import Annotation, ClipStatus
from ssuformer.config import load_config

SMALL = [
    "data.image_size=32", "data.frames=2", "data.workers=0",
    "model.hidden=32", "model.heads=2", "model.fusion_blocks=1", "model.audio_queries=4",
    "model.mask_layers=1", "model.caption_layers=1", "model.max_caption_tokens=12", "model.vocab_size=100",
    "model.visual.tiny_dims=[8,16,32,64]", "model.audio.tiny_channels=[4,8]",
    "model.clip.tiny_hidden=16", "model.clip.tiny_image_size=16",
]
STRIDE = ["--mask-stride", "30"]  # 10 predicted frames a clip: quick on CPU


def _checkpoint(root, folder: Path, instances: bool) -> Path:
    """A tiny model with random weights, saved as ssu-train saves checkpoints (nothing trained: the test is
    about drafting what a checkpoint predicts, whatever its quality; bench/loop.py measures trained ones)."""
    import torch

    from ssuformer.checkpoint import save_checkpoint
    from ssuformer.data import train_captions
    from ssuformer.model import SSUFormer
    from ssuformer.tokenizer import CaptionTokenizer

    cfg = load_config("tiny", [*SMALL, f"model.instances={str(instances).lower()}"])
    tok = CaptionTokenizer.train(train_captions(root), cfg.model.vocab_size)
    torch.manual_seed(0)
    model = SSUFormer(cfg.model, tok, loss=cfg.loss)
    path = folder / ("inst.pt" if instances else "semantic.pt")
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg.model_dump(mode="json"),
                           "tokenizer": tok.to_json(), "expert_dim": None})
    return path


@pytest.fixture(scope="module")
def checkpoints(synth_root, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("drafter")
    return _checkpoint(synth_root, folder, True), _checkpoint(synth_root, folder, False)


def _prepare(root) -> tuple[list[str], str, str]:
    """Two clips back to `collected` (the test split's clip among them), one held by a refiner, one auto."""
    test_clip = root.read_split("test")[0]
    others = [c for c in root.clip_ids() if c != test_clip]
    collected = [test_clip, others[0]]
    for cid in collected:
        root.annotation_path(cid).unlink()
        root.catalog.set_status(cid, ClipStatus.collected, "test")
    root.catalog.set_status(others[1], ClipStatus.in_progress, "test")
    return collected, others[1], others[2]


def _annotate(*args: str) -> int:
    from annotator.draft.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(args))
    return int(e.value.code or 0)


@pytest.mark.slow  # trains the tiny checkpoints (module fixture)
@pytest.mark.usefixtures("one_torch_thread")
def test_drafts_are_the_checkpoints_predictions(synth_root_copy, checkpoints, tmp_path, capsys):
    from ssuformer.predict import predict_root

    inst, _ = checkpoints
    root = synth_root_copy
    collected, held, auto = _prepare(root)
    held_before = root.annotation_path(held).read_bytes()
    auto_before = root.annotation_path(auto).read_bytes()
    assert _annotate(str(root.path), "--drafter", str(inst), *STRIDE) == 0
    out = capsys.readouterr().out
    assert "annotated 2" in out and "left alone 1" in out
    assert root.annotation_path(held).read_bytes() == held_before  # people's work is never touched
    assert root.annotation_path(auto).read_bytes() == auto_before  # an auto draft is redone only with --force

    # the oracle: ssu-eval's prediction of the test split with the same checkpoint and stride
    pred = predict_root(inst, root.path, "test", tmp_path / "pred", cache=str(tmp_path / "cache"), progress=False,
                        mask_stride=30)
    want = Annotation.model_validate_json((pred / "annotations" / f"{collected[0]}.json").read_text())
    sha = hashlib.sha256(inst.read_bytes()).hexdigest()
    cats = root.manifest.category_names()
    found = 0
    for cid in collected:
        assert root.catalog.get(cid).status is ClipStatus.auto
        ann = root.read_annotation(cid)
        assert ann.status is ClipStatus.auto
        params = ann.agents["ssuformer"].params
        assert params["checkpoint_sha256"] == sha and params["instance_nms"] == 0.5
        assert params["instance_score"] == 0.5 and params["mask_stride"] == 30
        assert json.loads(params["config"])["model"]["instances"] is True
        for s in ann.sources:
            assert s.scores is not None and s.category in [*cats, "sounding"]
            assert [m is None for m in s.masks] == [v is None for v in s.scores]
            found += sum(m is not None for m in s.masks)
        if cid == collected[0]:
            assert [(s.masks, s.scores, s.captions) for s in ann.sources] == \
                   [(s.masks, s.scores, s.captions) for s in want.sources]
    assert found  # the random model proposes instances here: the checks above are not vacuous

    from schemas.validate import validate_root

    report = validate_root(root.path, media=False)
    assert report.ok, [str(p) for p in report.problems]

    # --force redoes the drafts (the auto clip too) and still leaves the refiner's clip alone
    assert _annotate(str(root.path), "--drafter", str(inst), *STRIDE, "--force", "--clip", auto, "--clip",
                     held) == 0
    assert "annotated 1" in capsys.readouterr().out
    assert root.annotation_path(held).read_bytes() == held_before
    assert root.read_annotation(auto).agents["ssuformer"].params["checkpoint_sha256"] == sha

    # exports keep the confidence
    from typer.testing import CliRunner

    from annotator.export.cli import app

    res = CliRunner().invoke(app, ["yvis", str(root.path), "--out", str(tmp_path / "x"), "--status", "auto",
                                   "--no-frames"])
    assert res.exit_code == 0, res.output
    yv = json.loads((tmp_path / "x" / "yvis" / "test.json").read_text())
    drafted = root.read_annotation(collected[0])
    assert [a["scores"] for a in yv["annotations"]] == [s.scores for s in drafted.sources]
    res = CliRunner().invoke(app, ["coco", str(root.path), "--out", str(tmp_path / "x"), "--status", "auto"])
    assert res.exit_code == 0, res.output
    coco = json.loads((tmp_path / "x" / "coco" / "test.json").read_text())
    frame_of = {im["id"]: im["frame_index"] for im in coco["images"]}
    by_id = {s.id: s for s in drafted.sources}
    assert coco["annotations"]
    for a in coco["annotations"]:
        assert a["score"] == by_id[a["source_id"]].scores[frame_of[a["image_id"]]]
    import pyarrow.parquet as pq

    res = CliRunner().invoke(app, ["hf", str(root.path), "--out", str(tmp_path / "x"), "--status", "auto"])
    assert res.exit_code == 0, res.output
    rows = pq.read_table(next((tmp_path / "x" / "data").glob("test-*.parquet")), columns=["sources"]).to_pylist()
    assert [s["scores"] for s in rows[0]["sources"]] == [s.scores for s in drafted.sources]  # float64: exact


def test_category_is_the_one_the_captions_name():
    from annotator.draft.drafter import name_category

    cats = ["circle", "star", "square"]
    assert name_category(["a red circle", "a red circle", "a star", None], cats) == "circle"
    assert name_category(["a blue Star beeps"], cats) == "star"  # whole word, any case
    assert name_category(["circles everywhere", None], cats) == "sounding"  # not the word itself
    assert name_category([None, ""], cats) == "sounding"


@pytest.mark.slow  # trains the tiny checkpoints (module fixture)
def test_semantic_checkpoint_is_refused_in_one_line(synth_root_copy, checkpoints, capsys):
    _, semantic = checkpoints
    root = synth_root_copy
    _prepare(root)
    assert _annotate(str(root.path), "--drafter", str(semantic)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "semantic-only checkpoint" in err and "semantic.pt" in err
    assert not root.annotation_path(root.read_split("test")[0]).exists()
    assert _annotate(str(root.path), "--drafter", str(root.path / "nope.pt")) == 2
    assert "--drafter" in capsys.readouterr().err


@pytest.mark.slow  # trains the tiny checkpoints (module fixture)
@pytest.mark.usefixtures("one_torch_thread")  # a Ray actor with one CPU runs one thread: same sums
def test_ray_actors_draft_the_same(synth_root_copy, checkpoints, tmp_path):
    pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    from annotator.draft.drafter import DrafterSettings
    from annotator.draft.runner import run_drafts

    inst, _ = checkpoints
    root = synth_root_copy
    collected, _, _ = _prepare(root)
    settings = DrafterSettings(checkpoint=inst, device="cpu", mask_stride=30)
    summary = run_drafts(root.path, settings, "cpu", clips=collected, progress=False, ray_address="local",
                         ray_workers=1, ray_init={"num_cpus": 1, "object_store_memory": 80 * 2**20,
                                                  "include_dashboard": False})
    assert sorted(summary.done) == sorted(collected) and not summary.failed
    local = settings().annotate(root, collected[0]).annotation
    got = root.read_annotation(collected[0])
    assert [(s.masks, s.scores) for s in got.sources] == [(s.masks, s.scores) for s in local.sources]
    import ray

    assert not ray.is_initialized()


@pytest.mark.slow  # trains the tiny checkpoints (module fixture)
@pytest.mark.usefixtures("one_torch_thread")
def test_streamed_chunks_draft_the_same(synth_root, checkpoints):
    """Memory is bounded by the chunk: two passes of 2 frames per decode (3 decodes) draft what one decode of the
    10 predicted frames does (the same batches of 2 passes either way, so the same sums)."""
    from annotator.draft.drafter import DrafterSettings

    inst, _ = checkpoints
    clip = synth_root.read_split("test")[0]
    whole = DrafterSettings(checkpoint=inst, device="cpu", mask_stride=30, chunk_frames=300)().annotate(
        synth_root, clip).annotation
    small = DrafterSettings(checkpoint=inst, device="cpu", mask_stride=30, chunk_frames=4)().annotate(
        synth_root, clip).annotation
    assert whole.sources and [s.model_dump() for s in small.sources] == [s.model_dump() for s in whole.sources]
