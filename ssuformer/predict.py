"""Predictions of a checkpoint on a split, streamed a chunk of frames at a time (they open in ssu-refine).

out_dir/probs/<clip_id>.npy         (300, H, W) uint8 probabilities q = round(255 p) at the model's input size
                                    (H = W = data.image_size): the model's output, scored by ssu-eval
out_dir/annotations/<clip_id>.json  Annotation: one source ("sounding"); the mask of a frame is its
                                    probabilities resampled to 512x512 (ssuformer.metrics.resample) and
                                    thresholded p > 0.5, as RLE; caption spans from the T sampled frames
out_dir/predictions.json            {"checkpoint", "split", "frames", "mask_stride", "predicted_frames",
                                     "chunk_frames", "probs": {dtype, scale, size, resampling}, "instances",
                                     "tracking" (instance models), "clips"}

Instance models (model.instances): the probabilities are the union map, as above; the annotation holds one
source per track of predicted instances ("predicted source 1", ...; ssuformer.tracks links them through the
clip): in each predicted frame the queries scoring >= model.instance_threshold (0.5) are the instances, each
with its mask (its own probabilities resampled and thresholded as above; null where the track has no
instance or the mask is empty), its score (SoundSource.scores) and its caption (the caption decoder runs on
every predicted frame, in the same passes).

Masks, with mask_stride k (default 1): the model runs on every k-th frame, in passes of T frames shifted
together (each pass is one frame per second, like a training sample), and a frame without its own pass
takes the probabilities of its nearest predicted frame; mask_stride 0 uses the T sampled frames only.

Streaming: a pass needs frames from all ten seconds, so the passes of a clip are split into chunks of at most
`chunk_frames` frames; each chunk decodes the clip once, keeping only its frames (at the model's size), runs
`batch_size` passes at a time and writes their probabilities and masks before the next chunk is decoded.
Memory is bounded by the chunk, whatever the clip or the split; a 150-frame chunk decodes a clip twice at
mask_stride 1 and once at 2 or more. Nothing dense is cached on disk unless cache_frames=True (then the
predicted frames of a clip are kept under <cache>/frames-<size>/, like training frames, and read back).

ClipPredictor: the same instance prediction for one clip at a time of any root, without a split or a
probability file (the public API `ssu-annotate --drafter` drafts with).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from schemas import atomic
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SIZE
from schemas.errors import UserError
from schemas.media import read_frames
from schemas.models import Agent, AgentKind, Annotation, ClipStatus, SoundSource
from schemas.root import DatasetRoot
from ssuformer.batch import collate, to_device
from ssuformer.checkpoint import load_model
from ssuformer.config import SSUConfig
from ssuformer.data import ClipDataset, frame_example
from ssuformer.metrics.protocols import IOU_THRESHOLD
from ssuformer.metrics.resample import RESAMPLING, SCALE, dequantize, quantize, resize_bilinear
from ssuformer.mohe import expert_cache_for, load_features
from ssuformer.sampling import frames_key, sample_frames
from ssuformer.tracks import DEDUP_IOU, MAX_GAP, Instance, Track, TrackParams, colour_histogram, link

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


def to_instance_annotation(clip_id: str, frames: list[int], tracks: list[Track],
                           rles: dict[tuple[int, int], dict | None], config_name: str, tracking: dict,
                           score_threshold: float) -> Annotation:
    """An annotation with one source per track: each of the 300 frames takes its nearest frame in `frames`;
    where the track has an instance there whose mask (rles[(frame, index)]) is not empty, the source has that
    mask, score and caption, else null."""
    near = nearest(frames)
    sources = []
    for t in tracks:
        masks: list = [None] * NUM_FRAMES
        scores: list[float | None] = [None] * NUM_FRAMES
        caps: list[str | None] = [None] * NUM_FRAMES
        for i in range(NUM_FRAMES):
            f = frames[near[i]]
            m = rles.get((f, t.members[f])) if f in t.members else None
            if m is not None:
                masks[i], scores[i], caps[i] = m, t.scores[f], t.captions[f] or None
        src = SoundSource(id=t.id, category="sounding", name=f"predicted source {t.id + 1}", masks=masks)
        src.set_masks(masks, by=AGENT)
        src.scores = scores  # after set_masks, which clears the scores of the frames it replaces
        src.set_frame_captions(caps, by=AGENT)
        sources.append(src)
    agent = Agent(kind=AgentKind.model, name="ssuformer", version=config_name,
                  params={"threshold": IOU_THRESHOLD, "rule": f"p > 0.5 after resampling to {SIZE}x{SIZE}",
                          "instance_score": score_threshold, **tracking})
    return Annotation(clip_id=clip_id, status=ClipStatus.auto, sources=sources, agents={AGENT: agent})


def track_params(predicted: list[int], dedup_iou: float = DEDUP_IOU) -> TrackParams:
    """Tracking for these predicted frames: a track stays linkable across at least one step between them
    (mask_stride 0 or a large stride puts them further apart than MAX_GAP). dedup_iou: the model's
    instance_nms, so that one setting says when two instances of a frame are one source."""
    steps = np.diff(predicted) if len(predicted) > 1 else np.array([0])
    return TrackParams(max_gap=max(MAX_GAP, int(steps.max())), dedup_iou=dedup_iou)


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


def set_instance_inference(model, cfg: SSUConfig, checkpoint: str | Path, instance_nms: float | None = None,
                           instance_threshold: float | None = None) -> None:
    """Override an instance checkpoint's inference settings (the weights do not depend on them): the mask-NMS IoU
    and the score a query needs to be a source. None keeps the checkpoint's value."""
    if instance_nms is None and instance_threshold is None:
        return
    if not model.cfg.instances:
        raise UserError(f"{checkpoint}: instance_nms / instance_threshold are for an instance model "
                        "(model.instances: true)")
    if instance_nms is not None:
        if not 0 < instance_nms <= 1:
            raise UserError(f"instance_nms {instance_nms}: give an IoU in (0, 1] (1: no NMS)")
        model.cfg.instance_nms = cfg.model.instance_nms = instance_nms
    if instance_threshold is not None:
        if not 0 <= instance_threshold <= 1:
            raise UserError(f"instance_threshold {instance_threshold}: give a score in [0, 1]")
        model.cfg.instance_threshold = cfg.model.instance_threshold = instance_threshold


@torch.no_grad()
def predict_root(checkpoint: str | Path, root: str | Path, split: str, out_dir: str | Path,
                 device: str | None = None, beam: int | None = None, batch_size: int = 2,
                 cache: str | None = None, progress: bool = True, mask_stride: int = 1,
                 chunk_frames: int = CHUNK_FRAMES, cache_frames: bool = False,
                 instance_nms: float | None = None) -> Path:
    """Write predictions for every clip of `split` under out_dir; returns out_dir. instance_nms overrides the
    checkpoint's model.instance_nms (an inference setting: the weights do not depend on it)."""
    from tqdm import tqdm

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, cfg, tok, _ = load_model(checkpoint, dev)
    set_instance_inference(model, cfg, checkpoint, instance_nms)
    if cache is not None:
        cfg.data.cache = cache
    instances = model.cfg.instances
    ds_root = DatasetRoot.open(root)
    ds = ClipDataset(ds_root, split, cfg, tok, expert_cache_for(ds_root.path, cfg) if cfg.model.caption else None)
    dense = _dense_frames(ds.frames, mask_stride)
    passes = dense or [ds.frames]
    predicted = sorted(f for p in passes for f in p)
    tracking = track_params(predicted, model.cfg.instance_nms)
    size = cfg.data.image_size
    out = Path(out_dir)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    index: dict[str, dict] = {}
    bar = tqdm(total=len(ds), desc="predict", unit="clip", disable=not progress)
    for s in range(0, len(ds), batch_size):
        ids = ds.ids[s:s + batch_size]
        caps: dict[str, list[str] | None] = dict.fromkeys(ids)
        # captions: the T sampled frames (an instance model captions every predicted frame in its passes)
        if model.caption_decoder is not None and tok is not None and not instances:
            batch = to_device(collate([ds[i] for i in range(s, s + len(ids))]), dev)
            toks = model.predict(batch, beam=beam or cfg.train.beam)["tokens"]
            caps = {c: [tok.decode(t) for t in toks[b].tolist()] for b, c in enumerate(ids)}
        for clip_id in ids:
            dense_cache = (ds.cache / f"frames-{size}" / f"{clip_id}.{frames_key(predicted)}.npy"
                           if cache_frames else None)
            probs_path = out / "probs" / f"{clip_id}.npy"
            run = _Passes(ds, clip_id, passes, predicted, dense_cache, chunk_frames, batch_size, dev)
            if instances:
                ann = _clip_instances(model, run, probs_path, tok, beam or cfg.train.beam, tracking, cfg.name)
                joined = ann.frame_captions()
                caps[clip_id] = [joined[f] for f in ds.frames]
                index[clip_id] = {"captions": caps[clip_id], "sources": len(ann.sources)}
            else:
                masks = _clip_masks(model, run, probs_path) if model.mask_decoder is not None else None
                ann = to_annotation(clip_id, predicted, masks, caps[clip_id], cfg.name, caption_frames=ds.frames)
                index[clip_id] = {"captions": caps[clip_id]}
            atomic.write_text(out / "annotations" / f"{clip_id}.json", ann.model_dump_json() + "\n")
            bar.update(1)
    bar.close()
    atomic.write_json(out / "predictions.json", {
        "checkpoint": str(checkpoint), "split": split, "frames": ds.frames,
        "mask_stride": mask_stride if dense else 0,
        "predicted_frames": predicted, "chunk_frames": chunk_frames,
        "probs": {"dtype": "uint8", "scale": SCALE, "size": [size, size], "frames": NUM_FRAMES,
                  "resampling_to_annotation": RESAMPLING} if model.mask_decoder is not None else None,
        "instances": instances,
        **({"tracking": {**tracking.as_dict(), "instance_score": model.cfg.instance_threshold,
                         "instance_nms": model.cfg.instance_nms}} if instances else {}),
        "clips": index}, indent=2)
    ds_root.close()
    return out


class _Passes:
    """The passes of one clip as model batches, chunk by chunk (frames decoded once per chunk), and the
    clip's (300, H, W) probability file: each predicted frame's map goes to every frame nearest to it."""

    def __init__(self, ds, clip_id: str, passes: list[list[int]], predicted: list[int], dense_cache: Path | None,
                 chunk_frames: int, batch_size: int, dev: torch.device) -> None:
        self.ds, self.clip_id, self.passes, self.predicted = ds, clip_id, passes, predicted
        self.dense_cache, self.chunk_frames, self.batch_size, self.dev = dense_cache, chunk_frames, batch_size, dev
        near = nearest(predicted)
        self.rows_of: dict[int, list[int]] = {}
        for i in range(NUM_FRAMES):
            self.rows_of.setdefault(predicted[near[i]], []).append(i)

    def batches(self, probs_path: Path | None, expert: bool = False):
        """Yield (frames, images, batch, write): the flat frames of a group of passes, their (n, H, W, 3) uint8
        pictures, its batch (with the clip's MoHE expert features when `expert` and the data has them), and a
        function taking their (n, H, W) uint8 probabilities into the probability file (renamed into place at
        the end; no file and nothing written when probs_path is None)."""
        size = self.ds.size
        mel = self.ds.audio(self.clip_id)  # the clip's log-mel (cached, small)
        features = (torch.from_numpy(load_features(self.ds.expert_dir, self.clip_id).astype(np.float32))
                    if expert and self.ds.expert_dir is not None else None)  # MoHE: the whole clip's features
        with contextlib.ExitStack() as stack:
            writer = (_RowsWriter(probs_path, (NUM_FRAMES, size, size), np.dtype(np.uint8), stack)
                      if probs_path is not None else None)
            reader = _FrameReader(self.ds.root.clip_path(self.clip_id), size, self.predicted, self.dense_cache,
                                  stack)

            def write(flat: list[int], q: np.ndarray) -> None:
                if writer is None:
                    return
                for f, qf in zip(flat, q, strict=True):
                    for row in self.rows_of.get(f, []):
                        writer.write(row, qf)

            for chunk in chunks(self.passes, self.chunk_frames):
                frames = reader.read(sorted(f for p in chunk for f in p))
                for group in groups(chunk, self.batch_size):
                    b, t = len(group), len(group[0])
                    flat = [f for p in group for f in p]
                    pictures = np.stack([frames[f] for f in flat])
                    images = torch.from_numpy(pictures).permute(0, 3, 1, 2)
                    audio = torch.from_numpy(np.stack([frame_example(mel, f) for f in flat]))
                    batch = {"images": images.reshape(b, t, 3, size, size).float() / 255.0,
                             "audio": audio.view(b, t, *audio.shape[1:])}
                    if features is not None:
                        batch["expert"] = features.expand(b, *features.shape)
                    yield flat, pictures, to_device(batch, self.dev), write
                del frames


def _clip_masks(model, run: _Passes, probs_path: Path) -> list[dict | None]:
    """Run every pass of one clip; write its probabilities; return one RLE (or None) per predicted frame,
    in `predicted` order."""
    position = {f: i for i, f in enumerate(run.predicted)}
    rles: list[dict | None] = [None] * len(run.predicted)
    for flat, _, batch, write in run.batches(probs_path):
        probs = model.segment(model.encode(batch["images"], batch["audio"]), (run.ds.size, run.ds.size))["probs"]
        q = quantize(probs.float().cpu().numpy())
        write(flat, q)
        for f, m in zip(flat, binary_masks(q), strict=True):
            rles[position[f]] = rle_mod.encode(m) if m.any() else None  # null: nothing sounding
    return rles


def _clip_instances(model, run: _Passes, probs_path: Path | None, tok, beam: int, tracking: TrackParams,
                    config_name: str) -> Annotation:
    """Run every pass of one clip through the instance model; write its union probabilities; link the
    instances of the predicted frames into tracks; return the annotation of the tracks.

    Kept per instance until linking: its mask at the model's size as packed bits (for IoU), its RLE at 512,
    score, caption and colour histogram (re-identification); the dense maps of a chunk are dropped with it."""
    kept: dict[int, list[tuple[np.ndarray, float, str, np.ndarray]]] = {}  # frame -> (packed mask, score, ...)
    rles: dict[tuple[int, int], dict | None] = {}
    shape: tuple[int, int] = (run.ds.size, run.ds.size)
    for flat, pictures, batch, write in run.batches(probs_path, expert=True):  # captions need MoHE's features
        out = model.predict(batch, beam=beam)
        write(flat, quantize(out["probs"].flatten(0, 1).float().cpu().numpy()))
        inst_q = quantize(out["inst_probs"].flatten(0, 1).float().cpu().numpy())  # (n, Q, H, W)
        scores = out["inst_scores"].flatten(0, 1).float().cpu().numpy()  # (n, Q)
        tokens = out["inst_tokens"].flatten(0, 1).cpu() if "inst_tokens" in out else None  # (n, Q, L)
        for k, f in enumerate(flat):
            qs = np.flatnonzero(scores[k] >= model.cfg.instance_threshold)  # the queries the model captioned
            masks512 = binary_masks(inst_q[k, qs]) if len(qs) else []
            kept[f] = []
            for q, m in zip(qs, masks512, strict=True):
                if not m.any():
                    continue  # nothing above 0.5 at the annotation size: no region to draft
                caption = tok.decode(tokens[k, q].tolist()) if tokens is not None and tok is not None else ""
                # the model-size mask of the same dequantized map: non-empty whenever its upsampling is
                mask = dequantize(inst_q[k, q]) > np.float32(IOU_THRESHOLD)
                rles[(f, len(kept[f]))] = rle_mod.encode(m)
                kept[f].append((np.packbits(mask), float(scores[k, q]), caption, colour_histogram(pictures[k], mask)))

    def frames():
        for f in run.predicted:
            yield f, [Instance(np.unpackbits(p, count=shape[0] * shape[1]).reshape(shape).astype(bool), s, c, a)
                      for p, s, c, a in kept.get(f, [])]

    tracks = link(frames(), tracking)
    return to_instance_annotation(run.clip_id, run.predicted, tracks, rles, config_name, tracking.as_dict(),
                                  model.cfg.instance_threshold)


class ClipPredictor:
    """An instance checkpoint (SSUFormer-I) loaded once, predicting any clip of any root one at a time: the
    annotation predict_root writes for that clip (one source per track: masks, scores, captions), without the
    probability file. What `ssu-annotate --drafter` runs. Memory is bounded as in predict_root (one chunk of
    frames at a time); clips need no split. A MoHE checkpoint reads the clip's expert features from the root's
    expert cache (`ssu-train cache-expert` over those clips first).

    Refuses a semantic-only checkpoint (model.instances: false): it draws one union mask, not sources."""

    def __init__(self, checkpoint: str | Path, device: str | None = None, beam: int | None = None,
                 batch_size: int = 2, mask_stride: int = 1, chunk_frames: int = CHUNK_FRAMES,
                 instance_nms: float | None = None, instance_threshold: float | None = None,
                 cache: str | None = None) -> None:
        self.dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, self.cfg, self.tok, _ = load_model(checkpoint, self.dev)
        if not self.model.cfg.instances:
            raise UserError(f"{checkpoint}: a semantic-only checkpoint (model.instances: false) predicts one union "
                            "mask, not sound sources; draft with an SSUFormer-I checkpoint (ssu-train --config "
                            "paper_i)")
        set_instance_inference(self.model, self.cfg, checkpoint, instance_nms, instance_threshold)
        self.cfg.data.cache = cache  # the checkpoint's cache path belongs to the machine that trained it
        self.beam = beam or self.cfg.train.beam
        self.batch_size, self.chunk_frames = batch_size, chunk_frames
        frames = sample_frames(self.cfg.data.frames)
        dense = _dense_frames(frames, mask_stride)
        self.mask_stride = mask_stride if dense else 0
        self.passes = dense or [frames]
        self.predicted = sorted(f for p in self.passes for f in p)
        self.tracking = track_params(self.predicted, self.model.cfg.instance_nms)

    def settings(self) -> dict[str, str | int | float | bool | None]:
        """The inference settings, for provenance: what besides the weights decides the predictions."""
        return {"instance_nms": self.model.cfg.instance_nms, "instance_score": self.model.cfg.instance_threshold,
                "mask_threshold": IOU_THRESHOLD, "mask_stride": self.mask_stride,
                "predicted_frames": len(self.predicted), "beam": self.beam, "image_size": self.cfg.data.image_size,
                "device": str(self.dev), **self.tracking.as_dict()}

    @torch.no_grad()
    def predict(self, root: str | Path, clip_id: str) -> Annotation:
        """The instance annotation (status auto) of one clip of the root."""
        root_path = Path(root)
        ds = ClipDataset(root_path, "draft", self.cfg, self.tok,
                         expert_cache_for(root_path, self.cfg) if self.cfg.model.caption else None,
                         clip_ids=[clip_id])
        run = _Passes(ds, clip_id, self.passes, self.predicted, None, self.chunk_frames, self.batch_size, self.dev)
        return _clip_instances(self.model, run, None, self.tok, self.beam, self.tracking, self.cfg.name)
