"""The automatic annotation of one clip (paper, Fig. 4), as a draft for refiners:

ground the keywords on keyframes (detector) -> SAM masks from the boxes (one track per object; one per tile
of a stitched clip) -> SAM2 propagation through all 300 frames, both directions -> audio gating (a mask is
kept only in seconds where the tagger hears its category) -> region captions at 1 Hz, near-identical
neighbours merged -> Annotation with status auto and full provenance.

`AutoAnnotator.annotate` runs the stages in order, each a method that returns its result and what
provenance records about it: decode -> find_sources (ground + segment) -> track -> hear -> gate ->
captions -> provenance. The time and frames of each stage are measured between them (ClipResult).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annotator.draft import gating
from annotator.models import loaders as models
from annotator.models.hf import DEFAULT_CAPTION_PROMPT, Detection
from annotator.models.sam2_video import Masks
from annotator.models.settings import MAX_NEW_TOKENS, SAM2_WINDOW, ModelInfo, ModelsConfig
from schemas import rle as rle_mod
from schemas.constants import FPS, NUM_FRAMES, SIZE
from schemas.media import read_frames, read_wav
from schemas.models import RLE, Agent, AgentKind, Annotation, CatalogRow, ClipStatus, SoundSource
from schemas.root import DatasetRoot

# Agent keys used by spans (mask_by / captions) and provenance.
A_DETECTOR, A_SAM, A_SAM2, A_TAGGER, A_CAPTIONER, A_PIPELINE = (
    "detector", "sam", "sam2", "audio_tagger", "captioner", "ssu-annotate")


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keyframe_every: int = Field(FPS, ge=1, description="detector runs on one frame per this many (1 Hz)")
    box_threshold: float = Field(0.1, ge=0, le=1, description="extra instances need this detector score")
    max_instances: int = Field(2, ge=1, description="tracks per category (the best box is always kept)")
    nms_iou: float = Field(0.5, gt=0, le=1)
    sam2_window: int = Field(SAM2_WINDOW, ge=2, description="frames per SAM2 state (bounds memory)")
    offload: bool = Field(True, description="SAM2 frames and state on CPU")
    gate: bool = Field(True, description="keep masks only in seconds where the sound is heard")
    audio_threshold: float = Field(0.5, ge=0, le=1)
    caption_every: int = Field(FPS, ge=1, description="frames per caption (30 = 1 Hz)")
    caption_prompt: str = DEFAULT_CAPTION_PROMPT
    merge_similarity: float = Field(0.9, ge=0, le=1, description="neighbouring captions this similar merge")
    max_new_tokens: int = Field(MAX_NEW_TOKENS, ge=1)
    caption_batch: int = Field(8, ge=1)


@dataclass
class SourcePlan:
    category: str
    queries: list[str]
    region: tuple[int, int, int, int] | None = None  # x, y, w, h of a stitched clip's tile


@dataclass
class DraftModels:
    """The five models, loaded once per process."""

    sam: Any
    sam2: Any
    captioner: Any
    detector: Any
    tagger: Any

    @classmethod
    def load(cls, settings: ModelsConfig, cfg: PipelineConfig) -> DraftModels:
        return cls(sam=models.load_sam(settings),
                   sam2=models.load_sam2_video(settings, window=cfg.sam2_window, offload=cfg.offload),
                   captioner=models.load_captioner(settings, max_new_tokens=cfg.max_new_tokens),
                   detector=models.load_detector(settings), tagger=models.load_audio_tagger(settings))


@dataclass
class FoundSources:
    """What the detector and SAM found: one source per kept instance, its seed mask on its keyframe, the
    categories nothing was found for, and the per-source params that provenance records."""

    sources: list[SoundSource] = field(default_factory=list)
    plans: dict[int, SourcePlan] = field(default_factory=dict)  # source id -> its plan
    seeds: Masks = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    detector_params: dict[str, Any] = field(default_factory=dict)
    sam_params: dict[str, Any] = field(default_factory=dict)


class _Clock:
    """Seconds and frames per stage; a stage's time runs from the previous mark to its own."""

    def __init__(self, on_stage: Callable[[str], None] | None) -> None:
        self.seconds: dict[str, float] = {}
        self.frames: dict[str, int] = {}
        self.on_stage = on_stage
        self.t0 = time.perf_counter()

    def mark(self, name: str, frames: int) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - self.t0
        self.frames[name] = self.frames.get(name, 0) + frames
        if self.on_stage:
            self.on_stage(name)
        self.t0 = time.perf_counter()


@dataclass
class ClipResult:
    annotation: Annotation
    seconds: dict[str, float] = field(default_factory=dict)  # per stage
    frames: dict[str, int] = field(default_factory=dict)     # frames processed per stage


def plan_sources(row: CatalogRow, categories: list[str]) -> list[SourcePlan]:
    """What to look for: one plan per tile of a stitched clip, else one per category among the keywords
    (a keyword that names a manifest category is that category; others are queries for row.category)."""
    if row.regions:
        return [SourcePlan(r.keyword, [r.keyword], (r.x, r.y, r.w, r.h)) for r in row.regions]
    plans: dict[str, SourcePlan] = {}
    for k in row.keywords or [row.category]:
        cat = k if k in categories else row.category
        plans.setdefault(cat, SourcePlan(cat, [])).queries.append(k)
    for p in plans.values():
        if p.category not in p.queries:
            p.queries.append(p.category)
    return list(plans.values())


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def pick_instances(dets: list[Detection], threshold: float, max_n: int, nms_iou: float) -> list[Detection]:
    """Best box always; more (up to max_n) when they score >= threshold and overlap kept ones < nms_iou."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if len(kept) >= max_n:
            break
        if kept and (d.score < threshold or any(_iou(d.box, k.box) >= nms_iou for k in kept)):
            continue
        kept.append(d)
    return kept


def _agent(info: ModelInfo, prompt: str | None = None, **params: Any) -> Agent:
    return Agent(kind=AgentKind.model, name=info.name, version=info.version, prompt=prompt,
                 params={"backend": info.backend, **params})


class AutoAnnotator:
    def __init__(self, models: DraftModels, cfg: PipelineConfig, runtime: dict[str, str] | None = None) -> None:
        self.m, self.cfg, self.runtime = models, cfg, runtime or {}

    def keyframes(self) -> list[int]:
        k = self.cfg.keyframe_every
        return list(range(k // 2, NUM_FRAMES, k))

    # -- stages -----------------------------------------------------------------------------------
    def ground(self, frames: np.ndarray, plan: SourcePlan) -> tuple[int, list[Detection]]:
        """(keyframe, instances): the keyframe where the best box scores highest, and its instances."""
        best: tuple[float, int, list[Detection]] = (-1.0, self.keyframes()[0], [])
        for f in self.keyframes():
            img, (ox, oy) = frames[f], (0, 0)
            if plan.region:
                x, y, w, h = plan.region
                img, (ox, oy) = frames[f][y:y + h, x:x + w], (x, y)
            dets = [Detection((d.box[0] + ox, d.box[1] + oy, d.box[2] + ox, d.box[3] + oy), d.score, d.query)
                    for d in self.m.detector.detect(img, plan.queries, threshold=0.0)]
            if dets and dets[0].score > best[0]:
                best = (dets[0].score, f, dets)
        return best[1], pick_instances(best[2], self.cfg.box_threshold, self.cfg.max_instances, self.cfg.nms_iou)

    def segment(self, frame: np.ndarray, det: Detection, region: tuple[int, int, int, int] | None) -> tuple[
            np.ndarray, float]:
        self.m.sam.set_image(frame)
        res = self.m.sam.predict(box=np.asarray(det.box, float), multimask=True)
        return _clip_region(res.mask, region), res.score

    def annotate(self, root: DatasetRoot, clip_id: str, on_stage: Callable[[str], None] | None = None) -> ClipResult:
        """The stages in order; each returns its result and what provenance records about it."""
        row = root.catalog.get(clip_id)
        if row is None:
            raise KeyError(f"{clip_id}: not in the catalog")
        clock = _Clock(on_stage)
        frames, wav, sr = self.decode(root, clip_id)
        clock.mark("decode", NUM_FRAMES)
        plans = plan_sources(row, root.manifest.category_names())
        found = self.find_sources(frames, plans, clock)
        tracked = self.track(frames, found.seeds)
        clock.mark("sam2", len(tracked) * max(1, len(found.sources)))
        labels = sorted({s.category for s in found.sources})
        scores, tag_params = self.hear(wav, sr, labels)
        clock.mark("audio", NUM_FRAMES)
        tag_params.update(self.gate(found, tracked, scores, labels))
        clock.mark("gate", NUM_FRAMES)
        clock.mark("caption", self._captions(frames, found.sources))
        agents = self.provenance(plans, found, labels, tag_params)
        note = f"auto draft: {len(found.sources)} source(s)"
        if found.missing:
            note += f"; nothing detected for {', '.join(found.missing)}"
        ann = Annotation(clip_id=clip_id, status=ClipStatus.auto, sources=found.sources, agents=agents, note=note)
        return ClipResult(ann, clock.seconds, clock.frames)

    def decode(self, root: DatasetRoot, clip_id: str) -> tuple[np.ndarray, np.ndarray, int]:
        """(frames (300, 512, 512, 3) uint8, wav, sample rate) of a normalized clip."""
        frames = read_frames(root.clip_path(clip_id))
        if frames.shape[:3] != (NUM_FRAMES, SIZE, SIZE):
            raise ValueError(f"{root.clip_path(clip_id)}: frames {frames.shape[:3]}, expected "
                             f"({NUM_FRAMES}, {SIZE}, {SIZE}); re-normalize the clip")
        wav, sr = read_wav(root.audio_path(clip_id))
        return frames, wav, sr

    def find_sources(self, frames: np.ndarray, plans: list[SourcePlan], clock: _Clock) -> FoundSources:
        """Detector then SAM, per plan: one source per kept instance, seeded on its plan's best keyframe."""
        found = FoundSources()
        for plan in plans:
            kf, dets = self.ground(frames, plan)
            clock.mark("detect", len(self.keyframes()))
            if not dets:
                found.missing.append(plan.category)
            for j, d in enumerate(dets):
                source_id = len(found.sources)
                mask, iou = self.segment(frames[kf], d, plan.region)
                clock.mark("sam", 1)
                name = d.query if len(dets) == 1 else f"{d.query} {j + 1}"
                found.sources.append(SoundSource(id=source_id, category=plan.category, name=name,
                                                 masks=[None] * NUM_FRAMES,
                                                 region=list(map(float, plan.region)) if plan.region else None))
                found.plans[source_id] = plan
                found.detector_params.update({f"src{source_id}.keyframe": kf, f"src{source_id}.query": d.query,
                                              f"src{source_id}.score": round(d.score, 4),
                                              f"src{source_id}.box": ",".join(f"{v:.1f}" for v in d.box)})
                found.sam_params[f"src{source_id}.iou_pred"] = round(iou, 4)
                if mask.any():
                    found.seeds.setdefault(kf, {})[source_id] = mask
        return found

    def track(self, frames: np.ndarray, seeds: Masks) -> Masks:
        """SAM2 from the seed masks through the whole clip, both directions."""
        return self.m.sam2.propagate(frames, seeds) if seeds else {}

    def hear(self, wav: np.ndarray, sr: int, labels: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
        """(per-second scores (10, labels), the tagger's provenance params) of each category's sound."""
        scores = self.m.tagger.scores(wav, sr, labels) if labels else np.zeros((10, 0))
        return scores, {"threshold": self.cfg.audio_threshold, "gate": self.cfg.gate, **self.m.tagger.params()}

    def gate(self, found: FoundSources, tracked: Masks, scores: np.ndarray, labels: list[str]) -> dict[str, Any]:
        """Set each source's masks: tracked ones in the seconds its sound is heard (or all, without the gate),
        none elsewhere. Returns the per-source scores and sounding seconds for provenance."""
        params: dict[str, Any] = {}
        seed_frames = {source_id: f for f, ms in found.seeds.items() for source_id in ms}
        for src in found.sources:
            sc = scores[:, labels.index(src.category)]
            sounding = gating.sounding_seconds(sc, self.cfg.audio_threshold)
            keep = gating.frame_gate(sounding) if self.cfg.gate else np.ones(NUM_FRAMES, bool)
            params[f"src{src.id}.scores"] = gating.format_scores(sc)
            params[f"src{src.id}.sounding"] = "".join("1" if v else "0" for v in sounding)
            owners: list[str | None] = []
            raw: list[np.ndarray | None] = []
            for f in range(NUM_FRAMES):
                m = tracked.get(f, {}).get(src.id)
                m = None if m is None else _clip_region(m, found.plans[src.id].region)
                if not keep[f]:
                    raw.append(None)
                    owners.append(A_TAGGER)
                else:
                    raw.append(m if m is not None and m.any() else None)
                    owners.append(A_SAM if seed_frames.get(src.id) == f else A_SAM2)
            _set_masks(src, raw, owners)
        return params

    def provenance(self, plans: list[SourcePlan], found: FoundSources, labels: list[str],
                   tag_params: dict[str, Any]) -> dict[str, Agent]:
        """The agents of the annotation: each model with its prompt and settings, and the pipeline itself."""
        m, cfg = self.m, self.cfg
        return {
            A_DETECTOR: _agent(m.detector.info, prompt="; ".join(q for p in plans for q in p.queries),
                               box_threshold=cfg.box_threshold, max_instances=cfg.max_instances,
                               nms_iou=cfg.nms_iou, keyframes=",".join(map(str, self.keyframes())),
                               **found.detector_params),
            A_SAM: _agent(m.sam.info, prompt="box from the detector", multimask=True, **found.sam_params),
            A_SAM2: _agent(m.sam2.info, prompt="masks from SAM on the keyframes", window=cfg.sam2_window,
                           offload=cfg.offload, direction="both", mask_threshold=0.0),
            A_TAGGER: _agent(m.tagger.info, prompt=", ".join(labels), **tag_params),
            A_CAPTIONER: _agent(m.captioner.info, prompt=cfg.caption_prompt, every_frames=cfg.caption_every,
                                merge_similarity=cfg.merge_similarity, max_new_tokens=cfg.max_new_tokens,
                                **m.captioner.highlight.params()),
            A_PIPELINE: Agent(kind=AgentKind.program, name="ra-ssu ssu-annotate", version=_version(),
                              params=dict(self.runtime)),
        }

    def _captions(self, frames: np.ndarray, sources: list[SoundSource]) -> int:
        """Caption each source at 1 Hz on its masked frames; near-identical neighbours merged."""
        jobs: list[tuple[SoundSource, int, int, int, np.ndarray]] = []
        for src in sources:
            has = [m is not None for m in src.masks]
            for a, b, f in gating.caption_picks(has, self.cfg.caption_every):
                jobs.append((src, a, b, f, rle_mod.decode(src.masks[f].model_dump())))  # type: ignore[union-attr]
        texts: dict[tuple[int, int], str] = {}
        by_cat: dict[str, list[tuple[SoundSource, int, int, int, np.ndarray]]] = {}
        for j in jobs:
            by_cat.setdefault(j[0].category, []).append(j)
        for cat, js in by_cat.items():
            for i in range(0, len(js), self.cfg.caption_batch):
                chunk = js[i:i + self.cfg.caption_batch]
                outs = self.m.captioner.caption_many([(frames[f], mk) for _, _, _, f, mk in chunk], cat,
                                                     self.cfg.caption_prompt)
                for (src, a, _, _, _), text in zip(chunk, outs, strict=True):
                    texts[(src.id, a)] = text
        for src in sources:
            per_frame: list[str | None] = [None] * NUM_FRAMES
            for a, b, _ in gating.caption_picks([m is not None for m in src.masks], self.cfg.caption_every):
                text = texts.get((src.id, a)) or None
                for f in range(a, b):
                    per_frame[f] = text if src.masks[f] is not None else None
            src.set_frame_captions(gating.merge_captions(per_frame, self.cfg.merge_similarity), by=A_CAPTIONER)
        return len(jobs)


def _clip_region(mask: np.ndarray, region: tuple[int, int, int, int] | None) -> np.ndarray:
    """A tile's object cannot leave its tile: zero the mask outside it."""
    if region is None:
        return mask
    x, y, w, h = region
    out = np.zeros_like(mask)
    out[y:y + h, x:x + w] = mask[y:y + h, x:x + w]
    return out


def _set_masks(src: SoundSource, masks: list[np.ndarray | None], owners: list[str | None]) -> None:
    idx = [f for f, m in enumerate(masks) if m is not None]
    enc = rle_mod.encode_many(np.stack([masks[f] for f in idx])) if idx else []  # type: ignore[misc]
    rles: list[RLE | None] = [None] * NUM_FRAMES
    for f, r in zip(idx, enc, strict=True):
        rles[f] = RLE(**r)
    for by in dict.fromkeys(o for o in owners if o):
        frames = [f for f in range(NUM_FRAMES) if owners[f] == by]
        for a, b in _runs(frames):
            src.set_masks(rles[a:b], by=by, frames=range(a, b))


def _runs(frames: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for f in frames:
        if runs and runs[-1][1] == f:
            runs[-1] = (runs[-1][0], f + 1)
        else:
            runs.append((f, f + 1))
    return runs


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ra-ssu")
    except PackageNotFoundError:
        return "unknown"
