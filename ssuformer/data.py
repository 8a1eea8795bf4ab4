"""Clips of a dataset root as training samples: T frames, their VGGish audio examples, masks and captions.

Decoding a clip is the slow part, so the first time a clip is read its sampled frames (at the model's size)
and its VGGish log-mel examples are cached as .npy under <root>/.cache/ (or data.cache); later epochs read
those. Masks and captions come from the annotation every time (cheap, and refinements show up at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from schemas import atomic
from schemas import rle as rle_mod
from schemas.constants import FPS, NUM_FRAMES, SAMPLE_RATE
from schemas.errors import UserError
from schemas.root import DatasetRoot
from ssuformer.config import SSUConfig
from ssuformer.tokenizer import PAD, CaptionTokenizer

# VGGish log-mel: 10 ms hop, examples of 96 hops (0.96 s) x 64 mel bands.
MEL_HOP_S, EXAMPLE_HOPS = 0.01, 96


def sample_frames(t: int) -> list[int]:
    """T frame indices spread evenly over the 300, centred in their slots (T=10: 15, 45, ..., 285)."""
    return [int((k + 0.5) * NUM_FRAMES / t) for k in range(t)]


def frames_key(frames: list[int]) -> str:
    """The frame list's part of a cache file name: the indices, or their hash when that is too long for a name."""
    key = "-".join(map(str, frames))
    if len(key) > 80:
        import hashlib

        key = f"n{len(frames)}-" + hashlib.sha1(key.encode()).hexdigest()[:16]
    return key


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


@dataclass
class Sample:
    clip_id: str
    frames: list[int]


class ClipDataset(Dataset):
    def __init__(self, root: DatasetRoot | str | Path, split: str, cfg: SSUConfig,
                 tokenizer: CaptionTokenizer | None, expert_dir: Path | None = None,
                 clip_ids: list[str] | None = None) -> None:
        self.root_path = root.path if isinstance(root, DatasetRoot) else Path(root)
        root = DatasetRoot.open(self.root_path)
        self.ids = clip_ids if clip_ids is not None else root.read_split(split)
        if not self.ids:
            raise UserError(f"{root.split_path(split)}: the {split} split is empty")
        self.cfg = cfg
        self.size = cfg.data.image_size
        self.frames = sample_frames(cfg.data.frames)
        self.max_tokens = cfg.model.max_caption_tokens
        self.tokenizer = tokenizer
        self.expert_dir = expert_dir
        self.cache = Path(cfg.data.cache) if cfg.data.cache else self.root_path / ".cache"
        root.close()

    def __len__(self) -> int:
        return len(self.ids)

    # -- cached media -----------------------------------------------------------------------------
    def _cached(self, path: Path, make) -> np.ndarray:
        if path.is_file():
            try:
                return np.load(path)
            except (ValueError, OSError):
                pass  # a damaged cache file: rebuild it
        arr = make()
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, arr)
        return arr

    def images(self, clip_id: str) -> np.ndarray:
        from schemas.media import read_frames

        path = self.cache / f"frames-{self.size}" / f"{clip_id}.{frames_key(self.frames)}.npy"
        clip = self.root_path / "clips" / f"{clip_id}.mp4"
        return self._cached(path, lambda: read_frames(clip, self.frames, size=self.size))

    def audio(self, clip_id: str) -> np.ndarray:
        from schemas.media import read_wav

        def make() -> np.ndarray:
            wav, sr = read_wav(self.root_path / "audio" / f"{clip_id}.wav")
            if sr != SAMPLE_RATE:
                raise UserError(f"{self.root_path}/audio/{clip_id}.wav: sample rate {sr}, expected {SAMPLE_RATE}")
            return log_mel(wav, sr)

        return self._cached(self.cache / "logmel" / f"{clip_id}.npy", make)

    # -- one sample -------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> dict[str, object]:
        clip_id = self.ids[i]
        imgs = self.images(clip_id)
        mel = self.audio(clip_id)
        audio = np.stack([frame_example(mel, f) for f in self.frames])
        out: dict[str, object] = {
            "clip_id": clip_id,
            "frames": torch.tensor(self.frames),
            "images": torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0,
            "audio": torch.from_numpy(audio),
        }
        ann_path = self.root_path / "annotations" / f"{clip_id}.json"
        if ann_path.is_file():
            from schemas.models import Annotation

            ann = Annotation.model_validate_json(ann_path.read_bytes())
            masks = [resize_mask(rle_mod.decode(ann.semantic_rle(f)), self.size) for f in self.frames]
            out["masks"] = torch.from_numpy(np.stack(masks))
            caps = ann.frame_captions()
            out["captions"] = [caps[f] for f in self.frames]
            if self.tokenizer is not None:
                toks = np.full((len(self.frames), self.max_tokens), PAD, dtype=np.int64)
                for k, f in enumerate(self.frames):
                    ids = self.tokenizer.encode(caps[f], self.max_tokens)
                    toks[k, : len(ids)] = ids
                out["tokens"] = torch.from_numpy(toks)
        if self.expert_dir is not None:
            from ssuformer.mohe import load_features

            out["expert"] = torch.from_numpy(load_features(self.expert_dir, clip_id).astype(np.float32))
        return out


def collate(items: list[dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals  # type: ignore[arg-type]
    return out


def train_captions(root: DatasetRoot, split: str = "train") -> list[str]:
    """Every distinct caption text of a split (for training the tokenizer)."""
    texts: set[str] = set()
    for clip_id in root.read_split(split):
        if root.annotation_path(clip_id).is_file():
            texts.update(c for c in root.read_annotation(clip_id).frame_captions() if c)
    if not texts:
        raise UserError(f"{root.split_path(split)}: no captions in the {split} split's annotations")
    return sorted(texts)
