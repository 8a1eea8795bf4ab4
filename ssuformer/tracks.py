"""Per-frame instances -> tracks through a clip (one track per predicted sound source).

Input: the predicted frames in increasing order, each with its instances: a binary mask (any fixed size, e.g.
the model's), a score in [0, 1] and a caption. Output: tracks, each a map frame -> index of its instance in
that frame's list (with the instance's score and caption), numbered 0, 1, ... by first appearance, and tracks
born in the same frame from left to right (centroid x, then y).

Per frame:
1. Instances with an empty mask are dropped (no region to link or draw). Duplicates are dropped: an instance
   whose mask overlaps a higher-scoring one at IoU >= `dedup_iou` (the visible masks of two sources are
   disjoint, so two such predictions are one source found twice; it would be a second, spurious track).
2. Linkable tracks: those seen at most `max_gap` frames before this frame.
3. Affinity of an instance and a track = max(IoU with the track's last mask, IoU with that mask shifted by the
   track's centroid velocity times the frames elapsed). The shift keeps a fast source linked across frames it
   missed (hidden behind another, or a sparse mask stride); the unshifted IoU keeps it linked when occlusion
   moved the centroid of its visible part and so corrupted the velocity.
4. Hungarian assignment (scipy's linear_sum_assignment) maximising the summed affinity over pairs at
   affinity >= `iou` (pairs below count as no link, so a weak pair never displaces a strong one); a crossing
   of two sources is resolved jointly rather than greedily.
5. Every unlinked instance starts a new track.

What this cannot do: re-identify a source that is unseen (silent, hidden) for more than `max_gap` frames, or
that comes back away from its predicted place (its motion changed, or it re-emerges from behind another as a
sliver overlapping its predicted mask at IoU < `iou`): it comes back as a new track (a refiner merges the two).
Captions take no part in linking: a source's caption changes as it moves ("on the left" -> "in the middle")
and two sources of one kind share captions, so caption equality is neither necessary nor sufficient.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

# 0.3: a source moving ~200 px/s at 30 fps shifts ~7 px a frame, so consecutive masks of one source (objects
# of 90-150 px) overlap at IoU >= 0.8, and about 0.5 when half of it slides behind another; masks of
# different sources, whose visible pixels are disjoint, score near 0. 0.3 keeps the partly hidden source and
# refuses a track's last place merely grazed by another source (the usual VIS / MOT range is 0.3-0.5).
LINK_IOU = 0.3
# One second at 30 fps: a source briefly hidden, or missed by the model for a few frames, keeps its track;
# after a second of silence it has moved up to ~200 px, too far for IoU linking to be trusted.
MAX_GAP = 30
DEDUP_IOU = 0.5
VELOCITY_WINDOW = 5  # observations


@dataclass(frozen=True)
class Instance:
    """One predicted source in one frame."""

    mask: np.ndarray  # (H, W) bool
    score: float      # probability that it is a sounding source, in [0, 1]
    caption: str = ""


@dataclass(frozen=True)
class TrackParams:
    iou: float = LINK_IOU          # least affinity of a link
    max_gap: int = MAX_GAP         # frames a track may go unseen and still be linked
    dedup_iou: float = DEDUP_IOU   # same-frame IoU at which the lower-scoring instance is a duplicate

    def as_dict(self) -> dict[str, float | int | str]:
        return {"link": "hungarian", "link_iou": self.iou, "max_gap_frames": self.max_gap,
                "dedup_iou": self.dedup_iou, "motion": "last mask shifted by centroid velocity"}


@dataclass
class Track:
    """One linked source: its instances, by frame."""

    id: int
    members: dict[int, int] = field(default_factory=dict)    # frame -> index in that frame's instance list
    scores: dict[int, float] = field(default_factory=dict)
    captions: dict[int, str] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return min(self.members)

    @property
    def last(self) -> int:
        return max(self.members)


@dataclass
class _Live:
    """What linking needs of a track: its last mask and its recent centroids."""

    track: Track
    mask: np.ndarray
    frame: int
    seen: list[tuple[int, np.ndarray]]  # (frame, centroid (y, x)) of the last VELOCITY_WINDOW observations

    @property
    def velocity(self) -> np.ndarray:
        """px per frame (y, x) over the window: two neighbours alone give the pixel rounding of the masks."""
        (f0, c0), (f1, c1) = self.seen[0], self.seen[-1]
        return (c1 - c0) / (f1 - f0) if f1 > f0 else np.zeros(2)

    def see(self, frame: int, mask: np.ndarray) -> None:
        self.mask, self.frame = mask, frame
        self.seen = [*self.seen[-(VELOCITY_WINDOW - 1):], (frame, centroid(mask))]


def centroid(mask: np.ndarray) -> np.ndarray:
    """(y, x) mean of the mask's pixels (the mask is not empty)."""
    ys, xs = np.nonzero(mask)
    return np.array([ys.mean(), xs.mean()])


def shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The mask moved by (dy, dx) pixels; what leaves the frame is lost, what enters is empty."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = mask[max(-dy, 0):h - max(dy, 0),
                                                                     max(-dx, 0):w - max(dx, 0)]
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def _affinity(inst: np.ndarray, live: _Live, frame: int) -> float:
    best = iou(inst, live.mask)
    d = np.rint(live.velocity * (frame - live.frame)).astype(int)
    if d.any():
        best = max(best, iou(inst, shift(live.mask, int(d[0]), int(d[1]))))
    return best


def keep(instances: Sequence[Instance], dedup_iou: float) -> list[int]:
    """Indices of the instances worth linking: non-empty masks, duplicates of higher scores removed; in order
    left to right (centroid x, then y, then index) so that new tracks are numbered that way."""
    by_score = sorted((i for i, s in enumerate(instances) if s.mask.any()), key=lambda i: (-instances[i].score, i))
    kept: list[int] = []
    for i in by_score:
        if all(iou(instances[i].mask, instances[j].mask) < dedup_iou for j in kept):
            kept.append(i)
    cents = {i: centroid(instances[i].mask) for i in kept}
    return sorted(kept, key=lambda i: (cents[i][1], cents[i][0], i))


def link(frames: Iterable[tuple[int, Sequence[Instance]]], params: TrackParams = TrackParams()) -> list[Track]:
    """Tracks of the instances of `frames` ((frame, instances) in increasing frame order), numbered by first
    appearance then left to right. Reads one frame at a time: only the live tracks' last masks are kept."""
    tracks: list[Track] = []
    live: list[_Live] = []
    previous = -1
    for frame, instances in frames:
        if frame <= previous:
            raise ValueError(f"frames must increase: {frame} after {previous}")
        previous = frame
        idx = keep(instances, params.dedup_iou)
        live = [lv for lv in live if frame - lv.frame <= params.max_gap]
        gain = np.array([[_affinity(instances[i].mask, lv, frame) for lv in live] for i in idx]).reshape(
            len(idx), len(live))
        gain[gain < params.iou] = 0.0  # no link: a weak pair must not displace a strong one
        rows, cols = linear_sum_assignment(gain, maximize=True)
        linked = {int(r): int(c) for r, c in zip(rows, cols, strict=True) if gain[r, c] > 0}
        for r, i in enumerate(idx):
            inst = instances[i]
            if r in linked:
                lv = live[linked[r]]
                lv.see(frame, inst.mask)
                track = lv.track
            else:
                track = Track(id=len(tracks))
                tracks.append(track)
                live.append(_Live(track, inst.mask, frame, [(frame, centroid(inst.mask))]))
            track.members[frame] = i
            track.scores[frame] = float(inst.score)
            track.captions[frame] = inst.caption
    return tracks
