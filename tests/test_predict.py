"""ssuformer.predict on a tiny trained checkpoint: streamed chunks give the same predictions as one chunk,
probabilities are stored compactly beside binary annotations derived from them, and ssu-eval --checkpoint
scores the probabilities (F-score strictly above the binary masks' F-score, the same mIoU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from schemas import rle as rle_mod
from schemas.errors import UserError
from schemas.models import Annotation
from ssuformer.config import load_config

SMALL = [
    "data.image_size=32", "data.frames=2", "data.workers=0",
    "model.hidden=32", "model.heads=2", "model.fusion_blocks=1", "model.audio_queries=2",
    "model.mask_layers=1", "model.caption_layers=1", "model.max_caption_tokens=12", "model.vocab_size=100",
    "model.visual.tiny_dims=[8,16,32,64]", "model.audio.tiny_channels=[4,8]",
    "model.clip.tiny_hidden=16", "model.clip.tiny_image_size=16",
    "train.batch_size=2", "train.lr=0.003", "train.schedule=constant", "train.warmup_steps=0",
    "train.run_val=false",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ssu-cache")  # the shared synth root stays untouched


@pytest.fixture(scope="module")
def checkpoint(synth_root, cache, tmp_path_factory) -> Path:
    from ssuformer.trainer import train

    out = tmp_path_factory.mktemp("run") / "r"
    # 40 epochs of 2 steps (~20 s): enough for masks above 0.5 (mIoU ~0.15), so both F-scores are real
    cfg = load_config("tiny", [*SMALL, f"data.cache={cache}", "train.epochs=40"])
    res = train(synth_root.path, cfg, out, seed=3, progress=False)
    return res.last


def annotation_masks(path: Path) -> np.ndarray:
    ann = Annotation.model_validate_json(path.read_text())
    return rle_mod.decode_many([ann.semantic_rle(f) for f in range(300)])


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_streamed_chunks_equal_one_chunk_and_annotations_follow_probs(synth_root, cache, checkpoint, tmp_path):
    from ssuformer.predict import binary_masks, predict_root

    clip = synth_root.read_split("test")[0]
    one = predict_root(checkpoint, synth_root.path, "test", tmp_path / "one", cache=str(cache), progress=False,
                       mask_stride=30, chunk_frames=300)
    many = predict_root(checkpoint, synth_root.path, "test", tmp_path / "many", cache=str(cache), progress=False,
                        mask_stride=30, chunk_frames=2, batch_size=1)  # one pass of 2 frames per decode
    p1, p2 = np.load(one / "probs" / f"{clip}.npy"), np.load(many / "probs" / f"{clip}.npy")
    assert p1.dtype == np.uint8 and p1.shape == (300, 32, 32)
    assert np.abs(p1.astype(int) - p2.astype(int)).max() <= 1  # batch composition may move a rounding
    assert np.array_equal(p1[0], p1[1]) and not np.array_equal(p1[0], p1[150])  # frame 1 takes frame 0's map
    masks = annotation_masks(one / "annotations" / f"{clip}.json")
    assert np.array_equal(masks, binary_masks(p1))  # the binary annotation is {p > 0.5} of the scored map
    meta = json.loads((one / "predictions.json").read_text())
    assert meta["mask_stride"] == 30 and meta["predicted_frames"] == list(range(0, 300, 30))
    assert meta["probs"]["dtype"] == "uint8" and meta["probs"]["size"] == [32, 32]
    cached = [np.load(p, mmap_mode="r").shape[0] for p in Path(cache).glob("frames-32/*.npy")]
    assert cached and max(cached) == 2  # the training cache of the T sampled frames; no dense cache unless asked

    sparse = predict_root(checkpoint, synth_root.path, "test", tmp_path / "sparse", cache=str(cache),
                          progress=False, mask_stride=0)  # only the T sampled frames
    assert np.load(sparse / "probs" / f"{clip}.npy").shape == (300, 32, 32)
    assert json.loads((sparse / "predictions.json").read_text())["mask_stride"] == 0


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_dense_frame_cache_only_when_asked(synth_root, cache, checkpoint, tmp_path):
    from ssuformer.predict import predict_root

    clip = synth_root.read_split("test")[0]
    kw = dict(cache=str(cache), progress=False, mask_stride=10)
    first = predict_root(checkpoint, synth_root.path, "test", tmp_path / "a", cache_frames=True, **kw)
    cached = list(Path(cache).glob(f"frames-32/{clip}.*"))
    dense = [p for p in cached if np.load(p, mmap_mode="r").shape[0] == 30]
    assert len(dense) == 1  # every 10th frame, at the model's size
    again = predict_root(checkpoint, synth_root.path, "test", tmp_path / "b", cache_frames=True, **kw)
    assert np.array_equal(np.load(first / "probs" / f"{clip}.npy"), np.load(again / "probs" / f"{clip}.npy"))


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_eval_checkpoint_scores_probabilities(synth_root, checkpoint, tmp_path):
    """Acceptance (issue 16): the F-score of the probabilities beats the F-score of their binary annotations."""
    from ssuformer.eval_cli import app

    runner = CliRunner()
    out = tmp_path / "eval"
    r = runner.invoke(app, ["--data", str(synth_root.path), "--checkpoint", str(checkpoint), "--out", str(out),
                            "--no-progress", "--no-captions"])
    assert r.exit_code == 0, r.output
    assert "scored probabilities (uint8, 32x32 resampled to 512x512) of 1 clip" in r.output
    prob = json.loads((out / "metrics.json").read_text())
    assert prob["meta"]["masks"]["scored"] == "probabilities"
    r = runner.invoke(app, ["--data", str(synth_root.path), "--predictions", str(out / "predictions"),
                            "--masks", "binary", "--out", str(tmp_path / "bin"), "--no-progress", "--no-captions"])
    assert r.exit_code == 0, r.output
    assert "scored binary annotation masks of 1 clip" in r.output
    binary = json.loads((tmp_path / "bin" / "metrics.json").read_text())
    assert binary["meta"]["masks"]["scored"] == "binary"
    assert prob["overall"]["miou"] > 0.05  # the model does segment: its binary masks are not empty
    assert prob["overall"]["fscore"] > binary["overall"]["fscore"] > 0.05
    assert prob["overall"]["miou"] == pytest.approx(binary["overall"]["miou"], abs=1e-12)


def test_instance_annotation_from_tracks():
    """One source per track: nearest predicted frame fills the others; mask, score and caption null together."""
    from schemas.constants import NUM_FRAMES
    from ssuformer.predict import to_instance_annotation, track_params
    from ssuformer.tracks import Track

    frames = list(range(0, NUM_FRAMES, 30))
    square = np.zeros((512, 512), bool)
    square[100:200, 50:150] = True
    rle = rle_mod.encode(square)
    a = Track(id=0, members={0: 0, 30: 1, 60: 0}, scores={0: 0.9, 30: 0.8, 60: 0.7},
              captions={0: "a red circle", 30: "a red circle", 60: ""})
    b = Track(id=1, members={270: 0}, scores={270: 0.6}, captions={270: "a blue star"})
    rles = {(0, 0): rle, (30, 1): rle, (60, 0): rle, (270, 0): rle}
    params = track_params(frames)
    assert params.max_gap == 30 and track_params(list(range(0, NUM_FRAMES, 60))).max_gap == 60
    ann = to_instance_annotation("synth_0_00000", frames, [a, b], rles, "tiny", params.as_dict(), 0.5)
    ann = Annotation.model_validate_json(ann.model_dump_json())  # what ssu-refine reads
    s0, s1 = ann.sources
    assert [s.name for s in ann.sources] == ["predicted source 1", "predicted source 2"]
    # frame 60 reaches frame 75 (ties go to the earlier frame)
    assert [f for f in range(NUM_FRAMES) if s0.masks[f] is not None] == list(range(76))
    assert s0.scores[15] == 0.9 and s0.scores[16] == 0.8 and s0.scores[75] == 0.7 and s0.scores[76] is None
    caps = s0.frame_captions()
    assert caps[45] == "a red circle" and caps[46] is None  # an empty caption is no caption
    assert s1.scores[256] == 0.6 and s1.scores[255] is None and s1.frame_captions()[299] == "a blue star"
    assert ann.agents["ssuformer"].params["max_gap_frames"] == 30


@pytest.fixture(scope="module")
def instance_checkpoint(synth_root, cache, tmp_path_factory) -> Path:
    """A tiny SSUFormer-I with random weights (nothing trained), saved as ssu-train saves its checkpoints."""
    import torch

    from ssuformer.checkpoint import save_checkpoint
    from ssuformer.data import train_captions
    from ssuformer.model import SSUFormer
    from ssuformer.tokenizer import CaptionTokenizer

    cfg = load_config("tiny", [*SMALL, f"data.cache={cache}", "model.instances=true",
                               "model.audio_queries=4"])  # queries beyond the sources: duplicates happen
    tok = CaptionTokenizer.train(train_captions(synth_root), cfg.model.vocab_size)
    torch.manual_seed(0)
    model = SSUFormer(cfg.model, tok, loss=cfg.loss)
    path = tmp_path_factory.mktemp("inst") / "random.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg.model_dump(mode="json"),
                           "tokenizer": tok.to_json(), "expert_dim": None})
    return path


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_instance_model_writes_one_source_per_track(synth_root, cache, instance_checkpoint, tmp_path):
    """Every source frame is one of the model's instances (a query scoring >= the threshold: its mask, score and
    caption), every instance is a source frame unless it duplicates a stronger one, and a source's mask lies
    where the union probabilities are at least half its score (union >= score x instance probability)."""
    import torch

    from ssuformer.batch import collate
    from ssuformer.checkpoint import load_model
    from ssuformer.data import ClipDataset
    from ssuformer.metrics.resample import dequantize, quantize, resize_bilinear
    from ssuformer.predict import binary_masks, predict_root
    from ssuformer.tracks import DEDUP_IOU, iou

    clip = synth_root.read_split("test")[0]
    out = predict_root(instance_checkpoint, synth_root.path, "test", tmp_path / "p", cache=str(cache),
                       progress=False, mask_stride=25)  # 12 predicted frames: 0, 25, ..., 275
    meta = json.loads((out / "predictions.json").read_text())
    assert meta["instances"] is True and meta["tracking"]["max_gap_frames"] == 30
    assert meta["tracking"]["link_iou"] == 0.3 and meta["tracking"]["instance_score"] == 0.5
    ann = Annotation.model_validate_json((out / "annotations" / f"{clip}.json").read_text())
    assert ann.sources and meta["clips"][clip]["sources"] == len(ann.sources)
    assert [s.name for s in ann.sources] == [f"predicted source {i + 1}" for i in range(len(ann.sources))]
    for s in ann.sources:
        assert s.category == "sounding" and s.scores is not None
        assert [m is None for m in s.masks] == [v is None for v in s.scores]  # a score exactly where a mask is
        assert all(c is None or m is not None for c, m in zip(s.frame_captions(), s.masks, strict=True))
    union = np.load(out / "probs" / f"{clip}.npy")
    assert union.shape == (300, 32, 32) and union.dtype == np.uint8

    # the oracle: the model itself on the dataset's sample of the clip (frames 75 and 225, one of the passes)
    model, cfg, tok, _ = load_model(instance_checkpoint)
    ds = ClipDataset(synth_root, "test", cfg, tok)
    with torch.no_grad():
        pred = model.predict(collate([ds[0]]), beam=cfg.train.beam)
    assert np.abs(union[ds.frames].astype(int) - quantize(pred["probs"][0].numpy()).astype(int)).max() <= 1
    inst_q = quantize(pred["inst_probs"][0].numpy())
    scores = pred["inst_scores"][0].numpy()
    found = 0
    for k, f in enumerate(ds.frames):
        expected = []
        for q in np.flatnonzero(scores[k] >= 0.5):
            m = binary_masks(inst_q[k, q][None])[0]
            if m.any():
                expected.append((m, float(scores[k, q]), tok.decode(pred["inst_tokens"][0, k, q].tolist())))
        have = [(rle_mod.decode(s.masks[f].model_dump()), s.scores[f], s.frame_captions()[f] or "")
                for s in ann.sources if s.masks[f] is not None]
        for m, sc, cap in have:  # each source frame is an instance of the model's
            assert any(np.array_equal(m, em) and sc == pytest.approx(es, abs=1e-3) and cap == ec
                       for em, es, ec in expected)
            on = resize_bilinear(dequantize(union[f][None]), (512, 512))[0][m]
            assert on.min() >= 0.5 * sc - 2 / 255  # union >= score x p, and p > 0.5 on the mask
        for em, es, _ in expected:  # each instance is a source frame, or a duplicate of a stronger one
            if not any(np.array_equal(em, m) for m, _, _ in have):
                assert any(s2 >= es and iou(em, m) >= DEDUP_IOU - 0.05 for m, s2, _ in have)
        found += len(have)
    assert found  # the random model does propose instances here: the checks above are not vacuous


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_instance_nms_is_an_inference_setting(synth_root, cache, checkpoint, instance_checkpoint, tmp_path):
    """predict_root(instance_nms=t) predicts with mask NMS at IoU t (recorded), so no two sources of a frame
    overlap at t or more; it is refused for a semantic model, and ssu-eval takes it only with --checkpoint."""
    from ssuformer.eval_cli import app
    from ssuformer.predict import predict_root
    from ssuformer.tracks import iou

    def overlaps(nms: float, name: str) -> tuple[Path, list[float]]:
        """The predictions and the IoU of every two sources in one frame."""
        out = predict_root(instance_checkpoint, synth_root.path, "test", tmp_path / name, cache=str(cache),
                           progress=False, mask_stride=25, instance_nms=nms)
        assert json.loads((out / "predictions.json").read_text())["tracking"]["instance_nms"] == nms
        ious = []
        for clip in synth_root.read_split("test"):
            ann = Annotation.model_validate_json((out / "annotations" / f"{clip}.json").read_text())
            for f in range(0, 300, 25):
                masks = [rle_mod.decode(s.masks[f].model_dump()) for s in ann.sources if s.masks[f] is not None]
                ious += [iou(masks[i], masks[j]) for i in range(len(masks)) for j in range(i)]
        return out, ious

    t = 0.1
    _, off = overlaps(1.0, "off")
    assert max(off) >= t + 0.05  # without NMS the random model's sources overlap: the check below is not vacuous
    out, on = overlaps(t, "on")
    assert max(on, default=0.0) < t + 0.05  # model-size NMS, compared at 512 px
    r = CliRunner().invoke(app, ["--data", str(synth_root.path), "--predictions", str(out), "--instance-nms", "0.3"])
    assert isinstance(r.exception, UserError) and "--checkpoint" in str(r.exception)
    with pytest.raises(UserError, match="instance model"):
        predict_root(checkpoint, synth_root.path, "test", tmp_path / "s", cache=str(cache), progress=False,
                     instance_nms=t)


def test_instance_miou_rule_of_the_sweep():
    from bench.instance_sweep import instance_miou

    a, b, c = (np.zeros((4, 4), bool) for _ in range(3))
    a[:2], b[2:], c[:1] = True, True, True
    # frame 1: a found exactly, b missed; frame 2: a silent object said to sound; frame 3: nothing either side
    assert instance_miou([[a], [c], []], [[a, b], [], []]) == pytest.approx(1 / 3)
    assert instance_miou([[c, a]], [[a]]) == pytest.approx(1 / 2)  # the extra prediction counts 0


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_instance_sweep_cli(synth_root, checkpoint, instance_checkpoint, tmp_path):
    from bench.cli import app

    args = ["instance-sweep", "--data", str(synth_root.path), "--clips", "2", "--thresholds", "0.5",
            "--no-progress"]
    r = CliRunner().invoke(app, [*args, "--checkpoint", str(instance_checkpoint), "--nms", "1,0.1",
                                 "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "instance_sweep.json").read_text())
    off, on = doc["rows"]
    from ssuformer.checkpoint import read_checkpoint

    frames = read_checkpoint(instance_checkpoint)["config"]["data"]["frames"]
    assert (off["nms"], on["nms"]) == (1.0, 0.1) and doc["split"] == "val"
    assert doc["frames"] == min(2, len(synth_root.read_split("val"))) * frames
    assert on["kept_per_frame"] <= off["kept_per_frame"] and 0 <= on["instance_miou"] <= 1
    assert "best at the checkpoint's threshold 0.5: --instance-nms" in r.output
    r = CliRunner().invoke(app, [*args, "--checkpoint", str(instance_checkpoint), "--nms", "0,2"])
    assert isinstance(r.exception, UserError) and "--nms" in str(r.exception)
    r = CliRunner().invoke(app, [*args, "--checkpoint", str(checkpoint)])
    assert isinstance(r.exception, UserError) and "not an instance model" in str(r.exception)
    r = CliRunner().invoke(app, [*args, "--checkpoint", str(instance_checkpoint), "--split", "test"])
    assert isinstance(r.exception, UserError) and "choose settings on val" in str(r.exception)
