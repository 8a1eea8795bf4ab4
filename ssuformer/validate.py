"""Validation during training: loss, mIoU / F-score (ssuformer.metrics) and caption scores.

Runs at the model's input size on the T sampled frames (quick); `ssu-eval` scores full-size predictions.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np
import torch

from ssuformer.config import SSUConfig
from ssuformer.data import ClipDataset, collate


def threshold_miou(probs: np.ndarray, gts: np.ndarray) -> dict[str, float]:
    """Mean per-frame IoU at 0.5 of (N, H, W) arrays, empty/empty = 1: the fallback when ssuformer.metrics
    is unavailable, and the audio probe's IoU."""
    p, g = probs >= 0.5, gts >= 0.5
    inter = (p & g).reshape(len(p), -1).sum(1)
    union = (p | g).reshape(len(p), -1).sum(1)
    return {"miou": float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean()), "fscore": None}


def seg_scores(probs: np.ndarray, gts: np.ndarray) -> dict[str, Any]:
    try:
        from ssuformer.metrics import segmentation_scores
    except ImportError:
        return threshold_miou(probs, gts)
    s = segmentation_scores(probs, gts)
    return {"miou": float(s["miou"]), "fscore": float(s["fscore"])}


def text_scores(cands: dict[str, list[str]], refs: dict[str, list[str | None]]) -> dict[str, Any]:
    """BLEU-4 and ROUGE-L of per-frame captions (METEOR skipped: its JVM costs ~12 s per call)."""
    try:
        from ssuformer.metrics import caption_scores, group_frame_captions
    except ImportError:
        return {"bleu4": None, "rouge_l": None}
    c, r = group_frame_captions({k: (cands[k], refs[k]) for k in cands})
    if not c:
        return {"bleu4": None, "rouge_l": None}
    try:
        s = caption_scores(c, r, meteor=False)
    except Exception as e:  # Java missing and the like: validation goes on without caption scores
        warnings.warn(f"caption scores unavailable: {e}", stacklevel=2)
        return {"bleu4": None, "rouge_l": None}
    return {"bleu4": float(s["bleu4"]), "rouge_l": float(s["rouge_l"])}


@torch.no_grad()
def validate(model, ds: ClipDataset, cfg: SSUConfig, dev: torch.device, amp: torch.dtype | None,
             progress: bool = False) -> dict[str, Any]:
    from tqdm import tqdm

    from ssuformer.trainer import to_device

    was_training = model.training
    model.eval()
    n = len(ds) if cfg.train.max_val_clips is None else min(len(ds), cfg.train.max_val_clips)
    sums: dict[str, float] = {}
    probs, gts = [], []
    cands: dict[str, list[str]] = {}
    refs: dict[str, list[str | None]] = {}
    bs = max(1, cfg.train.batch_size)
    for s in tqdm(range(0, n, bs), desc="validate", unit="batch", disable=not progress, leave=False):
        batch = to_device(collate([ds[i] for i in range(s, min(n, s + bs))]), dev)
        ctx = torch.autocast(dev.type, dtype=amp) if amp is not None else contextlib.nullcontext()
        with ctx:
            parts = model.losses(model(batch), batch, cfg.loss)
            pred = model.predict(batch, beam=cfg.train.beam)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(batch["clip_id"])
        if "probs" in pred:
            probs.append(pred["probs"].float().flatten(0, 1).cpu().numpy())
            gts.append(batch["masks"].flatten(0, 1).cpu().numpy())
        if "tokens" in pred:
            for b, clip_id in enumerate(batch["clip_id"]):
                cands[clip_id] = [ds.tokenizer.decode(t) for t in pred["tokens"][b].tolist()]
                refs[clip_id] = batch["captions"][b]
    out: dict[str, Any] = {k: v / n for k, v in sums.items()}
    scores = []
    if probs:
        out.update(seg_scores(np.concatenate(probs), np.concatenate(gts)))
        scores.append(out["miou"])
    if cands:
        out.update(text_scores(cands, refs))
        if out.get("bleu4") is not None:
            scores.append(out["bleu4"])
    # best checkpoint: mean of mIoU and BLEU-4 where available, else the negated validation loss
    out["score"] = float(np.mean(scores)) if scores else -out["loss"]
    model.train(was_training)
    return out
