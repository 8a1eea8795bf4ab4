"""Pydantic models of everything stored in a dataset root. The JSON Schemas in schemas/json/ are
generated from these (python -m schemas.jsonschema) and a test keeps them in sync.

Frames are indexed 0..299; spans are half-open [start, end). Masks are COCO compressed RLE of 512x512.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas import rle as rle_mod
from schemas.constants import FPS, NUM_FRAMES, SAMPLE_RATE, SCHEMA_VERSION, SECONDS, SIZE
from schemas.spans import compress_to_spans, expand_spans

CLIP_ID_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$")


def now_utc() -> datetime:
    return datetime.now(UTC)


def check_clip_id(clip_id: str) -> str:
    """A clip id is a file stem: letters, digits, _ - . (not leading dot), no path separators, no '..'."""
    if not isinstance(clip_id, str) or not CLIP_ID_RE.match(clip_id) or ".." in clip_id:
        raise ValueError(f"invalid clip id {clip_id!r}: use letters, digits, '_', '-', '.', no '/' or '..'")
    return clip_id


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ClipStatus(StrEnum):
    """Where a clip is in the workflow. The catalog holds it; an annotation's `status` mirrors it."""

    collected = "collected"        # media normalized, no annotation yet
    failed = "failed"              # collection failed; `reason` says why; no media
    auto = "auto"                  # automatic draft written by ssu-annotate (or exact, by ssu-synth)
    in_progress = "in_progress"    # a refiner holds it
    needs_review = "needs_review"  # refined, waiting for a reviewer
    accepted = "accepted"          # final
    rejected = "rejected"          # not usable

    @classmethod
    def annotated(cls) -> set[ClipStatus]:
        return {cls.auto, cls.in_progress, cls.needs_review, cls.accepted, cls.rejected}


class Origin(StrEnum):
    vggsound = "vggsound"
    music_avqa = "music_avqa"
    music21 = "music21"
    local = "local"
    synthetic = "synthetic"
    mix = "mix"  # built by composing other clips (audio overlay + video stitching)


class Fit(StrEnum):
    pad = "pad"
    crop = "crop"
    stretch = "stretch"


class AgentKind(StrEnum):
    model = "model"
    person = "person"
    program = "program"  # deterministic code, e.g. the synthetic generator


class Agent(_Strict):
    """Who or what produced a mask or caption: a model (name + version + prompt + params) or a person."""

    kind: AgentKind
    name: str = Field(min_length=1, description="model id / person's login / program name")
    version: str | None = Field(None, description="model revision, package version or commit")
    prompt: str | None = None
    params: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class RLE(_Strict):
    """COCO compressed RLE, as pycocotools writes it with counts decoded to str."""

    size: Annotated[list[int], Field(min_length=2, max_length=2, description="[height, width]")]
    counts: str


class CaptionSpan(_Strict):
    start: int = Field(ge=0, le=NUM_FRAMES - 1, description="first frame (inclusive)")
    end: int = Field(ge=1, le=NUM_FRAMES, description="last frame + 1 (exclusive)")
    text: str = Field(min_length=1)
    by: str | None = Field(None, description="key into Annotation.agents")

    @model_validator(mode="after")
    def _order(self) -> CaptionSpan:
        if self.end <= self.start:
            raise ValueError(f"caption span end {self.end} must be > start {self.start}")
        return self


class AgentSpan(_Strict):
    """Frames [start, end) of a track were produced by agent `by`."""

    start: int = Field(ge=0, le=NUM_FRAMES - 1)
    end: int = Field(ge=1, le=NUM_FRAMES)
    by: str

    @model_validator(mode="after")
    def _order(self) -> AgentSpan:
        if self.end <= self.start:
            raise ValueError(f"span end {self.end} must be > start {self.start}")
        return self


def _check_spans(spans: list[Any], what: str) -> None:
    last = 0
    for s in sorted(spans, key=lambda s: s.start):
        if s.start < last:
            raise ValueError(f"{what} spans overlap at frame {s.start}")
        last = s.end


class SoundSource(_Strict):
    """One sound source tracked through the clip.

    masks[f] is the source's mask in frame f, or null where it is not visible or not sounding; the
    frame's semantic mask is the union of the non-null masks of all sources.
    """

    id: int = Field(ge=0)
    category: str = Field(min_length=1)
    name: str | None = Field(None, description="free label, e.g. 'red circle' or 'left violin'")
    masks: list[RLE | None] = Field(min_length=NUM_FRAMES, max_length=NUM_FRAMES)
    captions: list[CaptionSpan] = Field(default_factory=list)
    mask_by: list[AgentSpan] = Field(default_factory=list, description="who produced which frames' masks")
    region: list[float] | None = Field(None, min_length=4, max_length=4,
                                       description="[x, y, w, h] of a stitched clip's tile, in pixels")
    # A model's confidence that this source sounds in each frame (instance predictions: ranks detections for
    # mask AP, and tells a refiner which frames to check first); null for truth made by people or programs.
    scores: list[Annotated[float, Field(ge=0, le=1)] | None] | None = Field(
        None, min_length=NUM_FRAMES, max_length=NUM_FRAMES,
        description="per-frame confidence in [0, 1] of a predicted source (null where it has no mask)")

    @field_validator("captions", "mask_by")
    @classmethod
    def _no_overlap(cls, v: list[Any]) -> list[Any]:
        _check_spans(v, "caption/mask_by")
        return sorted(v, key=lambda s: s.start)

    @field_validator("masks")
    @classmethod
    def _mask_size(cls, v: list[RLE | None]) -> list[RLE | None]:
        for f, m in enumerate(v):
            if m is not None and m.size != [SIZE, SIZE]:
                raise ValueError(f"frame {f}: RLE size {m.size} is not [{SIZE}, {SIZE}]")
        return v

    def frame_captions(self) -> list[str | None]:
        return expand_spans(self.captions, NUM_FRAMES, lambda s: s.text)

    def set_frame_captions(self, captions: list[str | None], by: str | None = None) -> None:
        """Replace the spans from one caption per frame (equal neighbours merge into one span)."""
        if len(captions) != NUM_FRAMES:
            raise ValueError(f"need {NUM_FRAMES} captions, got {len(captions)}")
        self.captions = [CaptionSpan(start=s, end=e, text=t, by=by) for s, e, t in compress_to_spans(captions)]

    def set_masks(self, masks: list[RLE | None], by: str, frames: range | None = None) -> None:
        """Replace masks on `frames` (default all) and record `by` as their producer.

        `masks` holds either one entry per frame of `frames`, or all 300 (then only `frames` are taken)."""
        frames = frames if frames is not None else range(NUM_FRAMES)
        new = list(self.masks)
        for f in frames:
            new[f] = masks[f - frames.start] if len(masks) == len(frames) else masks[f]
        owners = expand_spans(self.mask_by, NUM_FRAMES, lambda s: s.by)
        for f in frames:
            owners[f] = by
        self.masks = new
        self.mask_by = [AgentSpan(start=s, end=e, by=b) for s, e, b in compress_to_spans(owners)]
        if self.scores is not None:  # a model's confidence does not carry over to masks someone else made
            scores = list(self.scores)
            for f in frames:
                scores[f] = None
            self.scores = scores if any(v is not None for v in scores) else None


class Annotation(_Strict):
    """Everything annotated about one clip: annotations/<clip_id>.json."""

    schema_version: int = SCHEMA_VERSION
    clip_id: str
    status: ClipStatus = ClipStatus.auto
    sources: list[SoundSource] = Field(default_factory=list)
    agents: dict[str, Agent] = Field(default_factory=dict, description="provenance, keyed by the ids spans use")
    note: str | None = None
    updated_at: datetime = Field(default_factory=now_utc)

    @field_validator("clip_id")
    @classmethod
    def _clip_id(cls, v: str) -> str:
        return check_clip_id(v)

    @model_validator(mode="after")
    def _refs(self) -> Annotation:
        ids = [s.id for s in self.sources]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate source ids {ids}")
        for s in self.sources:
            for span in [*s.captions, *s.mask_by]:
                if span.by is not None and span.by not in self.agents:
                    raise ValueError(f"source {s.id}: span refers to unknown agent {span.by!r}")
        return self

    def source(self, source_id: int) -> SoundSource:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(f"clip {self.clip_id} has no source {source_id}")

    def semantic_rle(self, frame: int) -> rle_mod.RLEDict:
        """The frame's semantic sound-source mask: union of the sources' masks in that frame."""
        if not 0 <= frame < NUM_FRAMES:
            raise IndexError(f"frame {frame} is outside 0..{NUM_FRAMES - 1}")
        parts = [m.model_dump() for s in self.sources if (m := s.masks[frame]) is not None]
        return rle_mod.union(parts, size=(SIZE, SIZE))  # type: ignore[arg-type]

    def frame_captions(self, joiner: str = " and ") -> list[str]:
        """The clip's caption per frame: the captions of the sources covering that frame, joined left to right.

        Annotation order is arbitrary; where a source is in the frame can be seen. Sources are ordered by their
        mask's bounding-box centre (x, then y) in that frame; sources without a mask there follow, by id. The
        training targets of SSUFormer and the references it is scored against both come from here."""
        per_source = [(s, s.frame_captions()) for s in self.sources]
        out = []
        for f in range(NUM_FRAMES):
            here = [(s, caps[f]) for s, caps in per_source if caps[f]]
            if len(here) > 1:
                here.sort(key=lambda sc: ((1, 0.0, 0.0) if (m := sc[0].masks[f]) is None
                                          else (0, *rle_mod.bbox_centre(m.model_dump())), sc[0].id))
            out.append(joiner.join(text for _, text in here))
        return out


class Category(_Strict):
    name: str = Field(min_length=1)
    supercategory: str | None = None


class Manifest(_Strict):
    """ssu.json: what this root is. The shape fields are fixed by the task and checked."""

    schema_version: int = SCHEMA_VERSION
    name: str = Field(min_length=1)
    version: str = "0.1.0"
    description: str = ""
    license: str | None = None
    fps: int = FPS
    size: int = SIZE
    seconds: int = SECONDS
    sample_rate: int = SAMPLE_RATE
    categories: list[Category] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list, description="where clips came from, e.g. 'vggsound'")
    created_at: datetime = Field(default_factory=now_utc)

    @model_validator(mode="after")
    def _shape(self) -> Manifest:
        fixed = {"fps": FPS, "size": SIZE, "seconds": SECONDS, "sample_rate": SAMPLE_RATE}
        for k, v in fixed.items():
            if getattr(self, k) != v:
                raise ValueError(f"{k} must be {v} in this format, got {getattr(self, k)}")
        return self

    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]


class Transform(_Strict):
    """How the source frame maps onto the 512x512 clip: x' = x * scale_x + offset_x (same for y)."""

    fit: Fit
    src_width: int
    src_height: int
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    src_start: float = Field(0.0, description="seconds into the source file where the clip starts")


class Region(_Strict):
    """One tile of a stitched multi-source clip."""

    x: int
    y: int
    w: int
    h: int
    keyword: str
    source_clip: str = Field(description="clip id or origin name of the tile's source")


class CatalogRow(_Strict):
    """One clip in catalog.sqlite."""

    clip_id: str
    origin: Origin
    category: str
    keywords: list[str] = Field(default_factory=list)
    status: ClipStatus = ClipStatus.collected
    reason: str | None = Field(None, description="why a clip failed or was rejected")
    youtube_id: str | None = None
    start_seconds: float | None = None
    source_path: str | None = None
    transform: Transform | None = None
    regions: list[Region] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    created_at: datetime = Field(default_factory=now_utc)
    updated_at: datetime = Field(default_factory=now_utc)

    @field_validator("clip_id")
    @classmethod
    def _clip_id(cls, v: str) -> str:
        return check_clip_id(v)


class Split(StrEnum):
    train = "train"
    val = "val"
    test = "test"


class AuditEntry(_Strict):
    id: int
    ts: datetime
    clip_id: str
    actor: str
    action: str
    before: Any = None
    after: Any = None
    note: str | None = None
