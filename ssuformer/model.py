"""SSUFormer (Fig. 5): encoders -> MMI -> mask decoder and caption decoder (+ MCM, RCC, MoHE).

A batch holds B clips of T frames; frames are flattened to N = B*T for the per-frame parts, while MMI's
audio self-attention and MoHE's expert memory see the whole clip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssuformer.caption_decoder import CaptionDecoder
from ssuformer.config import LossConfig, ModelConfig, RegionFeatures, TextLoss
from ssuformer.encoders import VisualEncoder, build_audio_encoder
from ssuformer.fusion import MMI
from ssuformer.losses import adaptive_loss, dice_loss, mask_bce, token_loss
from ssuformer.mask_decoder import MaskDecoder, _gn
from ssuformer.mcm import FrozenClip, MaskCollaboration
from ssuformer.rcc import rcc_loss
from ssuformer.router import MoHERouter
from ssuformer.tokenizer import CaptionTokenizer


class SSUFormer(nn.Module):
    def __init__(self, cfg: ModelConfig, tokenizer: CaptionTokenizer | None, expert_dim: int | None = None,
                 random_clip: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden
        self.audio_encoder = build_audio_encoder(cfg.audio)
        self.visual_encoder = VisualEncoder(cfg.visual)
        # Levels 1-2 (strides 4, 8) feed only the mask decoder's pixel decoder: without segmentation they get
        # no lateral (an unused module would also break DDP's gradient reduction).
        used = self.visual_encoder.channels if cfg.segmentation else self.visual_encoder.channels[2:]
        self.lateral = nn.ModuleList(nn.Sequential(nn.Conv2d(c, d, 1, bias=False), _gn(d)) for c in used)
        self.fusion = MMI(d, cfg.heads, cfg.fusion_blocks, cfg.audio_queries, cfg.dropout)
        self.mask_decoder = (MaskDecoder(d, cfg.heads, cfg.mask_layers, cfg.audio_queries, cfg.dropout)
                             if cfg.segmentation else None)
        self.caption_decoder = self.clip = self.mcm = self.mohe = None
        if cfg.caption:
            if tokenizer is None:
                raise ValueError("the caption decoder needs a trained tokenizer")
            self.caption_decoder = CaptionDecoder(tokenizer.vocab_size, d, cfg.heads, cfg.caption_layers,
                                                  cfg.max_caption_tokens, cfg.dropout)
            self.mem_norm = nn.LayerNorm(d)
        if cfg.mcm or cfg.rcc:
            self.clip = FrozenClip(cfg.clip, tokenizer, cfg.max_caption_tokens, random_weights=random_clip)
            if cfg.mcm:
                self.mcm = MaskCollaboration(self.clip.vision_dim, d)
        if cfg.mohe:
            if expert_dim is None:
                raise ValueError("MoHE needs the expert's feature size (from the expert cache)")
            self.mohe = MoHERouter(d, expert_dim, len(cfg.expert.layers), cfg.heads, cfg.dropout)

    # -- parts ------------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """images (B, T, 3, H, W) in [0, 1]; audio (B, T, 1, 96, 64) VGGish log-mel examples."""
        b, t = images.shape[:2]
        feats = self.visual_encoder(images.flatten(0, 1))
        levels = [lat(f) for lat, f in zip(self.lateral, feats[len(feats) - len(self.lateral):], strict=True)]
        a = self.audio_encoder(audio.flatten(0, 1))
        queries, fused, mem, pos = self.fusion(a, levels[-2:], t)
        return {"queries": queries, "levels": levels[:-2] + fused, "mem": mem, "pos": pos}

    def segment(self, enc: dict[str, torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        assert self.mask_decoder is not None
        out = self.mask_decoder(enc["queries"], enc["levels"], enc["mem"], enc["pos"])
        # Upsample the stride-4 logits, then squash (as MaskFormer does): upsampled probabilities blur an edge
        # over a whole cell, while logits keep it sharp where the model places it between cells.
        logits = F.interpolate(out["query_masks"], size=size, mode="bilinear", align_corners=False)
        # clamp: softmax weights sum to 1 only up to rounding, and the metrics refuse 1.0000001
        out["probs"] = torch.einsum("nq,nqhw->nhw", out["weights"], logits.sigmoid()).clamp(0, 1)
        return out

    def caption_memory(self, enc: dict[str, torch.Tensor], images: torch.Tensor | None,
                       probs: torch.Tensor | None, region: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Condition tokens for the caption decoder, and (with `region`) RCC's region embedding."""
        parts = [enc["mem"] + enc["pos"], enc["queries"]]
        embed = None
        if self.clip is not None and probs is not None and images is not None:
            frames = images.flatten(0, 1)
            pooled_rcc = region and self.cfg.clip.region == RegionFeatures.pooled
            if self.mcm is not None or pooled_rcc:
                tokens, pooled = self.clip.encode_masked(frames, probs)
                if self.mcm is not None:
                    parts.append(self.mcm(tokens))
                if pooled_rcc:
                    embed = pooled
            if region and not pooled_rcc:
                embed = self.clip.maskclip_region(frames, probs)
        return self.mem_norm(torch.cat(parts, 1)), embed

    def _mixer(self, expert: torch.Tensor | None, frames: int, repeat: int = 1):
        if self.mohe is None:
            return None
        if expert is None:
            raise ValueError("MoHE is on but the batch has no expert features (run ssu-train cache-expert)")
        b, te, lv, p, de = expert.shape
        per_clip = expert.permute(0, 2, 1, 3, 4).reshape(b, lv, te * p, de)  # all cached frames of the clip
        per_frame = per_clip.repeat_interleave(frames * repeat, 0)
        return lambda h: self.mohe(h, per_frame)

    # -- training ---------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, audio = batch["images"], batch["audio"]
        b, t, _, h, w = images.shape
        enc = self.encode(images, audio)
        out: dict[str, torch.Tensor] = {}
        probs = None
        if self.mask_decoder is not None:
            out.update(self.segment(enc, (h, w)))
            probs = out["probs"]
        if self.caption_decoder is not None:
            mem, region = self.caption_memory(enc, images, probs, region=self.cfg.rcc)
            targets = batch["tokens"].flatten(0, 1)
            inputs = self.caption_decoder.shift(targets)
            out["logits"] = self.caption_decoder.logits(inputs, mem, self._mixer(batch.get("expert"), t))
            if region is not None:
                out["region"] = region
        return out

    def losses(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], cfg: LossConfig
               ) -> dict[str, torch.Tensor]:
        parts: dict[str, torch.Tensor] = {}
        l_seg = l_tex = None
        if "probs" in out:
            target = batch["masks"].flatten(0, 1)
            l_seg = parts["dice"] = dice_loss(out["probs"], target)
            if cfg.seg_bce:
                parts["bce"] = mask_bce(out["probs"], target)
                l_seg = l_seg + cfg.seg_bce * parts["bce"]
        if "logits" in out:
            targets = batch["tokens"].flatten(0, 1)
            gamma = cfg.focal_gamma if cfg.text == TextLoss.focal else None
            l_tex = parts["text"] = token_loss(out["logits"], targets, gamma, cfg.label_smoothing)
        total = parts["ada"] = adaptive_loss(l_seg, l_tex, cfg.alpha)
        if self.cfg.rcc and "region" in out:
            parts["clip"] = rcc_loss(self.clip, out["region"], out["logits"], batch["tokens"].flatten(0, 1))
            total = total + cfg.clip_weight * parts["clip"]
        parts["loss"] = total
        return parts

    # -- inference --------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, batch: dict[str, torch.Tensor], beam: int = 1) -> dict[str, torch.Tensor]:
        """probs (B, T, H, W) in [0, 1] and tokens (B, T, <=L) of generated captions, as available."""
        images = batch["images"]
        b, t, _, h, w = images.shape
        enc = self.encode(images, batch["audio"])
        out: dict[str, torch.Tensor] = {}
        probs = None
        if self.mask_decoder is not None:
            probs = self.segment(enc, (h, w))["probs"]
            out["probs"] = probs.view(b, t, h, w)
        if self.caption_decoder is not None:
            mem, _ = self.caption_memory(enc, images, probs)
            expert = batch.get("expert")
            factory = (lambda r: self._mixer(expert, t, r)) if self.mohe is not None else None
            toks = self.caption_decoder.generate(mem, factory, beam=beam)
            out["tokens"] = toks.view(b, t, -1)
        return out


def param_counts(model: SSUFormer) -> dict[str, tuple[int, int]]:
    """Per top-level module: (trainable, frozen) parameter counts."""
    out: dict[str, tuple[int, int]] = {}
    for name, mod in model.named_children():
        tr = sum(p.numel() for p in mod.parameters() if p.requires_grad)
        fr = sum(p.numel() for p in mod.parameters() if not p.requires_grad)
        out[name] = (tr, fr)
    return out

