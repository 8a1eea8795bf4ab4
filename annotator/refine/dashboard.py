"""Dashboard figures, all from the catalog's audit log and the annotations (no state of its own).

- clips per status;
- per person: edits, undos, clips touched, clips submitted / accepted / rejected / sent back;
- edits per hour (UTC) over the last `hours`;
- how much refiners changed the automatic draft, per category: mean mask IoU draft vs now (over frames
  where either has a mask), the share of frames whose caption changed, and how many clips were edited.
  The draft is rebuilt by undoing every logged edit (history.draft_of), so nothing extra is stored;
- per drafter (from the draft's provenance), over submitted and accepted clips: the same draft-vs-final
  figures, the share of drafted masks refiners kept, and whether the drafter's confidence pointed at the
  frames they fixed: what the model saves the team.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from annotator.refine import confidence, history
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES
from schemas.errors import UserError
from schemas.models import Annotation, AuditEntry, ClipStatus, now_utc
from schemas.root import DatasetRoot


@dataclass
class DraftChange:
    clip_id: str
    category: str
    mask_iou: float          # mean IoU over (source, frame) pairs where draft or current has a mask
    caption_edit_rate: float  # share of (source, frame) pairs whose caption text differs
    edits: int


def frame_ious(draft: Annotation, current: Annotation) -> dict[tuple[int, int], float]:
    """Mask IoU draft vs current per (source id, frame) where either has a mask; sources matched by id."""
    d, c = {s.id: s for s in draft.sources}, {s.id: s for s in current.sources}
    out: dict[tuple[int, int], float] = {}
    for source_id in d.keys() | c.keys():
        ds, cs = d.get(source_id), c.get(source_id)
        dm = ds.masks if ds else [None] * NUM_FRAMES
        cm = cs.masks if cs else [None] * NUM_FRAMES
        for f, (a, b) in enumerate(zip(dm, cm, strict=True)):
            if a is None and b is None:
                continue
            out[source_id, f] = 0.0 if a is None or b is None else \
                rle_mod.iou(a.model_dump(), b.model_dump())  # type: ignore[arg-type]
    return out


def caption_edit_rate(draft: Annotation, current: Annotation) -> float:
    """The share of (source, frame) pairs with a caption in either version whose text differs."""
    d, c = {s.id: s for s in draft.sources}, {s.id: s for s in current.sources}
    changed = total = 0
    for source_id in d.keys() | c.keys():
        ds, cs = d.get(source_id), c.get(source_id)
        dc = ds.frame_captions() if ds else [None] * NUM_FRAMES
        cc = cs.frame_captions() if cs else [None] * NUM_FRAMES
        for a, b in zip(dc, cc, strict=True):
            if a is None and b is None:
                continue
            total += 1
            changed += a != b
    return changed / total if total else 0.0


def _mean(ious: dict[tuple[int, int], float]) -> float:
    return sum(ious.values()) / len(ious) if ious else 1.0


def compare(draft: Annotation, current: Annotation) -> tuple[float, float]:
    """(mean mask IoU, caption edit rate) between two versions of one clip; sources matched by id."""
    return _mean(frame_ious(draft, current)), caption_edit_rate(draft, current)


def _entries_by_clip(root: DatasetRoot) -> dict[str, list[AuditEntry]]:
    by_clip: dict[str, list[AuditEntry]] = defaultdict(list)
    for e in root.catalog.history():
        if e.action in history.Action.all:
            by_clip[e.clip_id].append(e)
    return by_clip


def draft_changes(root: DatasetRoot) -> list[DraftChange]:
    out = []
    for clip_id, entries in sorted(_entries_by_clip(root).items()):
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


KEPT_IOU = 0.9  # a drafted source-frame whose final mask overlaps it this much was kept (a refiner left it be)
REFINED = {ClipStatus.needs_review, ClipStatus.accepted}  # the draft-vs-final comparison counts these clips


def _agent_label(ann: Annotation, key: str | None) -> str:
    a = ann.agents.get(key or "")
    return "?" if a is None else f"{a.name} {a.version}" if a.version else a.name


def drafter_of(draft: Annotation) -> str:
    """Which drafter made a draft, from its provenance: a checkpoint drafter (ssu-annotate --drafter) by its
    checkpoint's name and sha256 (every run's file is best.pt), else the agents that drew most of its masks
    and wrote most of its captions."""
    for a in draft.agents.values():
        if sha := a.params.get("checkpoint_sha256"):
            return f"{a.name} {a.params.get('checkpoint')} @{str(sha)[:12]}"
    masks: Counter[str] = Counter()
    caps: Counter[str] = Counter()
    for s in draft.sources:
        for m in s.mask_by:
            masks[m.by] += m.end - m.start
        for c in s.captions:
            caps[c.by or ""] += c.end - c.start
    names = [_agent_label(draft, c.most_common(1)[0][0]) for c in (masks, caps) if c]
    return " + ".join(dict.fromkeys(names)) or "(empty draft)"


@dataclass
class DrafterClip:
    """One refined clip: how much of its draft survived."""

    clip_id: str
    drafter: str
    mask_iou: float                  # mean over (source, frame) where draft or final has a mask
    caption_edit_rate: float
    edits: int
    kept: int                        # of `frames`, those whose draft and final masks overlap >= KEPT_IOU
    frames: int                      # (source, frame) pairs where draft or final has a mask
    unsure: tuple[int, int] = (0, 0)  # (changed, all) drafted source-frames scored under UNSURE_BELOW
    sure: tuple[int, int] = (0, 0)    # the same for those scored at or above it


def drafter_clips(root: DatasetRoot) -> list[DrafterClip]:
    """Every submitted or accepted clip, its draft rebuilt from the edit log (unedited clips: draft = final)."""
    entries = _entries_by_clip(root)
    out = []
    for row in root.catalog.rows(status=REFINED):
        try:
            final = root.read_annotation(row.clip_id)
        except UserError:
            continue
        log = entries.get(row.clip_id, [])
        draft = history.draft_of(final, log)
        ious = frame_ious(draft, final)
        counts = {True: [0, 0], False: [0, 0]}  # unsure? -> [changed, all]
        for s in draft.sources:
            for f, v in enumerate(s.scores or []):
                if v is not None:
                    c = counts[v < confidence.UNSURE_BELOW]
                    c[0] += ious.get((s.id, f), 1.0) < KEPT_IOU
                    c[1] += 1
        out.append(DrafterClip(row.clip_id, drafter_of(draft), _mean(ious), caption_edit_rate(draft, final),
                               sum(e.action == history.Action.edit for e in log),
                               sum(v >= KEPT_IOU for v in ious.values()), len(ious),
                               (counts[True][0], counts[True][1]), (counts[False][0], counts[False][1])))
    return out


def per_drafter(clips: list[DrafterClip]) -> list[dict[str, object]]:
    """One row per drafter: what refiners kept of its drafts, and whether its confidence pointed at their fixes
    (the share of unsure vs sure drafted source-frames they changed; blank for drafters without scores)."""
    groups: dict[str, list[DrafterClip]] = defaultdict(list)
    for c in clips:
        groups[c.drafter].append(c)

    def share(pairs: list[tuple[int, int]]) -> object:
        n = sum(p[1] for p in pairs)
        return round(sum(p[0] for p in pairs) / n, 3) if n else ""
    rows = []
    for name, g in sorted(groups.items()):
        rows.append({"drafter": name, "clips refined": len(g), "clips untouched": sum(c.edits == 0 for c in g),
                     "edits / clip": round(sum(c.edits for c in g) / len(g), 2),
                     "mask IoU draft→final": round(sum(c.mask_iou for c in g) / len(g), 3),
                     f"source-frames kept (IoU ≥ {KEPT_IOU})": share([(c.kept, c.frames) for c in g]),
                     "caption frames changed": round(sum(c.caption_edit_rate for c in g) / len(g), 3),
                     "changed where unsure": share([c.unsure for c in g]),
                     "changed where sure": share([c.sure for c in g])})
    return rows


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
            "categories": per_category(draft_changes(root)), "drafters": per_drafter(drafter_clips(root))}
