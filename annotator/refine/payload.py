"""What the editor page receives: plain JSON built from the annotation, the session and the catalog.

Masks go to the page as COCO RLE strings (the page decodes them and draws them itself, so opacity,
outline-only and hide cost no request and frame steps fetch only the picture); the timeline gets each
source's mask/caption frames, its confidence per frame when a drafter gave one, and the audio's loudness per frame.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from annotator.refine import assets, confidence
from annotator.refine.palette import distinct_palette
from schemas.constants import FPS, NUM_FRAMES, SIZE
from schemas.errors import UserError
from schemas.media import read_wav

if TYPE_CHECKING:
    from annotator.refine.controller import Controller
    from annotator.refine.state import ClipView


@lru_cache(maxsize=64)
def _loudness(path: str, mtime: float) -> tuple[float, ...]:
    """Per-frame RMS level of the clip's wav, scaled to 0..1 over -60..0 dBFS."""
    wav, sr = read_wav(path)
    if wav.ndim > 1:
        wav = wav.mean(axis=1)
    per = max(1, int(round(sr / FPS)))
    wav = np.pad(wav, (0, max(0, per * NUM_FRAMES - len(wav))))[:per * NUM_FRAMES].reshape(NUM_FRAMES, per)
    db = 20 * np.log10(np.sqrt((wav.astype(np.float64) ** 2).mean(axis=1)) + 1e-6)
    return tuple(float(v) for v in np.clip((db + 60) / 60, 0, 1).round(3))


def loudness(path: Path) -> list[float]:
    try:
        return list(_loudness(str(path), path.stat().st_mtime))
    except (OSError, UserError):
        return []  # no wav: the timeline shows no waveform, everything else works


_PALETTES: dict[tuple[str, float, int], tuple[str, ...]] = {}  # (clip, mtime, n) -> colours; a few bytes each


def palette(ctl: Controller, clip_id: str, n: int) -> list[str]:
    """Mask colours that stand apart from the clip's own colours (read from its first frame, once per clip)."""
    path = ctl.root.clip_path(clip_id)
    key = (str(path), path.stat().st_mtime, max(n, 4))
    if key not in _PALETTES:
        _PALETTES[key] = tuple(distinct_palette([ctl.frame_image(clip_id, 0)], key[2]))
    return list(_PALETTES[key])


def editor_state(ctl: Controller, view: ClipView) -> dict[str, Any]:
    """Everything the editor page shows for the session's open clip, from the annotation the request already
    holds (`view`)."""
    ann, clip_id = view.annotation, view.clip_id
    colours = palette(ctl, clip_id, len(ann.sources))
    sources = []
    for i, src in enumerate(ann.sources):
        sources.append({
            "id": src.id, "category": src.category, "name": src.name, "colour": colours[i % len(colours)],
            "masks": [None if m is None else m.counts for m in src.masks],
            "captions": [{"start": c.start, "end": c.end, "text": c.text, "by": c.by} for c in src.captions],
            # the drafter's per-frame confidence (null where none: truth, people's frames): the timeline's strip
            "scores": None if src.scores is None else [None if v is None else round(v, 3) for v in src.scores],
        })
    return {
        "clip_id": clip_id, "status": ann.status.value, "read_only": view.read_only,
        "lease_owner": view.lease_owner, "revision": view.revision,
        "message": view.message, "notice": view.notice, "note": ann.note, "notes": ctl.notes(clip_id),
        "can_undo": view.can_undo, "can_redo": view.can_redo,
        "user": {"name": view.user.name, "role": view.user.role.value, "can_review": view.user.can_review},
        "review_required": ctl.config.require_review,
        "sources": sources, "source_id": view.source_id, "frame": view.frame, "categories": ctl.categories,
        "loudness": loudness(ctl.root.audio_path(clip_id)), "size": SIZE, "num_frames": NUM_FRAMES, "fps": FPS,
        "unsure_below": confidence.UNSURE_BELOW,
        "models": ctl.models.names(), "shortcuts": assets.SHORTCUTS, "heartbeat_s": ctl.config.heartbeat_seconds,
        "media_version": int(ctl.root.clip_path(clip_id).stat().st_mtime),
        "video": f"/ssu/api/video/{clip_id}.mp4",
        "tools_off": ctl.models.off_reasons(),  # {tool: why it is off}: the page disables those buttons
    }
