"""Time the vectorized mIoU/F-score against the straightforward per-threshold loop, in the same run.

    .venv/bin/python bench/metrics.py                 # 300 frames of 512x512 (the loop takes minutes)
    .venv/bin/python bench/metrics.py --frames 40     # quicker

Prints seconds for each implementation, their ratio (target >= 100x) and the largest absolute difference
of the numbers over the three protocols (target <= 1e-6; the batch protocols are expected to be 0).
The loop is ssuformer.metrics.reference: the AVSBench / AVSegFormer formulas in numpy float32, one pass
over the frame per threshold. A second, tighter loop (boolean count_nonzero per threshold, counts only)
is timed too, so the ratio against a loop that does less work is on record as well.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ssuformer.metrics import Protocol, segmentation_scores
from ssuformer.metrics.protocols import fscore_thresholds
from ssuformer.metrics.reference import reference_protocol_scores


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


def tight_loop(probs: np.ndarray, gts: np.ndarray) -> float:
    """Counts per threshold with boolean ops only (no float multiply): a faster but still looping baseline."""
    t = fscore_thresholds()
    total = 0
    for p, g in zip(probs, gts, strict=True):
        for th in t:
            y = p >= th
            total += np.count_nonzero(y) + np.count_nonzero(y & g)
    return float(total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    probs, gts = make_frames(args.frames, args.size)
    print(f"{args.frames} frames of {args.size}x{args.size}")

    t0 = time.perf_counter()
    fast = {p: segmentation_scores(probs, gts, p) for p in Protocol}
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = {p: reference_protocol_scores(probs, gts, p) for p in Protocol}
    t_slow = time.perf_counter() - t0
    t0 = time.perf_counter()
    tight_loop(probs, gts)
    t_tight = time.perf_counter() - t0  # one pass over the data, like one protocol

    diff = 0.0
    for p in Protocol:
        for k in ("miou", "fscore"):
            d = abs(float(fast[p][k]) - float(slow[p][k]))  # type: ignore[arg-type]
            diff = max(diff, d)
            print(f"  {p.value:12s} {k:7s} vectorized {float(fast[p][k]):.9f}  loop {float(slow[p][k]):.9f}"  # type: ignore[arg-type]
                  f"  |diff| {d:.2e}")
    print(f"vectorized (3 protocols): {t_fast:8.2f} s")
    print(f"reference loop (3 prot.): {t_slow:8.2f} s   ratio {t_slow / t_fast:7.1f}x")
    print(f"tight bool loop (1 pass): {t_tight:8.2f} s   ratio {t_tight / (t_fast / 3):7.1f}x  (vs one protocol)")
    print(f"max |difference|: {diff:.2e}  ({'ok' if diff <= 1e-6 else 'TOO LARGE'})")


if __name__ == "__main__":
    main()
