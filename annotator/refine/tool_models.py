"""The editor's model tools: the registry of the heavy models (SAM, SAM2, the VLM) that every user of one
server shares.

Each model is loaded once and only ever called behind one lock per model: SAM's predictor keeps the last
image's embedding as state (set_image), so two users must not interleave set_image/predict. Nothing here is
per user. The app talks to three small protocols so that the controller can be tested with any
implementation; `ToolModels.load` builds adapters (model_adapters) over annotator.models.loaders from the same
ModelsConfig that ssu-annotate uses.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Protocol, TypeVar

import numpy as np

from annotator.models.settings import Direction, ModelKind, ModelsConfig
from annotator.refine import model_adapters
from schemas.errors import UserError

__all__ = ["Captioner", "Propagator", "Segmenter", "ToolModels"]

T = TypeVar("T")
# The app's tool names (they appear in provenance keys such as refine:vlm:<login>) -> the model kind and flag.
TOOLS = {"sam": ModelKind.sam, "sam2": ModelKind.sam2, "vlm": ModelKind.captioner}


class Segmenter(Protocol):
    """Point/box prompt on one image -> one mask (SAM, or SAM2's image predictor)."""

    name: str

    def segment(self, image: np.ndarray, points: np.ndarray, labels: np.ndarray,
                box: np.ndarray | None) -> np.ndarray:
        """image (H, W, 3) uint8; points (N, 2) float xy; labels (N,) 1 = positive, 0 = negative;
        box (4,) xyxy or None -> (H, W) bool."""
        ...


class Propagator(Protocol):
    """A mask on one frame -> masks on the other frames of a range (SAM2 video predictor)."""

    name: str

    def propagate(self, frames: np.ndarray, seed_index: int, seed_mask: np.ndarray,
                  direction: Direction) -> list[np.ndarray]:
        """frames (N, H, W, 3) uint8 of the chosen range; seed_index is the seed's position in it.
        Returns N (H, W) bool masks (the seed's own entry included)."""
        ...


class Captioner(Protocol):
    """Frame + region mask + category -> one sentence about the region (the VLM)."""

    name: str

    def caption(self, frame: np.ndarray, mask: np.ndarray | None, category: str, prompt: str | None) -> str: ...


class ToolModels:
    """Shared models behind locks; a missing model makes its tool answer with a clear message."""

    def __init__(self, segmenter: Segmenter | None = None, propagator: Propagator | None = None,
                 captioner: Captioner | None = None) -> None:
        self.segmenter = segmenter
        self.propagator = propagator
        self.captioner = captioner
        self._locks = {k: threading.Lock() for k in TOOLS}

    def _call(self, which: str, model: object | None, fn: Callable[[], T]) -> T:
        if model is None:
            raise UserError(self.off_reason(which))
        with self._locks[which]:
            return fn()

    def segment(self, image: np.ndarray, points: np.ndarray, labels: np.ndarray,
                box: np.ndarray | None = None) -> np.ndarray:
        seg = self.segmenter
        mask = self._call("sam", seg, lambda: seg.segment(image, points, labels, box))  # type: ignore[union-attr]
        return _check_mask(mask, image.shape[:2], "SAM")

    def propagate(self, frames: np.ndarray, seed_index: int, seed_mask: np.ndarray,
                  direction: Direction) -> list[np.ndarray]:
        prop = self.propagator
        masks = self._call("sam2", prop,
                           lambda: prop.propagate(frames, seed_index, seed_mask, direction))  # type: ignore[union-attr]
        if len(masks) != len(frames):
            raise RuntimeError(f"propagator returned {len(masks)} masks for {len(frames)} frames")
        return [_check_mask(m, frames.shape[1:3], "SAM2") for m in masks]

    def caption(self, frame: np.ndarray, mask: np.ndarray | None, category: str, prompt: str | None = None) -> str:
        cap = self.captioner
        text = self._call("vlm", cap, lambda: cap.caption(frame, mask, category, prompt))  # type: ignore[union-attr]
        return " ".join(str(text).split())

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold every model's lock (in one fixed order): for a caller that uses the same model objects outside
        this registry, such as the automatic draft of uploads, which shares SAM, SAM2 and the VLM with the tools."""
        with contextlib.ExitStack() as stack:
            for k in TOOLS:
                stack.enter_context(self._locks[k])
            yield

    @staticmethod
    def off_reason(which: str) -> str:
        return f"no {which.upper()} model is loaded; start ssu-refine with {TOOLS[which].flag} PATH_OR_HUB_ID"

    def off_reasons(self) -> dict[str, str]:
        """{tool: why it is off} for each of sam, sam2, vlm without a model (the editor disables their buttons)."""
        return {k: self.off_reason(k) for k, name in self.names().items() if name is None}

    def names(self) -> dict[str, str | None]:
        return {"sam": getattr(self.segmenter, "name", None), "sam2": getattr(self.propagator, "name", None),
                "vlm": getattr(self.captioner, "name", None)}

    def describe(self, which: str) -> tuple[str, str | None]:
        """(name, version) of a model for provenance: which is sam, sam2 or vlm."""
        model = {"sam": self.segmenter, "sam2": self.propagator, "vlm": self.captioner}[which]
        return getattr(model, "name", which), getattr(model, "version", None)

    @classmethod
    def load(cls, models: ModelsConfig, kinds: Collection[ModelKind]) -> ToolModels:
        """Load the models of `kinds` once (through annotator.models.loaders); the other tools stay off."""
        return cls(segmenter=model_adapters.load_segmenter(models) if ModelKind.sam in kinds else None,
                   propagator=model_adapters.load_propagator(models) if ModelKind.sam2 in kinds else None,
                   captioner=model_adapters.load_captioner(models) if ModelKind.captioner in kinds else None)


def _check_mask(mask: np.ndarray, shape: tuple[int, ...], who: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != tuple(shape):
        raise RuntimeError(f"{who} returned a mask of shape {mask.shape}, expected {tuple(shape)}")
    return mask.astype(bool)
