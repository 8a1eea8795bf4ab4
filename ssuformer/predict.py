"""Predictions of a checkpoint on a split, in the annotation format (they open in the refinement app).

out_dir/annotations/<clip_id>.json  Annotation: one source ("sounding") with the predicted mask per frame and
                                    caption spans. Captions come from the T sampled frames (each of the
                                    300 frames takes its nearest sampled frame's caption). Masks, with
                                    mask_stride k (default 1): the model also runs on every k-th frame, in
                                    passes of T frames shifted together (so each pass looks like a training
                                    sample), and a frame takes the mask of its nearest predicted frame;
                                    mask_stride 0 uses the T sampled frames only (moving objects then drift
                                    away from their masks between samples)
out_dir/probs/<clip_id>.npy         (frames, H, W) float16 probabilities at the model's input size
out_dir/predictions.json            {"checkpoint", "split", "frames": [...], "clips": {id: {"captions": [...]}}}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from schemas import atomic
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SIZE
from schemas.models import Agent, AgentKind, Annotation, ClipStatus, SoundSource
from schemas.root import DatasetRoot

AGENT = "ssuformer"


def nearest_sampled(frames: list[int]) -> list[int]:
    """For each of the 300 frames, the position (0..T-1) of the nearest sampled frame."""
    f = np.asarray(frames)
    return [int(np.abs(f - i).argmin()) for i in range(NUM_FRAMES)]


def to_annotation(clip_id: str, frames: list[int], probs: np.ndarray | None, captions: list[str] | None,
                  config_name: str, threshold: float = 0.5) -> Annotation:
    near = nearest_sampled(frames)
    masks: list = [None] * NUM_FRAMES
    if probs is not None:
        big = torch.nn.functional.interpolate(torch.from_numpy(probs.astype(np.float32))[:, None],
                                              size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]
        binary = (big >= threshold).numpy()
        rles = [rle_mod.encode(m) if m.any() else None for m in binary]  # null: nothing predicted sounding
        masks = [rles[near[i]] for i in range(NUM_FRAMES)]
    src = SoundSource(id=0, category="sounding", name="predicted sound source", masks=masks)
    if any(m is not None for m in masks):
        src.set_masks(masks, by=AGENT)
    if captions is not None:
        src.set_frame_captions([captions[near[i]] or None for i in range(NUM_FRAMES)], by=AGENT)
    agent = Agent(kind=AgentKind.model, name="ssuformer", version=config_name, params={"threshold": threshold})
    return Annotation(clip_id=clip_id, status=ClipStatus.auto, sources=[src], agents={AGENT: agent})


@torch.no_grad()
def predict_root(checkpoint: str | Path, root: str | Path, split: str, out_dir: str | Path,
                 device: str | None = None, beam: int | None = None, batch_size: int = 2,
                 cache: str | None = None, progress: bool = True, mask_stride: int = 1) -> Path:
    """Write predictions for every clip of `split` under out_dir; returns out_dir."""
    from tqdm import tqdm

    from ssuformer.checkpoint import load_model
    from ssuformer.data import ClipDataset, collate
    from ssuformer.mohe import expert_cache_for
    from ssuformer.trainer import to_device

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, cfg, tok, _ = load_model(checkpoint, dev)
    if cache is not None:
        cfg.data.cache = cache
    ds_root = DatasetRoot.open(root)
    ds = ClipDataset(ds_root, split, cfg, tok, expert_cache_for(ds_root.path, cfg))
    dense = _dense_frames(ds.frames, mask_stride) if cfg.model.segmentation else None
    ds_dense = None
    if dense is not None:  # every frame's pixels and audio example, decoded once (cached like training frames)
        cfg_dense = cfg.model_copy(deep=True)
        cfg_dense.data.frames = NUM_FRAMES
        ds_dense = ClipDataset(ds_root, split, cfg_dense, None, None)
    out = Path(out_dir)
    (out / "probs").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    index: dict[str, dict] = {}
    for s in tqdm(range(0, len(ds), batch_size), desc="predict", unit="batch", disable=not progress):
        batch = to_device(collate([ds[i] for i in range(s, min(len(ds), s + batch_size))]), dev)
        pred = model.predict(batch, beam=beam or cfg.train.beam)
        for b, clip_id in enumerate(batch["clip_id"]):
            probs = pred["probs"][b].float().cpu().numpy() if "probs" in pred else None
            caps = [tok.decode(t) for t in pred["tokens"][b].tolist()] if "tokens" in pred and tok else None
            frames = ds.frames
            if ds_dense is not None and dense is not None:
                probs = _dense_probs(model, ds_dense[s + b], dense, len(ds.frames), dev, batch_size)
                frames = [f for group in dense for f in group]
                order = np.argsort(frames)
                probs, frames = probs[order], [frames[i] for i in order]
                if caps is not None:  # re-index the sampled captions onto the dense frames
                    near = nearest_sampled(ds.frames)
                    caps = [caps[near[f]] for f in frames]
            if probs is not None:
                with atomic.atomic_path(out / "probs" / f"{clip_id}.npy") as tmp, open(tmp, "wb") as f:
                    np.save(f, probs.astype(np.float16))
            ann = to_annotation(clip_id, frames, probs, caps, cfg.name)
            atomic.write_text(out / "annotations" / f"{clip_id}.json", ann.model_dump_json() + "\n")
            index[clip_id] = {"captions": caps}
    atomic.write_json(out / "predictions.json", {"checkpoint": str(checkpoint), "split": split,
                                                 "frames": ds.frames, "mask_stride": mask_stride if dense else 0,
                                                 "clips": index}, indent=2)
    ds_root.close()
    return out


def _dense_frames(frames: list[int], stride: int) -> list[list[int]] | None:
    """Passes of T frames for dense masks: the sampled frames shifted by 0, k, 2k, ... frames, covering every
    k-th frame once; None when stride is 0 or the T frames are not evenly spaced (then masks stay sampled)."""
    t = len(frames)
    if stride <= 0 or NUM_FRAMES % t:
        return None
    period = NUM_FRAMES // t
    return [[o + j * period for j in range(t)] for o in range(0, period, stride)]


def _dense_probs(model, item: dict, passes: list[list[int]], t: int, dev: torch.device, batch_size: int
                 ) -> np.ndarray:
    """(len(passes) * T, H, W) mask probabilities, pass after pass, from a sample holding all 300 frames."""
    from ssuformer.trainer import to_device

    out = []
    idx = torch.tensor(passes)  # (P, T)
    step = max(1, batch_size)
    for s in range(0, len(passes), step):
        sel = idx[s:s + step]
        images = item["images"][sel]  # (p, T, 3, H, W)
        audio = item["audio"][sel]
        batch = to_device({"images": images, "audio": audio}, dev)
        enc = model.encode(batch["images"], batch["audio"])
        h, w = images.shape[-2:]
        probs = model.segment(enc, (h, w))["probs"]
        out.append(probs.view(len(sel) * t, h, w).float().cpu().numpy())
    return np.concatenate(out)
