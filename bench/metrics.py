"""Time the one-pass mIoU/F-score engine against per-threshold loops, in the same run.

    .venv/bin/python bench/metrics.py                 # 300 frames of 512x512 (the loop takes about a minute)
    .venv/bin/python bench/metrics.py --frames 60     # quicker

Prints the load average (the machine is shared: ratios measured under load are noisy), then seconds for:
- engine: ssuformer.metrics counts every frame once and scores all three protocols from those counts;
- loop: the per-threshold loop quoted in issue 16 (what the AVS code does per frame, in numpy), which gives
  one per-frame F curve per frame;
- count_nonzero loop: per threshold, boolean count_nonzero of |p >= t| and |p >= t & G| (counts only).
Ratios are loop seconds / engine seconds (target >= 50x against the loop); the engine is timed before and after
the loops and their mean is used, so a load that drifts during the long loop weighs on both sides. The
engine's per-frame F curves must equal the loop's (float64) and the protocols must equal
ssuformer.metrics.reference on the first --check-frames frames (the batch protocols bit for bit).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ssuformer.metrics import Protocol, SegmentationMeter, frame_stats
from ssuformer.metrics.protocols import fscore_thresholds
from ssuformer.metrics.reference import reference_protocol_scores
from ssuformer.metrics.segmentation import fcurve


def make_frames(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blob-shaped ground truths (every 7th frame empty) and noisy, smooth-ish probability maps."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    gts = np.zeros((n, size, size), bool)
    probs = np.empty((n, size, size), np.float32)
    for i in range(n):
        cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.25)
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        if i % 7:
            gts[i] = d < r
        shift = rng.uniform(-0.05, 0.05)
        logit = (r + shift - d) * 30 + rng.normal(0, 1, (size, size)).astype(np.float32)
        probs[i] = 1 / (1 + np.exp(-logit))
    return probs, gts


def engine(probs: np.ndarray, gts: np.ndarray, chunk: int = 50) -> dict[Protocol, dict]:
    """All protocols from one counting pass, fed in chunks as ssu-eval does."""
    meters = {p: SegmentationMeter(p) for p in Protocol}
    for s in range(0, len(probs), chunk):
        stats = frame_stats(probs[s:s + chunk], gts[s:s + chunk])
        for m in meters.values():
            m.update_stats(stats)
    return {p: m.compute() for p, m in meters.items()}


def issue_loop(probs: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """The loop quoted in issue 16, one frame at a time: (n, 255) F curves."""
    thresholds, b2 = fscore_thresholds(), 0.3
    out = np.zeros((len(probs), len(thresholds)))
    for i, (p, g) in enumerate(zip(probs, gts, strict=True)):
        f = out[i]
        for k, t in enumerate(thresholds):
            y = p >= t
            tp, sel = (y & g).sum(), y.sum()
            prec, rec = tp / (sel + 1e-20), tp / (g.sum() + 1e-20)
            with np.errstate(invalid="ignore"):
                f[k] = (1 + b2) * prec * rec / (b2 * prec + rec)
    out[np.isnan(out)] = 0
    return out


def count_nonzero_loop(probs: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """Counts per threshold with boolean ops only: a faster, still looping baseline."""
    t = fscore_thresholds()
    out = np.zeros((len(probs), 2, len(t)), np.int64)
    for i, (p, g) in enumerate(zip(probs, gts, strict=True)):
        for k, th in enumerate(t):
            y = p >= th
            out[i, 0, k], out[i, 1, k] = np.count_nonzero(y), np.count_nonzero(y & g)
    return out


def timed(fn, *args):  # noqa: ANN001, ANN202
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--check-frames", type=int, default=20, help="frames checked against the float32 reference")
    args = ap.parse_args()
    probs, gts = make_frames(args.frames, args.size)
    print(f"{args.frames} frames of {args.size}x{args.size}; load average before: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)")

    engine(probs[:2], gts[:2])  # build the lookup tables outside the timing
    fast, t_before = timed(engine, probs, gts)
    curves, t_loop = timed(issue_loop, probs, gts)
    counts, t_cnz = timed(count_nonzero_loop, probs, gts)
    _, t_after = timed(engine, probs, gts)
    t_fast = (t_before + t_after) / 2  # the engine runs before and after the loops: the load drifts

    s = frame_stats(probs, gts)
    same_counts = np.array_equal(counts[:, 0], s.sel) and np.array_equal(counts[:, 1], s.tp)
    curve_diff = float(np.abs(fcurve(s, np.float64) - curves).max())
    k = min(args.check_frames, args.frames)
    ref_diff = 0.0
    for p in Protocol:
        got = engine(probs[:k], gts[:k])[p]
        ref = reference_protocol_scores(probs[:k], gts[:k], p)
        ref_diff = max(ref_diff, *(abs(float(got[m]) - float(ref[m])) for m in ("miou", "fscore")))
    for p in Protocol:
        print(f"  {p.value:12s} mIoU {float(fast[p]['miou']):.6f}  F-score {float(fast[p]['fscore']):.6f}")
    print(f"engine, 3 protocols from one counting pass: {t_fast:8.2f} s  ({t_fast / args.frames * 1e3:.2f} ms/frame; "
          f"mean of {t_before:.2f} s before and {t_after:.2f} s after the loops)")
    print(f"issue-16 per-threshold loop:                {t_loop:8.2f} s   ratio {t_loop / t_fast:7.1f}x")
    print(f"count_nonzero loop:                         {t_cnz:8.2f} s   ratio {t_cnz / t_fast:7.1f}x")
    print(f"counts equal to the count_nonzero loop: {same_counts}; max |F curve - loop's| {curve_diff:.1e}; "
          f"max |score - reference| on {k} frames: {ref_diff:.1e}")
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
