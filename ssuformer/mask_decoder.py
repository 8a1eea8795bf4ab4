"""Sound source segmentation (section IV.B.3): a MaskFormer-style decoder with audio-derived queries.

Pixel decoder: an FPN over the 4-level pyramid (the two coarsest levels already audio-fused by MMI) gives
per-pixel embeddings at stride 4. Transformer decoder: the fused audio queries attend to the fused visual
tokens. Each query's MLP embedding dotted with the per-pixel embeddings gives a mask; a per-query score
(softmax over queries) weighs the masks into the frame's semantic sound-source probability map, which stays
in [0, 1] and reduces to the single query's mask when Q = 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssuformer.fusion import FFN, Attn


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, max(1, c // 8)), c)


class PixelDecoder(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.smooth = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, bias=False), _gn(dim), nn.ReLU(inplace=True))
            for _ in range(3))
        self.out = nn.Conv2d(dim, dim, 1)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """levels: 4 maps (N, d, H/s, W/s), s = 4, 8, 16, 32, fine to coarse -> (N, d, H/4, W/4)."""
        x = levels[3]
        for i, lat in enumerate(reversed(levels[:3])):
            x = lat + F.interpolate(x, size=lat.shape[-2:], mode="bilinear", align_corners=False)
            x = self.smooth[i](x)
        return self.out(x)


class MaskDecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.cross = Attn(dim, heads, dropout)
        self.self_attn = Attn(dim, heads, dropout, cross=False)
        self.ffn = FFN(dim, dropout)

    def forward(self, q: torch.Tensor, qpos: torch.Tensor, mem: torch.Tensor, mpos: torch.Tensor) -> torch.Tensor:
        q = self.cross(q, mem, pos_x=qpos, pos_mem=mpos)  # masked attention omitted: few tokens here
        q = self.self_attn(q, pos_x=qpos)
        return self.ffn(q)


class MaskDecoder(nn.Module):
    def __init__(self, dim: int, heads: int, layers: int, queries: int, dropout: float) -> None:
        super().__init__()
        self.pixel = PixelDecoder(dim)
        self.query_pos = nn.Parameter(torch.randn(queries, dim) * 0.02)
        self.layers = nn.ModuleList(MaskDecoderLayer(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.mask_embed = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim),
                                        nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.score = nn.Linear(dim, 1)

    def forward(self, queries: torch.Tensor, levels: list[torch.Tensor], mem: torch.Tensor, mpos: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        """queries (N, Q, d); levels: 4 NCHW maps at d channels; mem/mpos (N, S, d).

        Returns query_masks (N, Q, H/4, W/4) logits, score_logits (N, Q), weights (N, Q) = their softmax,
        probs (N, H/4, W/4), the decoded queries (N, Q, d) and the per-pixel embeddings (N, d, H/4, W/4).
        """
        pix = self.pixel(levels)
        q = queries
        qpos = self.query_pos[None].expand(q.shape[0], -1, -1)
        for layer in self.layers:
            q = layer(q, qpos, mem, mpos)
        q = self.norm(q)
        masks = torch.einsum("nqd,ndhw->nqhw", self.mask_embed(q), pix)
        scores = self.score(q).squeeze(-1)
        weights = scores.softmax(-1)
        probs = torch.einsum("nq,nqhw->nhw", weights, masks.sigmoid())
        return {"query_masks": masks, "score_logits": scores, "weights": weights, "probs": probs, "queries": q,
                "pixels": pix}
