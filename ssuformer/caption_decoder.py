"""Sound region description (section IV.B.4): a small GPT-style autoregressive decoder.

Each layer: causal self-attention over the caption so far, cross-attention over the condition tokens (fused
audio-visual tokens, audio queries, and with MCM the CLIP tokens of the masked frame), FFN. With MoHE a
router mixes the decoder's last features with the LLaVA expert's prompt features per token (mohe.py).
Decoding: greedy or beam search, batched over frames.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from ssuformer.fusion import FFN, Attn
from ssuformer.tokenizer import BOS, EOS, PAD


@functools.cache
def _causal(n: int, device: torch.device) -> torch.Tensor:
    """(n, n) True above the diagonal: made once per length, not per layer and step (a normal tensor even when
    first asked for under inference mode, so training can use it later)."""
    with torch.inference_mode(False):
        return torch.ones(n, n, dtype=torch.bool, device=device).triu(1)


class CaptionLayer(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.cross = Attn(dim, heads, dropout)
        self.ffn = FFN(dim, dropout)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, mem_mask: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(x)
        x = x + self.self_attn(h, h, h, attn_mask=_causal(x.shape[1], x.device), need_weights=False)[0]
        x = self.cross(x, mem, mask=mem_mask)
        return self.ffn(x)


class CaptionDecoder(nn.Module):
    def __init__(self, vocab: int, dim: int, heads: int, layers: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.max_len = max_len
        self.embed = nn.Embedding(vocab, dim, padding_idx=PAD)
        nn.init.normal_(self.embed.weight, std=0.02)  # tied with the head: keep initial logits small
        self.pos = nn.Parameter(torch.randn(max_len + 1, dim) * 0.02)
        self.layers = nn.ModuleList(CaptionLayer(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied, as GPT-2

    def hidden(self, inputs: torch.Tensor, mem: torch.Tensor, mem_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(inputs) + self.pos[: inputs.shape[1]]
        for layer in self.layers:
            x = layer(x, mem, mem_mask)
        return x

    def logits(self, inputs: torch.Tensor, mem: torch.Tensor, mixer=None, mem_mask: torch.Tensor | None = None
               ) -> torch.Tensor:
        """inputs (N, L) starting with BOS -> (N, L, vocab). mixer: MoHE router, h -> h (optional)."""
        h = self.hidden(inputs, mem, mem_mask)
        if mixer is not None:
            h = mixer(h)
        return self.head(self.norm(h))

    @staticmethod
    def shift(targets: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing inputs: BOS + targets[:-1] (targets end with EOS, then PAD)."""
        bos = torch.full_like(targets[:, :1], BOS)
        return torch.cat([bos, targets[:, :-1]], 1)

    @torch.no_grad()
    def generate(self, mem: torch.Tensor, mixer_factory=None, beam: int = 1, max_len: int | None = None,
                 mem_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(N, <=max_len) token ids ending with EOS (then PAD). mixer_factory(repeat) -> mixer for beams."""
        max_len = min(max_len or self.max_len, self.max_len)
        if beam <= 1:
            return self._greedy(mem, mixer_factory(1) if mixer_factory else None, max_len, mem_mask)
        return self._beam(mem, mixer_factory(beam) if mixer_factory else None, beam, max_len, mem_mask)

    def _greedy(self, mem, mixer, max_len, mem_mask) -> torch.Tensor:
        n = mem.shape[0]
        seq = torch.full((n, 1), BOS, dtype=torch.long, device=mem.device)
        done = torch.zeros(n, dtype=torch.bool, device=mem.device)
        for _ in range(max_len):
            nxt = self.logits(seq, mem, mixer, mem_mask)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            seq = torch.cat([seq, nxt[:, None]], 1)
            done |= nxt == EOS
            if bool(done.all()):
                break
        return seq[:, 1:]

    def _beam(self, mem, mixer, beam, max_len, mem_mask) -> torch.Tensor:
        n, dev = mem.shape[0], mem.device
        memb = mem.repeat_interleave(beam, 0)
        maskb = mem_mask.repeat_interleave(beam, 0) if mem_mask is not None else None
        seq = torch.full((n * beam, 1), BOS, dtype=torch.long, device=dev)
        scores = torch.zeros(n, beam, device=dev)
        scores[:, 1:] = -1e9  # all beams start identical: keep one alive at first
        done = torch.zeros(n * beam, dtype=torch.bool, device=dev)
        for _ in range(max_len):
            logp = F.log_softmax(self.logits(seq, memb, mixer, maskb)[:, -1].float(), -1)  # (n*beam, V)
            vocab = logp.shape[-1]
            # a finished beam only extends with PAD at no cost
            logp = torch.where(done[:, None], torch.full_like(logp, -1e9), logp)
            logp[:, PAD] = torch.where(done, torch.zeros_like(logp[:, PAD]), torch.full_like(logp[:, PAD], -1e9))
            total = (scores.view(-1, 1) + logp).view(n, beam * vocab)
            scores, idx = total.topk(beam, -1)
            src = (idx // vocab) + torch.arange(n, device=dev)[:, None] * beam
            tok = (idx % vocab).view(-1)
            seq = torch.cat([seq[src.view(-1)], tok[:, None]], 1)
            done = done[src.view(-1)] | (tok == EOS) | (tok == PAD)
            if bool(done.all()):
                break
        lengths = ((seq[:, 1:] != PAD) & (seq[:, 1:] != EOS)).sum(1).clamp(min=1).float().view(n, beam)
        best = (scores / lengths).argmax(-1)  # length-normalized, so beams do not favour short captions
        return seq.view(n, beam, -1)[torch.arange(n, device=dev), best, 1:]
