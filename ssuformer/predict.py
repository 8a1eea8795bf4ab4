"""Predictions of a checkpoint on a split, streamed a chunk of frames at a time (they open in ssu-refine).

out_dir/probs/<clip_id>.npy         (300, H, W) uint8 probabilities q = round(255 p) at the model's input size
                                    (H = W = data.image_size): the model's output, scored by ssu-eval
out_dir/annotations/<clip_id>.json  Annotation: one source ("sounding"); the mask of a frame is its
                                    probabilities resampled to 512x512 (ssuformer.metrics.resample) and
                                    thresholded p > 0.5, as RLE; caption spans from the T sampled frames
out_dir/predictions.json            {"checkpoint", "split", "frames", "mask_stride", "predicted_frames",
                                     "chunk_frames", "probs": {dtype, scale, size, resampling}, "clips"}

Masks, with mask_stride k (default 1): the model runs on every k-th frame, in passes of T frames shifted
together (each pass is one frame per second, like a training sample), and a frame without its own pass
takes the probabilities of its nearest predicted frame; mask_stride 0 uses the T sampled frames only.

Streaming: a pass needs frames from all ten seconds, so the passes of a clip are split into chunks of at most
`chunk_frames` frames; each chunk decodes the clip once, keeping only its frames (at the model's size), runs
`batch_size` passes at a time and writes their probabilities and masks before the next chunk is decoded.
Memory is bounded by the chunk, whatever the clip or the split; a 150-frame chunk decodes a clip twice at
mask_stride 1 and once at 2 or more. Nothing dense is cached on disk unless cache_frames=True (then the
predicted frames of a clip are kept under <cache>/frames-<size>/, like training frames, and read back).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from schemas import atomic
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SIZE
from schemas.media import read_frames
from schemas.models import Agent, AgentKind, Annotation, ClipStatus, SoundSource
from schemas.root import DatasetRoot
from ssuformer.batch import collate, to_device
from ssuformer.checkpoint import load_model
from ssuformer.data import ClipDataset, frame_example
from ssuformer.metrics.protocols import IOU_THRESHOLD
from ssuformer.metrics.resample import RESAMPLING, SCALE, dequantize, quantize, resize_bilinear
from ssuformer.mohe import expert_cache_for
from ssuformer.sampling import frames_key

AGENT = "ssuformer"
CHUNK_FRAMES = 150


def nearest(frames: list[int]) -> np.ndarray:
    """For each of the 300 frames, the position in `frames` of the nearest one (the earlier on a tie)."""
    f = np.asarray(frames)
    return np.abs(f[None, :] - np.arange(NUM_FRAMES)[:, None]).argmin(1)


def binary_masks(q: np.ndarray) -> np.ndarray:
    """(n, H, W) uint8 probabilities -> (n, 512, 512) bool masks: resampled to the annotation size, p > 0.5.

    The same resampling ssu-eval applies before scoring probabilities, so the binary annotation of a frame is
    exactly {p > 0.5} of the map it scores (the mIoU of both is the same)."""
    return resize_bilinear(dequantize(q), (SIZE, SIZE)) > np.float32(IOU_THRESHOLD)


def to_annotation(clip_id: str, frames: list[int], masks: list[dict | None] | None, captions: list[str] | None,
                  config_name: str, caption_frames: list[int] | None = None) -> Annotation:
    """An annotation of 300 frames: each frame takes the mask of its nearest frame in `frames` (RLE or None
    per entry) and the caption of its nearest frame in `caption_frames` (default: `frames`)."""
    out_masks: list = [None] * NUM_FRAMES
    if masks is not None:
        near = nearest(frames)
        out_masks = [masks[near[i]] for i in range(NUM_FRAMES)]
    src = SoundSource(id=0, category="sounding", name="predicted sound source", masks=out_masks)
    if any(m is not None for m in out_masks):
        src.set_masks(out_masks, by=AGENT)
    if captions is not None:
        near_c = nearest(caption_frames or frames)
        src.set_frame_captions([captions[near_c[i]] or None for i in range(NUM_FRAMES)], by=AGENT)
    agent = Agent(kind=AgentKind.model, name="ssuformer", version=config_name,
                  params={"threshold": IOU_THRESHOLD, "rule": f"p > 0.5 after resampling to {SIZE}x{SIZE}"})
    return Annotation(clip_id=clip_id, status=ClipStatus.auto, sources=[src], agents={AGENT: agent})


def _dense_frames(frames: list[int], stride: int) -> list[list[int]] | None:
    """Passes of T frames for dense masks: the sampled frames shifted by 0, k, 2k, ... frames, covering every
    k-th frame once; None when stride is 0 or the T frames are not evenly spaced (then masks stay sampled)."""
    t = len(frames)
    if stride <= 0 or NUM_FRAMES % t:
        return None
    period = NUM_FRAMES // t
    return [[o + j * period for j in range(t)] for o in range(0, period, stride)]


def groups(passes: list[list[int]], per: int) -> list[list[list[int]]]:
    """Consecutive groups of at most `per` passes (at least one each)."""
    per = max(1, per)
    return [passes[i:i + per] for i in range(0, len(passes), per)]


def chunks(passes: list[list[int]], chunk_frames: int) -> list[list[list[int]]]:
    """Consecutive groups of passes holding at most chunk_frames frames (at least one pass each)."""
    return groups(passes, chunk_frames // len(passes[0]))


class _RowsWriter:
    """A (rows, H, W[, C]) .npy filled row by row in any order, renamed into place only when complete."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype, stack: contextlib.ExitStack) -> None:
        tmp = stack.enter_context(atomic.atomic_path(path))
        self.f = stack.enter_context(open(tmp, "wb"))
        np.lib.format.write_array_header_1_0(self.f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                      "fortran_order": False, "shape": shape})
        self.offset = self.f.tell()
        self.row_bytes = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
        self.f.truncate(self.offset + shape[0] * self.row_bytes)
        self.dtype = np.dtype(dtype)

    def write(self, row: int, arr: np.ndarray) -> None:
        self.f.seek(self.offset + row * self.row_bytes)
        self.f.write(np.ascontiguousarray(arr, dtype=self.dtype).tobytes())


class _FrameReader:
    """Frames of one clip at the model's size: decoded per chunk, or read from the dense cache when asked."""

    def __init__(self, clip: Path, size: int, predicted: list[int], cache: Path | None,
                 stack: contextlib.ExitStack) -> None:
        self.clip, self.size = clip, size
        self.row = {f: i for i, f in enumerate(predicted)}
        self.cached: np.ndarray | None = None
        self.writer: _RowsWriter | None = None
        if cache is not None:
            if cache.is_file():
                with contextlib.suppress(OSError, ValueError):
                    arr = np.load(cache, mmap_mode="r")
                    if arr.shape == (len(predicted), size, size, 3) and arr.dtype == np.uint8:
                        self.cached = arr
            if self.cached is None:
                self.writer = _RowsWriter(cache, (len(predicted), size, size, 3), np.dtype(np.uint8), stack)

    def read(self, frames: list[int]) -> dict[int, np.ndarray]:
        if self.cached is not None:
            return {f: np.array(self.cached[self.row[f]]) for f in frames}

        imgs = read_frames(self.clip, frames, size=self.size)  # one decode; only these frames are kept
        out = dict(zip(frames, imgs, strict=True))
        if self.writer is not None:
            for f, img in out.items():
                self.writer.write(self.row[f], img)
        return out


@torch.no_grad()
def predict_root(checkpoint: str | Path, root: str | Path, split: str, out_dir: str | Path,
                 device: str | None = None, beam: int | None = None, batch_size: int = 2,
                 cache: str | None = None, progress: bool = True, mask_stride: int = 1,
                 chunk_frames: int = CHUNK_FRAMES, cache_frames: bool = False) -> Path:
    """Write predictions for every clip of `split` under out_dir; returns out_dir."""
    from tqdm import tqdm


    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, cfg, tok, _ = load_model(checkpoint, dev)
    if cache is not None:
        cfg.data.cache = cache
    ds_root = DatasetRoot.open(root)
    ds = ClipDataset(ds_root, split, cfg, tok, expert_cache_for(ds_root.path, cfg) if cfg.model.caption else None)
    dense = _dense_frames(ds.frames, mask_stride)
    passes = dense or [ds.frames]
    predicted = sorted(f for p in passes for f in p)
    size = cfg.data.image_size
    out = Path(out_dir)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    index: dict[str, dict] = {}
    bar = tqdm(total=len(ds), desc="predict", unit="clip", disable=not progress)
    for s in range(0, len(ds), batch_size):
        ids = ds.ids[s:s + batch_size]
        caps: dict[str, list[str] | None] = dict.fromkeys(ids)
        if model.caption_decoder is not None and tok is not None:  # captions: the T sampled frames
            batch = to_device(collate([ds[i] for i in range(s, s + len(ids))]), dev)
            toks = model.predict(batch, beam=beam or cfg.train.beam)["tokens"]
            caps = {c: [tok.decode(t) for t in toks[b].tolist()] for b, c in enumerate(ids)}
        for clip_id in ids:
            masks = None
            if model.mask_decoder is not None:
                dense_cache = (ds.cache / f"frames-{size}" / f"{clip_id}.{frames_key(predicted)}.npy"
                               if cache_frames else None)
                masks = _clip_masks(model, ds, clip_id, passes, predicted, out / "probs" / f"{clip_id}.npy",
                                    dense_cache, chunk_frames, batch_size, dev)
            ann = to_annotation(clip_id, predicted, masks, caps[clip_id], cfg.name, caption_frames=ds.frames)
            atomic.write_text(out / "annotations" / f"{clip_id}.json", ann.model_dump_json() + "\n")
            index[clip_id] = {"captions": caps[clip_id]}
            bar.update(1)
    bar.close()
    atomic.write_json(out / "predictions.json", {
        "checkpoint": str(checkpoint), "split": split, "frames": ds.frames,
        "mask_stride": mask_stride if dense else 0,
        "predicted_frames": predicted, "chunk_frames": chunk_frames,
        "probs": {"dtype": "uint8", "scale": SCALE, "size": [size, size], "frames": NUM_FRAMES,
                  "resampling_to_annotation": RESAMPLING} if model.mask_decoder is not None else None,
        "clips": index}, indent=2)
    ds_root.close()
    return out


def _clip_masks(model, ds, clip_id: str, passes: list[list[int]], predicted: list[int], probs_path: Path,
                dense_cache: Path | None, chunk_frames: int, batch_size: int, dev: torch.device
                ) -> list[dict | None]:
    """Run every pass of one clip chunk by chunk; write its probabilities; return one RLE (or None) per
    predicted frame, in `predicted` order."""

    size = ds.size
    mel = ds.audio(clip_id)  # the clip's log-mel (cached, small)
    near = nearest(predicted)
    rows_of: dict[int, list[int]] = {}
    for i in range(NUM_FRAMES):
        rows_of.setdefault(predicted[near[i]], []).append(i)
    position = {f: i for i, f in enumerate(predicted)}
    rles: list[dict | None] = [None] * len(predicted)
    with contextlib.ExitStack() as stack:
        writer = _RowsWriter(probs_path, (NUM_FRAMES, size, size), np.dtype(np.uint8), stack)
        reader = _FrameReader(ds.root.clip_path(clip_id), size, predicted, dense_cache, stack)
        for chunk in chunks(passes, chunk_frames):
            frames = reader.read(sorted(f for p in chunk for f in p))
            for group in groups(chunk, batch_size):
                flat = [f for p in group for f in p]
                images = torch.from_numpy(np.stack([frames[f] for f in flat])).permute(0, 3, 1, 2)
                images = images.reshape(len(group), len(group[0]), 3, size, size).float() / 255.0
                audio = torch.from_numpy(np.stack([frame_example(mel, f) for f in flat]))
                batch = to_device({"images": images, "audio": audio.view(len(group), len(group[0]), *audio.shape[1:])},
                                  dev)
                probs = model.segment(model.encode(batch["images"], batch["audio"]), (size, size))["probs"]
                q = quantize(probs.float().cpu().numpy())
                for f, qf, m in zip(flat, q, binary_masks(q), strict=True):
                    for row in rows_of.get(f, []):
                        writer.write(row, qf)
                    rles[position[f]] = rle_mod.encode(m) if m.any() else None  # null: nothing sounding
            del frames
    return rles
