"""The pieces of `ssu-bench`: a synthetic root, warm caches, audio controls, trivial baselines, train + evaluate.

The benchmark is about the synthetic source (docs/synthetic.md): roots are made by collection.synth (what
`ssu-synth` runs), and so is the "union of all objects" baseline (collection.synth_baseline, which
`ssu-synth --union-baseline` runs): only the synthetic source knows every object's pixels.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from schemas import atomic
from schemas.constants import NUM_FRAMES, SAMPLE_RATE
from schemas.errors import UserError
from schemas.models import Split
from schemas.root import CATALOG, MANIFEST, DatasetRoot


class AudioControl(StrEnum):
    zero = "zero"        # every wav replaced by silence: the model never hears anything
    shuffle = "shuffle"  # every clip gets another clip's wav (same split): sound present but unrelated


def ensure_root(path: Path, clips: int, seed: int, progress: bool) -> Path:
    """A synthetic root at `path` (made, or resumed, as `ssu-synth PATH --clips N --seed S` does)."""
    from collection.synth import generate

    if (path / MANIFEST).is_file():
        root = DatasetRoot.open(path)
        splits = root.splits()  # the splits whose files exist
        root.close()
        if Split.test in splits and splits.get(Split.train) and sum(len(v) for v in splits.values()) >= clips:
            return path
    run = generate(path, clips=clips, seed=seed, workers=os.cpu_count() or 1, progress=progress)
    run.root.close()
    return path


def warm_cache(root: Path, cfg, dense_splits: tuple[str, ...], splits: tuple[str, ...], progress: bool) -> None:
    """Decode every clip of `splits` into the frame cache that training reads (the sampled frames; all 300
    frames too for `dense_splits`: the train split when training draws jittered frames), before the timed runs
    start. The files and their places are the loader's own (ssuformer.data.ClipDataset), so the runs find them."""
    from tqdm import tqdm

    from ssuformer.data import ClipDataset

    r = DatasetRoot.open(root)
    dense_cfg = cfg.model_copy(deep=True)
    dense_cfg.data.frames = NUM_FRAMES
    loaders = {s: (ClipDataset(r, s, cfg, None, None), ClipDataset(r, s, dense_cfg, None, None) if s in dense_splits
                   else None) for s in splits}
    todo = [(s, c) for s in splits for c in r.read_split(s)]
    for split, clip_id in tqdm(todo, desc="decode frames", unit="clip", disable=not progress):
        sampled, dense = loaders[split]
        if dense is not None:
            dense.images(clip_id)
        sampled.images(clip_id)
    r.close()


def audio_control_root(src: Path, dst: Path, mode: AudioControl, seed: int) -> Path:
    """A view of `src` whose audio is replaced (clips, annotations and frame caches are shared by symlink)."""
    from schemas.media import read_wav, write_wav

    src = src.resolve()
    dst.mkdir(parents=True, exist_ok=True)
    for name in (MANIFEST, CATALOG):
        if not (dst / name).exists():
            shutil.copy2(src / name, dst / name)
    root = DatasetRoot.open(src)
    for name in ("clips", "annotations", "splits"):  # the folders of DatasetRoot's layout that stay the same
        if not (dst / name).exists():
            (dst / name).symlink_to(src / name, target_is_directory=True)
    (dst / ".cache").mkdir(exist_ok=True)
    for d in (src / ".cache").glob("frames-*"):
        if not (dst / ".cache" / d.name).exists():
            (dst / ".cache" / d.name).symlink_to(d, target_is_directory=True)
    (dst / "audio").mkdir(exist_ok=True)
    view = DatasetRoot.open(dst)  # the copied manifest makes dst a root: its file paths come from DatasetRoot
    rng = np.random.default_rng(seed)
    for ids in root.splits().values():
        donors = list(ids)
        if mode == AudioControl.shuffle and len(ids) > 1:
            shift = int(rng.integers(1, len(ids)))  # a rotation: no clip keeps its own sound
            donors = ids[shift:] + ids[:shift]
        for clip_id, donor in zip(ids, donors, strict=True):
            out = view.audio_path(clip_id)
            if out.is_file():
                continue
            if mode == AudioControl.zero:
                write_wav(out, np.zeros(NUM_FRAMES // 30 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
            else:
                wav, sr = read_wav(root.audio_path(donor))
                write_wav(out, wav, sr)
    atomic.write_json(dst / "audio-control.json", {"source": str(src), "mode": mode.value, "seed": seed}, indent=2)
    return dst


def most_frequent_caption(root: DatasetRoot, split: str = "train") -> str:
    """The most frequent per-frame caption of a split (frames without a caption do not count)."""
    counts: Counter[str] = Counter()
    for clip_id in root.read_split(split):
        counts.update(c for c in root.read_annotation(clip_id).frame_captions() if c)
    if not counts:
        raise UserError(f"{root.split_path(split)}: no captions to count")  # type: ignore[arg-type]
    return counts.most_common(1)[0][0]


def trivial_predictions(root_path: Path, out: Path, split: str, progress: bool) -> tuple[Path, str]:
    """Annotations predicting, for every frame, the union of all objects and the most frequent train caption.

    Only the synthetic source knows every object's pixels (annotations hold sounding ones only), so
    collection.synth_baseline renders the baseline and we read its files, as with any predictions.
    """
    from collection.synth_baseline import write_union_baseline

    caption = most_frequent_caption(DatasetRoot.open(root_path))
    write_union_baseline(root_path, out, split, caption, progress=progress)
    return out, caption


@dataclass
class RunResult:
    name: str
    config: str
    train_seconds: float = 0.0
    steps: int = 0
    epochs: int = 0
    eval_seconds: float = 0.0
    checkpoint: str | None = None
    predictions: str | None = None
    test: dict[str, Any] = field(default_factory=dict)
    audio_probe: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "steps_per_s": self.steps_per_s}


def evaluate_predictions(root_path: Path, split: str, pred: Path, meteor: bool, instances: bool = False
                         ) -> dict[str, Any]:
    """ssu-eval's scores (the same engine and defaults) of a predictions folder; with `instances`, its
    per-instance scores under "instances" (ssu-eval --instances)."""
    from ssuformer.metrics.evaluate import evaluate

    root = DatasetRoot.open(root_path)
    res = evaluate(root, split, pred, meteor=meteor, instances=instances)
    root.close()
    return {**res.overall, "instances": res.instances} if instances else res.overall


def train_and_evaluate(name: str, root_path: Path, cfg, run_dir: Path, seed: int, max_steps: int | None,
                       mask_stride: int, meteor: bool, progress: bool) -> RunResult:
    """Train (resuming a finished or interrupted run), predict the test split densely, score it."""
    from ssuformer.predict import predict_root
    from ssuformer.trainer import train

    res = train(root_path, cfg, run_dir, resume="auto", seed=seed, max_steps=max_steps, progress=progress)
    out = RunResult(name=name, config=cfg.name, history=res.history)
    trained = [h for h in res.history if h["phase"] == "train"]
    # the trainer's per-epoch seconds: training only (validation excluded), and they survive a resume
    out.train_seconds = float(sum(h.get("seconds") or 0.0 for h in trained))
    out.steps = int(trained[-1]["step"]) if trained else 0
    out.epochs = len(trained)
    ckpt = res.best or res.last
    out.checkpoint = str(ckpt)
    t1 = time.time()
    pred = predict_root(ckpt, root_path, "test", run_dir / "pred_test", mask_stride=mask_stride, progress=progress)
    out.predictions = str(pred / "annotations")
    # probabilities, as ssu-eval --checkpoint (which adds the per-instance scores for an instance model)
    out.test = evaluate_predictions(root_path, "test", pred, meteor, instances=cfg.model.instances)
    out.audio_probe = audio_probe(ckpt, root_path, "test")
    out.eval_seconds = time.time() - t1
    return out


def audio_probe(checkpoint: Path, root_path: Path, split: str, clips: int = 6) -> dict[str, float]:
    """Does the mask depend on the sound? The model's masks at the sampled frames of a few clips, with each
    frame's own audio and with the audio of the previous sampled frame of the same clip (another second:
    another set of sounding objects): the mean absolute change of the mask probabilities, and the IoU (at
    the model's size, threshold 0.5) of both against the truth. A model that ignores its audio input has a
    change near 0 and equal IoUs."""
    import torch

    from ssuformer.checkpoint import load_model
    from ssuformer.data import ClipDataset, collate
    from ssuformer.mohe import expert_cache_for
    from ssuformer.validate import threshold_miou

    model, cfg, tok, _ = load_model(checkpoint)
    if not cfg.model.segmentation:
        return {}
    ds = ClipDataset(root_path, split, cfg, tok, expert_cache_for(Path(root_path), cfg))
    items = [ds[i] for i in range(min(clips, len(ds)))]
    batch = collate(items)
    swapped = dict(batch, audio=batch["audio"].roll(1, 1))

    def iou(p: torch.Tensor, g: torch.Tensor) -> float:
        return threshold_miou(p.flatten(0, 1).numpy(), g.flatten(0, 1).numpy())["miou"]

    with torch.no_grad():
        real = model.predict(batch)["probs"]
        other = model.predict(swapped)["probs"]
    return {"clips": float(len(items)), "mean_abs_prob_change": float((real - other).abs().mean()),
            "mean_prob": float(real.mean()), "iou_own_audio": iou(real, batch["masks"]),
            "iou_other_audio": iou(other, batch["masks"])}
