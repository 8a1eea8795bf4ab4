"""Mask colours for the editor page: colours that stand apart from a clip's own (the page draws the masks).

Pure numpy, no Gradio and no state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Candidates for mask colours: saturated hues and a few tints. A clip gets the ones farthest from its own
# dominant colours, so a green mask never sits on a green object (a fixed palette did).
CANDIDATES: list[tuple[int, int, int]] = [
    (255, 0, 255), (0, 255, 255), (255, 255, 0), (255, 0, 0), (0, 255, 0), (0, 80, 255), (255, 128, 0),
    (128, 0, 255), (0, 255, 128), (255, 0, 128), (128, 255, 0), (0, 128, 255), (255, 255, 255), (255, 160, 200),
    (160, 255, 255), (255, 220, 120),
]


def distinct_palette(frames: Sequence[np.ndarray], n: int) -> list[str]:
    """n hex colours, far from the picture's dominant colours and from each other."""
    n = max(n, 1)
    px = np.concatenate([f[::8, ::8].reshape(-1, 3) for f in frames]).astype(np.int32) if frames else \
        np.zeros((1, 3), np.int32)
    bins = px // 32  # 8 levels per channel
    keys, counts = np.unique(bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2], return_counts=True)
    common = keys[counts >= max(1, 0.01 * len(px))]
    centres = np.stack([common // 64, (common // 8) % 8, common % 8], 1).astype(np.float32) * 32 + 16
    cand = np.array(CANDIDATES, np.float32)
    from_picture = np.linalg.norm(cand[:, None] - centres[None], axis=-1).min(axis=1)
    chosen: list[int] = []
    for _ in range(min(n, len(cand))):
        score = from_picture.copy()
        if chosen:
            score = np.minimum(score, 0.8 * np.linalg.norm(cand[:, None] - cand[chosen][None], axis=-1).min(axis=1))
        score[chosen] = -1
        chosen.append(int(score.argmax()))
    while len(chosen) < n:  # more sources than candidates: repeat
        chosen.append(chosen[len(chosen) % len(CANDIDATES)])
    return ["#{:02x}{:02x}{:02x}".format(*CANDIDATES[i]) for i in chosen]
