"""Choose an instance checkpoint's inference settings on a split it was not trained on (`ssu-bench instance-sweep`).

For every (instance_nms, instance_threshold) pair the model's instances of the split's T sampled frames per
clip are kept as prediction keeps them (mask NMS at that IoU, then score >= threshold) and scored at the
model's size against the truth instances of the same frames, with ssu-eval's instance rule: the Hungarian
IoU sums over the sums of max(#truth, #kept) per frame (ssuformer/metrics/instances.py). The union figure is
the paper's per-frame mIoU (SegmentationMeter, as validation computes it) of the union map, every query's
noisy-OR, which the settings do not change. Truth is what training sees (data.instance_targets: at most Q
sources a frame). The figures are for choosing: they are not ssu-eval's dense 512 px test figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SweepRow:
    nms: float
    threshold: float
    instance_miou: float
    kept_per_frame: float


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 0.0


def instance_sums(kept: list[list[np.ndarray]], truth: list[list[np.ndarray]]) -> tuple[float, int]:
    """Per frame: kept and truth masks (bool, same size) -> (sum of Hungarian IoUs, sum of max(#truth, #kept))."""
    from scipy.optimize import linear_sum_assignment

    total, slots = 0.0, 0
    for dts, gts in zip(kept, truth, strict=True):
        if not dts and not gts:
            continue
        slots += max(len(dts), len(gts))
        if dts and gts:
            cost = np.array([[_iou(d, g) for g in gts] for d in dts])
            rows, cols = linear_sum_assignment(cost, maximize=True)
            total += float(cost[rows, cols].sum())
    return total, slots


def instance_miou(kept: list[list[np.ndarray]], truth: list[list[np.ndarray]]) -> float:
    """ssu-eval's instance rule: sum of Hungarian IoUs over sum of max(#truth, #kept), frames pooled."""
    total, slots = instance_sums(kept, truth)
    return total / slots if slots else float("nan")


def sweep(checkpoint: str | Path, root: str | Path, split: str, clips: int | None, nms: list[float],
          thresholds: list[float], progress: bool = False) -> tuple[list[SweepRow], float, int, float]:
    """(a row per setting, union mIoU, frames scored, the checkpoint's instance_threshold) of the first `clips`
    clips of `split`. One clip at a time: only the running sums are kept."""
    import torch
    from tqdm import tqdm

    from schemas.errors import UserError
    from ssuformer.batch import collate
    from ssuformer.checkpoint import load_model
    from ssuformer.data import ClipDataset
    from ssuformer.instances import suppress_duplicates
    from ssuformer.metrics.segmentation import Protocol, SegmentationMeter

    model, cfg, tok, _ = load_model(checkpoint)
    if not model.cfg.instances:
        raise UserError(f"{checkpoint}: not an instance model (model.instances: true); nothing to sweep")
    ds = ClipDataset(root, split, cfg, tok)
    n = len(ds) if clips is None else min(clips, len(ds))
    union = SegmentationMeter(Protocol.per_frame)  # the paper's per-frame mIoU of the union map, as validation
    settings = [(t_nms, thr) for t_nms in nms for thr in thresholds]
    sums = {k: [0.0, 0, 0] for k in settings}  # IoU sum, slots, kept instances
    frames = 0
    with torch.no_grad():
        for i in tqdm(range(n), desc="sweep", unit="clip", disable=not progress):
            batch = collate([ds[i]])
            seg = model.segment(model.encode(batch["images"], batch["audio"]), tuple(batch["images"].shape[-2:]))
            union.update(seg["probs"].float().numpy(), batch["masks"].flatten(0, 1).numpy())
            masks, valid = batch["inst_masks"].flatten(0, 1).numpy() > 0.5, batch["inst_valid"].flatten(0, 1).numpy()
            truth = [[m for m, v in zip(masks[f], valid[f], strict=True) if v and m.any()] for f in range(len(masks))]
            binary = seg["inst_probs"].numpy() > 0.5
            frames += len(truth)
            for t_nms in nms:
                scores = suppress_duplicates(seg["inst_probs"], seg["inst_scores"], t_nms).numpy()
                for thr in thresholds:
                    keep = scores >= thr
                    kept = [[binary[f, q] for q in np.flatnonzero(keep[f]) if binary[f, q].any()]
                            for f in range(len(keep))]
                    total, slots = instance_sums(kept, truth)
                    acc = sums[(t_nms, thr)]
                    acc[0] += total
                    acc[1] += slots
                    acc[2] += sum(len(k) for k in kept)
    rows = [SweepRow(t_nms, thr, acc[0] / acc[1] if acc[1] else float("nan"), acc[2] / max(frames, 1))
            for (t_nms, thr), acc in sums.items()]
    return rows, float(union.compute()["miou"]), frames, model.cfg.instance_threshold
