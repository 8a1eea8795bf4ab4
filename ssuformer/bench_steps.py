"""The pieces of `ssu-bench`: a synthetic root, warm caches, audio controls, trivial baselines, train + evaluate.

The benchmark is about the synthetic source (docs/synthetic.md): roots are made by the `ssu-synth` command,
and so is the "union of all objects" baseline (`ssu-synth --union-baseline`); ssuformer imports only schemas.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
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
from schemas.root import DatasetRoot


class AudioControl(StrEnum):
    zero = "zero"        # every wav replaced by silence: the model never hears anything
    shuffle = "shuffle"  # every clip gets another clip's wav (same split): sound present but unrelated


def _run_ssu_synth(args: list[str], progress: bool) -> None:
    """Run this environment's ssu-synth (a process boundary: ssuformer does not import collection)."""
    exe = Path(sys.executable).with_name("ssu-synth")
    cmd = [str(exe) if exe.is_file() else "ssu-synth", *args] + ([] if progress else ["--no-progress"])
    res = subprocess.run(cmd, check=False)
    if res.returncode != 0:
        raise UserError(f"ssu-synth {' '.join(args)}: failed with exit code {res.returncode}; see its message above")


def ensure_root(path: Path, clips: int, seed: int, progress: bool) -> Path:
    """A synthetic root at `path` (made, or resumed, by `ssu-synth`)."""
    if (path / "splits" / "test.txt").is_file():
        root = DatasetRoot.open(path)
        splits = root.splits()
        root.close()
        if splits.get(Split.train) and sum(len(v) for v in splits.values()) >= clips:
            return path
    _run_ssu_synth([str(path), "--clips", str(clips), "--seed", str(seed)], progress)
    return path


def warm_cache(root: Path, frames: list[int], size: int, dense_splits: tuple[str, ...], splits: tuple[str, ...],
               progress: bool) -> None:
    """Decode each clip once and write the frame caches ClipDataset reads (sampled frames; all 300 frames for
    `dense_splits`), so no clip is decoded twice (decoding is the slowest part of a first epoch)."""
    from tqdm import tqdm

    from schemas.media import read_frames
    from ssuformer.data import frames_key

    r = DatasetRoot.open(root)
    cache = root / ".cache" / f"frames-{size}"
    todo: list[tuple[str, bool]] = [(c, s in dense_splits) for s in splits for c in r.read_split(s)]
    sampled_key = frames_key(frames)
    dense_key = frames_key(list(range(NUM_FRAMES)))
    for clip_id, dense in tqdm(todo, desc="decode frames", unit="clip", disable=not progress):
        sampled_path = cache / f"{clip_id}.{sampled_key}.npy"
        dense_path = cache / f"{clip_id}.{dense_key}.npy"
        if sampled_path.is_file() and (not dense or dense_path.is_file()):
            continue
        want = list(range(NUM_FRAMES)) if dense else frames
        arr = read_frames(r.clip_path(clip_id), want, size=size)
        pairs = [(sampled_path, arr[frames] if dense else arr)] + ([(dense_path, arr)] if dense else [])
        for path, a in pairs:
            with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(a))


def audio_control_root(src: Path, dst: Path, mode: AudioControl, seed: int) -> Path:
    """A view of `src` whose audio is replaced (clips, annotations and frame caches are shared by symlink)."""
    from schemas.media import read_wav, write_wav

    src, dst = src.resolve(), dst
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("ssu.json", "catalog.sqlite"):
        if not (dst / name).exists():
            shutil.copy2(src / name, dst / name)
    for name in ("clips", "annotations", "splits"):
        if not (dst / name).exists():
            (dst / name).symlink_to(src / name, target_is_directory=True)
    (dst / ".cache").mkdir(exist_ok=True)
    for d in (src / ".cache").glob("frames-*"):
        if not (dst / ".cache" / d.name).exists():
            (dst / ".cache" / d.name).symlink_to(d, target_is_directory=True)
    (dst / "audio").mkdir(exist_ok=True)
    root = DatasetRoot.open(src)
    rng = np.random.default_rng(seed)
    for ids in root.splits().values():
        donors = list(ids)
        if mode == AudioControl.shuffle and len(ids) > 1:
            shift = int(rng.integers(1, len(ids)))  # a rotation: no clip keeps its own sound
            donors = ids[shift:] + ids[:shift]
        for clip_id, donor in zip(ids, donors, strict=True):
            out = dst / "audio" / f"{clip_id}.wav"
            if out.is_file():
                continue
            if mode == AudioControl.zero:
                write_wav(out, np.zeros(NUM_FRAMES // 30 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
            else:
                wav, sr = read_wav(src / "audio" / f"{donor}.wav")
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
    `ssu-synth --union-baseline` renders the baseline and we read its files, as with any predictions.
    """
    caption = most_frequent_caption(DatasetRoot.open(root_path))
    _run_ssu_synth([str(root_path), "--union-baseline", str(out), "--split", split, "--caption", caption], progress)
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


def evaluate_predictions(root_path: Path, split: str, pred: Path, meteor: bool) -> dict[str, Any]:
    """ssu-eval's scores (the same engine and defaults) of a predictions folder."""
    from ssuformer.metrics.evaluate import evaluate

    root = DatasetRoot.open(root_path)
    res = evaluate(root, split, pred, meteor=meteor)
    root.close()
    return res.overall


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
    out.test = evaluate_predictions(root_path, "test", pred / "annotations", meteor)
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



def build_tiny_llava(out: Path, seed: int = 0) -> Path:
    """A random LLaVA (CLIP tower + 2-layer Llama, width 32) saved with its processor: the MoHE expert of the
    ladder on CPU, where no real LLaVA can be downloaded. It carries no knowledge; the rung measures the
    router and the cache path, not what a 7B expert adds."""
    if (out / "config.json").is_file():
        return out
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(seed)
    words = "USER ASSISTANT : Describe the object that makes sound in this frame . <image>".split()
    specials = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
    tk = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.train_from_iterator([" ".join(words)] * 2, trainer=trainers.WordLevelTrainer(special_tokens=specials))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                  eos_token="</s>", model_max_length=128)
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=16)
    vocab = max(tok.get_vocab().values()) + 1  # ids need not be contiguous after the special tokens
    text = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0,
                       bos_token_id=2, eos_token_id=3)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                      vision_feature_layer=-1, pad_token_id=0)
    model = LlavaForConditionalGeneration(cfg).eval()
    proc = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                             crop_size={"height": 32, "width": 32}),
                          tokenizer=tok, patch_size=16, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out
