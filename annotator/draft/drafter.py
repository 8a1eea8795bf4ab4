"""Drafts from a trained SSUFormer-I checkpoint (`ssu-annotate ROOT --drafter RUN/best.pt`).

Unlike the SAM pipeline (detector -> SAM -> SAM2 -> audio gate -> VLM), the checkpoint hears the sound: in one
pass per group of frames it outlines each sounding source, scores it and captions it
(`ssuformer.predict.ClipPredictor`, what `ssu-eval --checkpoint` runs on a split). A draft holds one source per
track of predicted instances, with per-frame masks, caption spans and confidence (`SoundSource.scores`: the
query's score, trained towards the IoU of its mask with the sounding source it covers; docs/format.md).

A source's category is the root's category (ssu.json) that its captions name most often (word match, frames
counted), else `sounding`: the checkpoint says what it hears in words, not as a class.

Provenance (agent `ssuformer`): the checkpoint's file name and sha256, its config (JSON) and the inference
settings (instance NMS IoU, instance score threshold, mask threshold, mask stride, beam, tracking, device).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from schemas.models import Annotation, ClipStatus
from schemas.root import DatasetRoot

UNKNOWN_CATEGORY = "sounding"
AGENT = "ssuformer"  # the agent key ssuformer.predict writes on every span


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def name_category(captions: list[str | None], categories: list[str]) -> str:
    """The category named in the most frames' captions (whole words, case-insensitive; the longer name wins
    a tie, then the earlier in ssu.json), or UNKNOWN_CATEGORY when none is named."""
    votes: Counter[str] = Counter()
    patterns = {c: re.compile(rf"\b{re.escape(c.lower())}\b") for c in categories}
    for text in captions:
        if text:
            low = text.lower()
            votes.update(c for c, p in patterns.items() if p.search(low))
    if not votes:
        return UNKNOWN_CATEGORY
    return max(categories, key=lambda c: (votes[c], len(c), -categories.index(c)))


@dataclass
class DrafterSettings:
    """What `--drafter` and its inference flags say; picklable, so a Ray actor builds its own Drafter."""

    checkpoint: Path
    device: str | None = None
    instance_nms: float | None = None
    instance_threshold: float | None = None
    mask_stride: int = 1
    batch_size: int = 2
    chunk_frames: int = 150
    beam: int | None = None
    extra: dict[str, str] = field(default_factory=dict)  # runtime facts for provenance

    def __call__(self) -> Drafter:
        return Drafter(self)


@dataclass
class DraftResult:
    annotation: Annotation
    seconds: dict[str, float] = field(default_factory=dict)


class Drafter:
    """One loaded checkpoint; `annotate(root, clip_id)` drafts a clip (the runner's annotator interface)."""

    def __init__(self, settings: DrafterSettings) -> None:
        from ssuformer.predict import ClipPredictor  # torch: loaded only when drafting

        self.settings = settings
        self.predictor = ClipPredictor(settings.checkpoint, device=settings.device, beam=settings.beam,
                                       batch_size=settings.batch_size, mask_stride=settings.mask_stride,
                                       chunk_frames=settings.chunk_frames, instance_nms=settings.instance_nms,
                                       instance_threshold=settings.instance_threshold)
        self.params: dict[str, str | int | float | bool | None] = {
            "checkpoint": settings.checkpoint.name, "checkpoint_sha256": sha256_file(settings.checkpoint),
            "config_name": self.predictor.cfg.name, "config": self.predictor.cfg.model_dump_json(),
            **self.predictor.settings(), **settings.extra}

    def annotate(self, root: DatasetRoot, clip_id: str) -> DraftResult:
        t0 = time.perf_counter()
        ann = self.predictor.predict(root.path, clip_id)
        t1 = time.perf_counter()
        cats = root.manifest.category_names()
        for src in ann.sources:
            src.category = name_category(src.frame_captions(), cats)
        agent = ann.agents[AGENT]
        agent.params = {**agent.params, **self.params}
        agent.version = self.params["checkpoint_sha256"][:12]  # type: ignore[index]
        ann.status = ClipStatus.auto
        return DraftResult(ann, {"predict": t1 - t0, "categories": time.perf_counter() - t1})
