"""Evaluate predictions of a split against a dataset root's ground truth (the engine behind ssu-eval).

Predictions live in one folder (or one file), one entry per clip id:
  <clip_id>.json   an annotation (schemas.models.Annotation): semantic mask per frame = union of its
                   sources' masks (binary), caption per frame = Annotation.frame_captions()
  <clip_id>.npy    probabilities (frames, H, W): float in [0, 1], or uint8 q meaning q / 255
  <clip_id>/       one 8-bit grayscale PNG per frame, sorted by name, probability = value / 255
The annotations/ and probs/ subfolders of a folder are read too (ssuformer.predict's layout). By default a
clip's probabilities are scored when it has them, else its annotation's binary masks (MaskInput).
Probabilities of another size than the ground truth are resampled to it (ssuformer.metrics.resample).
Clips are read one at a time and their frames in chunks, so memory does not grow with the split.
With instances=True each clip's annotation is also scored source by source (ssuformer.metrics.instances).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SIZE
from schemas.errors import UserError
from schemas.models import Annotation
from schemas.root import DatasetRoot, format_validation_error
from ssuformer.metrics.captions import CaptionGrouping, caption_scores_groups, group_frame_captions
from ssuformer.metrics.instances import InstanceMeter
from ssuformer.metrics.protocols import Protocol
from ssuformer.metrics.resample import RESAMPLING, dequantize, resize_bilinear
from ssuformer.metrics.segmentation import FRAME_CHUNK, SegmentationMeter, frame_stats

SUBFOLDERS = ("annotations", "probs")  # ssuformer.predict's layout
NOT_PREDICTIONS = ("metrics.json", "predictions.json")
INSTANCE_GROUP = "\x00instances"  # caption group of the per-source pairs: no category can be named so


class MaskInput(StrEnum):
    """Which masks of a clip are scored."""

    auto = "auto"  # its probabilities (.npy / PNG) when it has them, else its annotation's binary masks
    probabilities = "probabilities"
    binary = "binary"  # the annotation's masks, even when probabilities are there


@dataclass
class ClipPrediction:
    """Where one clip's predictions are; masks from `probs` (npy/png) or else from `annotation`."""

    clip_id: str
    npy: Path | None = None
    png_dir: Path | None = None
    annotation: Path | None = None

    def source(self) -> Path:
        return self.npy or self.png_dir or self.annotation  # type: ignore[return-value]


def find_predictions(path: Path) -> dict[str, ClipPrediction]:
    """Index a predictions folder (or a single file) by clip id; its annotations/ and probs/ subfolders too."""
    if not path.exists():
        raise UserError(f"--predictions {path}: does not exist; give a folder of <clip_id>.json/.npy files")
    found: dict[str, ClipPrediction] = {}
    if path.is_file():
        entries = [path]
    else:
        folders = [path] + [path / d for d in SUBFOLDERS if (path / d).is_dir()]
        entries = sorted(p for d in folders for p in d.iterdir() if not p.name.startswith("."))
    for p in entries:
        if p.is_dir():
            if p.name not in SUBFOLDERS and any(p.glob("*.png")):
                found.setdefault(p.name, ClipPrediction(p.name)).png_dir = p
        elif p.suffix == ".npy":
            found.setdefault(p.stem, ClipPrediction(p.stem)).npy = p
        elif p.suffix == ".json" and p.name not in NOT_PREDICTIONS:
            found.setdefault(p.stem, ClipPrediction(p.stem)).annotation = p
    if not found:
        raise UserError(f"--predictions {path}: no <clip_id>.json, <clip_id>.npy or <clip_id>/ PNG folder found")
    return found


def read_prediction_annotation(path: Path) -> Annotation:
    try:
        return Annotation.model_validate_json(path.read_bytes())
    except ValidationError as e:
        raise UserError(format_validation_error(path, e)) from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e})") from None


def _annotation_masks(ann: Annotation, frames: range) -> np.ndarray:
    return rle_mod.decode_many([ann.semantic_rle(f) for f in frames])


class _ProbSource:
    """Frames of one clip's prediction at the ground truth's size, with the checks that make a mismatch a
    one-line error. `kind` says what is scored: "probabilities" or "binary" (an annotation's masks)."""

    def __init__(self, pred: ClipPrediction, gt_frames: int, masks: MaskInput) -> None:
        self.pred = pred
        has_probs = pred.npy is not None or pred.png_dir is not None
        if masks == MaskInput.probabilities and not has_probs:
            raise UserError(f"--masks probabilities: clip {pred.clip_id} has no <clip_id>.npy or PNG probabilities "
                            f"({pred.source()}); use --masks binary to score its annotation")
        if masks == MaskInput.binary and pred.annotation is None:
            raise UserError(f"--masks binary: clip {pred.clip_id} has no <clip_id>.json annotation "
                            f"({pred.source()}); use --masks probabilities")
        use_probs = has_probs and masks != MaskInput.binary
        self.kind = "probabilities" if use_probs else "binary"
        self._read: Callable[[range], np.ndarray]
        self.dtype = "bool"
        if use_probs and pred.npy is not None:
            self.where = pred.npy
            try:
                arr = np.load(pred.npy, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise UserError(f"{pred.npy}: not a readable .npy array ({e})") from None
            if arr.ndim != 3 or not (np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.uint8):
                raise UserError(f"{pred.npy}: need probabilities shaped (frames, H, W), float in [0, 1] or uint8 "
                                f"(q / 255), got {arr.dtype} {arr.shape}")
            shape, self.dtype = arr.shape, str(arr.dtype)
            if arr.dtype == np.uint8:
                self._read = lambda fr: dequantize(np.asarray(arr[fr.start:fr.stop]))
            else:
                self._read = lambda fr: np.asarray(arr[fr.start:fr.stop], dtype=np.float32)
        elif use_probs:
            self.where = pred.png_dir  # type: ignore[assignment]
            files = sorted(pred.png_dir.glob("*.png"))  # type: ignore[union-attr]
            shape, self.dtype = (len(files), *self._png(files[0]).shape), "png"
            self._read = lambda fr: np.stack([self._png(files[i]) for i in fr])
        else:
            self.where = pred.annotation  # type: ignore[assignment]
            ann = read_prediction_annotation(pred.annotation)  # type: ignore[arg-type]
            if ann.clip_id != pred.clip_id:
                raise UserError(f"{pred.annotation}: holds clip_id {ann.clip_id!r}, expected {pred.clip_id!r}")
            shape = (NUM_FRAMES, SIZE, SIZE)  # the schema fixes both
            self._read = lambda fr: _annotation_masks(ann, fr).astype(np.float32)
        self.size = (int(shape[1]), int(shape[2]))
        if shape[0] != gt_frames:
            raise UserError(f"{self.where}: {shape[0]} frames, but the ground truth of clip {pred.clip_id} has "
                            f"{gt_frames}; predict every frame")

    @staticmethod
    def _png(path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            if im.mode not in ("L", "1"):
                im = im.convert("L")
            a = np.asarray(im)
        return a.astype(np.float32) if a.dtype == np.bool_ else dequantize(a)

    def read(self, frames: range) -> np.ndarray:
        """Probabilities of `frames` at the ground truth's size (resampled when the prediction is smaller)."""
        return resize_bilinear(self._read(frames), (SIZE, SIZE))

    def describe(self) -> str:
        if self.kind == "binary":
            return "binary annotation masks"
        size = f"{self.size[1]}x{self.size[0]}"
        how = "" if self.size == (SIZE, SIZE) else f" resampled to {SIZE}x{SIZE}"
        return f"probabilities ({self.dtype}, {size}{how})"


@dataclass
class EvalResult:
    overall: dict[str, object]
    per_category: dict[str, dict[str, object]] = field(default_factory=dict)
    clips: int = 0
    caption_frames_skipped: int = 0
    scored: dict[str, int] = field(default_factory=dict)  # "probabilities (uint8, 64x64 ...)" -> clips
    protocols: dict[str, dict[str, object]] = field(default_factory=dict)  # every protocol's mIoU / F-score
    instances: dict[str, object] = field(default_factory=dict)  # InstanceMeter.compute(); empty when not asked

    def masks_meta(self) -> dict[str, object]:
        kinds = {k.split(" ")[0] for k in self.scored}
        return {"scored": "probabilities" if kinds == {"probabilities"} else "binary" if kinds == {"binary"}
                else "mixed", "inputs": self.scored, "compared_at": f"{SIZE}x{SIZE} (the ground truth's size)",
                "resampling": RESAMPLING}


def evaluate(root: DatasetRoot, split: str, predictions: Path, protocol: Protocol = Protocol.per_frame,
             per_category: bool = False, captions: bool = True, meteor: bool = True,
             grouping: CaptionGrouping = CaptionGrouping.frame,
             progress: Callable[[Iterator[str], int], Iterator[str]] | None = None,
             masks: MaskInput = MaskInput.auto, instances: bool = False) -> EvalResult:
    """Segmentation metrics of every clip of `split` (streamed), then caption metrics in one batch.

    instances=True also scores every clip's annotation source by source (instance mIoU, mask AP, per-source
    captions: ssuformer.metrics.instances); each clip then needs a <clip_id>.json annotation."""
    ids = root.read_split(split)
    if not ids:
        raise UserError(f"{root.split_path(split)}: the {split} split is empty")  # type: ignore[arg-type]
    preds = find_predictions(predictions)
    missing = [c for c in ids if c not in preds]
    if missing:
        raise UserError(f"--predictions {predictions}: no prediction for {len(missing)} of {len(ids)} {split} "
                        f"clips (e.g. {', '.join(missing[:3])}); predict every clip of the split")
    category = {c: (row.category if (row := root.catalog.get(c)) else "unknown") for c in ids}
    # one counting pass per frame serves every protocol; `protocol` picks the one the table shows
    every = {p: SegmentationMeter(p) for p in Protocol}
    overall = every[Protocol(protocol)]
    by_cat: dict[str, SegmentationMeter] = {}
    cap_clips: dict[str, tuple[list[str], list[str]]] = {}
    cap_cats: dict[str, str] = {}
    scored: dict[str, int] = {}
    inst = InstanceMeter(captions=captions) if instances else None
    loop = progress(iter(ids), len(ids)) if progress else iter(ids)
    for clip_id in loop:
        gt_ann = root.read_annotation(clip_id)
        src = _ProbSource(preds[clip_id], NUM_FRAMES, MaskInput(masks))
        scored[src.describe()] = scored.get(src.describe(), 0) + 1
        meters = list(every.values())
        if per_category:
            meters.append(by_cat.setdefault(category[clip_id], SegmentationMeter(protocol)))
        for start in range(0, NUM_FRAMES, FRAME_CHUNK):  # decoded and counted a chunk at a time (memory)
            frames = range(start, min(NUM_FRAMES, start + FRAME_CHUNK))
            try:
                stats = frame_stats(src.read(frames), _annotation_masks(gt_ann, frames))
            except ValueError as e:
                raise UserError(f"{src.where}: {e}") from None
            for m in meters:
                m.update_stats(stats)
        pred_path = preds[clip_id].annotation
        if inst is not None and pred_path is None:
            raise UserError(f"--instances: clip {clip_id} has no <clip_id>.json annotation "
                            f"({preds[clip_id].source()}); give the annotations/ of an instance prediction "
                            f"(ssuformer.predict of a model.instances checkpoint) or leave out --instances")
        pred_ann = read_prediction_annotation(pred_path) if pred_path and (captions or inst) else None
        if pred_ann is not None and captions:
            cap_clips[clip_id] = (pred_ann.frame_captions(), gt_ann.frame_captions())
            cap_cats[clip_id] = category[clip_id]
        if inst is not None and pred_ann is not None:
            if pred_ann.clip_id != clip_id:
                raise UserError(f"{pred_path}: holds clip_id {pred_ann.clip_id!r}, expected {clip_id!r}")
            inst.update(gt_ann, pred_ann)
    result = EvalResult(overall=overall.compute(), clips=len(ids), scored=scored,
                        protocols={p.value: m.compute() for p, m in every.items()})
    if per_category:
        result.per_category = {k: by_cat[k].compute() for k in sorted(by_cat)}
    inst_pairs = inst.caption_pairs(grouping) if inst is not None and captions else ({}, {})
    if cap_clips or inst_pairs[0]:
        _add_captions(result, cap_clips, cap_cats, grouping, meteor, per_category, inst_pairs)
    if inst is not None:
        result.instances = inst.compute(result.instances.get("captions"))  # type: ignore[arg-type]
    return result


def _add_captions(result: EvalResult, clips: dict[str, tuple[list[str], list[str]]], cats: dict[str, str],
                  grouping: CaptionGrouping, meteor: bool, per_category: bool,
                  inst_pairs: tuple[dict[str, str], dict[str, list[str]]] = ({}, {})) -> None:
    """Every caption score in one call (one METEOR JVM): the clips' captions, per category, and the
    per-source pairs of instance matching (ids `<clip>/<source>#...` never collide with `<clip>#...`)."""
    cands, refs = group_frame_captions(clips, grouping)
    result.caption_frames_skipped = sum(1 for _, r in clips.values() for x in r if not (x or "").strip())
    groups: dict[str, list[str]] = {"": list(cands)} if cands else {}
    if per_category:  # BLEU and CIDEr are corpus-level: each category is scored as its own corpus
        for k in cands:
            groups.setdefault(cats[k.rsplit("#", 1)[0]], []).append(k)
    if inst_pairs[0]:
        groups[INSTANCE_GROUP] = list(inst_pairs[0])
        cands, refs = {**cands, **inst_pairs[0]}, {**refs, **inst_pairs[1]}
    if not cands:
        return
    scores = caption_scores_groups(cands, refs, groups, meteor=meteor)
    for name, sc in scores.items():
        sc["grouping"] = grouping.value
        if name == INSTANCE_GROUP:
            result.instances["captions"] = sc
            continue
        target = result.overall if name == "" else result.per_category.get(name)
        if target is not None:
            target["captions"] = sc


def to_json(result: EvalResult) -> str:
    return json.dumps({"overall": result.overall, "protocols": result.protocols,
                       "per_category": result.per_category, "instances": result.instances or None}, indent=2)
