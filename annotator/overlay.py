"""Drawing masks over pictures, shared by the refine app's renderer and ssu-search's contact sheets."""

from __future__ import annotations

import numpy as np


def outline(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels of `mask` within `width` of its border (no scipy needed: shifted ANDs)."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:] &= inner[:-1]
        shrunk[:-1] &= inner[1:]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner
