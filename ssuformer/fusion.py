"""Multi-Modality Integration (section IV.B.2, eqs. 2-3): N blocks of self- and cross-attention.

Per block: (1) self-attention over the audio queries of all T frames of a clip (temporal context),
(2) self-attention over each frame's visual tokens, (3) cross-attention with the audio queries as Q and the
visual tokens as K, V (eq. 2-3: audio looks for its source), (4) cross-attention back, visual tokens over the
audio queries, so that the visual features the mask decoder reads are audio-conditioned, (5) FFNs.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn


@functools.cache
def sine_pos_2d(h: int, w: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(h*w, dim) fixed 2-D sine positional encoding (DETR style); made once per shape (callers must not
    write into it), as a normal tensor even under inference mode (see caption_decoder._causal)."""
    with torch.inference_mode(False):
        return _sine_pos_2d(h, w, dim, device, dtype)


def _sine_pos_2d(h: int, w: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    quarter = dim // 4
    freq = torch.exp(torch.arange(quarter, device=device, dtype=torch.float32) * (-math.log(10000.0) / quarter))
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None] * freq[None]  # (h, q)
    xs = torch.arange(w, device=device, dtype=torch.float32)[:, None] * freq[None]  # (w, q)
    y = torch.cat([ys.sin(), ys.cos()], -1)[:, None, :].expand(h, w, 2 * quarter)
    x = torch.cat([xs.sin(), xs.cos()], -1)[None, :, :].expand(h, w, 2 * quarter)
    pos = torch.cat([y, x], -1).reshape(h * w, 4 * quarter)
    if pos.shape[1] < dim:
        pos = torch.nn.functional.pad(pos, (0, dim - pos.shape[1]))
    return pos.to(dtype)


class FFN(nn.Module):
    def __init__(self, dim: int, dropout: float, mult: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.net = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(self.norm(x))


class Attn(nn.Module):
    """Pre-norm residual attention; positions are added to queries and keys, not values."""

    def __init__(self, dim: int, heads: int, dropout: float, cross: bool = True) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None  # no unused parameters (DDP checks)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor, mem: torch.Tensor | None = None, pos_x: torch.Tensor | None = None,
                pos_mem: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_q(x)
        kv = q if mem is None or self.norm_kv is None else self.norm_kv(mem)
        pos_kv = pos_x if mem is None else pos_mem
        k = kv if pos_kv is None else kv + pos_kv
        qq = q if pos_x is None else q + pos_x
        out, _ = self.attn(qq, k, kv, key_padding_mask=mask, need_weights=False)
        return x + out


class MMIBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.audio_self = Attn(dim, heads, dropout, cross=False)
        self.visual_self = Attn(dim, heads, dropout, cross=False)
        self.audio_cross = Attn(dim, heads, dropout)   # eq. 2: Q = W_Q f_a, K = W_K F_v, V = W_V F_v
        self.visual_cross = Attn(dim, heads, dropout)
        self.audio_ffn = FFN(dim, dropout)
        self.visual_ffn = FFN(dim, dropout)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, pos_v: torch.Tensor, frames: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """audio: (N, Q, d) queries, visual: (N, S, d) tokens, N = clips * frames."""
        n, q, d = audio.shape
        a = audio.reshape(n // frames, frames * q, d)          # a clip's queries see each other across time
        a = self.audio_self(a).reshape(n, q, d)
        visual = self.visual_self(visual, pos_x=pos_v)
        a = self.audio_cross(a, visual, pos_mem=pos_v)
        visual = self.visual_cross(visual, a, pos_x=pos_v)
        return self.audio_ffn(a), self.visual_ffn(visual)


class MMI(nn.Module):
    """Fuses audio queries with the visual tokens of the two coarsest pyramid levels, N blocks deep."""

    def __init__(self, dim: int, heads: int, blocks: int, queries: int, dropout: float) -> None:
        super().__init__()
        self.queries = queries
        self.audio_in = nn.Linear(128, dim)
        self.query_embed = nn.Parameter(torch.randn(queries, dim) * 0.02)
        self.level_embed = nn.Parameter(torch.zeros(2, dim))
        self.blocks = nn.ModuleList(MMIBlock(dim, heads, dropout) for _ in range(blocks))

    def forward(self, audio_feat: torch.Tensor, levels: list[torch.Tensor], frames: int
                ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """audio_feat (N, 128); levels: [(N, d, H3, W3), (N, d, H4, W4)] already projected to d.

        Returns fused audio queries (N, Q, d), the fused levels reshaped back to NCHW, and the flattened
        fused tokens with their positions (memory for the decoders).
        """
        a = self.audio_in(audio_feat)[:, None, :] + self.query_embed[None]  # (N, Q, d)
        toks, poss, shapes = [], [], []
        for i, lv in enumerate(levels):
            n, d, h, w = lv.shape
            toks.append(lv.flatten(2).transpose(1, 2))
            poss.append(sine_pos_2d(h, w, d, lv.device, lv.dtype)[None] + self.level_embed[i])
            shapes.append((h, w))
        v = torch.cat(toks, 1)
        pos = torch.cat(poss, 1).expand(v.shape[0], -1, -1)
        for blk in self.blocks:
            a, v = blk(a, v, pos, frames)
        out, start = [], 0
        for h, w in shapes:
            out.append(v[:, start:start + h * w].transpose(1, 2).reshape(v.shape[0], -1, h, w))
            start += h * w
        return a, out, v, pos
