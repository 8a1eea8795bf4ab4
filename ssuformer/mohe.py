"""Mixture of Hierarchical-prompted Experts (Fig. 6), the expert side: features and their cache.

Expert side (offline, `ssu-train cache-expert`): a frozen LLaVA-family model reads each sampled frame with a
text prompt; the hidden states of a few of its layers (the "hierarchical prompts": a deep and a middle layer
by default) over the visual-text prompt are average-pooled to `tokens` vectors and cached per clip as
float16 (T, levels, tokens, dim). Training never loads the 7B model.

The model side (the router that mixes these features into the caption decoder) is ssuformer/router.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from schemas import atomic
from schemas.errors import UserError
from schemas.media import read_frames
from ssuformer.config import ExpertConfig, SSUConfig
from ssuformer.sampling import sample_frames
from ssuformer.weights import offline

META = "meta.json"


def cache_key(cfg: ExpertConfig, frames: list[int]) -> str:
    blob = json.dumps([cfg.name_or_path, cfg.prompt, cfg.layers, cfg.tokens, frames])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cache_dir(root_path: Path, cfg: ExpertConfig, frames: list[int]) -> Path:
    return Path(cfg.cache) if cfg.cache else root_path / ".cache" / f"expert-{cache_key(cfg, frames)}"


def expert_cache_for(root_path: Path, cfg: SSUConfig) -> Path | None:
    """The expert-feature cache a model config reads from this root, or None when MoHE is off."""
    if not cfg.model.mohe:
        return None
    return cache_dir(root_path, cfg.model.expert, sample_frames(cfg.data.frames))


def read_meta(folder: Path) -> dict:
    path = folder / META
    if not path.is_file():
        raise UserError(f"{folder}: no expert cache; run `ssu-train cache-expert --data ROOT --config ...` first")
    return json.loads(path.read_text())


def load_features(folder: Path, clip_id: str) -> np.ndarray:
    path = folder / f"{clip_id}.npy"
    if not path.is_file():
        raise UserError(f"{path}: clip not in the expert cache; re-run `ssu-train cache-expert`")
    return np.load(path)


class LlavaExpert:
    """The frozen expert: LlavaForConditionalGeneration + its processor, from a hub id or a local folder."""

    def __init__(self, cfg: ExpertConfig, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        self.cfg = cfg
        try:
            self.processor = AutoProcessor.from_pretrained(cfg.name_or_path, local_files_only=offline())
            self.model = LlavaForConditionalGeneration.from_pretrained(
                cfg.name_or_path, local_files_only=offline(), dtype=dtype).to(device).eval()
        except OSError as e:
            raise UserError(f"model.expert.name_or_path: cannot load {cfg.name_or_path} ({e}); "
                            "give a local folder or a cached hub id") from None
        self.device = device

    @torch.no_grad()
    def features(self, frames: np.ndarray) -> np.ndarray:
        """frames (T, H, W, 3) uint8 -> (T, levels, tokens, dim) float16."""
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        inputs = self.processor(images=images, text=[self.cfg.prompt] * len(images), return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        out = self.model(**inputs, output_hidden_states=True)
        hs = out.hidden_states
        levels = []
        for layer in self.cfg.layers:
            h = hs[layer].float()  # (T, S, D)
            if "attention_mask" in inputs:
                h = h * inputs["attention_mask"][..., None]
            levels.append(torch.nn.functional.adaptive_avg_pool1d(h.transpose(1, 2), self.cfg.tokens).transpose(1, 2))
        return torch.stack(levels, 1).cpu().to(torch.float16).numpy()


def cache_expert(root, cfg: ExpertConfig, frames: list[int], size: int, device: str = "cpu",
                 clip_ids: list[str] | None = None) -> Path:
    """Run the expert once per clip of `root` (all splits by default) and cache its features."""
    from tqdm import tqdm


    folder = cache_dir(root.path, cfg, frames)
    folder.mkdir(parents=True, exist_ok=True)
    ids = clip_ids if clip_ids is not None else sorted({i for ids in root.splits().values() for i in ids})
    if not ids:
        raise UserError(f"{root.path}: no clips in the splits; make splits first")
    expert = LlavaExpert(cfg, device=device, dtype=torch.float16 if device.startswith("cuda") else torch.float32)
    dim = None
    for clip_id in tqdm(ids, desc="expert features", unit="clip"):
        out = folder / f"{clip_id}.npy"
        if out.is_file():
            dim = dim or int(np.load(out, mmap_mode="r").shape[-1])
            continue
        feats = expert.features(read_frames(root.clip_path(clip_id), frames, size=size))
        dim = int(feats.shape[-1])
        with atomic.atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, feats)
    atomic.write_json(folder / META, {"expert": cfg.name_or_path, "prompt": cfg.prompt, "layers": cfg.layers,
                                      "tokens": cfg.tokens, "frames": frames, "dim": dim}, indent=2)
    return folder
