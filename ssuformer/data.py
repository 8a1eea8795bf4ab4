"""Clips of a dataset root as training samples: T frames, their VGGish audio examples, masks and captions.

Decoding a clip is the slow part, so the first time a clip is read its sampled frames (at the model's size)
and its VGGish log-mel examples are cached as .npy under <root>/.cache/ (or data.cache); later epochs read
those. Masks and captions come from the annotation every time (cheap, and refinements show up at once).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from schemas import atomic
from schemas import rle as rle_mod
from schemas.constants import FPS, NUM_FRAMES, SAMPLE_RATE
from schemas.errors import UserError
from schemas.media import read_frames, read_wav
from schemas.models import Annotation
from schemas.root import DatasetRoot
from ssuformer.batch import collate
from ssuformer.config import SSUConfig
from ssuformer.mohe import load_features
from ssuformer.sampling import frames_key, jitter_frames, sample_frames
from ssuformer.tokenizer import PAD, CaptionTokenizer

__all__ = ["ClipDataset", "collate", "frame_example", "frames_key", "instance_targets", "log_mel",
           "ordered_captions", "sample_frames", "train_captions"]

# VGGish log-mel: 10 ms hop, examples of 96 hops (0.96 s) x 64 mel bands.
MEL_HOP_S, EXAMPLE_HOPS = 0.01, 96
CAPTION_JOINER = " and "


def frame_example(mel: np.ndarray, frame: int) -> np.ndarray:
    """The VGGish example (1, 96, 64) of `frame`'s second: hops [100 s, 100 s + 96) of the clip's log-mel.

    One example per second, aligned to the second as AVSBench does, and the same for all 30 frames of it:
    VGGish's own back-to-back 0.96 s examples drift 40 ms a second (at 9.5 s they hold 0.36 s of second 8),
    and a window centred on each frame mixes two seconds for the frames near a boundary.
    """
    hops_per_s = round(1 / MEL_HOP_S)
    start = min(int(frame // FPS) * hops_per_s, max(0, len(mel) - EXAMPLE_HOPS))
    ex = mel[start:start + EXAMPLE_HOPS]
    if len(ex) < EXAMPLE_HOPS:  # a clip shorter than 0.96 s: repeat its last hop
        ex = np.concatenate([ex, np.repeat(ex[-1:], EXAMPLE_HOPS - len(ex), 0)])
    return ex[None].astype(np.float32)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """(512, 512) bool -> (size, size) float32 by area averaging then 0.5 threshold."""
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return (torch.nn.functional.interpolate(t, size=(size, size), mode="area")[0, 0] >= 0.5).numpy().astype(np.float32)


def log_mel(wav: np.ndarray, sr: int) -> np.ndarray:
    """VGGish's log-mel spectrogram (hops, 64) float32 of a 16 kHz waveform (made mono)."""
    from torchvggish import mel_features
    from torchvggish import vggish_params as vp

    if sr != vp.SAMPLE_RATE:
        raise ValueError(f"log_mel needs {vp.SAMPLE_RATE} Hz audio, got {sr} Hz")
    if wav.ndim > 1:
        wav = wav.mean(1)
    mel = mel_features.log_mel_spectrogram(
        wav, audio_sample_rate=vp.SAMPLE_RATE, log_offset=vp.LOG_OFFSET,
        window_length_secs=vp.STFT_WINDOW_LENGTH_SECONDS, hop_length_secs=vp.STFT_HOP_LENGTH_SECONDS,
        num_mel_bins=vp.NUM_MEL_BINS, lower_edge_hertz=vp.MEL_MIN_HZ, upper_edge_hertz=vp.MEL_MAX_HZ)
    return np.asarray(mel, dtype=np.float32)




def ordered_captions(ann: Annotation, frames: list[int] | range = range(NUM_FRAMES)) -> list[str]:
    """Each frame's caption target: the contract's per-frame caption (sources joined left to right)."""
    caps = ann.frame_captions(CAPTION_JOINER)
    return [caps[f] for f in frames]


class ClipDataset(Dataset):
    """Samples of a split. Index with `i` (the T evaluation frames) or `(i, epoch)`: with `jitter` on, one
    frame drawn at random in each slot, the same for the same (seed, epoch, clip) in every process."""

    def __init__(self, root: DatasetRoot | str | Path, split: str, cfg: SSUConfig,
                 tokenizer: CaptionTokenizer | None, expert_dir: Path | None = None,
                 clip_ids: list[str] | None = None, jitter: bool = False, seed: int = 0) -> None:
        self.root = DatasetRoot.open(root.path if isinstance(root, DatasetRoot) else root)
        self.root_path = self.root.path
        self.ids = clip_ids if clip_ids is not None else self.root.read_split(split)
        if not self.ids:
            raise UserError(f"{self.root.split_path(split)}: the {split} split is empty")
        self.cfg = cfg
        self.size = cfg.data.image_size
        self.frames = sample_frames(cfg.data.frames)
        self.jitter, self.seed = jitter, seed
        limit = cfg.model.max_caption_tokens
        if tokenizer is not None and limit == "auto":  # a dataset without a tokenizer yields no caption tokens
            raise UserError("model.max_caption_tokens is 'auto': resolve it from the train captions first "
                            "(ssuformer.trainer.caption_tokenizer)")
        self.max_tokens = int(limit) if tokenizer is not None else 0
        self.tokenizer = tokenizer
        self.expert_dir = expert_dir
        self.cache = Path(cfg.data.cache) if cfg.data.cache else self.root_path / ".cache"
        self._target_cache: dict[str, tuple[int, dict[str, object]]] = {}  # clip -> (mtime, targets)
        self.root.close()  # paths only from here on; no catalog connection to carry into workers

    def __len__(self) -> int:
        return len(self.ids)

    def frames_for(self, i: int, epoch: int | None) -> list[int]:
        if not self.jitter or epoch is None:
            return self.frames
        return jitter_frames(len(self.frames), np.random.default_rng([self.seed, epoch, i]))

    # -- cached media -----------------------------------------------------------------------------
    def _cached(self, path: Path, make, mmap: bool = False) -> np.ndarray:
        if path.is_file():
            try:
                return np.load(path, mmap_mode="r" if mmap else None)
            except (ValueError, OSError):
                pass  # a damaged cache file: rebuild it
        arr = make()
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, arr)
        return arr

    def images(self, clip_id: str, frames: list[int] | None = None) -> np.ndarray:
        """(T, S, S, 3) uint8. Fixed frames cache as one file per frame list; jittered frames are read from
        the clip's all-frames cache (300 x S x S x 3 bytes per clip, memory-mapped)."""

        folder = self.cache / f"frames-{self.size}"
        clip = self.root.clip_path(clip_id)
        if frames is None or frames == self.frames:
            return self._cached(folder / f"{clip_id}.{frames_key(self.frames)}.npy",
                                lambda: read_frames(clip, self.frames, size=self.size))
        every = list(range(NUM_FRAMES))
        arr = self._cached(folder / f"{clip_id}.{frames_key(every)}.npy",
                           lambda: read_frames(clip, every, size=self.size), mmap=True)
        return np.ascontiguousarray(arr[frames])

    def audio(self, clip_id: str) -> np.ndarray:

        path = self.root.audio_path(clip_id)

        def make() -> np.ndarray:
            wav, sr = read_wav(path)
            if sr != SAMPLE_RATE:
                raise UserError(f"{path}: sample rate {sr}, expected {SAMPLE_RATE}")
            return log_mel(wav, sr)

        return self._cached(self.cache / "logmel" / f"{clip_id}.npy", make)

    def _tokens(self, texts: list[str | None]) -> tuple[np.ndarray, int]:
        """(len(texts), max_tokens) token ids (PAD rows for None) and how many texts were cut."""
        assert self.tokenizer is not None
        toks = np.full((len(texts), self.max_tokens), PAD, dtype=np.int64)
        cut = 0
        for k, text in enumerate(texts):
            if text is None:
                continue
            ids = self.tokenizer.encode(text, self.max_tokens)
            cut += self.tokenizer.length(text) > self.max_tokens
            toks[k, : len(ids)] = ids
        return toks, cut

    def _instance_targets(self, ann: Annotation, frames: list[int]) -> dict[str, torch.Tensor]:
        masks, valid, caps, dropped = instance_targets(ann, frames, self.size, self.cfg.model.audio_queries)
        out = {"inst_masks": torch.from_numpy(masks), "inst_valid": torch.from_numpy(valid),
               "inst_dropped": torch.tensor(dropped)}
        if self.tokenizer is not None:
            flat = [c for row in caps for c in row]
            toks, cut = self._tokens(flat)
            out["truncated"] = torch.tensor(cut)  # the instance captions are the targets here
            out["inst_tokens"] = torch.from_numpy(toks.reshape(len(frames), len(caps[0]), -1))
            out["inst_has_caption"] = torch.tensor([[c is not None for c in row] for row in caps])
        return out

    def _targets(self, clip_id: str, frames: list[int]) -> dict[str, object]:
        """Masks, captions and tokens of the frames. For the fixed frames (no jitter) they are parsed, decoded
        and resized once per version of the annotation file (its mtime: a refinement still shows up at once)
        and kept: re-reading 300 frames of RLE JSON for every sample was most of the loader's time. Copies are
        handed out, so a caller that writes into a sample cannot change the cache."""
        ann_path = self.root.annotation_path(clip_id)
        if not ann_path.is_file():
            return {}
        fixed = frames == self.frames
        stamp = ann_path.stat().st_mtime_ns
        hit = self._target_cache.get(clip_id) if fixed else None
        if hit is not None and hit[0] == stamp:
            return {k: v.clone() if isinstance(v, torch.Tensor) else list(v) for k, v in hit[1].items()}
        ann = Annotation.model_validate_json(ann_path.read_bytes())
        masks = [resize_mask(rle_mod.decode(ann.semantic_rle(f)), self.size) for f in frames]
        out: dict[str, object] = {"masks": torch.from_numpy(np.stack(masks))}
        caps = ordered_captions(ann, frames)
        out["captions"] = caps
        if self.tokenizer is not None:
            toks, cut = self._tokens(caps)
            out["tokens"] = torch.from_numpy(toks)
            out["truncated"] = torch.tensor(cut)  # captions cut at max_caption_tokens (counted per epoch)
        if self.cfg.model.instances:
            out.update(self._instance_targets(ann, frames))
        if fixed:
            self._target_cache[clip_id] = (stamp, out)
            return {k: v.clone() if isinstance(v, torch.Tensor) else list(v) for k, v in out.items()}
        return out

    # -- one sample -------------------------------------------------------------------------------
    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, object]:
        i, epoch = key if isinstance(key, tuple) else (key, None)
        clip_id = self.ids[i]
        frames = self.frames_for(i, epoch)
        imgs = self.images(clip_id, frames)
        mel = self.audio(clip_id)
        audio = np.stack([frame_example(mel, f) for f in frames])
        out: dict[str, object] = {
            "clip_id": clip_id,
            "frames": torch.tensor(frames),
            "images": torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0,
            "audio": torch.from_numpy(audio),
        }
        out.update(self._targets(clip_id, frames))
        if self.expert_dir is not None:
            out["expert"] = torch.from_numpy(load_features(self.expert_dir, clip_id).astype(np.float32))
        return out


def instance_targets(ann: Annotation, frames: list[int], size: int, slots: int
                     ) -> tuple[np.ndarray, np.ndarray, list[list[str | None]], int]:
    """Per frame, the sources with a mask there (in id order; at most `slots`, the model's queries): masks
    (T, slots, size, size) float32, valid (T, slots) bool, captions [T][slots] (None: no caption), and how
    many sources were dropped for want of a slot. A mask that vanishes at the model's size is no target."""
    masks = np.zeros((len(frames), slots, size, size), np.float32)
    valid = np.zeros((len(frames), slots), bool)
    caps: list[list[str | None]] = [[None] * slots for _ in frames]
    per_source = [(s, s.frame_captions()) for s in sorted(ann.sources, key=lambda s: s.id)]
    dropped = 0
    for t, f in enumerate(frames):
        k = 0
        for src, texts in per_source:
            rle = src.masks[f]
            if rle is None:
                continue
            m = resize_mask(rle_mod.decode(rle.model_dump()), size)
            if not m.any():
                continue
            if k == slots:
                dropped += 1
                continue
            masks[t, k], valid[t, k], caps[t][k] = m, True, texts[f]
            k += 1
    return masks, valid, caps, dropped


def train_captions(root: DatasetRoot, split: str = "train") -> list[str]:
    """Every frame's caption target of a split, one entry per frame (for training the tokenizer and measuring
    caption lengths; the tokenizer trainer only counts, so repeats weigh frequent captions as the data does)."""
    texts: list[str] = []
    for clip_id in root.read_split(split):
        if root.annotation_path(clip_id).is_file():
            texts.extend(c for c in ordered_captions(root.read_annotation(clip_id)) if c)
    if not texts:
        raise UserError(f"{root.split_path(split)}: no captions in the {split} split's annotations")
    return texts
