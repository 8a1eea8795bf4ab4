"""Resampling probabilities to the ground truth's size, and their uint8 form."""

from __future__ import annotations

import numpy as np
import pytest

from ssuformer.metrics.resample import dequantize, quantize, resize_bilinear


@pytest.mark.parametrize("shape", [(16, 16), (24, 40), (224, 224), (512, 512), (600, 520)])
def test_bilinear_matches_torch_within_one_ulp(shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p = rng.random((2, *shape), dtype=np.float32)
    p[0, :3] = 1.0  # saturated rows: rounding must not leave [0, 1]
    got = resize_bilinear(p, (512, 512))
    ref = torch.nn.functional.interpolate(torch.from_numpy(p)[:, None], size=(512, 512), mode="bilinear",
                                          align_corners=False)[:, 0].numpy()
    assert got.shape == (2, 512, 512) and got.dtype == np.float32
    assert np.abs(got - ref).max() <= np.float32(1.2e-7)
    assert got.min() >= 0 and got.max() <= 1


def test_out_of_range_is_refused_before_resampling():
    with pytest.raises(ValueError, match="sigmoid"):
        resize_bilinear(np.full((1, 8, 8), 1.5, np.float32), (512, 512))
    with pytest.raises(ValueError):
        resize_bilinear(np.full((1, 8, 8), np.nan, np.float32), (512, 512))


def test_uint8_round_trip():
    q = np.arange(256, dtype=np.uint8)
    assert np.array_equal(quantize(dequantize(q)), q)
    assert dequantize(q)[255] == 1.0 and dequantize(q)[0] == 0.0
    assert quantize(np.float32([0.5, 0.501, 1.0, 0.0])).tolist() == [128, 128, 255, 0]
