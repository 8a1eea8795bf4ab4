"""Shared pieces of the ssu-refine tests (no tests here): users, a controller over a synthetic root, and
simple classical models implementing the protocols of tool_models.py, used where no tiny neural model is available.

ColourSegmenter/ColourPropagator are real (if simple) algorithms, not canned answers: a mask is the
pixels whose colour is close to the colour under the positive clicks (or the seed mask's mean colour).
On the synthetic clips, whose shapes are flat colours, they find the clicked shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from annotator.models.settings import Direction
from annotator.refine.auth import Role, add_user

# Debian's chromium as the browser tests and benchmarks launch it (Playwright's own browsers cannot be installed here)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-22", "rita": "rita-pw-333"}
ROLES = {"alice": Role.refiner, "bob": Role.refiner, "rita": Role.reviewer}


def make_users(path: Path) -> Path:
    for name, pw in PASSWORDS.items():
        add_user(path, name, pw, ROLES[name])
    return path


def _close(image: np.ndarray, rgb: np.ndarray, tol: float) -> np.ndarray:
    return np.linalg.norm(image.astype(np.float32) - rgb[None, None], axis=-1) < tol


class ColourSegmenter:
    name = "colour-threshold"

    def __init__(self, tol: float = 40.0) -> None:
        self.tol = tol

    def segment(self, image, points, labels, box):
        mask = np.zeros(image.shape[:2], bool)
        for (x, y), lab in zip(points, labels, strict=True):
            near = _close(image, image[int(y), int(x)].astype(np.float32), self.tol)
            mask = mask | near if lab else mask & ~near
        if box is not None:
            x0, y0, x1, y1 = (int(v) for v in box)
            inside = np.zeros_like(mask)
            inside[y0:y1 + 1, x0:x1 + 1] = True
            if not len(points):
                c = image[y0:y1 + 1, x0:x1 + 1].reshape(-1, 3).astype(np.float32)
                mask = _close(image, np.median(c, axis=0), self.tol)
            mask &= inside
        return mask


class ColourPropagator:
    name = "colour-track"

    def propagate(self, frames, seed_index, seed_mask, direction: Direction):
        rgb = frames[seed_index][seed_mask].astype(np.float32).mean(axis=0)
        return [_close(f, rgb, 40.0) for f in frames]


class EchoCaptioner:
    """Describes the region by its size and mean colour: enough to see that the VLM path ran."""

    name = "region-stats"

    def caption(self, frame, mask, category, prompt):
        area = int(mask.sum()) if mask is not None else 0
        return f"a {category} covering {area} pixels"
