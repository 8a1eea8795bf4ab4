"""SSUFormer-I: one mask, one sounding score and one caption per query (model.instances).

The paper's model weighs its Q query masks into one semantic map and writes one caption per frame. In
instance mode each query is a candidate sound source, as in MaskFormer's set prediction:
- the mask decoder's score head gives p(sounding) per query (a sigmoid, not a softmax over queries);
- the frame's union map is the probabilistic OR of the queries' masks weighed by their scores,
  1 - prod_q (1 - p_q m_q), so the paper's metrics still have a semantic mask to score;
- targets (the frame's sources, at most Q) are assigned to queries by Hungarian matching on
  cost_class * -p + cost_dice * Dice + cost_mask * BCE (loss config); a matched pair gets the mask losses and,
  when its source has a caption, the caption losses (eq. 4-6) with the caption decoder conditioned on that
  query (InstanceConditioner); every query gets a BCE on p(sounding) (matched = 1, others = 0);
- with loss.score_target = iou the score learns how well the query's mask covers a sounding source (every
  duplicate of a source scores high), and prediction removes duplicates (model.instance_nms, mask NMS);
- deep supervision (Mask2Former): every earlier decoder layer and refinement stage (model.mask_refine) is
  matched on its own masks and gets the mask losses (not the score loss: see LossConfig.deep_supervision),
  so early layers already separate the sources.
Every loss is a mean over frames of a per-frame value (losses.per_frame_mean), so DDP stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ssuformer.config import LossConfig


class InstanceConditioner(nn.Module):
    """Three condition tokens for the caption decoder that say which source to describe: the query's own
    embedding (what it heard), the pixel-decoder features pooled under its mask (what the region looks
    like: colour, shape) and its mask's geometry (centroid, spread, area: where it is in the frame)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.region = nn.Linear(dim, dim)
        self.geometry = nn.Sequential(nn.Linear(5, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.kind = nn.Parameter(torch.randn(3, dim) * 0.02)  # tells the three tokens apart

    def forward(self, query: torch.Tensor, pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """query (P, d), pixels (P, d, h, w), mask (P, h, w) probabilities -> tokens (P, 3, d).

        The mask is detached: the caption must not bend the mask to suit itself (the mask losses shape it)."""
        m = mask.detach().float()
        w = m / m.sum((1, 2), keepdim=True).clamp(min=1e-6)
        pooled = torch.einsum("pdhw,phw->pd", pixels.float(), w)
        h, wd = m.shape[-2:]
        ys = torch.linspace(0, 1, h, device=m.device)[None, :, None]
        xs = torch.linspace(0, 1, wd, device=m.device)[None, None, :]
        cx, cy = (w * xs).sum((1, 2)), (w * ys).sum((1, 2))
        sx = ((w * (xs - cx[:, None, None]) ** 2).sum((1, 2))).clamp(min=0).sqrt()
        sy = ((w * (ys - cy[:, None, None]) ** 2).sum((1, 2))).clamp(min=0).sqrt()
        geom = torch.stack([cx, cy, sx, sy, m.mean((1, 2))], 1)
        tokens = torch.stack([self.query(query.float()), self.region(pooled), self.geometry(geom)], 1)
        return (tokens + self.kind).to(query.dtype)


def union_probs(inst_probs: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """inst_probs (N, Q, H, W), scores (N, Q) p(sounding) -> (N, H, W): P(some sounding source covers the pixel)."""
    miss = (1 - scores[:, :, None, None] * inst_probs).clamp(0, 1)
    return (1 - miss.prod(1)).clamp(0, 1)


@dataclass
class Pairs:
    """Matched (frame, query, target) index triples, as tensors of equal length P."""

    frame: torch.Tensor
    query: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return int(self.frame.numel())

    def where(self, keep: torch.Tensor) -> Pairs:
        return Pairs(self.frame[keep], self.query[keep], self.target[keep])


def _pair_sums(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, A, P) x (N, B, P) -> (N, A, B) sums of products over P, in fp32 even under autocast (validation
    runs there): pixel counts lose precision in bf16 and overflow fp16."""
    with torch.autocast(a.device.type, enabled=False):
        return torch.einsum("nap,nbp->nab", a.float(), b.float())


@torch.no_grad()
def match(logits: torch.Tensor, scores: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor,
          cfg: LossConfig) -> Pairs:
    """Hungarian matching per frame. logits (N, Q, H, W) mask logits, scores (N, Q) sounding logits,
    targets (N, K, H, W) {0, 1}, valid (N, K) which targets exist -> the matched pairs."""
    from scipy.optimize import linear_sum_assignment

    n, q = scores.shape
    x = logits.flatten(2).float()                                   # (N, Q, P)
    g = targets.flatten(2).float()                                  # (N, K, P)
    p = x.sigmoid()
    npix = x.shape[-1]
    dice = 1 - (2 * _pair_sums(p, g) + 1) / (p.sum(-1)[:, :, None] + g.sum(-1)[:, None, :] + 1)
    # mean BCE of every (query, target) pair without materializing (N, Q, K, P): softplus(x) - x g, summed
    bce = (F.softplus(x).sum(-1)[:, :, None] - _pair_sums(x, g)) / npix
    cost = cfg.cost_dice * dice + cfg.cost_mask * bce - cfg.cost_class * scores.float().sigmoid()[:, :, None]
    cost = cost.cpu().numpy()
    ok = valid.cpu().numpy()
    frames, queries, tgts = [], [], []
    for i in range(n):
        ks = np.flatnonzero(ok[i])
        if len(ks) == 0:
            continue
        rows, cols = linear_sum_assignment(cost[i][:, ks])
        frames += [i] * len(rows)
        queries += rows.tolist()
        tgts += ks[cols].tolist()
    dev = scores.device

    def t(v: list[int]) -> torch.Tensor:
        return torch.tensor(v, dtype=torch.long, device=dev)

    return Pairs(t(frames), t(queries), t(tgts))


def score_targets(pairs: Pairs, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(N, Q) 1 for matched queries, 0 for the others (loss.score_target = matched)."""
    out = torch.zeros(shape, device=device)
    out[pairs.frame, pairs.query] = 1.0
    return out


@torch.no_grad()
def iou_targets(probs: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(N, Q) IoU of each query's mask {p > 0.5} with the frame's source it covers best, 0 without sources
    (loss.score_target = iou). probs (N, Q, H, W), targets (N, K, H, W) {0, 1}, valid (N, K)."""
    m = (probs > 0.5).flatten(2).float()
    g = (targets > 0.5).flatten(2).float() * valid[:, :, None]
    inter = _pair_sums(m, g)
    union = m.sum(-1)[:, :, None] + g.sum(-1)[:, None, :] - inter
    return (inter / union.clamp(min=1)).amax(-1) if g.shape[1] else m.new_zeros(m.shape[:2])


@torch.no_grad()
def suppress_duplicates(probs: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """Mask NMS: (N, Q) scores where a query whose mask {p > 0.5} overlaps the mask of a higher-scoring kept
    query at IoU >= iou gets 0 (iou 1: unchanged). probs (N, Q, H, W)."""
    if iou >= 1:
        return scores
    m = (probs > 0.5).flatten(2).float()
    inter = _pair_sums(m, m)
    area = m.sum(-1)
    ious = (inter / (area[:, :, None] + area[:, None, :] - inter).clamp(min=1)).cpu().numpy()
    order = torch.argsort(scores, dim=1, descending=True).cpu().numpy()
    drop = torch.zeros(scores.shape, dtype=torch.bool)
    for n in range(scores.shape[0]):
        kept: list[int] = []
        for q in order[n].tolist():
            if any(ious[n, q, r] >= iou for r in kept):
                drop[n, q] = True
            else:
                kept.append(q)
    return scores.masked_fill(drop.to(scores.device), 0.0)


def joined_captions(inst_probs: torch.Tensor, inst_scores: torch.Tensor, inst_tokens: torch.Tensor,
                    threshold: float, decode, joiner: str) -> list[str]:
    """One clip's per-frame caption from its instances, as the annotation contract joins sources
    (Annotation.frame_captions): the captions of the predicted sources (score >= threshold) left to right by
    their mask's bounding-box centre (x, then y). A query with no mask pixel above 0.5 has no region and is
    left out, as prediction writes no source for it. inst_probs (T, Q, H, W), inst_scores (T, Q), inst_tokens
    (T, Q, L); decode(ids) -> text."""
    out = []
    for t in range(inst_scores.shape[0]):
        here = []
        for q in (inst_scores[t] >= threshold).nonzero(as_tuple=True)[0].tolist():
            text = decode(inst_tokens[t, q].tolist())
            if not text:
                continue
            ys, xs = (inst_probs[t, q] > 0.5).nonzero(as_tuple=True)
            if len(xs):
                here.append(((float(xs.min() + xs.max()) / 2, float(ys.min() + ys.max()) / 2), q, text))
        out.append(joiner.join(text for _, _, text in sorted(here)))
    return out
