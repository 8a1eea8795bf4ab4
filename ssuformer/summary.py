"""`ssu-train summary`: parameters per module and FLOPs per sample, measured on the built model.

The model is built with random weights (pretrained files are not needed to count) on the meta device when
possible, so the paper config costs no memory; FLOPs come from torch.utils.flop_counter.FlopCounterMode
over one training-shaped forward of one clip (T frames, captions of max length, teacher forced).
"""

from __future__ import annotations

import torch

from ssuformer.config import SSUConfig
from ssuformer.model import SSUFormer, param_counts
from ssuformer.weights import without_pretrained

PAPER_PARAMS = 319.62e6
PAPER_FLOPS = 1.596e12


class _VocabOnly:
    """Stands in for a trained tokenizer: the model only needs the vocabulary size to be built."""

    def __init__(self, n: int) -> None:
        self.vocab_size = n

    def token_text(self, i: int) -> str:
        return ""


def _fmt(n: float) -> str:
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def build_for_summary(cfg: SSUConfig, expert_dim: int, device: str = "meta"):

    cfg = cfg.model_copy(deep=True)
    cfg.model = without_pretrained(cfg.model)  # counting needs the architecture, not the pretrained files
    if cfg.model.max_caption_tokens == "auto":  # fixed by the train captions; the paper's figure here
        cfg.model.max_caption_tokens = 32
    with torch.device(device):
        return SSUFormer(cfg.model, _VocabOnly(cfg.model.vocab_size), expert_dim=expert_dim,  # type: ignore[arg-type]
                         random_clip=True), cfg


def count_flops(model, cfg: SSUConfig, expert_dim: int, device: str) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    t, s, L = cfg.data.frames, cfg.data.image_size, cfg.model.max_caption_tokens
    with torch.device(device):
        batch = {"images": torch.rand(1, t, 3, s, s), "audio": torch.randn(1, t, 1, 96, 64),
                 "tokens": torch.full((1, t, L), 5, dtype=torch.long)}
        if cfg.model.mohe:
            batch["expert"] = torch.randn(1, t, len(cfg.model.expert.layers), cfg.model.expert.tokens, expert_dim)
    counter = FlopCounterMode(display=False)
    with counter:  # grad mode on: the module tracker of FlopCounterMode trips over no_grad here
        model.eval()(batch)
    return int(counter.get_total_flops())


def summarize(cfg: SSUConfig, expert_dim: int = 4096) -> str:

    try:
        model, cfg = build_for_summary(cfg, expert_dim, "meta")
        flops = count_flops(model, cfg, expert_dim, "meta")
        where = "meta device"
    except Exception:  # an op without a meta kernel: fall back to real (random) weights on the CPU
        model, cfg = build_for_summary(cfg, expert_dim, "cpu")
        flops = count_flops(model, cfg, expert_dim, "cpu")
        where = "cpu, random weights"
    rows = param_counts(model)
    lines = [f"SSUFormer config {cfg.name!r}: T={cfg.data.frames} frames of {cfg.data.image_size}px per sample",
             f"{'module':<18}{'trainable':>14}{'frozen':>14}"]
    tot_tr = tot_fr = 0
    for name, (tr, fr) in rows.items():
        lines.append(f"{name:<18}{_fmt(tr):>14}{_fmt(fr):>14}")
        tot_tr += tr
        tot_fr += fr
    lines.append(f"{'total':<18}{_fmt(tot_tr):>14}{_fmt(tot_fr):>14}   all: {_fmt(tot_tr + tot_fr)} "
                 f"(paper: {_fmt(PAPER_PARAMS)})")
    lines.append(f"FLOPs per sample (forward, {where}): {_fmt(flops)} = {_fmt(flops / cfg.data.frames)} per frame "
                 f"(paper: {_fmt(PAPER_FLOPS)}; the LLaVA expert is cached offline and not counted)")
    return "\n".join(lines)
