"""Mask Collaboration Module (Fig. 7 b) and the frozen CLIP it shares with RCC.

MCM multiplies the frame by the predicted sound-source probability map (soft, so the product stays
differentiable w.r.t. the mask head), encodes it with CLIP's visual encoder and hands the projected patch
tokens to the caption decoder as extra condition tokens. CLIP is frozen (no weight updates) but gradients
flow through it to its input, hence to the mask head.

RCC's image side (eq. 5, `clip.region`): `maskclip` (the paper's) takes MaskCLIP's dense features of the
frame (Zhou et al., ECCV 2022): the last ViT block keeps only its value path (no query-key attention, no
residual, no MLP), then CLIP's post-layernorm and visual projection map every patch into the joint space;
the region embedding is their mean weighted by the predicted mask (so the gradient reaches the mask head
through the weights). `pooled`: CLIP's pooled embedding of the frame multiplied by the soft mask.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from schemas.errors import UserError
from ssuformer.config import ClipConfig
from ssuformer.weights import offline

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def tiny_clip_config(cfg: ClipConfig, vocab: int, max_text: int):
    from transformers import CLIPConfig

    h = cfg.tiny_hidden
    text = dict(vocab_size=vocab + 2, hidden_size=h, intermediate_size=2 * h, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=max_text + 2, bos_token_id=vocab,
                eos_token_id=vocab + 1, pad_token_id=vocab + 1, projection_dim=h)
    vision = dict(hidden_size=h, intermediate_size=2 * h, num_hidden_layers=2, num_attention_heads=2,
                  image_size=cfg.tiny_image_size, patch_size=cfg.tiny_patch, projection_dim=h)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=h)


class FrozenClip(nn.Module):
    """A CLIPModel plus the map from our caption vocabulary to CLIP's text token embeddings (see rcc.py)."""

    def __init__(self, cfg: ClipConfig, tokenizer, max_text: int, random_weights: bool = False) -> None:
        super().__init__()
        from transformers import CLIPModel

        vocab = tokenizer.vocab_size
        if cfg.tiny:
            self.clip = CLIPModel(tiny_clip_config(cfg, vocab, max_text))
            if cfg.tiny_weights:
                load_tiny_weights(self.clip, Path(cfg.tiny_weights))
            bos, eos = vocab, vocab + 1
            ids: list[list[int]] = [[v] for v in range(vocab)]  # tiny CLIP's vocabulary is ours (+ BOS, EOS)
        elif random_weights:  # the named architecture with random weights (ssu-train summary; no download)
            from transformers import CLIPConfig

            patch = 16 if "patch16" in cfg.name_or_path else 14 if "patch14" in cfg.name_or_path else 32
            self.clip = CLIPModel(CLIPConfig(vision_config={"patch_size": patch}))
            bos, eos = 0, 1
            ids = [[v % self.clip.config.text_config.vocab_size] for v in range(vocab)]
        else:
            from transformers import AutoTokenizer

            try:
                self.clip = CLIPModel.from_pretrained(cfg.name_or_path, local_files_only=offline())
                clip_tok = AutoTokenizer.from_pretrained(cfg.name_or_path, local_files_only=offline())
            except OSError as e:
                raise UserError(f"model.clip.name_or_path: cannot load {cfg.name_or_path} ({e}); give a local "
                                "folder or a cached hub id, or set model.clip.tiny=true") from None
            bos, eos = clip_tok.bos_token_id, clip_tok.eos_token_id
            ids = _clip_ids(tokenizer, clip_tok)
        self.clip.requires_grad_(False)
        self.clip.eval()
        self.bos, self.eos = int(bos), int(eos)
        # E: our token v -> mean of CLIP's token embeddings of v's text (frozen, so computed once)
        table = self.clip.text_model.embeddings.token_embedding.weight.detach()
        rows = [table[i].mean(0) if i else torch.zeros(table.shape[1]) for i in ids]
        self.register_buffer("vocab_embed", torch.stack(rows))  # (V_ours, D_text)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self.image_size = int(self.clip.config.vision_config.image_size)
        self.vision_dim = int(self.clip.config.vision_config.hidden_size)
        self.max_text = int(self.clip.config.text_config.max_position_embeddings)

    def train(self, mode: bool = True) -> FrozenClip:
        super().train(mode)
        self.clip.eval()  # frozen: dropout off always
        return self

    def encode_masked(self, images: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 3, H, W) in [0, 1], probs (N, h, w) -> (patch tokens (N, P+1, Dv), image embeds (N, Dp))."""
        m = probs[:, None]
        if m.shape[-2:] != images.shape[-2:]:  # the same size: bilinear resampling would be an identity (and cost)
            m = F.interpolate(m, size=images.shape[-2:], mode="bilinear", align_corners=False)
        x = F.interpolate(images * m, size=(self.image_size, self.image_size), mode="bilinear",
                          align_corners=False)
        out = self.clip.vision_model(pixel_values=(x - self.mean) / self.std)
        return out.last_hidden_state, self.clip.visual_projection(out.pooler_output)

    def dense_features(self, images: torch.Tensor) -> torch.Tensor:
        """MaskCLIP: images (N, 3, H, W) in [0, 1] -> patch embeddings (N, g, g, Dp) in CLIP's joint space."""
        vm = self.clip.vision_model
        x = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        hidden = vm(pixel_values=(x - self.mean) / self.std, output_hidden_states=True).hidden_states[-2]
        last = vm.encoder.layers[-1]
        # MaskCLIP's last block: the value path replaces self-attention (no query-key weights, so each patch keeps
        # its own content); the residual and the MLP stay, as in MaskCLIP's ViT code
        v = hidden + last.self_attn.out_proj(last.self_attn.v_proj(last.layer_norm1(hidden)))
        v = (v + last.mlp(last.layer_norm2(v)))[:, 1:]  # patches only (no CLS)
        dense = self.clip.visual_projection(vm.post_layernorm(v))
        g = int(round(dense.shape[1] ** 0.5))
        return dense.view(dense.shape[0], g, g, -1)

    def maskclip_region(self, images: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """The region embedding (N, Dp): MaskCLIP's dense features pooled with the mask's weight per patch."""
        with torch.no_grad():  # CLIP is frozen and the frame is not a function of the model's weights
            dense = self.dense_features(images)
        g = dense.shape[1]
        w = F.interpolate(probs[:, None].to(dense.dtype), size=(g, g), mode="area")[:, 0]  # mask share per patch
        return torch.einsum("nij,nijd->nd", w, dense) / (w.sum((1, 2))[:, None] + 1e-6)

    def encode_soft_text(self, probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """probs (N, L, V_ours) token distributions, lengths (N,) tokens to use -> text embeds (N, Dp).

        The sequence [BOS, p_1 E, ..., p_n E, EOS] goes through CLIP's text transformer as inputs_embeds,
        where E = vocab_embed (our vocabulary in CLIP's embedding space); the pooled state is read at the
        EOS position, as CLIP does.
        """
        table = self.clip.text_model.embeddings.token_embedding.weight  # (V_clip, D)
        length = min(probs.shape[1], self.max_text - 2)
        soft = probs[:, :length].to(table.dtype) @ self.vocab_embed.to(table.dtype)  # (N, L, D)
        return self.encode_text_embeds(soft, lengths)

    def encode_tokens(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The tiny CLIP (our vocabulary is its own): tokens (N, L) of ours -> text embeds (N, Dp), the path of
        encode_soft_text with one-hot tokens, read from the live embedding table (`ssu-bench pretrain-clip`
        trains it)."""
        table = self.clip.text_model.embeddings.token_embedding.weight
        return self.encode_text_embeds(table[tokens[:, :self.max_text - 2].clamp(min=0)], lengths)

    def encode_text_embeds(self, soft: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """soft (N, L, D) token embeddings, lengths (N,) of them to use -> text embeds (N, Dp)."""
        tm = self.clip.text_model
        table = tm.embeddings.token_embedding.weight  # (V_clip, D)
        n, length = soft.shape[:2]
        lengths = lengths.clamp(max=length)
        bos = table[self.bos].expand(n, 1, -1)
        eos = table[self.eos].expand(n, length + 1, -1)
        pos = torch.arange(length + 1, device=soft.device)[None, :]
        tail = torch.cat([soft, eos[:, :1]], 1)
        seq = torch.where((pos < lengths[:, None])[..., None], tail, eos)  # EOS at index `length` and after
        seq = torch.cat([bos, seq], 1)
        hidden = tm.embeddings(inputs_embeds=seq)
        size = seq.shape[1]
        causal = torch.full((size, size), torch.finfo(hidden.dtype).min, device=seq.device).triu(1)
        hidden = tm.encoder(inputs_embeds=hidden, attention_mask=causal[None, None].expand(n, 1, -1, -1)
                            ).last_hidden_state
        hidden = tm.final_layer_norm(hidden)
        pooled = hidden[torch.arange(n, device=seq.device), lengths + 1]  # the EOS after the n tokens
        return self.clip.text_projection(pooled)


def _clip_ids(tokenizer, clip_tok) -> list[list[int]]:
    """For each of our token ids, CLIP's token ids of the same text (empty for specials)."""
    out = []
    for v in range(tokenizer.vocab_size):
        text = tokenizer.token_text(v).strip()
        out.append(list(clip_tok(text, add_special_tokens=False)["input_ids"]) if text else [])
    return out


def load_tiny_weights(clip, path: Path) -> None:
    """The state dict `ssu-bench pretrain-clip` wrote into a tiny CLIPModel of the same shape."""
    if not path.is_file():
        raise UserError(f"model.clip.tiny_weights: {path} does not exist; run `ssu-bench pretrain-clip` first, or "
                        "leave it unset for a random tiny CLIP")
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = clip.load_state_dict(state, strict=False)
    if missing or unexpected or any(state[k].shape != v.shape for k, v in clip.state_dict().items() if k in state):
        raise UserError(f"model.clip.tiny_weights: {path} does not fit this tiny CLIP (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]}); pretrain it with the same model.clip and vocabulary")


class MaskCollaboration(nn.Module):
    """CLIP tokens of the masked frame -> caption-decoder condition tokens of width `dim`."""

    def __init__(self, vision_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(vision_dim), nn.Linear(vision_dim, dim))

    def forward(self, clip_tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(clip_tokens)
