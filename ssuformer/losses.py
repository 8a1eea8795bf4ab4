"""Objectives of section IV.C: Dice (L_seg), Focal or cross-entropy (L_tex), L_ada (eq. 4), L_clip (eq. 5-6).

Every loss is a mean over frames of a per-frame value (token losses: mean over the frame's tokens first).
That keeps DDP exact: equal per-process batches averaged by DDP give the same gradient as one process
with the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssuformer.tokenizer import PAD


def dice_per_frame(probs: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """probs, target (N, H, W) -> (N,) 1 - (2|P∩G| + eps) / (|P| + |G| + eps).

    eps keeps frames with an empty target defined: there the loss is |P| / (|P| + 1), pushing P to zero.
    """
    p, g = probs.flatten(1).float(), target.flatten(1).float()
    inter = (p * g).sum(1)
    return 1 - (2 * inter + eps) / (p.sum(1) + g.sum(1) + eps)


def dice_loss(probs: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Mean over frames of dice_per_frame."""
    return dice_per_frame(probs, target, eps).mean()


def bce_per_frame(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = probs.float().clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(p, target.float(), reduction="none").flatten(1).mean(1)


def mask_bce(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return bce_per_frame(probs, target).mean()


def per_frame_mean(values: torch.Tensor, frame: torch.Tensor, frames: int) -> torch.Tensor:
    """values (P,) of pairs in frames `frame` (P,) -> mean over all `frames` frames of each frame's mean over its
    pairs (0 for a frame without pairs): a per-frame value, so DDP's average stays exact (see above)."""
    sums = values.new_zeros(frames).index_add(0, frame, values.float())
    counts = values.new_zeros(frames).index_add(0, frame, torch.ones_like(values, dtype=torch.float32))
    return (sums / counts.clamp(min=1)).mean()


def token_loss_per_row(logits: torch.Tensor, targets: torch.Tensor, focal_gamma: float | None,
                       label_smoothing: float = 0.0) -> torch.Tensor:
    """logits (N, L, V), targets (N, L) with PAD ignored -> (N,) mean loss over each row's tokens (0 when it
    has none). focal_gamma=None: plain cross-entropy.

    Focal: -(1 - p_t)^gamma log p_t per token (Lin et al.), down-weighting tokens already predicted well.
    """
    logp = F.log_softmax(logits.float(), -1)
    ce = F.nll_loss(logp.transpose(1, 2), targets, ignore_index=PAD, reduction="none")  # (N, L)
    if label_smoothing:
        ce = (1 - label_smoothing) * ce - label_smoothing * logp.mean(-1)
    if focal_gamma is not None:
        pt = logp.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1).exp()
        ce = (1 - pt).pow(focal_gamma) * ce
    valid = (targets != PAD).float()
    return (ce * valid).sum(1) / valid.sum(1).clamp(min=1)


def token_loss(logits: torch.Tensor, targets: torch.Tensor, focal_gamma: float | None,
               label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean over frames of token_loss_per_row."""
    return token_loss_per_row(logits, targets, focal_gamma, label_smoothing).mean()


def adaptive_loss(l_seg: torch.Tensor | None, l_tex: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """Eq. 4: a L_seg + (1 - a) L_tex; with one head only (SSU-S / SSU-D) that head's loss alone."""
    if l_seg is None and l_tex is None:
        raise ValueError("no loss to combine")
    if l_tex is None:
        return l_seg  # type: ignore[return-value]
    if l_seg is None:
        return l_tex
    return alpha * l_seg + (1 - alpha) * l_tex
