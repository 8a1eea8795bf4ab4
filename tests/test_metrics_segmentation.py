"""mIoU / F-score: hand-computed small cases for every protocol, and bit-for-bit agreement with the
straightforward per-threshold implementation of the AVSBench / AVSegFormer formulas."""

from __future__ import annotations

import numpy as np
import pytest

from ssuformer.metrics import Protocol, SegmentationMeter, segmentation_scores
from ssuformer.metrics.protocols import fscore_thresholds
from ssuformer.metrics.reference import reference_protocol_scores

# 2x2 frames (4 pixels). F at threshold 0 selects all 4 pixels; above 0 only pixels with p > 0.
F_ALL_OF_2 = 1.3 * 0.5 * 1 / (0.3 * 0.5 + 1)  # P = 2/4, R = 1: 0.565217...
F_ALL_OF_1 = 1.3 * 0.25 * 1 / (0.3 * 0.25 + 1)  # P = 1/4, R = 1: 0.302325...


def frame(gt: list[int], p: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(p, np.float32).reshape(2, 2), np.array(gt, bool).reshape(2, 2)


EMPTY_GT_EMPTY_PRED = frame([0, 0, 0, 0], [0, 0, 0, 0])  # IoU 4/4 = 1 (reference empty-GT rule); no F
EMPTY_GT_ONE_PIXEL = frame([0, 0, 0, 0], [0.9, 0, 0, 0])  # IoU 3/4; no F
PERFECT = frame([1, 1, 0, 0], [1, 1, 0, 0])  # IoU 1; F curve: F_ALL_OF_2 at t0, 1 elsewhere
DISJOINT = frame([1, 1, 0, 0], [0, 0, 1, 1])  # IoU 0; F curve: F_ALL_OF_2 at t0, 0 elsewhere
EMPTY_PRED = frame([1, 0, 0, 0], [0, 0, 0, 0])  # IoU 0; F curve: F_ALL_OF_1 at t0, 0 elsewhere (NaN -> 0)
HALF = frame([1, 1, 0, 0], [0.8, 0.3, 0, 0])  # IoU 1/2; F: 1 for t <= 0.3, 0.8125 for t <= 0.8, then 0


def stack(frames: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames])


def check(frames, protocol, miou, fscore):
    probs, gts = stack(frames)
    got = segmentation_scores(probs, gts, protocol)
    assert got["miou"] == pytest.approx(miou, abs=1e-6)
    assert got["fscore"] == pytest.approx(fscore, abs=1e-6)
    ref = reference_protocol_scores(probs, gts, protocol)
    if Protocol(protocol).batch_frames is not None:  # compatibility protocols: identical float32 numbers
        assert (got["miou"], got["fscore"]) == (ref["miou"], ref["fscore"])
    else:
        assert got["miou"] == pytest.approx(ref["miou"], abs=1e-6)
        assert got["fscore"] == pytest.approx(ref["fscore"], abs=1e-6)
    return got


@pytest.mark.parametrize("protocol", list(Protocol))
def test_single_frames(protocol):
    check([EMPTY_GT_EMPTY_PRED], protocol, 1.0, 0.0)  # all frames empty: F of the batch is 0
    check([EMPTY_GT_ONE_PIXEL], protocol, 0.75, 0.0)
    check([PERFECT], protocol, 1.0, 1.0)
    check([DISJOINT], protocol, 0.0, F_ALL_OF_2)
    check([EMPTY_PRED], protocol, 0.0, F_ALL_OF_1)
    check([HALF], protocol, 0.5, 1.0)


def test_short_last_batch():
    # 5 perfect + 5 disjoint + empty/empty + empty prediction = 12 frames
    frames = [PERFECT] * 5 + [DISJOINT] * 5 + [EMPTY_GT_EMPTY_PRED, EMPTY_PRED]
    # avsegformer: batch 1 = 10 frames (mIoU 0.5; mean F curve: F_ALL_OF_2 at t0, 0.5 elsewhere),
    # batch 2 = the 2 last frames (mIoU (1 + 0)/2; F: only EMPTY_PRED counts)
    got = check(frames, "avsegformer", 0.5, (F_ALL_OF_2 + F_ALL_OF_1) / 2)
    assert got["batches"] == 2 and got["batch_frames"] == 10
    # avsbench: one batch of 12: 11 non-empty frames; t0: (10 F_ALL_OF_2 + F_ALL_OF_1) / 11, else 5/11
    got = check(frames, "avsbench", 6 / 12, (10 * F_ALL_OF_2 + F_ALL_OF_1) / 11)
    assert got["batches"] == 1
    got = check(frames, "per-frame", 6 / 12, (10 * F_ALL_OF_2 + F_ALL_OF_1) / 11)
    assert got["empty_gt_frames"] == 1 and got["frames"] == 12


def test_batch_dependence():
    frames = [PERFECT] * 20 + [DISJOINT]
    check(frames, "avsbench", (1 + 0) / 2, (1 + F_ALL_OF_2) / 2)  # batches of 20 and 1
    check(frames, "avsegformer", (1 + 1 + 0) / 3, (1 + 1 + F_ALL_OF_2) / 3)  # 10, 10, 1
    check(frames, "per-frame", 20 / 21, 20 / 21)  # mean curve: 20/21 above t0


def test_half_frame_curve_max():
    # mix HALF with DISJOINT: the mean curve is (1 + 0)/2 for t in (0, 0.3], F_ALL_OF_2 at t0
    check([HALF, DISJOINT], "per-frame", 0.25, max(F_ALL_OF_2, 0.5))


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(3)
    n = 27
    gts = np.zeros((n, 24, 20), bool)
    for i in range(n):
        if i % 5:
            y, x = rng.integers(0, 12, 2)
            gts[i, y:y + rng.integers(1, 12), x:x + rng.integers(1, 10)] = True
    probs = np.clip(gts * rng.uniform(0.2, 0.7) + rng.random(gts.shape) * 0.6, 0, 1).astype(np.float32)
    for protocol in Protocol:
        whole = segmentation_scores(probs, gts, protocol)
        meter = SegmentationMeter(protocol)
        for i in range(0, n, 7):  # chunks that straddle the batch boundaries
            meter.update(probs[i:i + 7], gts[i:i + 7])
        got = meter.compute()
        if protocol.batch_frames:  # float32 batch values do not depend on how frames arrive
            assert got == whole
        else:  # float64 sums: only the summation order differs
            assert got["fscore"] == pytest.approx(whole["fscore"], abs=1e-12)
            assert got["miou"] == pytest.approx(whole["miou"], abs=1e-12)
        ref = reference_protocol_scores(probs, gts, protocol)
        if protocol.batch_frames:
            assert (whole["miou"], whole["fscore"]) == (ref["miou"], ref["fscore"])
        else:
            assert whole["fscore"] == pytest.approx(ref["fscore"], abs=1e-6)
            assert whole["miou"] == pytest.approx(ref["miou"], abs=1e-6)


def test_per_frame_sums_add_up_across_processes():
    """Validation under DDP: each rank's per-frame sums, added, score like one meter over all frames."""
    rng = np.random.default_rng(5)
    gts = rng.random((12, 16, 16)) > 0.6
    gts[3] = False  # an empty ground truth: in the mIoU, not in the F curve
    probs = rng.random((12, 16, 16)).astype(np.float32)
    ranks = [SegmentationMeter(Protocol.per_frame) for _ in range(2)]
    for i, m in enumerate(ranks):
        m.update(probs[i::2], gts[i::2])
    a, b = (m.sums() for m in ranks)
    got = SegmentationMeter.from_sums({k: a[k] + b[k] for k in a}).compute()
    whole = segmentation_scores(probs, gts, Protocol.per_frame)
    assert got["frames"] == 12 and got["empty_gt_frames"] == 1
    assert got["miou"] == pytest.approx(whole["miou"], abs=1e-12)
    assert got["fscore"] == pytest.approx(whole["fscore"], abs=1e-12)
    with pytest.raises(ValueError, match="avsbench"):
        SegmentationMeter(Protocol.avsbench).sums()


def test_values_on_threshold_boundaries():
    """Probabilities exactly at, and one ulp around, every threshold land on the right side (p >= t)."""
    t = fscore_thresholds()
    vals = np.concatenate([t, np.nextafter(t, np.float32(0)), np.nextafter(t, np.float32(2))])
    vals = np.clip(vals, 0, 1).astype(np.float32)
    vals = np.concatenate([vals, np.float32([0.5, np.nextafter(np.float32(0.5), np.float32(1))])])
    vals = np.resize(vals, 32 * 24).reshape(1, 32, 24)
    gts = np.zeros_like(vals, bool)
    gts[0, ::3] = True
    from ssuformer.metrics.reference import frame_pr
    from ssuformer.metrics.segmentation import frame_stats

    s = frame_stats(vals, gts)
    for i, th in enumerate(t):
        assert s.sel[0, i] == np.count_nonzero(vals[0] >= th)
        assert s.tp[0, i] == np.count_nonzero((vals[0] >= th) & gts[0])
    assert s.pred[0] == np.count_nonzero(vals[0] > 0.5)
    prec, rec = frame_pr(vals[0], gts[0])
    assert np.array_equal(prec, s.tp[0].astype(np.float32) / (s.sel[0].astype(np.float32) + np.float32(1e-20)))


def test_thresholds_match_torch_linspace():
    torch = pytest.importorskip("torch")
    ref = torch.linspace(0, 1 - 1e-10, 255).numpy()
    assert ref.dtype == np.float32 and np.array_equal(ref, fscore_thresholds())


def test_bad_inputs():
    p, g = stack([PERFECT])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        segmentation_scores(p * 2, g)
    with pytest.raises(ValueError, match="sigmoid"):
        segmentation_scores(p - 1, g)
    with pytest.raises(ValueError, match="binary"):
        segmentation_scores(p, g.astype(np.uint8) * 255)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        segmentation_scores(p[0], g[0])
    with pytest.raises(ValueError):
        segmentation_scores(np.full_like(p, np.nan), g)
    with pytest.raises(ValueError):
        SegmentationMeter("avs")


def test_scores_of_a_whole_clip_are_ssu_evals(monkeypatch: pytest.MonkeyPatch):
    """segmentation_scores counts a 300-frame clip in ssu-eval's chunks: the same numbers as ssu-eval's loop
    (exactly), and as counting the clip in one piece (float64 sums up to their order)."""
    from ssuformer.metrics import segmentation
    from ssuformer.metrics.segmentation import FRAME_CHUNK, frame_stats

    rng = np.random.default_rng(11)
    gts = rng.random((300, 16, 16)) > 0.6
    gts[::7] = False  # empty ground truths: in the mIoU, not in the F curve
    probs = rng.random((300, 16, 16)).astype(np.float32)
    seen: list[int] = []
    monkeypatch.setattr(segmentation, "frame_stats", lambda p, g: seen.append(len(p)) or frame_stats(p, g))
    for protocol in Protocol:
        seen.clear()
        got = segmentation_scores(probs, gts, protocol)
        assert seen == [FRAME_CHUNK] * (300 // FRAME_CHUNK), seen
        evaluate_loop = SegmentationMeter(protocol)  # ssuformer.metrics.evaluate's loop over a clip
        for start in range(0, 300, FRAME_CHUNK):
            evaluate_loop.update_stats(frame_stats(probs[start:start + FRAME_CHUNK], gts[start:start + FRAME_CHUNK]))
        assert got == evaluate_loop.compute()
        one_piece = SegmentationMeter(protocol)
        one_piece.update_stats(frame_stats(probs, gts))
        whole = one_piece.compute()
        assert got["frames"] == 300 and got["empty_gt_frames"] == whole["empty_gt_frames"] > 0
        assert got["miou"] == pytest.approx(whole["miou"], abs=1e-12)
        assert got["fscore"] == pytest.approx(whole["fscore"], abs=1e-12)
