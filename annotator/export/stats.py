"""Statistics of a dataset (the paper's Section III numbers) for the card, the plots and Croissant.

`root` holds DatasetRoot.stats() unchanged: the very counts `ssu-validate` prints. Everything else describes
the exported clips (the chosen statuses): categories, frames, sources per clip, caption length and
vocabulary, mask area, provenance (which models and programs, how much people changed) and licences.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from annotator.export.common import Selection, row_of
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SIZE
from schemas.models import AgentKind

WORD = re.compile(r"[A-Za-z0-9']+")
# Audit actions of edits made in the refinement app (ssu-refine): one row per edit / undo / redo.
EDIT_ACTIONS = frozenset({"edit", "undo", "redo"})


@dataclass
class DatasetStats:
    root: dict[str, Any]                       # DatasetRoot.stats(): what ssu-validate prints
    statuses: list[str]                        # the statuses exported
    clips: int
    frames: int
    sounding_frames: int                       # frames where at least one source sounds
    splits: dict[str, int]
    categories: dict[str, int]                 # exported clips per (catalog) category
    source_categories: dict[str, int]          # sound sources per category
    sources_per_clip: dict[int, int]           # number of sources -> clips
    caption_spans: int
    caption_words: list[int] = field(repr=False)    # words per caption span
    vocabulary: int = 0
    top_words: list[tuple[str, int]] = field(default_factory=list)
    mask_area: list[float] = field(default_factory=list, repr=False)  # semantic mask / frame, sounding frames
    source_mask_area: list[float] = field(default_factory=list, repr=False)  # per source and frame
    agents: list[dict[str, Any]] = field(default_factory=list)   # kind, name, version, clips
    people: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, int] = field(default_factory=dict)
    licenses: dict[str, int] = field(default_factory=dict)
    manifest_license: str | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)  # clip_id, reason: bad clips left out

    def summary(self, values: list[float] | list[int]) -> dict[str, float]:
        a = np.asarray(values, dtype=float)
        if a.size == 0:
            return {"n": 0, "mean": 0.0, "median": 0.0, "min": 0.0, "max": 0.0}
        return {"n": int(a.size), "mean": float(a.mean()), "median": float(np.median(a)), "min": float(a.min()),
                "max": float(a.max())}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the long per-frame lists replaced by their summaries)."""
        d = asdict(self)
        for k in ("caption_words", "mask_area", "source_mask_area"):
            d[k] = self.summary(d[k])
        d["sources_per_clip"] = {str(k): v for k, v in sorted(self.sources_per_clip.items())}
        return d


def compute(sel: Selection) -> DatasetStats:
    """Walk the selected clips once (annotations and catalog rows; no media decoding)."""
    from tqdm import tqdm

    root = sel.root
    cats: Counter[str] = Counter()
    src_cats: Counter[str] = Counter()
    per_clip: Counter[int] = Counter()
    words: list[int] = []
    vocab: Counter[str] = Counter()
    areas: list[float] = []
    src_areas: list[float] = []
    sounding = 0
    agents: dict[tuple[str, str, str | None], set[str]] = {}
    person_mask_frames = mask_frames = person_spans = spans = 0
    person_clips: set[str] = set()
    origins: Counter[str] = Counter()
    licenses: Counter[str] = Counter()
    pixels = float(SIZE * SIZE)
    for clip_id in tqdm(sel.clip_ids, desc="statistics", unit="clip", leave=False):
        ann = root.read_annotation(clip_id)
        row = row_of(root, clip_id)
        cats[row.category] += 1
        origins[row.origin.value] += 1
        lic = row.meta.get("license") if isinstance(row.meta, dict) else None
        licenses[str(lic) if lic else (root.manifest.license or "unknown")] += 1
        per_clip[len(ann.sources)] += 1
        for a in ann.agents.values():
            agents.setdefault((a.kind.value, a.name, a.version), set()).add(clip_id)
        person_keys = {k for k, a in ann.agents.items() if a.kind == AgentKind.person}
        for s in ann.sources:
            src_cats[s.category] += 1
            present = [m.model_dump() for m in s.masks if m is not None]
            if present:
                src_areas += [float(v) / pixels for v in np.atleast_1d(rle_mod.area(present))]  # type: ignore[arg-type]
            for span in s.mask_by:
                n = sum(1 for f in range(span.start, span.end) if s.masks[f] is not None)
                mask_frames += n
                if span.by in person_keys:
                    person_mask_frames += n
                    person_clips.add(clip_id)
            for c in s.captions:
                spans += 1
                toks = WORD.findall(c.text.lower())
                words.append(len(toks))
                vocab.update(toks)
                if c.by in person_keys:
                    person_spans += 1
                    person_clips.add(clip_id)
        sem = [ann.semantic_rle(f) for f in range(NUM_FRAMES)
               if any(s.masks[f] is not None for s in ann.sources)]
        sounding += len(sem)
        if sem:
            areas += [float(v) / pixels for v in np.atleast_1d(rle_mod.area(sem))]  # type: ignore[arg-type]
    wanted = set(sel.clip_ids)
    edits = [e for e in root.catalog.history() if e.action in EDIT_ACTIONS and e.clip_id in wanted]
    people = {
        "clips_changed_by_people": len(person_clips | {e.clip_id for e in edits}),
        "mask_frames_by_people": person_mask_frames, "mask_frames": mask_frames,
        "caption_spans_by_people": person_spans, "caption_spans": spans,
        "edits": len(edits), "editors": len({e.actor for e in edits}),
    }
    return DatasetStats(
        root=root.stats(), statuses=sorted(s.value for s in sel.statuses), clips=len(sel.clip_ids),
        frames=len(sel.clip_ids) * NUM_FRAMES, sounding_frames=sounding,
        splits={k: len(v) for k, v in sel.splits.items()}, categories=dict(cats.most_common()),
        source_categories=dict(src_cats.most_common()), sources_per_clip=dict(sorted(per_clip.items())),
        caption_spans=spans, caption_words=words, vocabulary=len(vocab), top_words=vocab.most_common(20),
        mask_area=areas, source_mask_area=src_areas,
        agents=[{"kind": k, "name": n, "version": v, "clips": len(c)}
                for (k, n, v), c in sorted(agents.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or ""))],
        people=people, origins=dict(origins.most_common()), licenses=dict(licenses.most_common()),
        manifest_license=root.manifest.license,
        skipped=[{"clip_id": k.clip_id, "reason": k.reason} for k in sel.skipped])
