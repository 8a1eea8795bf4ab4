"""Per-frame instances -> tracks through a clip (one track per predicted sound source).

Input: the predicted frames in increasing order, each with its instances: a binary mask (any fixed size, e.g.
the model's), a score in [0, 1] and a caption. Output: tracks, each a map frame -> index of its instance in
that frame's list (with the instance's score and caption), numbered 0, 1, ... by first appearance, and tracks
born in the same frame from left to right (centroid x, then y).

Per frame:
1. Instances with an empty mask are dropped (no region to link or draw). Duplicates are dropped: an instance
   whose mask overlaps a higher-scoring one at IoU >= `dedup_iou` (the visible masks of two sources are
   disjoint, so two such predictions are one source found twice; it would be a second, spurious track).
   SSUFormer-I prediction sets `dedup_iou` to the model's instance_nms, which it already applied.
2. Linkable tracks: those seen at most `max_gap` frames before this frame.
3. Affinity of an instance and a track = max(IoU with the track's last mask, IoU with that mask shifted by the
   track's centroid velocity times the frames elapsed). The shift keeps a fast source linked across frames it
   missed (hidden behind another, or a sparse mask stride); the unshifted IoU keeps it linked when occlusion
   moved the centroid of its visible part and so corrupted the velocity.
4. Hungarian assignment (scipy's linear_sum_assignment) maximising the summed affinity over pairs at
   affinity >= `iou` (pairs below count as no link, so a weak pair never displaces a strong one); a crossing
   of two sources is resolved jointly rather than greedily.
5. Re-identification, where instances carry an appearance (a colour histogram of the frame under the mask):
   an instance still unlinked is given to a track unseen in this frame (at most `reid_gap` frames) whose mean
   appearance it matches, histogram intersection >= `reid`, by Hungarian assignment again; an instance about
   as close to two tracks (within `reid_margin`) is not guessed. This is what brings a source back after it
   fell silent: sources of the synthetic data sound only some seconds and move up to ~200 px in a silent
   second, so IoU linking alone splits a source at every silence. The same appearance vetoes an IoU link to
   a track of clearly other colours (similarity < reid / 2): at sparse strides sources move by their own
   size between predicted frames and overlap another's last place.
   Measured on the truth masks (at 128 px) of 30 clips of the synthetic benchmark, 73 sources, every frame:
   IoU alone gives 214 tracks, with appearances 81 and no track holding two sources (every 10th frame: IoU
   alone 568 tracks, 18 of them holding two sources; with appearances 76 and none).
6. Every unlinked instance starts a new track.

What this cannot do: tell apart two sources of the same colours when one reappears after the other fell
silent (re-identification may then join them); without appearances, a source unseen for more than `max_gap`
frames or back away from its predicted place (its motion changed, or it re-emerges from behind another as a
sliver overlapping its predicted mask at IoU < `iou`) comes back as a new track (a refiner merges the two).
Captions take no part in linking: a source's caption changes as it moves ("on the left" -> "in the middle")
and two sources of one kind share captions, so caption equality is neither necessary nor sufficient.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from schemas.constants import NUM_FRAMES

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
# Re-identification by colour: 4 levels per channel (64 bins) keep the histogram stable under compression and
# shading yet separate the synthetic source's 8 saturated colours; 0.6 of shared mass accepts a source whose
# mask also covers some background, and refuses another colour.
COLOUR_LEVELS = 4
REID = 0.6
REID_MARGIN = 0.1
REID_GAP = NUM_FRAMES


@dataclass(frozen=True)
class Instance:
    """One predicted source in one frame."""

    mask: np.ndarray  # (H, W) bool
    score: float      # probability that it is a sounding source, in [0, 1]
    caption: str = ""
    appearance: np.ndarray | None = None  # colour_histogram of the frame under the mask, or None


@dataclass(frozen=True)
class TrackParams:
    iou: float = LINK_IOU          # least affinity of a link
    max_gap: int = MAX_GAP         # frames a track may go unseen and still be linked
    dedup_iou: float = DEDUP_IOU   # same-frame IoU at which the lower-scoring instance is a duplicate
    reid: float | None = REID      # least colour-histogram intersection of a re-identification (None: off)
    reid_margin: float = REID_MARGIN  # how much closer the chosen track must be than the next one
    reid_gap: int = REID_GAP       # frames a track may go unseen and still be re-identified

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {"link": "hungarian", "link_iou": self.iou, "max_gap_frames": self.max_gap,
                "dedup_iou": self.dedup_iou, "motion": "last mask shifted by centroid velocity",
                "reid": "colour histogram intersection" if self.reid is not None else None,
                "reid_min": self.reid, "reid_margin": self.reid_margin, "reid_gap_frames": self.reid_gap,
                "colour_levels": COLOUR_LEVELS}


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
    colour: np.ndarray | None = None     # sum of its instances' appearances

    @property
    def velocity(self) -> np.ndarray:
        """px per frame (y, x) over the window: two neighbours alone give the pixel rounding of the masks."""
        (f0, c0), (f1, c1) = self.seen[0], self.seen[-1]
        return (c1 - c0) / (f1 - f0) if f1 > f0 else np.zeros(2)

    def see(self, frame: int, inst: Instance, jump: bool = False) -> None:
        """Record its instance of `frame`; a re-identified one (`jump`) restarts the motion estimate."""
        self.mask, self.frame = inst.mask, frame
        self.seen = [*([] if jump else self.seen[-(VELOCITY_WINDOW - 1):]), (frame, centroid(inst.mask))]
        if inst.appearance is not None:
            self.colour = inst.appearance if self.colour is None else self.colour + inst.appearance

    def appearance(self) -> np.ndarray | None:
        return None if self.colour is None else self.colour / self.colour.sum()


def colour_histogram(image: np.ndarray, mask: np.ndarray, levels: int = COLOUR_LEVELS) -> np.ndarray:
    """(H, W, 3) uint8 frame and (H, W) bool mask -> (levels**3,) float histogram of the masked pixels, sum 1."""
    q = image[mask].astype(np.int64) * levels // 256  # (n, 3) levels per channel
    bins = np.bincount((q[:, 0] * levels + q[:, 1]) * levels + q[:, 2], minlength=levels ** 3).astype(np.float64)
    return bins / max(bins.sum(), 1.0)


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


def _similarity(inst: Instance, live: _Live) -> float | None:
    """Histogram intersection of the instance's and the track's appearances, None when one is missing."""
    track = live.appearance()
    return None if inst.appearance is None or track is None else float(np.minimum(inst.appearance, track).sum())


def _affinity(inst: Instance, live: _Live, frame: int, params: TrackParams) -> float:
    sim = _similarity(inst, live) if params.reid is not None else None
    if sim is not None and sim < params.reid / 2:
        return 0.0  # clearly another colour: not this source, however it overlaps (sparse strides, crossings)
    best = iou(inst.mask, live.mask)
    d = np.rint(live.velocity * (frame - live.frame)).astype(int)
    if d.any():
        best = max(best, iou(inst.mask, shift(live.mask, int(d[0]), int(d[1]))))
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


def _assign(gain: np.ndarray, least: float, margin: float = 0.0) -> dict[int, int]:
    """Row -> column of the Hungarian assignment maximising the summed gain over pairs at gain >= least (pairs
    below count as no link, so a weak pair never displaces a strong one); with a margin, a row whose next best
    column is within `margin` of its chosen one is left out (ambiguous)."""
    strong = np.where(gain >= least, gain, 0.0)
    rows, cols = linear_sum_assignment(strong, maximize=True)
    out = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        others = np.delete(gain[r], c)  # all of them: a runner-up just below `least` is as ambiguous
        if strong[r, c] > 0 and (not margin or not len(others) or gain[r, c] - others.max() >= margin):
            out[r] = c
    return out


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
        horizon = max(params.max_gap, params.reid_gap if params.reid is not None else 0)
        live = [lv for lv in live if frame - lv.frame <= horizon]
        near = [lv for lv in live if frame - lv.frame <= params.max_gap]
        gain = np.array([[_affinity(instances[i], lv, frame, params) for lv in near] for i in idx]).reshape(
            len(idx), len(near))
        linked = {r: (near[c], False) for r, c in _assign(gain, params.iou).items()}
        if params.reid is not None:
            rest = [r for r in range(len(idx)) if r not in linked and instances[idx[r]].appearance is not None]
            taken = {id(lv) for lv, _ in linked.values()}
            free = [lv for lv in live if id(lv) not in taken and lv.colour is not None]
            sim = np.array([[_similarity(instances[idx[r]], lv) for lv in free] for r in rest]).reshape(
                len(rest), len(free))
            linked |= {rest[r]: (free[c], True) for r, c in _assign(sim, params.reid, params.reid_margin).items()}
        for r, i in enumerate(idx):
            inst = instances[i]
            if r in linked:
                lv, jump = linked[r]
                lv.see(frame, inst, jump)
                track = lv.track
            else:
                track = Track(id=len(tracks))
                tracks.append(track)
                lv = _Live(track, inst.mask, frame, [])
                lv.see(frame, inst)
                live.append(lv)
            track.members[frame] = i
            track.scores[frame] = float(inst.score)
            track.captions[frame] = inst.caption
    return tracks
