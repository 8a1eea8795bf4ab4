"""A straightforward, slow implementation of the AVSBench / AVSegFormer formulas: one pass per threshold.

It is here to check the vectorized code (tests) and to time it against (bench/metrics.py); do not use it
for real evaluations. It follows the reference scripts step by step in numpy float32: binarize, multiply,
sum, divide, per frame and per threshold, batch means, then the unweighted mean of batch values.
"""

from __future__ import annotations

import numpy as np

from ssuformer.metrics.protocols import BETA2, F_EPS, IOU_EPS, IOU_THRESHOLD, Protocol, fscore_thresholds

_F32 = np.float32


def batch_miou(p: np.ndarray, g: np.ndarray) -> np.float32:
    """mask_iou on one batch of (n, H, W) probabilities."""
    n, h, w = p.shape
    pred = (p > _F32(IOU_THRESHOLD)).astype(_F32)
    target = g.astype(_F32)
    inter = (pred * target).sum(axis=(1, 2), dtype=_F32)
    union = np.maximum(pred, target).sum(axis=(1, 2), dtype=_F32)
    no_obj = target.sum(axis=(1, 2), dtype=_F32) == 0
    inter_no_obj = ((1 - target) * (1 - pred)).sum(axis=(1, 2), dtype=_F32)
    inter[no_obj] = inter_no_obj[no_obj]
    union[no_obj] = _F32(h * w)
    return _F32((inter / (union + _F32(IOU_EPS))).sum(dtype=_F32) / _F32(n))


def frame_pr(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """_eval_pr for one frame: precision and recall at each threshold, one threshold at a time."""
    thresholds = fscore_thresholds()
    prec = np.zeros(len(thresholds), _F32)
    recall = np.zeros(len(thresholds), _F32)
    y = g.astype(_F32)
    for i, th in enumerate(thresholds):
        y_temp = (p >= th).astype(_F32)
        tp = (y_temp * y).sum(dtype=_F32)
        prec[i] = tp / (y_temp.sum(dtype=_F32) + _F32(F_EPS))
        recall[i] = tp / (y.sum(dtype=_F32) + _F32(F_EPS))
    return prec, recall


def batch_fmeasure(p: np.ndarray, g: np.ndarray) -> float:
    """Eval_Fmeasure on one batch: max of the mean F curve of the frames with a non-empty GT."""
    avg_f = None
    used = 0
    score = np.zeros(len(fscore_thresholds()), _F32)
    for i in range(p.shape[0]):
        if g[i].mean() == 0.0:
            continue
        prec, recall = frame_pr(p[i], g[i])
        with np.errstate(invalid="ignore", divide="ignore"):
            f = (_F32(1 + BETA2) * prec * recall) / (_F32(BETA2) * prec + recall)
        f[np.isnan(f)] = 0
        avg_f = f if avg_f is None else avg_f + f
        used += 1
        score = avg_f / _F32(used)
    return float(score.max())


def reference_scores(probs: np.ndarray, gts: np.ndarray, batch_frames: int) -> dict[str, float]:
    """The reference test loop: consecutive batches (last one may be short), unweighted batch means."""
    probs = np.asarray(probs, dtype=_F32)
    miou_acc = _F32(0.0)
    f_acc = 0.0
    batches = 0
    for i in range(0, probs.shape[0], batch_frames):
        p, g = probs[i:i + batch_frames], np.asarray(gts[i:i + batch_frames])
        miou_acc = _F32(miou_acc + batch_miou(p, g))
        f_acc += batch_fmeasure(p, g)
        batches += 1
    return {"miou": float(miou_acc / _F32(batches)), "fscore": f_acc / batches}


def reference_protocol_scores(probs: np.ndarray, gts: np.ndarray, protocol: Protocol | str) -> dict[str, float]:
    """reference_scores for a batch protocol; per-frame treats the whole set as one F-score batch."""
    protocol = Protocol(protocol)
    if protocol.batch_frames is not None:
        return reference_scores(probs, gts, protocol.batch_frames)
    # per-frame: mean IoU over frames (batches of one frame) and one F batch of everything
    n = probs.shape[0]
    miou = float(np.mean([float(batch_miou(np.asarray(probs[i:i + 1], _F32), np.asarray(gts[i:i + 1])))
                          for i in range(n)]))
    return {"miou": miou, "fscore": batch_fmeasure(np.asarray(probs, _F32), np.asarray(gts))}


def sorted_counts(probs: np.ndarray, gts: np.ndarray) -> dict[str, np.ndarray]:
    """The previous engine's per-frame counts (sort each frame, then binary searches): the bucketing pass of
    ssuformer.metrics.counting must give exactly these. Keys as FrameStats: gt, pred, inter, sel, tp."""
    t = fscore_thresholds()
    half = np.array([IOU_THRESHOLD], dtype=_F32)
    out: dict[str, list] = {k: [] for k in ("gt", "pred", "inter", "sel", "tp")}
    for p3, g3 in zip(probs, gts, strict=True):
        p = np.asarray(p3, _F32).ravel()
        g = np.asarray(g3, bool).ravel()
        s, sg = np.sort(p), np.sort(p[g])
        out["sel"].append(s.size - np.searchsorted(s, t, side="left"))
        out["tp"].append(sg.size - np.searchsorted(sg, t, side="left"))
        out["pred"].append(s.size - np.searchsorted(s, half, side="right")[0])
        out["inter"].append(sg.size - np.searchsorted(sg, half, side="right")[0])
        out["gt"].append(sg.size)
    return {k: np.asarray(v, np.int64) for k, v in out.items()}
