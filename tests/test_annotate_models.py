"""annotator.models.loaders: tiny random models saved to folders and loaded back through the real loaders."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import session_tiny_models

from annotator.models import loaders as M
from annotator.models.settings import Direction
from schemas.errors import UserError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # five tiny models built per session


@pytest.fixture(scope="module")
def cfg():
    return session_tiny_models().models_config(device="cpu", offline=True)


def _frame(seed: int = 0, h: int = 512, w: int = 512) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_sam_box_and_points(cfg):
    sam = M.load_sam(cfg)
    sam.set_image(_frame())
    r = sam.predict(box=np.array([100, 100, 300, 260]))
    assert r.mask.shape == (512, 512) and r.mask.dtype == bool
    r2 = sam.predict(points=np.array([[200, 180]]), labels=np.array([1]), multimask=False)
    assert r2.mask.shape == (512, 512)
    assert sam.info.backend == "segment-anything" and "bytes" in sam.info.version
    with pytest.raises(ValueError):
        sam.predict()


def test_detector_captioner_tagger(cfg):
    det = M.load_detector(cfg)
    dets = det.detect(_frame(1, 200, 300), ["piano", "dog"])
    assert dets and all(0 <= d.box[0] < d.box[2] <= 300 and 0 <= d.box[1] < d.box[3] <= 200 for d in dets)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    cap = M.load_captioner(cfg, max_new_tokens=4)
    mask = np.zeros((512, 512), bool)
    mask[100:200, 150:260] = True
    texts = cap.caption_many([(_frame(2), mask), (_frame(3), mask)], "piano")
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert cap.prompt_text("piano").count("piano") == 1
    tagger = M.load_audio_tagger(cfg)
    wav = np.random.default_rng(0).standard_normal(160_000).astype(np.float32) * 0.1
    s = tagger.scores(wav, 16_000, ["piano", "dog"])
    assert s.shape == (10, 2) and np.all((s >= 0) & (s <= 1))
    assert tagger.params()["audio_prompt"] == "the sound of {label}"


def test_sam2_propagates_both_directions_in_windows(cfg):
    prop = M.load_sam2_video(cfg, window=4)
    assert prop.image_size == 64
    frames = np.stack([_frame(i, 96, 96) for i in range(10)])
    mask = np.zeros((96, 96), bool)
    mask[20:60, 30:70] = True
    seen: list[int] = []
    out = prop.propagate(frames, {4: {7: mask}}, direction=Direction.both, on_frame=seen.append)
    assert sorted(out) == list(range(10)) and all(set(v) <= {7} for v in out.values())
    assert out[4][7].shape == (96, 96)
    assert sorted(set(seen)) == list(range(10)) and len(seen) == 11  # the seed frame starts both passes
    fwd = prop.propagate(frames, {4: {7: mask}}, start=2, end=8, direction=Direction.forward)
    assert sorted(fwd) == [4, 5, 6, 7]
    bwd = prop.propagate(frames, {4: {7: mask}}, start=2, end=8, direction=Direction.backward)
    assert sorted(bwd) == [2, 3, 4]
    with pytest.raises(ValueError):
        prop.propagate(frames, {4: {7: mask}}, start=5, end=20)


def test_sam2_windows_start_at_seeds(cfg):
    prop = M.load_sam2_video(cfg, window=4)
    wins = prop._windows(list(range(0, 12)), {0: {}, 5: {}})
    assert wins == [[0, 1, 2, 3], [3, 4, 5], [5, 6, 7, 8], [8, 9, 10, 11]]
    assert all(len(w) <= 4 for w in wins)


def test_missing_weights_say_what_to_do(cfg, tmp_path):
    bad = cfg.model_copy(update={"sam2": M.ModelSpec(source=str(tmp_path / "nope"))})
    with pytest.raises(UserError, match=r"--sam2 .*nope: no such model.*pass --sam2"):
        M.load_sam2_video(bad)
    hub = cfg.model_copy(update={"detector": M.ModelSpec(source="google/owlv2-base-patch16-ensemble")})
    with pytest.raises(UserError, match=r"huggingface-cli download google/owlv2-base-patch16-ensemble"):
        M.load_detector(hub)
    assert M.present(M.ModelKind.sam, cfg.sam) and not M.present(M.ModelKind.detector, hub.detector)
    assert not M.present(M.ModelKind.sam2, M.ModelSpec(source="facebook/sam2.1-hiera-tiny"))
