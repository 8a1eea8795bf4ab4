"""Which frames of a clip a sample shows: T slots of equal length, one frame per slot.

Evaluation (and training without jitter) takes each slot's centre (T=10: 15, 45, ..., 285). With
`data.jitter`, training draws one frame at random inside each slot instead (seeded per clip and epoch), so
over the epochs the model sees every annotated frame and not 3 % of them.
"""

from __future__ import annotations

import hashlib

import numpy as np

from schemas.constants import NUM_FRAMES


def sample_frames(t: int) -> list[int]:
    """T frame indices spread evenly over the 300, centred in their slots (T=10: 15, 45, ..., 285)."""
    return [int((k + 0.5) * NUM_FRAMES / t) for k in range(t)]


def jitter_frames(t: int, rng: np.random.Generator) -> list[int]:
    """One frame drawn uniformly inside each of the T slots [k*300/T, (k+1)*300/T)."""
    edges = [round(k * NUM_FRAMES / t) for k in range(t + 1)]
    return [int(rng.integers(edges[k], edges[k + 1])) for k in range(t)]


def frames_key(frames: list[int]) -> str:
    """The frame list's part of a cache file name: the indices, or their hash when that is too long for a name."""
    key = "-".join(map(str, frames))
    if len(key) > 80:
        key = f"n{len(frames)}-" + hashlib.sha1(key.encode()).hexdigest()[:16]
    return key
