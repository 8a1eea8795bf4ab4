"""SSUFormer (Fig. 5): encoders -> MMI -> mask decoder and caption decoder (+ MCM, RCC, MoHE).

A batch holds B clips of T frames; frames are flattened to N = B*T for the per-frame parts, while MMI's
audio self-attention and MoHE's expert memory see the whole clip. With model.instances (SSUFormer-I,
instances.py) each query is one sounding source with its own mask, score and caption.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssuformer.caption_decoder import CaptionDecoder
from ssuformer.config import LossConfig, ModelConfig, RegionFeatures, ScoreTarget, TextLoss
from ssuformer.encoders import VisualEncoder, build_audio_encoder
from ssuformer.fusion import MMI
from ssuformer.instances import (
    InstanceConditioner,
    Pairs,
    iou_targets,
    match,
    score_targets,
    suppress_duplicates,
    union_probs,
)
from ssuformer.losses import (
    adaptive_loss,
    bce_per_frame,
    dice_loss,
    dice_per_frame,
    mask_bce,
    per_frame_mean,
    token_loss,
    token_loss_per_row,
)
from ssuformer.mask_decoder import MaskDecoder, _gn
from ssuformer.mcm import FrozenClip, MaskCollaboration
from ssuformer.rcc import rcc_loss
from ssuformer.router import MoHERouter
from ssuformer.tokenizer import PAD, CaptionTokenizer


def used_tokens(targets: torch.Tensor) -> torch.Tensor:
    """targets (N, L) cut after the last column any row uses (at least 1): the PAD columns after it change no
    loss (PAD is ignored; decoding is causal, so earlier positions never see them; RCC reads each row up to its
    length), and teacher-forcing them cost a third of the caption decoder's work at the bench limit."""
    used = int((targets != PAD).sum(1).max()) if targets.numel() else 0
    return targets[:, :max(used, 1)]


class SSUFormer(nn.Module):
    def __init__(self, cfg: ModelConfig, tokenizer: CaptionTokenizer | None, expert_dim: int | None = None,
                 random_clip: bool = False, loss: LossConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.matching = loss or LossConfig()  # instance mode: the Hungarian costs (forward matches targets)
        d = cfg.hidden
        self.audio_encoder = build_audio_encoder(cfg.audio)
        self.visual_encoder = VisualEncoder(cfg.visual)
        # Levels 1-2 (strides 4, 8) feed only the mask decoder's pixel decoder: without segmentation they get
        # no lateral (an unused module would also break DDP's gradient reduction).
        used = self.visual_encoder.channels if cfg.segmentation else self.visual_encoder.channels[2:]
        self.lateral = nn.ModuleList(nn.Sequential(nn.Conv2d(c, d, 1, bias=False), _gn(d)) for c in used)
        self.fusion = MMI(d, cfg.heads, cfg.fusion_blocks, cfg.audio_queries, cfg.dropout)
        self.mask_decoder = (MaskDecoder(d, cfg.heads, cfg.mask_layers, cfg.audio_queries, cfg.dropout,
                                         refine=cfg.mask_refine, stages=cfg.instances)
                             if cfg.segmentation else None)
        self.caption_decoder = self.clip = self.mcm = self.mohe = self.conditioner = None
        if cfg.caption:
            if tokenizer is None:
                raise ValueError("the caption decoder needs a trained tokenizer")
            self.caption_decoder = CaptionDecoder(tokenizer.vocab_size, d, cfg.heads, cfg.caption_layers,
                                                  cfg.max_caption_tokens, cfg.dropout)
            self.mem_norm = nn.LayerNorm(d)
            if cfg.instances:
                self.conditioner = InstanceConditioner(d)
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
        # channels-last: the audio CNN's convolutions and pools run ~1.5x faster in it on CPU (issue 29)
        a = self.audio_encoder(audio.flatten(0, 1).contiguous(memory_format=torch.channels_last))
        queries, fused, mem, pos = self.fusion(a, levels[-2:], t)
        return {"queries": queries, "levels": levels[:-2] + fused, "mem": mem, "pos": pos}

    def segment(self, enc: dict[str, torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        assert self.mask_decoder is not None
        out = self.mask_decoder(enc["queries"], enc["levels"], enc["mem"], enc["pos"])
        # Upsample the stride-4 logits, then squash (as MaskFormer does): upsampled probabilities blur an edge
        # over a whole cell, while logits keep it sharp where the model places it between cells.
        logits = F.interpolate(out["query_masks"], size=size, mode="bilinear", align_corners=False)
        if self.cfg.instances:
            out["inst_logits"] = logits
            out["inst_probs"] = logits.sigmoid()
            out["inst_scores"] = out["score_logits"].sigmoid()
            out["probs"] = union_probs(out["inst_probs"], out["inst_scores"])
            return out
        # clamp: softmax weights sum to 1 only up to rounding, and the metrics refuse 1.0000001
        out["probs"] = torch.einsum("nq,nqhw->nhw", out["weights"], logits.sigmoid()).clamp(0, 1)
        return out

    def caption_memory(self, enc: dict[str, torch.Tensor], images: torch.Tensor | None,
                       probs: torch.Tensor | None, region: bool = False, rows: torch.Tensor | None = None,
                       lead: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Condition tokens for the caption decoder, and (with `region`) RCC's region embedding.

        Instance mode: one memory per (frame, query) pair; `rows` gives each pair's frame, `lead` its
        InstanceConditioner tokens (put first) and `probs` its own mask."""
        mem, pos, queries = enc["mem"], enc["pos"], enc["queries"]
        if rows is not None:
            mem, pos, queries = mem[rows], pos[rows], queries[rows]
        parts = ([lead] if lead is not None else []) + [mem + pos, queries]
        embed = None
        if self.clip is not None and probs is not None and images is not None:
            frames = images.flatten(0, 1) if rows is None else images.flatten(0, 1)[rows]
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

    def _mixer(self, expert: torch.Tensor | None, frames: int, repeat: int = 1, rows: torch.Tensor | None = None):
        """MoHE's router for decoder rows of frames (all N, or `rows`), each repeated `repeat` times (beams)."""
        if self.mohe is None:
            return None
        if expert is None:
            raise ValueError("MoHE is on but the batch has no expert features (run ssu-train cache-expert)")
        b, te, lv, p, de = expert.shape
        per_clip = expert.permute(0, 2, 1, 3, 4).reshape(b, lv, te * p, de)  # all cached frames of the clip
        per_frame = per_clip.repeat_interleave(frames, 0)
        if rows is not None:
            per_frame = per_frame[rows]
        per_frame = per_frame.repeat_interleave(repeat, 0)
        return lambda h: self.mohe(h, per_frame)

    def _instance_memory(self, enc: dict[str, torch.Tensor], seg: dict[str, torch.Tensor], images: torch.Tensor,
                         pairs: Pairs, region: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert self.conditioner is not None
        n, q = pairs.frame, pairs.query
        lead = self.conditioner(seg["queries"][n, q], seg["pixels"][n], seg["query_masks"][n, q].sigmoid())
        return self.caption_memory(enc, images, seg["inst_probs"][n, q], region=region, rows=n, lead=lead)

    def _caption_instances(self, out: dict, enc: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> None:
        """Training / validation: match the frame's sources to queries, then teacher-force each matched
        source's caption conditioned on its query. Without targets (FLOP counting) every query is captioned
        with the frame's caption."""
        images = batch["images"]
        n_frames, q = out["score_logits"].shape
        if "pairs" in out:
            pairs = out["pairs"]
            cap = pairs.where(batch["inst_has_caption"].flatten(0, 1)[pairs.frame, pairs.target])
            if len(cap) == 0:  # nothing to describe: one all-PAD row keeps every weight in the graph (DDP)
                zero = torch.zeros(1, dtype=torch.long, device=images.device)
                cap = Pairs(zero, zero, zero)
                targets = torch.zeros_like(batch["inst_tokens"].flatten(0, 1)[:1, 0])
            else:
                targets = batch["inst_tokens"].flatten(0, 1)[cap.frame, cap.target]
        else:
            every = torch.arange(n_frames * q, device=images.device)
            cap = Pairs(every // q, every % q, every % q)
            targets = batch["tokens"].flatten(0, 1)[cap.frame]
        mem, region = self._instance_memory(enc, out, images, cap, region=self.cfg.rcc)
        t = images.shape[1]
        out["logits"] = self.caption_decoder.logits(self.caption_decoder.shift(targets), mem,
                                                    self._mixer(batch.get("expert"), t, rows=cap.frame))
        out["caption_pairs"], out["caption_targets"] = cap, targets
        if region is not None:
            out["region"] = region

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
            if self.cfg.instances and "inst_masks" in batch:
                out["pairs"] = self._match(out["inst_logits"], out["score_logits"], batch)
        if self.caption_decoder is not None and self.cfg.instances:
            self._caption_instances(out, enc, batch)
        elif self.caption_decoder is not None:
            mem, region = self.caption_memory(enc, images, probs, region=self.cfg.rcc)
            targets = used_tokens(batch["tokens"].flatten(0, 1))
            inputs = self.caption_decoder.shift(targets)
            out["logits"] = self.caption_decoder.logits(inputs, mem, self._mixer(batch.get("expert"), t))
            if region is not None:
                out["region"] = region
        return out

    def losses(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], cfg: LossConfig
               ) -> dict[str, torch.Tensor]:
        if self.cfg.instances:
            return self._instance_losses(out, batch, cfg)
        parts: dict[str, torch.Tensor] = {}
        l_seg = l_tex = None
        if "probs" in out:
            l_seg = self._union_loss(out["probs"], batch, cfg, parts)
        if "logits" in out:
            targets = used_tokens(batch["tokens"].flatten(0, 1))
            gamma = cfg.focal_gamma if cfg.text == TextLoss.focal else None
            l_tex = parts["text"] = token_loss(out["logits"], targets, gamma, cfg.label_smoothing)
        total = parts["ada"] = adaptive_loss(l_seg, l_tex, cfg.alpha)
        if self.cfg.rcc and "region" in out:
            parts["clip"] = rcc_loss(self.clip, out["region"], out["logits"], targets)
            total = total + cfg.clip_weight * parts["clip"]
        parts["loss"] = total
        return parts

    @staticmethod
    def _union_loss(probs: torch.Tensor, batch: dict[str, torch.Tensor], cfg: LossConfig,
                    parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """L_seg of the frame's semantic (union) map: Dice (+ seg_bce * BCE); the terms go into `parts`."""
        target = batch["masks"].flatten(0, 1)
        l_seg = parts["dice"] = dice_loss(probs, target)
        if cfg.seg_bce:
            parts["bce"] = mask_bce(probs, target)
            l_seg = l_seg + cfg.seg_bce * parts["bce"]
        return l_seg

    def _match(self, logits: torch.Tensor, scores: torch.Tensor, batch: dict[str, torch.Tensor]) -> Pairs:
        return match(logits, scores, batch["inst_masks"].flatten(0, 1), batch["inst_valid"].flatten(0, 1),
                     self.matching)

    @staticmethod
    def _pair_mask_loss(probs: torch.Tensor, pairs: Pairs, batch: dict[str, torch.Tensor], cfg: LossConfig
                        ) -> torch.Tensor:
        """Matched masks' Dice (+ BCE), a mean over frames. probs (N, Q, H, W)."""
        if not len(pairs):
            return probs.sum() * 0.0
        pm = probs[pairs.frame, pairs.query]
        tm = batch["inst_masks"].flatten(0, 1)[pairs.frame, pairs.target]
        per_pair = dice_per_frame(pm, tm) + (cfg.seg_bce * bce_per_frame(pm, tm) if cfg.seg_bce else 0)
        return per_frame_mean(per_pair, pairs.frame, probs.shape[0])

    def _instance_losses(self, out: dict, batch: dict[str, torch.Tensor], cfg: LossConfig) -> dict[str, torch.Tensor]:
        """L_seg = union Dice (+ BCE) + matched masks' Dice (+ BCE) + cls_weight * sounding-score BCE
        + loss.deep_supervision * the mask losses of every earlier decoder layer and refinement stage ("aux");
        L_tex = the matched captions' token loss; L_ada and L_clip as in the semantic model (instances.py)."""
        parts: dict[str, torch.Tensor] = {}
        probs = out["probs"]
        n = probs.shape[0]
        l_seg = self._union_loss(probs, batch, cfg, parts)
        pairs: Pairs = out["pairs"]
        parts["inst_mask"] = self._pair_mask_loss(out["inst_probs"], pairs, batch, cfg)
        if cfg.score_target == ScoreTarget.iou:
            goal = iou_targets(out["inst_probs"], batch["inst_masks"].flatten(0, 1), batch["inst_valid"].flatten(0, 1))
        else:
            goal = score_targets(pairs, tuple(out["score_logits"].shape), probs.device)
        parts["cls"] = F.binary_cross_entropy_with_logits(out["score_logits"].float(), goal, reduction="none"
                                                          ).mean(1).mean()
        l_seg = l_seg + parts["inst_mask"] + cfg.cls_weight * parts["cls"]
        if cfg.deep_supervision and out["aux"]:
            # each earlier layer / stage matched on its masks alone (its scores are not trained: see LossConfig)
            size = out["inst_logits"].shape[-2:]
            aux = []
            for masks in out["aux"]:  # upsampled here: prediction never reads them
                lg = F.interpolate(masks, size=size, mode="bilinear", align_corners=False)
                no_scores = lg.new_zeros(lg.shape[:2])
                aux.append(self._pair_mask_loss(lg.sigmoid(), self._match(lg, no_scores, batch), batch, cfg))
            parts["aux"] = sum(aux)
            l_seg = l_seg + cfg.deep_supervision * parts["aux"]
        l_tex = None
        if "logits" in out:
            cap: Pairs = out["caption_pairs"]
            gamma = cfg.focal_gamma if cfg.text == TextLoss.focal else None
            rows = token_loss_per_row(out["logits"], out["caption_targets"], gamma, cfg.label_smoothing)
            l_tex = parts["text"] = per_frame_mean(rows, cap.frame, n)
        total = parts["ada"] = adaptive_loss(l_seg, l_tex, cfg.alpha)
        if self.cfg.rcc and "region" in out:
            cap = out["caption_pairs"]
            # rcc_loss averages over its rows (the pairs): rescaled to a sum over pairs per frame of the batch
            parts["clip"] = rcc_loss(self.clip, out["region"], out["logits"], out["caption_targets"]) * len(cap) / n
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
        if self.cfg.instances:
            return self._predict_instances(batch, enc, beam)
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


    def _predict_instances(self, batch: dict[str, torch.Tensor], enc: dict[str, torch.Tensor], beam: int
                           ) -> dict[str, torch.Tensor]:
        """probs (B, T, H, W) union, inst_probs (B, T, Q, H, W), inst_scores (B, T, Q) and inst_tokens
        (B, T, Q, L): captions of the queries scoring at least model.instance_threshold, PAD rows for the rest.
        The scores are those after mask NMS (model.instance_nms: a duplicate scores 0); the union map is the
        noisy-OR of every query, duplicates included."""
        images = batch["images"]
        b, t, _, h, w = images.shape
        seg = self.segment(enc, (h, w))
        q = seg["inst_scores"].shape[1]
        scores = suppress_duplicates(seg["inst_probs"], seg["inst_scores"], self.cfg.instance_nms)
        out = {"probs": seg["probs"].view(b, t, h, w), "inst_probs": seg["inst_probs"].view(b, t, q, h, w),
               "inst_scores": scores.view(b, t, q)}
        if self.caption_decoder is not None:
            length = self.caption_decoder.max_len
            tokens = torch.full((b * t, q, length), PAD, dtype=torch.long, device=images.device)
            n_idx, q_idx = (scores >= self.cfg.instance_threshold).nonzero(as_tuple=True)
            if len(n_idx):
                pairs = Pairs(n_idx, q_idx, q_idx)
                mem, _ = self._instance_memory(enc, seg, images, pairs)
                expert = batch.get("expert")
                factory = (lambda r: self._mixer(expert, t, r, rows=n_idx)) if self.mohe is not None else None
                toks = self.caption_decoder.generate(mem, factory, beam=beam)
                tokens[n_idx, q_idx, :toks.shape[1]] = toks
            out["inst_tokens"] = tokens.view(b, t, q, length)
        return out


def param_counts(model: SSUFormer) -> dict[str, tuple[int, int]]:
    """Per top-level module: (trainable, frozen) parameter counts."""
    out: dict[str, tuple[int, int]] = {}
    for name, mod in model.named_children():
        tr = sum(p.numel() for p in mod.parameters() if p.requires_grad)
        fr = sum(p.numel() for p in mod.parameters() if not p.requires_grad)
        out[name] = (tr, fr)
    return out

