"""Where a drafter is unsure: the numbers behind the editor's confidence strip, its jump key and the queue order.

A drafted source carries `SoundSource.scores`, the model's per-frame confidence (docs/format.md: for SSUFormer-I,
trained towards the IoU of its mask with the sounding source). Frames a person has redrawn have no score
(`SoundSource.set_masks` drops it), so a fixed frame stops counting as unsure.

- A frame is *unsure* when some source's score there is under the threshold (`UNSURE_BELOW`, 0.5: the drafter
  expects its mask to cover less than half of the source). The page's `u` key jumps to the next such frame.
- A clip's *least confident stretch* is the lowest mean score of `STRETCH` (one second of) consecutive scored
  frames of any one source: one bad frame in a good track does not send the clip to the top of the queue, a
  bad second does. Clips with no scores (truth, people's work, older drafts) have none and sort after.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import numpy as np

from schemas.constants import FPS
from schemas.errors import UserError
from schemas.models import Annotation
from schemas.root import DatasetRoot

UNSURE_BELOW = 0.5  # the editor's default threshold (the page lets a refiner change it)
STRETCH = FPS  # frames: one second


class QueueOrder(StrEnum):
    """How the queue page lists clips."""

    clip = "clip id"
    unsure = "least confident first"


def least_confident_stretch(ann: Annotation, stretch: int = STRETCH) -> float | None:
    """The lowest mean score over `stretch` consecutive scored frames of one source (over all of a source's
    scored frames when it has fewer); None when no source has a score."""
    worst: float | None = None
    for src in ann.sources:
        vals = np.array([v for v in (src.scores or []) if v is not None], dtype=np.float64)
        if not len(vals):
            continue
        k = min(stretch, len(vals))
        low = float((np.convolve(vals, np.ones(k), mode="valid") / k).min())
        worst = low if worst is None else min(worst, low)
    return worst


# (root, clip id) -> (annotation file's mtime, stretch): a queue refresh re-reads only the clips edited since
_CACHE: dict[tuple[str, str], tuple[int, float | None]] = {}


def clip_stretch(root: DatasetRoot, clip_id: str) -> float | None:
    """`least_confident_stretch` of the clip's saved annotation (None when it has no annotation or no scores)."""
    path: Path = root.annotation_path(clip_id)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    key = (str(root.path), clip_id)
    hit = _CACHE.get(key)
    if hit is None or hit[0] != mtime:
        try:
            value = least_confident_stretch(root.read_annotation(clip_id))
        except UserError:
            value = None  # unreadable annotation: the queue still lists the clip, after the scored ones
        hit = _CACHE[key] = (mtime, value)
    return hit[1]


def order_unsure(root: DatasetRoot, clip_ids: list[str]) -> list[tuple[str, float | None]]:
    """(clip id, least confident stretch), least confident first; clips without scores after, in the given order."""
    keyed = [(cid, clip_stretch(root, cid)) for cid in clip_ids]
    return sorted(keyed, key=lambda kv: (kv[1] is None, kv[1] if kv[1] is not None else 0.0))
