"""Choose an instance checkpoint's inference settings on a split it was not trained on (`ssu-bench instance-sweep`).

For every (instance_nms, instance_threshold) pair the model's instances of the split's T sampled frames per
clip are kept as prediction keeps them (mask NMS at that IoU, then score >= threshold) and scored at the
model's size against the truth instances of the same frames, with ssu-eval's instance rule: per frame the
Hungarian IoU sum over max(#truth, #kept) (ssuformer/metrics/instances.py). The union column is the IoU of the
union map (every query's noisy-OR, what the paper's metrics score) thresholded at 0.5, which the settings do
not change. The figures are for choosing: they are not ssu-eval's dense 512 px test figures.
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


def instance_miou(kept: list[list[np.ndarray]], truth: list[list[np.ndarray]]) -> float:
    """Per frame: kept and truth masks (bool, same size) -> sum of Hungarian IoUs / sum of max(#truth, #kept)."""
    from scipy.optimize import linear_sum_assignment

    total = slots = 0.0
    for dts, gts in zip(kept, truth, strict=True):
        if not dts and not gts:
            continue
        slots += max(len(dts), len(gts))
        if dts and gts:
            cost = np.array([[_iou(d, g) for g in gts] for d in dts])
            rows, cols = linear_sum_assignment(cost, maximize=True)
            total += float(cost[rows, cols].sum())
    return total / slots if slots else float("nan")


def sweep(checkpoint: str | Path, root: str | Path, split: str, clips: int | None, nms: list[float],
          thresholds: list[float], progress: bool = False) -> tuple[list[SweepRow], float, int, float]:
    """(a row per setting, union mIoU, frames scored, the checkpoint's instance_threshold) of the first `clips`
    clips of `split`."""
    import torch
    from tqdm import tqdm

    from schemas.errors import UserError
    from ssuformer.batch import collate
    from ssuformer.checkpoint import load_model
    from ssuformer.data import ClipDataset
    from ssuformer.instances import suppress_duplicates

    model, cfg, tok, _ = load_model(checkpoint)
    if not model.cfg.instances:
        raise UserError(f"{checkpoint}: not an instance model (model.instances: true); nothing to sweep")
    ds = ClipDataset(root, split, cfg, tok)
    n = len(ds) if clips is None else min(clips, len(ds))
    probs, raw, truth, union_ious = [], [], [], []
    with torch.no_grad():
        for i in tqdm(range(n), desc="sweep", unit="clip", disable=not progress):
            batch = collate([ds[i]])
            size = batch["images"].shape[-2:]
            seg = model.segment(model.encode(batch["images"], batch["audio"]), tuple(size))
            probs.append(seg["inst_probs"])
            raw.append(seg["inst_scores"])
            masks, valid = batch["inst_masks"].flatten(0, 1).numpy() > 0.5, batch["inst_valid"].flatten(0, 1).numpy()
            truth += [[m for m, v in zip(masks[f], valid[f], strict=True) if v and m.any()] for f in range(len(masks))]
            sem = batch["masks"].flatten(0, 1).numpy() > 0.5
            union = seg["probs"].numpy() > 0.5
            union_ious += [_iou(u, g) if (u | g).any() else 1.0 for u, g in zip(union, sem, strict=True)]
    inst_probs, inst_scores = torch.cat(probs), torch.cat(raw)
    binary = inst_probs.numpy() > 0.5
    rows = []
    for t_nms in nms:
        kept_scores = suppress_duplicates(inst_probs, inst_scores, t_nms).numpy()
        for thr in thresholds:
            keep = kept_scores >= thr
            kept = [[binary[f, q] for q in np.flatnonzero(keep[f]) if binary[f, q].any()] for f in range(len(keep))]
            rows.append(SweepRow(t_nms, thr, instance_miou(kept, truth), float(np.mean([len(k) for k in kept]))))
    return rows, float(np.mean(union_ious)), len(truth), model.cfg.instance_threshold
