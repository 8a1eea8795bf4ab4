"""Validation during training: loss, mIoU / F-score (ssuformer.metrics) and caption scores.

Runs at the model's input size on the T sampled frames (quick); `ssu-eval` scores full-size predictions.
Under DDP every rank validates its share of the clips (rank r: clips r, r + world, ...) with DataLoader
workers; losses and the per-frame IoU / F-score sums are summed over ranks (all_reduce), captions are
gathered to rank 0 for BLEU / ROUGE (corpus scores, which do not add up), and every rank gets the result.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ssuformer.batch import collate, to_device
from ssuformer.config import SSUConfig
from ssuformer.data import CAPTION_JOINER, ClipDataset
from ssuformer.instances import joined_captions
from ssuformer.metrics import caption_scores, group_frame_captions
from ssuformer.metrics.segmentation import Protocol, SegmentationMeter
from ssuformer.runtime import Dist, all_sum, gather_objects


def threshold_miou(probs: np.ndarray, gts: np.ndarray) -> dict[str, float]:
    """Mean per-frame IoU at 0.5 of (N, H, W) arrays, empty/empty = 1: the audio probe's IoU."""
    p, g = probs >= 0.5, gts >= 0.5
    inter = (p & g).reshape(len(p), -1).sum(1)
    union = (p | g).reshape(len(p), -1).sum(1)
    return {"miou": float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean()), "fscore": None}


def text_scores(cands: dict[str, list[str]], refs: dict[str, list[str | None]]) -> dict[str, Any]:
    """BLEU-4 and ROUGE-L of per-frame captions (METEOR skipped: its JVM costs ~12 s per call)."""
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
             dist: Dist | None = None, progress: bool = False) -> dict[str, Any]:
    """Scores of `model` (not its DDP wrapper: each rank runs alone) on this rank's share of `ds`."""
    from tqdm import tqdm

    dist = dist or Dist()
    was_training = model.training
    model.eval()
    n = len(ds) if cfg.train.max_val_clips is None else min(len(ds), cfg.train.max_val_clips)
    mine = list(range(dist.rank, n, dist.world))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, mine), batch_size=max(1, cfg.train.batch_size),
                                         collate_fn=collate, num_workers=cfg.data.workers)
    sums: dict[str, float] = {}
    seg = SegmentationMeter(Protocol.per_frame)  # ssu-eval's per-frame protocol; its sums add up over ranks
    cands: dict[str, list[str]] = {}
    refs: dict[str, list[str | None]] = {}
    for batch in tqdm(loader, desc="validate", unit="batch", disable=not (progress and dist.main), leave=False):
        batch = to_device(batch, dev)
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            parts = model.losses(model(batch), batch, cfg.loss)
            pred = model.predict(batch, beam=cfg.train.beam)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(batch["clip_id"])
        if "probs" in pred:
            seg.update(pred["probs"].float().flatten(0, 1).cpu().numpy(), batch["masks"].flatten(0, 1).cpu().numpy())
        if "tokens" in pred:
            for b, clip_id in enumerate(batch["clip_id"]):
                cands[clip_id] = [ds.tokenizer.decode(t) for t in pred["tokens"][b].tolist()]
                refs[clip_id] = batch["captions"][b]
        elif "inst_tokens" in pred:  # instance mode: the frame's caption is its sources' captions, joined
            for b, clip_id in enumerate(batch["clip_id"]):
                cands[clip_id] = joined_captions(pred["inst_probs"][b].cpu(), pred["inst_scores"][b].cpu(),
                                                 pred["inst_tokens"][b].cpu(), cfg.model.instance_threshold,
                                                 ds.tokenizer.decode, CAPTION_JOINER)
                refs[clip_id] = batch["captions"][b]
    keys = gather_objects(sorted(sums), dist)[0]  # a rank with no clips has no keys: take rank 0's
    out: dict[str, Any] = {k: v / n for k, v in all_sum({k: sums.get(k, 0.0) for k in keys}, dist, dev).items()}
    total = all_sum(seg.sums(), dist, dev)
    if total["frames"]:
        s = SegmentationMeter.from_sums(total).compute()
        out.update(miou=s["miou"], fscore=s["fscore"] if total["f_count"] else None)
    scores = [out["miou"]] if "miou" in out else []
    gathered = gather_objects((cands, refs), dist)
    if cfg.model.caption:
        if dist.main:
            all_c = {k: v for c, _ in gathered for k, v in c.items()}
            all_r = {k: v for _, r in gathered for k, v in r.items()}
            text = text_scores(all_c, all_r) if all_c else {"bleu4": None, "rouge_l": None}
        else:
            text = None
        out.update(gather_objects(text, dist)[0])  # rank 0's scores, on every rank
        if out.get("bleu4") is not None:
            scores.append(out["bleu4"])
    # best checkpoint: mean of mIoU and BLEU-4 where available, else the negated validation loss
    out["score"] = float(np.mean(scores)) if scores else -out["loss"]
    model.train(was_training)
    return out
