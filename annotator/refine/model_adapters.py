"""Adapters from annotator.models.loaders (the shared model loaders) to the protocols of tool_models.py.

annotator.models.loaders gives a SAM predictor (set_image + predict), a stateless SAM2 VideoPropagator
(propagate(frames, seeds, start, end, direction) -> {frame: {source: mask}}) and a RegionCaptioner. The
app wants one call per tool, so these adapters:
- remember which image SAM last embedded (set_image is the expensive half; repeated clicks on one frame
  reuse it) - safe because ToolModels calls each model under its own lock;
- turn one seed mask into SAM2's seeds dict and its answer back into one mask per frame of the range;
- give the captioner a whole-frame mask when the source has none on that frame.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from annotator.models import loaders as models
from annotator.models.settings import Direction, ModelsConfig


def _fingerprint(image: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(image[::4, ::4]).tobytes() + str(image.shape).encode(),
                           digest_size=16).digest()


class SamSegmenter:
    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.name = predictor.info.name
        self.version = predictor.info.version
        self._last: bytes | None = None

    def segment(self, image: np.ndarray, points: np.ndarray, labels: np.ndarray,
                box: np.ndarray | None) -> np.ndarray:
        key = _fingerprint(image)
        if key != self._last:
            self.predictor.set_image(np.ascontiguousarray(image, dtype=np.uint8))
            self._last = key
        has_pts = points is not None and len(points) > 0
        res = self.predictor.predict(points=np.asarray(points, np.float32) if has_pts else None,
                                     labels=np.asarray(labels, np.int32) if has_pts else None,
                                     box=None if box is None else np.asarray(box, np.float32))
        return np.asarray(res.mask, bool)


class Sam2Propagator:
    def __init__(self, propagator: Any) -> None:
        self.propagator = propagator
        self.name = propagator.info.name
        self.version = propagator.info.version

    def propagate(self, frames: np.ndarray, seed_index: int, seed_mask: np.ndarray,
                  direction: Direction) -> list[np.ndarray]:
        out = self.propagator.propagate(frames, {seed_index: {0: np.asarray(seed_mask, bool)}}, 0, len(frames),
                                        Direction(direction))
        empty = np.zeros(frames.shape[1:3], bool)
        masks = [np.asarray(out.get(i, {}).get(0, empty), bool) for i in range(len(frames))]
        masks[seed_index] = np.asarray(seed_mask, bool)
        return masks


class VlmCaptioner:
    def __init__(self, captioner: Any) -> None:
        self.captioner = captioner
        self.name = captioner.info.name
        self.version = captioner.info.version

    def caption(self, frame: np.ndarray, mask: np.ndarray | None, category: str, prompt: str | None) -> str:
        if mask is None or not mask.any():
            mask = np.ones(frame.shape[:2], bool)  # no region on this frame: describe the whole frame
        return self.captioner.caption(frame, mask, category, prompt)


def load_segmenter(config: ModelsConfig) -> SamSegmenter:
    return SamSegmenter(models.load_sam(config))


def load_propagator(config: ModelsConfig) -> Sam2Propagator:
    return Sam2Propagator(models.load_sam2_video(config))


def load_captioner(config: ModelsConfig) -> VlmCaptioner:
    return VlmCaptioner(models.load_captioner(config))
