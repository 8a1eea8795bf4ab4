"""Checkpoints: one torch file with model, optimizer, scheduler, step, config and tokenizer, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from schemas.atomic import atomic_path
from schemas.errors import UserError
from ssuformer.config import SSUConfig, config_from_checkpoint
from ssuformer.model import SSUFormer
from ssuformer.tokenizer import CaptionTokenizer
from ssuformer.weights import without_pretrained

FORMAT = 1


def without_files(cfg):
    """The model config to rebuild a checkpoint's model: no pretrained file is read (the checkpoint holds
    every weight, the tiny CLIP's from `ssu-bench pretrain-clip` included)."""
    out = without_pretrained(cfg)
    out.clip.tiny_weights = None
    return out


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    state = {"format": FORMAT, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint; give RUN/best.pt or RUN/last.pt written by ssu-train")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise UserError(f"{path}: not a readable ssu-train checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise UserError(f"{path}: not an ssu-train checkpoint (format {FORMAT})")
    return state


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, config, tokenizer or None, state) from a checkpoint."""

    state = read_checkpoint(path)
    cfg: SSUConfig = config_from_checkpoint(state["config"], source=str(path))
    tok = CaptionTokenizer.from_json(state["tokenizer"]) if state.get("tokenizer") else None
    # the checkpoint holds the trained encoders: the pretrained files are not needed
    model = SSUFormer(without_files(cfg.model), tok, expert_dim=state.get("expert_dim"), loss=cfg.loss)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg, tok, state
