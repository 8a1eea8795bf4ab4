"""The one-pass counting engine: its buckets are searchsorted's, its counts are the previous engine's and the
per-threshold loop's, bit for bit, including values at and one ulp around every threshold."""

from __future__ import annotations

import numpy as np
import pytest

from ssuformer.metrics.counting import InvalidProbabilities, buckets, count_frames, edges
from ssuformer.metrics.protocols import fscore_thresholds
from ssuformer.metrics.reference import sorted_counts
from ssuformer.metrics.segmentation import frame_stats

F32 = np.float32


def boundary_values() -> np.ndarray:
    """Every edge, one and two ulps either side, 0, -0.0, 1, and k/254 and k/255 (uint8 probabilities)."""
    e, _, _ = edges()
    near = [e, np.nextafter(e, F32(-1)), np.nextafter(e, F32(2))]
    near.append(np.nextafter(near[1], F32(-1)))
    near.append(np.nextafter(near[2], F32(2)))
    extra = [np.float32([0.0, -0.0, 1.0, 0.5]), (np.arange(255) / F32(254)).astype(F32),
             (np.arange(256) / F32(255)).astype(F32)]
    v = np.concatenate(near + extra).astype(F32)
    return v[(v >= 0) & (v <= 1)]


def test_buckets_equal_searchsorted():
    e, _, _ = edges()
    rng = np.random.default_rng(0)
    v = np.concatenate([boundary_values(), rng.random(50_000, dtype=F32), rng.random(2000, dtype=F32) * 1e-30,
                        F32([np.float32(1e-45), -1.0, 1.5, np.inf, -np.inf, np.nan, -0.0])])
    assert np.array_equal(buckets(v), np.searchsorted(e, v, side="right"))


def test_every_16bit_interval_agrees_with_searchsorted():
    """All 65 536 prefixes, at both ends of their interval and in the middle (the tables' corner cases)."""
    e, _, _ = edges()
    p = np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)
    bits = np.concatenate([p, p | np.uint32(0xFFFF), p | np.uint32(0x8000), p | np.uint32(1)])
    v = bits.view(F32)
    ok = ~np.isnan(v)
    assert np.array_equal(buckets(v)[ok], np.searchsorted(e, v[ok], side="right"))
    b = buckets(v[~ok])
    assert np.all((b == 0) | (b == len(e)))  # NaN lands in an invalid bucket


def test_counts_equal_previous_engine_and_loop():
    rng = np.random.default_rng(1)
    bv = boundary_values()
    probs = rng.choice(bv, size=(5, 40, 36)).astype(F32)
    probs[3] = rng.random((40, 36), dtype=F32)
    probs[4] = 0
    gts = rng.random(probs.shape) < 0.4
    gts[2] = False
    s = frame_stats(probs, gts)
    old = sorted_counts(probs, gts)
    for k in ("gt", "pred", "inter", "sel", "tp"):
        assert np.array_equal(getattr(s, k), old[k]), k
    for i in range(len(probs)):  # the definition, threshold by threshold
        for k, th in enumerate(fscore_thresholds()):
            y = probs[i] >= th
            assert s.sel[i, k] == np.count_nonzero(y) and s.tp[i, k] == np.count_nonzero(y & gts[i])
        assert s.pred[i] == np.count_nonzero(probs[i] > 0.5)
        assert s.inter[i] == np.count_nonzero((probs[i] > 0.5) & gts[i])


@pytest.mark.parametrize("bad", [-1e-30, np.nextafter(F32(1), F32(2)), np.nan, np.inf])
def test_out_of_range_values_are_refused(bad):
    p = np.full((1, 4, 4), 0.3, F32)
    p[0, 1, 2] = bad
    with pytest.raises(InvalidProbabilities):
        count_frames(p, np.zeros(p.shape, bool))
