"""Mixture of Hierarchical-prompted Experts (Fig. 6), the model side: the router.

For every caption token the decoder feature h attends, per level, over the expert tokens of all cached
frames of the clip (long-term temporal context); a learned router gives softmax weights over
[decoder, level_1, ..., level_K] per token and the output is their weighted sum. The expert features come
from the cache that ssuformer/mohe.py writes.
"""

from __future__ import annotations

import torch
from torch import nn

from ssuformer.fusion import Attn


class MoHERouter(nn.Module):
    def __init__(self, dim: int, expert_dim: int, levels: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Sequential(nn.LayerNorm(expert_dim), nn.Linear(expert_dim, dim))
                                  for _ in range(levels))
        self.attn = nn.ModuleList(Attn(dim, heads, dropout) for _ in range(levels))
        self.router = nn.Linear(dim, levels + 1)
        self.last_weights: torch.Tensor | None = None  # (N, L, 1 + levels), kept for inspection and tests

    def forward(self, h: torch.Tensor, expert: torch.Tensor) -> torch.Tensor:
        """h (N, L, d); expert (N, levels, S, De) -> mixed (N, L, d)."""
        outs = [h]
        for lv, (proj, attn) in enumerate(zip(self.proj, self.attn, strict=True)):
            mem = proj(expert[:, lv].to(h.dtype))
            outs.append(attn(h, mem) - h)  # the attended expert feature, without Attn's residual
        w = self.router(h).softmax(-1)
        self.last_weights = w.detach()
        return torch.einsum("nle,enld->nld", w, torch.stack(outs))
