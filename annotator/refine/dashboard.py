"""Dashboard figures, all from the catalog's audit log and the annotations (no state of its own).

- clips per status;
- per person: edits, undos, clips touched, clips submitted / accepted / rejected / sent back;
- edits per hour (UTC) over the last `hours`;
- how much refiners changed the automatic draft, per category: mean mask IoU draft vs now (over frames
  where either has a mask), the share of frames whose caption changed, and how many clips were edited.
  The draft is rebuilt by undoing every logged edit (history.draft_of), so nothing extra is stored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from annotator.refine import history
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES
from schemas.errors import UserError
from schemas.models import Annotation, ClipStatus, now_utc
from schemas.root import DatasetRoot


@dataclass
class DraftChange:
    clip_id: str
    category: str
    mask_iou: float          # mean IoU over (source, frame) pairs where draft or current has a mask
    caption_edit_rate: float  # share of (source, frame) pairs whose caption text differs
    edits: int


def compare(draft: Annotation, current: Annotation) -> tuple[float, float]:
    """(mean mask IoU, caption edit rate) between two versions of one clip; sources matched by id."""
    d, c = {s.id: s for s in draft.sources}, {s.id: s for s in current.sources}
    ious: list[float] = []
    changed = total = 0
    for source_id in d.keys() | c.keys():
        ds, cs = d.get(source_id), c.get(source_id)
        dm = ds.masks if ds else [None] * NUM_FRAMES
        cm = cs.masks if cs else [None] * NUM_FRAMES
        for a, b in zip(dm, cm, strict=True):
            if a is None and b is None:
                continue
            ious.append(0.0 if a is None or b is None else rle_mod.iou(a.model_dump(), b.model_dump()))  # type: ignore[arg-type]
        dc = ds.frame_captions() if ds else [None] * NUM_FRAMES
        cc = cs.frame_captions() if cs else [None] * NUM_FRAMES
        for a, b in zip(dc, cc, strict=True):
            if a is None and b is None:
                continue
            total += 1
            changed += a != b
    return (sum(ious) / len(ious) if ious else 1.0), (changed / total if total else 0.0)


def draft_changes(root: DatasetRoot) -> list[DraftChange]:
    by_clip = defaultdict(list)
    for e in root.catalog.history():
        if e.action in history.Action.all:
            by_clip[e.clip_id].append(e)
    out = []
    for clip_id, entries in sorted(by_clip.items()):
        row = root.catalog.get(clip_id)
        try:
            current = root.read_annotation(clip_id)
        except UserError:
            continue  # annotation deleted since: nothing to compare
        iou, rate = compare(history.draft_of(current, entries), current)
        out.append(DraftChange(clip_id, row.category if row else "?", iou, rate,
                               sum(e.action == history.Action.edit for e in entries)))
    return out


def per_category(changes: list[DraftChange]) -> list[dict[str, object]]:
    groups: dict[str, list[DraftChange]] = defaultdict(list)
    for ch in changes:
        groups[ch.category].append(ch)
    return [{"category": cat, "clips edited": len(g), "edits": sum(c.edits for c in g),
             "mask IoU draft→now": round(sum(c.mask_iou for c in g) / len(g), 3),
             "caption edit rate": round(sum(c.caption_edit_rate for c in g) / len(g), 3)}
            for cat, g in sorted(groups.items())]


def status_counts(root: DatasetRoot) -> list[dict[str, object]]:
    counts = root.catalog.counts()
    return [{"status": s.value, "clips": counts.get(s, 0)} for s in ClipStatus if counts.get(s, 0)]


def per_person(root: DatasetRoot) -> list[dict[str, object]]:
    stats: dict[str, Counter] = defaultdict(Counter)
    touched: dict[str, set[str]] = defaultdict(set)
    for e in root.catalog.history():
        if e.action in history.Action.all:
            stats[e.actor][e.action] += 1
            touched[e.actor].add(e.clip_id)
        elif e.action == "status" and isinstance(e.after, dict):
            st = str(e.after.get("status"))
            if st == ClipStatus.in_progress and not e.note:
                continue  # a claim of an auto clip, not a send-back (those carry the reviewer's note)
            stats[e.actor][st] += 1
    rows = []
    for who, c in sorted(stats.items()):
        if not (c["edit"] or c["undo"] or c["needs_review"] or c["accepted"]):
            continue  # the synthetic generator and other programs
        rows.append({"person": who, "edits": c["edit"], "undo/redo": c["undo"] + c["redo"],
                     "clips touched": len(touched[who]), "submitted": c["needs_review"], "accepted": c["accepted"],
                     "rejected": c["rejected"], "sent back": c["in_progress"]})
    return rows


def edits_per_hour(root: DatasetRoot, hours: int = 24) -> list[dict[str, object]]:
    since = now_utc() - timedelta(hours=hours)
    c: Counter = Counter()
    for e in root.catalog.history(action=history.Action.edit):
        if e.ts >= since:
            c[e.ts.strftime("%Y-%m-%d %H:00")] += 1
    return [{"hour (UTC)": h, "edits": n} for h, n in sorted(c.items())]


def summary(root: DatasetRoot) -> dict[str, list[dict[str, object]]]:
    return {"status": status_counts(root), "people": per_person(root), "hours": edits_per_hour(root),
            "categories": per_category(draft_changes(root))}
