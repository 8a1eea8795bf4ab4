"""Probability maps at another size than the ground truth, and the compact uint8 form they are stored in.

Scoring compares probabilities with the ground truth at the ground truth's size (512x512): a smaller map is
resampled bilinearly with half-pixel centres, which is torch.nn.functional.interpolate(mode="bilinear",
align_corners=False) written in numpy (so this package stays numpy-only), and clipped to [0, 1]. The AVS
code compares at the model's size instead, with its ground truth resized to it; ours stays as annotated.
ssuformer.predict derives its binary annotations from the very same resampled maps (p > 0.5), so the
probability path and the binary path score the same prediction.

Stored probabilities are uint8 q = round(255 p); q / 255 in float32 is the probability that is scored.
"""

from __future__ import annotations

from functools import cache

import numpy as np

_F32 = np.float32
SCALE = 255  # uint8 probabilities: p = q / 255 (as 8-bit PNG probability maps)
RESAMPLING = "bilinear, half-pixel centres (torch interpolate, align_corners=False), clipped to [0, 1]"


def quantize(probs: np.ndarray) -> np.ndarray:
    """float probabilities in [0, 1] -> uint8 round(255 p)."""
    return np.rint(np.clip(probs, 0, 1) * _F32(SCALE)).astype(np.uint8)


def dequantize(q: np.ndarray) -> np.ndarray:
    """uint8 q -> float32 q / 255."""
    return q.astype(_F32) / _F32(SCALE)


@cache
def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights along one axis, computed as torch does (float32 scale and lambdas)."""
    scale = _F32(n_in) / _F32(n_out)
    src = scale * (np.arange(n_out, dtype=_F32) + _F32(0.5)) - _F32(0.5)
    src = np.maximum(src, _F32(0))
    i0 = src.astype(np.intp)  # floor, src >= 0
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0.astype(_F32)).astype(_F32)
    w0 = (_F32(1) - w1).astype(_F32)
    return i0, i1, w0, w1


def resize_bilinear(probs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, h, w) float32 -> (n, H, W) float32, bilinear with half-pixel centres, clipped to [0, 1].

    Raises ValueError when a value is outside [0, 1] or NaN (the clip only absorbs rounding, never bad input).
    """
    probs = np.asarray(probs, dtype=_F32)
    n, h, w = probs.shape
    if (h, w) == tuple(size):
        return probs
    if probs.size and not (probs.min() >= 0 and probs.max() <= 1):
        raise ValueError("probs must lie in [0, 1] (apply a sigmoid to logits first); found values outside, or NaN")
    r0, r1, a0, a1 = _axis(h, size[0])
    c0, c1, b0, b1 = _axis(w, size[1])
    rows = probs[:, :, c0] * b0 + probs[:, :, c1] * b1  # along the width first, as torch's kernel
    out = np.empty((n, *size), _F32)
    a0, a1 = a0[:, None], a1[:, None]
    for i in range(n):  # frame by frame: the temporaries stay in cache
        top = rows[i, r0]
        top *= a0
        bottom = rows[i, r1]
        bottom *= a1
        np.add(top, bottom, out=out[i])
    return np.clip(out, 0, 1, out=out)
