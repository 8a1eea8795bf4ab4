"""`ssu-bench pretrain-clip`: a tiny CLIP that knows the synthetic world, for MCM and RCC to use frozen.

The paper freezes a CLIP pretrained on web images; the benchmark's tiny CLIP was random, so MCM's tokens
and RCC's comparison carried no knowledge. Here it is trained contrastively (CLIP's symmetric InfoNCE) on
the train split: the image of a pair is the frame multiplied by one sounding source's mask, resized to the
CLIP's input as MCM does (FrozenClip.encode_masked: the whole masked frame, so the position the caption
names stays visible), its text that source's caption. Its vocabulary is the caption tokenizer's
(ssuformer.trainer.caption_tokenizer: the same tokenizer every run on this root trains), stored beside it.

Zero-shot check on val: for each pair, the texts that change only the colour (or only the shape, and with
it the shape's verb, which the grammar ties to it) of the true caption compete; accuracy = how often the
true one is nearest the image.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench.captions import parse_source, render_source
from schemas import atomic
from schemas.errors import UserError
from schemas.root import DatasetRoot

CLIP_FILE, TOKENIZER_FILE, STATE_FILE, REPORT_FILE = "clip.pt", "tokenizer.json", "last.pt", "clip.json"


def region_pairs(root_path: Path, split: str, cfg, tok) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                  list[str]]:
    """Masked frames (M, 3, s, s) in [0, 1] at the CLIP's input size, our tokens (M, L), lengths (M,) and the
    captions, one per (sampled frame, sounding source with a caption) of the split."""
    from ssuformer.data import ClipDataset, instance_targets

    ds = ClipDataset(root_path, split, cfg, None)
    root = DatasetRoot.open(root_path)
    size = cfg.model.clip.tiny_image_size
    images, texts = [], []
    for clip_id in ds.ids:
        if not root.annotation_path(clip_id).is_file():
            continue
        frames = torch.from_numpy(ds.images(clip_id)).permute(0, 3, 1, 2).float() / 255.0  # (T, 3, S, S)
        masks, valid, caps, _ = instance_targets(root.read_annotation(clip_id), ds.frames, ds.size, 8)
        here = [(t, k) for t, k in zip(*np.nonzero(valid), strict=True) if caps[t][k]]
        if here:  # resized per clip: the whole split at the frames' size would not fit in memory
            masked = torch.stack([frames[t] * torch.from_numpy(masks[t, k])[None] for t, k in here])
            images.append(F.interpolate(masked, size=(size, size), mode="bilinear", align_corners=False))
            texts += [caps[t][k] for t, k in here]
    root.close()
    if not images:
        raise UserError(f"{root_path}: no captioned sources in the {split} split")
    x = torch.cat(images)
    limit = int(cfg.model.max_caption_tokens)
    toks, lengths = _tokens(tok, texts, limit)
    return x, toks, lengths, texts


def _tokens(tok, texts: list[str], limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Our tokens (M, limit) and their lengths without EOS and PAD (as rcc_loss counts them)."""
    from ssuformer.tokenizer import EOS, PAD

    out = torch.full((len(texts), limit), PAD, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = tok.encode(text, limit)
        out[i, :len(ids)] = torch.tensor(ids)
    return out, ((out != PAD) & (out != EOS)).sum(1)


class ContrastiveClip(torch.nn.Module):
    """FrozenClip's image and text paths (the ones MCM and RCC use), made trainable, with CLIP's temperature."""

    def __init__(self, cfg, tok) -> None:
        super().__init__()
        from ssuformer.mcm import FrozenClip

        self.frozen = FrozenClip(cfg.model.clip, tok, int(cfg.model.max_caption_tokens))
        self.frozen.clip.requires_grad_(True)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        f = self.frozen
        img = f.clip.visual_projection(f.clip.vision_model(pixel_values=(images - f.mean) / f.std).pooler_output)
        txt = f.encode_tokens(tokens, lengths)
        scale = f.clip.logit_scale.exp().clamp(max=100)
        return scale * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T  # (M, M) image x text


def zero_shot(model: ContrastiveClip, images, texts: list[str], tok, limit: int) -> dict[str, float]:
    """Colour and shape accuracy: the true caption against its one-attribute edits (see the module doc)."""
    from collection.synth import COLOURS, SHAPES

    hits = {"colour": 0, "shape": 0}
    model.eval()
    with torch.no_grad():
        f = model.frozen
        img = F.normalize(f.clip.visual_projection(
            f.clip.vision_model(pixel_values=(images - f.mean) / f.std).pooler_output), dim=-1)
        for i, text in enumerate(texts):
            src = parse_source(text)
            for attr, values in (("colour", list(COLOURS)), ("shape", [s.value for s in SHAPES])):
                cands = [render_source({**src, attr: v}) for v in values]
                toks, lengths = _tokens(tok, cands, limit)
                emb = F.normalize(f.encode_tokens(toks, lengths), dim=-1)
                hits[attr] += int(values[int((emb @ img[i]).argmax())] == src[attr])
    return {f"{k}_accuracy": v / len(texts) for k, v in hits.items()} | {"pairs": float(len(texts))}


def pretrain_clip(root_path: Path, out: Path, cfg, epochs: int, batch: int, lr: float, seed: int,
                  progress: bool = True) -> dict[str, Any]:
    """Train (or resume, from OUT/last.pt after each epoch) and write OUT/clip.pt, tokenizer.json, clip.json."""
    from tqdm import tqdm

    from ssuformer.checkpoint import read_checkpoint, save_checkpoint
    from ssuformer.trainer import caption_tokenizer

    if not cfg.model.clip.tiny:
        raise UserError("pretrain-clip trains the tiny CLIP: use a config with model.clip.tiny=true (bench)")
    cfg = cfg.model_copy(deep=True)
    cfg.model.clip.tiny_weights = None  # trained from random weights
    out.mkdir(parents=True, exist_ok=True)
    root = DatasetRoot.open(root_path)
    tok, _ = caption_tokenizer(root, cfg)
    root.close()
    limit = int(cfg.model.max_caption_tokens)
    torch.manual_seed(seed)
    model = ContrastiveClip(cfg, tok)
    x, toks, lengths, _ = region_pairs(root_path, "train", cfg, tok)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    steps = math.ceil(len(x) / batch)
    history: list[dict[str, float]] = []
    start = 0
    if (out / STATE_FILE).is_file():
        state = read_checkpoint(out / STATE_FILE)
        if state.get("tokenizer") != tok.to_json() or state["config"] != cfg.model.clip.model_dump(mode="json"):
            raise UserError(f"{out / STATE_FILE}: pretrained on another root or CLIP config; use a new --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start, history = int(state["epoch"]) + 1, list(state["history"])
    for epoch in range(start, epochs):
        model.train()
        t0, total = time.time(), 0.0
        order = torch.randperm(len(x))
        for s in tqdm(range(steps), desc=f"clip epoch {epoch + 1}/{epochs}", disable=not progress, leave=False):
            idx = order[s * batch:(s + 1) * batch]
            logits = model(x[idx], toks[idx], lengths[idx])
            target = torch.arange(len(idx))
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        history.append({"epoch": epoch, "loss": total / steps, "seconds": round(time.time() - t0, 2)})
        save_checkpoint(out / STATE_FILE, {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch, "history": history,
            "rng": torch.get_rng_state(), "tokenizer": tok.to_json(), "config": cfg.model.clip.model_dump(mode="json")})
    vx, _, _, vtexts = region_pairs(root_path, "val", cfg, tok)
    report = {"pairs_train": len(x), "epochs": epochs, "batch": batch, "lr": lr, "seed": seed, "history": history,
              "train_seconds": sum(h["seconds"] for h in history), "val": zero_shot(model, vx, vtexts, tok, limit)}
    with atomic.atomic_path(out / CLIP_FILE) as tmp:
        torch.save(model.frozen.clip.state_dict(), tmp)
    tok.save(out / TOKENIZER_FILE)
    atomic.write_json(out / REPORT_FILE, report, indent=2)
    return report
