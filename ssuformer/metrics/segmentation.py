"""mIoU and F-score of sound-source masks, as AVSBench / AVSegFormer compute them, vectorized and streaming.

Per frame we reduce a probability map p (float32 in [0, 1]) and a ground truth g ({0, 1}) to counts:
|G|, |P|, |P & G| with P = p > 0.5, and for each of the 255 F-score thresholds t_k the counts
|p >= t_k| and |p >= t_k & G|. The counts come from one bucketing pass per frame (no loop over thresholds,
no sort), and every metric of every protocol is a function of those counts. The meter keeps only per-frame
numbers of a pending evaluation batch, so any number of clips can stream through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ssuformer.metrics.counting import InvalidProbabilities, count_frames, edges
from ssuformer.metrics.protocols import (
    BETA2,
    F_EPS,
    IOU_EPS,
    NUM_THRESHOLDS,
    SEGMENTATION_VERSION,
    Protocol,
    fscore_thresholds,
)

_F32 = np.float32
# Frames counted at once (ssu-eval also decodes this many): 50 x 512 x 512 keeps the temporaries near 50 MB;
# a whole 300-frame clip in one piece is 2-3x slower per frame.
FRAME_CHUNK = 50


@dataclass
class FrameStats:
    """Sufficient statistics of n frames: every metric here is a function of these counts."""

    pixels: int  # H * W
    gt: np.ndarray  # (n,) |G|
    pred: np.ndarray  # (n,) |P|, P = p > 0.5
    inter: np.ndarray  # (n,) |P & G|
    sel: np.ndarray  # (n, 255) |p >= t_k|
    tp: np.ndarray  # (n, 255) |p >= t_k & G|

    def __len__(self) -> int:
        return int(self.gt.shape[0])


def _check_shapes(probs: np.ndarray, gts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs)
    gts = np.asarray(gts)
    if probs.ndim != 3 or probs.shape != gts.shape:
        raise ValueError(f"probs and gts must both be (N, H, W); got {probs.shape} and {gts.shape}")
    return probs, gts


def _check(probs: np.ndarray, gts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, gts = _check_shapes(probs, gts)
    if not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probs must be float probabilities in [0, 1], got dtype {probs.dtype}")
    if gts.dtype != np.bool_:
        if gts.size and not ((gts == 0) | (gts == 1)).all():  # np.isin is ~10x slower here
            raise ValueError("gts must be binary (bool or 0/1)")
        gts = gts.astype(bool)
    return probs, gts


_OUTSIDE = "probs must lie in [0, 1] (apply a sigmoid to logits first); found values outside, or NaN"


def frame_stats(probs: np.ndarray, gts: np.ndarray) -> FrameStats:
    """Counts for (N, H, W) probabilities in [0, 1] and binary ground truths.

    One counting pass per frame (ssuformer.metrics.counting): each pixel is bucketed by the fixed grid of the
    255 thresholds and 0.5, then one bincount and a reversed cumulative sum give |p >= t_k|, |p >= t_k & G|,
    |p > 0.5| and |p > 0.5 & G| for every k. The comparisons are the reference's float32 comparisons, so the
    counts are exact; every protocol is computed from them.
    """
    probs, gts = _check(probs, gts)
    n, h, w = probs.shape
    _, pos_t, pos_half = edges()
    try:
        ge_all, ge_g = count_frames(probs, gts)
    except InvalidProbabilities:
        raise ValueError(_OUTSIDE) from None
    return FrameStats(pixels=h * w, gt=ge_g[:, 0].copy(), pred=ge_all[:, pos_half].copy(),
                      inter=ge_g[:, pos_half].copy(), sel=ge_all[:, pos_t], tp=ge_g[:, pos_t])


# -- per-frame metrics from counts --------------------------------------------------------------------
def iou_float32(s: FrameStats) -> np.ndarray:
    """mask_iou's per-frame value in float32, including its empty-GT rule and eps."""
    empty = s.gt == 0
    union = s.pred + s.gt - s.inter
    inter = np.where(empty, s.pixels - s.pred, s.inter)  # empty GT: true-negative pixels ...
    union = np.where(empty, s.pixels, union)  # ... over all pixels
    return inter.astype(_F32) / (union.astype(_F32) + _F32(IOU_EPS))


def iou_float64(s: FrameStats) -> np.ndarray:
    """The same IoU without float32 rounding and eps (used by the per-frame protocol)."""
    empty = s.gt == 0
    union = np.where(empty, s.pixels, s.pred + s.gt - s.inter)
    inter = np.where(empty, s.pixels - s.pred, s.inter)
    return inter / union  # union >= |G| >= 1, or H*W for an empty GT


def fcurve(s: FrameStats, dtype: type = np.float64) -> np.ndarray:
    """(n, 255) F_beta curves: F = (1+b2) P R / (b2 P + R), NaN -> 0, computed in `dtype`.

    float32 reproduces Eval_Fmeasure bit for bit: every operand is an exact integer count and each
    operation rounds once, in the reference's order.
    """
    d = np.dtype(dtype).type
    tp = s.tp.astype(d)
    prec = tp / (s.sel.astype(d) + d(F_EPS))
    rec = tp / (s.gt.astype(d)[:, None] + d(F_EPS))
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (d(1 + BETA2) * prec * rec) / (d(BETA2) * prec + rec)
    f[np.isnan(f)] = 0
    return f


# -- streaming meter ----------------------------------------------------------------------------------
class SegmentationMeter:
    """Accumulates mIoU and F-score batch by batch: `update(probs, gts)` in dataset order, then `compute()`.

    Frames may arrive in any chunking (one clip at a time, say); the protocol alone decides the grouping.
    """

    def __init__(self, protocol: Protocol | str = Protocol.per_frame) -> None:
        self.protocol = Protocol(protocol)
        self.frames = 0
        self.empty_gt_frames = 0
        # per-frame protocol: float64 sums
        self._iou_sum = 0.0
        self._f_sum = np.zeros(NUM_THRESHOLDS, np.float64)
        self._f_count = 0
        # batch protocols: per-frame values of the batch being filled, and float32 running sums
        self._pend_iou: list[np.ndarray] = []
        self._pend_f: list[np.ndarray] = []
        self._pend_n = 0
        self._miou_acc = _F32(0.0)  # AverageMeter over float32 tensors stays float32
        self._f_acc = 0.0  # AverageMeter over Python floats (score.max().item()) is float64
        self._batches = 0

    def update(self, probs: np.ndarray, gts: np.ndarray) -> None:
        """Add (N, H, W) probabilities and ground truths, counted FRAME_CHUNK frames at a time (as ssu-eval
        counts them, so the sums and the scores are the same)."""
        probs, gts = _check_shapes(probs, gts)
        for start in range(0, len(probs), FRAME_CHUNK):
            self.update_stats(frame_stats(probs[start:start + FRAME_CHUNK], gts[start:start + FRAME_CHUNK]))

    def update_stats(self, s: FrameStats) -> None:
        n = len(s)
        if n == 0:
            return
        self.frames += n
        self.empty_gt_frames += int(np.count_nonzero(s.gt == 0))
        if self.protocol.batch_frames is None:
            nonempty = s.gt > 0
            self._iou_sum += float(iou_float64(s).sum())
            self._f_sum += fcurve(s, np.float64)[nonempty].sum(axis=0)
            self._f_count += int(np.count_nonzero(nonempty))
            return
        f = fcurve(s, np.float32)
        f[s.gt == 0] = np.nan  # marks frames Eval_Fmeasure skips
        self._pend_iou.append(iou_float32(s))
        self._pend_f.append(f)
        self._pend_n += n
        bs = self.protocol.batch_frames
        if self._pend_n >= bs:
            ious, fs = np.concatenate(self._pend_iou), np.concatenate(self._pend_f)
            full = (len(ious) // bs) * bs
            for i in range(0, full, bs):
                self._add_batch(ious[i:i + bs], fs[i:i + bs])
            self._pend_iou, self._pend_f = [ious[full:]], [fs[full:]]
            self._pend_n = len(ious) - full

    def _add_batch(self, ious: np.ndarray, fs: np.ndarray) -> None:
        self._miou_acc, self._f_acc, self._batches = self._batch_sums(ious, fs)

    def _batch_sums(self, ious: np.ndarray, fs: np.ndarray) -> tuple[np.float32, float, int]:
        miou = _F32(ious.sum(dtype=_F32) / _F32(len(ious)))
        acc = None
        used = 0
        for curve in fs:  # Eval_Fmeasure: sequential float32 sum of the non-empty frames' curves
            if np.isnan(curve[0]):
                continue
            acc = curve.copy() if acc is None else acc + curve
            used += 1
        fval = 0.0 if acc is None else float((acc / _F32(used)).max())
        return _F32(self._miou_acc + miou), self._f_acc + fval, self._batches + 1

    def sums(self) -> dict[str, float]:
        """The per-frame protocol's running sums, by name, to add up across processes (validation under DDP).
        The batch protocols have none: their batches would straddle the processes."""
        if self.protocol.batch_frames is not None:
            raise ValueError(f"the {self.protocol.value} protocol's batches cannot be summed across processes")
        return {"frames": float(self.frames), "empty_gt_frames": float(self.empty_gt_frames),
                "iou_sum": self._iou_sum, "f_count": float(self._f_count),
                **{f"f{i}": float(x) for i, x in enumerate(self._f_sum)}}

    @classmethod
    def from_sums(cls, sums: dict[str, float]) -> SegmentationMeter:
        """A per-frame meter holding `sums` (e.g. the all-reduced sums of every process)."""
        m = cls(Protocol.per_frame)
        m.frames, m.empty_gt_frames = int(sums["frames"]), int(sums["empty_gt_frames"])
        m._f_count = int(sums["f_count"])
        m._iou_sum = float(sums["iou_sum"])
        m._f_sum = np.array([sums[f"f{i}"] for i in range(NUM_THRESHOLDS)], np.float64)
        return m

    def compute(self) -> dict[str, object]:
        """Scores so far; a pending short batch counts as the last batch (DataLoader keeps it)."""
        out: dict[str, object] = {"protocol": self.protocol.value, "version": SEGMENTATION_VERSION,
                                  "frames": self.frames, "empty_gt_frames": self.empty_gt_frames}
        if self.protocol.batch_frames is None:
            mean_f = self._f_sum / self._f_count if self._f_count else np.zeros(NUM_THRESHOLDS)
            k = int(np.argmax(mean_f))
            out.update(miou=self._iou_sum / self.frames if self.frames else 0.0, fscore=float(mean_f[k]),
                       fscore_threshold=float(fscore_thresholds()[k]) if self._f_count else None)
            return out
        miou_acc, f_acc, batches = self._miou_acc, self._f_acc, self._batches
        if self._pend_n:
            miou_acc, f_acc, batches = self._batch_sums(np.concatenate(self._pend_iou),
                                                        np.concatenate(self._pend_f))
        out.update(miou=float(miou_acc / _F32(batches)) if batches else 0.0,
                   fscore=f_acc / batches if batches else 0.0, batches=batches,
                   batch_frames=self.protocol.batch_frames)
        return out


def segmentation_scores(probs: np.ndarray, gts: np.ndarray,
                        protocol: Protocol | str = Protocol.per_frame) -> dict[str, object]:
    """mIoU and F-score of (N, H, W) probabilities in [0, 1] against binary (N, H, W) ground truths.

    Frames must be in dataset order (the batch protocols group consecutive frames). Returns a dict with
    `miou`, `fscore`, `protocol`, `frames`, `empty_gt_frames` and protocol-specific details. The frames are
    counted in chunks (SegmentationMeter.update), so the numbers are ssu-eval's for the same frames.
    """
    meter = SegmentationMeter(protocol)
    meter.update(probs, gts)
    return meter.compute()
