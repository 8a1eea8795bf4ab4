"""The editing tools, as functions that change an Annotation in place (the controller saves and logs).

Masks: SAM from the page's point/box prompts, brush and eraser strokes, polygons, SAM2 propagation over a
frame range seeded from the corrected mask. Sources: add, remove, set category/name. Captions: the selected
source's spans as a table (start, end, text), split a span at a frame, regenerate one span with the VLM.
An empty mask is stored as null: the source is not visible or not sounding in that frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from annotator.models.settings import Direction
from annotator.refine.tool_models import ToolModels
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SIZE
from schemas.errors import UserError
from schemas.models import RLE, Agent, AgentKind, Annotation, CaptionSpan, SoundSource

MAX_BRUSH = 128


@dataclass(frozen=True)
class Who:
    """The person editing, and the agent keys their edits are recorded under."""

    user: str

    @property
    def person(self) -> str:
        return f"person:{self.user}"

    def ensure_person(self, ann: Annotation) -> str:
        if self.person not in ann.agents:
            ann.agents[self.person] = Agent(kind=AgentKind.person, name=self.user)
            ann.agents = dict(ann.agents)  # re-assign so validate_assignment sees it
        return self.person

    def ensure_model(self, ann: Annotation, tool: str, model: tuple[str, str | None]) -> str:
        key = f"refine:{tool}:{self.user}"
        agent = Agent(kind=AgentKind.model, name=model[0], version=model[1],
                      params={"tool": tool, "run_by": self.user})
        if ann.agents.get(key) != agent:
            ann.agents = {**ann.agents, key: agent}
        return key


def to_rle(mask: np.ndarray) -> RLE | None:
    return RLE(**rle_mod.encode(mask)) if mask.any() else None


def decode(m: RLE | None) -> np.ndarray:
    return np.zeros((SIZE, SIZE), bool) if m is None else rle_mod.decode(m.model_dump())  # type: ignore[arg-type]


def check_frame(frame: int) -> int:
    if not 0 <= frame < NUM_FRAMES:
        raise UserError(f"frame {frame} is outside 0..{NUM_FRAMES - 1}")
    return frame


def _xy(x: float, y: float) -> tuple[float, float]:
    if not (0 <= x < SIZE and 0 <= y < SIZE):
        raise UserError(f"point ({x:.0f}, {y:.0f}) is outside the {SIZE}x{SIZE} frame")
    return float(x), float(y)


# -- masks ------------------------------------------------------------------------------------------
def sam_mask(ann: Annotation, source_id: int, frame: int, image: np.ndarray, models: ToolModels, who: Who,
             points: Sequence[tuple[float, float, int]], box: Sequence[float] | None) -> None:
    """Replace the source's mask on `frame` with SAM's answer to all of the frame's prompts (points, box)."""
    src = ann.source(source_id)
    if not points and box is None:
        raise UserError("click a point or draw a box first")
    pts = np.array([_xy(x, y) for x, y, _ in points], np.float32).reshape(-1, 2)
    labels = np.array([int(bool(lab)) for _, _, lab in points], np.int32)
    bx = None if box is None else np.array([*_xy(box[0], box[1]), *_xy(box[2], box[3])], np.float32)
    if bx is not None:
        bx = np.array([min(bx[0], bx[2]), min(bx[1], bx[3]), max(bx[0], bx[2]), max(bx[1], bx[3])], np.float32)
    mask = models.segment(image, pts, labels, bx)
    src.set_masks([to_rle(mask)], by=who.ensure_person(ann), frames=range(check_frame(frame), frame + 1))


def _paint(ann: Annotation, source_id: int, frame: int, shape: np.ndarray, erase: bool, who: Who) -> int:
    """Add (or erase) `shape` to the source's mask on `frame`; returns how many pixels changed."""
    src = ann.source(source_id)
    mask = decode(src.masks[check_frame(frame)])
    new = mask & ~shape if erase else mask | shape
    changed = int((new != mask).sum())
    if changed:
        src.set_masks([to_rle(new)], by=who.ensure_person(ann), frames=range(frame, frame + 1))
    return changed


def _points(points: Sequence[Sequence[float]], least: int, what: str) -> list[tuple[float, float]]:
    try:
        pts = [(float(p[0]), float(p[1])) for p in points]
    except (TypeError, ValueError, IndexError):
        raise UserError(f"{what}: points must be [x, y] pairs") from None
    if len(pts) < least:
        raise UserError(f"{what}: needs at least {least} point(s), got {len(pts)}")
    if len(pts) > 10_000:
        raise UserError(f"{what}: {len(pts)} points is too many; draw a shorter stroke")
    for x, y in pts:
        _xy(x, y)
    return pts


def stroke_shape(points: Sequence[Sequence[float]], radius: int) -> np.ndarray:
    """(SIZE, SIZE) bool: a dragged round brush, i.e. discs at the points joined by lines of the same width
    (one connected region however fast the pointer moved)."""
    from PIL import Image, ImageDraw

    if not 1 <= radius <= MAX_BRUSH:
        raise UserError(f"brush radius {radius}: use 1..{MAX_BRUSH} pixels")
    pts = _points(points, 1, "stroke")
    img = Image.new("1", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(img)
    if len(pts) > 1:
        draw.line(pts, fill=1, width=2 * radius, joint="curve")
    for x, y in pts:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=1)
    return np.asarray(img, bool)


def stroke(ann: Annotation, source_id: int, frame: int, points: Sequence[Sequence[float]], radius: int,
           erase: bool, who: Who) -> int:
    """Paint (or erase) one dragged brush stroke."""
    return _paint(ann, source_id, frame, stroke_shape(points, radius), erase, who)


def polygon(ann: Annotation, source_id: int, frame: int, points: Sequence[Sequence[float]], erase: bool,
            who: Who) -> int:
    """Fill (or cut out) a closed polygon."""
    from PIL import Image, ImageDraw

    pts = _points(points, 3, "polygon")
    img = Image.new("1", (SIZE, SIZE), 0)
    ImageDraw.Draw(img).polygon(pts, fill=1, outline=1)
    return _paint(ann, source_id, frame, np.asarray(img, bool), erase, who)


def propagation_range(frame: int, start: int, end: int, direction: Direction) -> tuple[int, int]:
    """Frames [a, b) that SAM2 sees: from the seed frame forward to `end`, back to `start`, or both."""
    check_frame(frame)
    start, end = max(0, int(start)), min(NUM_FRAMES, int(end))
    if not start <= frame < end:
        raise UserError(f"propagation range {start}..{end} must contain the current frame {frame}")
    if direction == Direction.forward:
        return frame, end
    if direction == Direction.backward:
        return start, frame + 1
    return start, end


def propagate(ann: Annotation, source_id: int, frame: int, frames: np.ndarray, first: int, models: ToolModels,
              who: Who, direction: Direction) -> range:
    """Seed SAM2 with the source's mask on `frame`; replace its masks on the other frames of the range.
    `frames` holds frames [first, first + len(frames)). Returns the frames that were rewritten."""
    src = ann.source(source_id)
    seed = src.masks[frame]
    if seed is None:
        raise UserError(f"source #{source_id} has no mask on frame {frame}: draw one first, then propagate")
    masks = models.propagate(frames, frame - first, decode(seed), Direction(direction))
    rles = [to_rle(m) for m in masks]
    key = who.ensure_model(ann, "sam2", models.describe("sam2"))
    seed_at = frame - first
    # the seed frame keeps its mask and provenance: SAM2 only fills the frames around it
    if seed_at > 0:
        src.set_masks(rles[:seed_at], by=key, frames=range(first, frame))
    if seed_at + 1 < len(rles):
        src.set_masks(rles[seed_at + 1:], by=key, frames=range(frame + 1, first + len(rles)))
    return range(first, first + len(rles))


# -- sources ----------------------------------------------------------------------------------------
def _category(category: str, allowed: Sequence[str]) -> str:
    category = (category or "").strip()
    if not category:
        raise UserError("category is empty; pick one from the list")
    if allowed and category not in allowed:
        raise UserError(f"category {category!r} is not in this root's ssu.json; use one of: {', '.join(allowed)}")
    return category


def add_source(ann: Annotation, category: str, name: str | None, allowed: Sequence[str]) -> int:
    new_id = max((s.id for s in ann.sources), default=-1) + 1
    ann.sources = [*ann.sources, SoundSource(id=new_id, category=_category(category, allowed),
                                             name=(name or "").strip() or None, masks=[None] * NUM_FRAMES)]
    return new_id


def remove_source(ann: Annotation, source_id: int) -> None:
    ann.source(source_id)  # KeyError -> controller message
    ann.sources = [s for s in ann.sources if s.id != source_id]


def set_category(ann: Annotation, source_id: int, category: str, name: str | None, allowed: Sequence[str]) -> None:
    src = ann.source(source_id)
    src.category = _category(category, allowed)
    if name is not None:
        src.name = name.strip() or None


# -- captions ---------------------------------------------------------------------------------------
def set_spans(ann: Annotation, source_id: int, rows: Sequence[Sequence[object]], who: Who) -> None:
    """Replace the source's spans from table rows (start, end, text); blank rows are ignored.
    Rows equal to an existing span keep their provenance; changed rows are the person's."""
    src = ann.source(source_id)
    old = {(s.start, s.end, s.text): s.by for s in src.captions}
    spans: list[CaptionSpan] = []
    for n, row in enumerate(rows, 1):
        cells = list(row) + [None] * (3 - len(row))
        if all(c in (None, "") or (isinstance(c, float) and np.isnan(c)) for c in cells[:3]):
            continue
        try:
            start, end, text = int(float(cells[0])), int(float(cells[1])), str(cells[2] or "").strip()  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise UserError(f"caption row {n}: start and end must be frame numbers") from None
        if not text:
            raise UserError(f"caption row {n}: text is empty; write a caption or delete the row")
        if not (0 <= start < end <= NUM_FRAMES):
            raise UserError(f"caption row {n}: need 0 <= start < end <= {NUM_FRAMES}, got {start}..{end}")
        by = old.get((start, end, text)) or who.ensure_person(ann)
        spans.append(CaptionSpan(start=start, end=end, text=text, by=by))
    spans.sort(key=lambda s: s.start)
    for a, b in zip(spans, spans[1:], strict=False):
        if b.start < a.end:
            raise UserError(f"caption spans {a.start}..{a.end} and {b.start}..{b.end} overlap; fix start/end")
    src.captions = spans


def _span_at(src: SoundSource, index: int) -> CaptionSpan:
    if not 0 <= index < len(src.captions):
        raise UserError(f"span {index} does not exist; source #{src.id} has {len(src.captions)} spans (0-based)")
    return src.captions[index]


def split_span(ann: Annotation, source_id: int, frame: int) -> None:
    """Split the span containing `frame` into [start, frame) and [frame, end), same text."""
    src = ann.source(source_id)
    for i, s in enumerate(src.captions):
        if s.start < frame < s.end:
            left = s.model_copy(update={"end": frame})
            right = s.model_copy(update={"start": frame})
            src.captions = [*src.captions[:i], left, right, *src.captions[i + 1:]]
            return
    raise UserError(f"frame {frame} is not inside a caption span of source #{source_id} (or starts one)")


def regenerate_span(ann: Annotation, source_id: int, index: int, frame_image: Callable[[int], np.ndarray],
                    models: ToolModels, who: Who, prompt: str | None = None) -> str:
    """Ask the VLM for a new caption of span `index`, looking at its middle frame (or the nearest frame of
    the span where the source has a mask); `frame_image(f)` gives the picture of frame f."""
    src = ann.source(source_id)
    span = _span_at(src, index)
    mid = (span.start + span.end) // 2
    with_mask = [f for f in range(span.start, span.end) if src.masks[f] is not None]
    f = min(with_mask, key=lambda f: abs(f - mid)) if with_mask else mid
    text = models.caption(frame_image(f), decode(src.masks[f]) if src.masks[f] else None, src.category, prompt)
    if not text:
        raise UserError("the VLM returned an empty caption; try again or edit the text by hand")
    key = who.ensure_model(ann, "vlm", models.describe("vlm"))
    caps = list(src.captions)
    caps[index] = span.model_copy(update={"text": text, "by": key})
    src.captions = caps
    return text
