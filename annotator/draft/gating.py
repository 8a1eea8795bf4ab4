"""Audio gating and caption merging: the pure-numpy parts of the auto pipeline (tested without models).

A source's mask is kept only in seconds where the audio tagger hears its category; a silent object is not
a sound source (paper, section III.A). Captions are made at 1 Hz and near-identical neighbours merged so a
refiner edits one span instead of ten.
"""

from __future__ import annotations

from difflib import SequenceMatcher

import numpy as np

from schemas.constants import FPS, NUM_FRAMES


def sounding_seconds(scores: np.ndarray, threshold: float) -> np.ndarray:
    """(seconds,) scores in [0, 1] -> (seconds,) bool: heard in that second."""
    return np.asarray(scores, dtype=np.float32) >= threshold


def frame_gate(sounding: np.ndarray, num_frames: int = NUM_FRAMES, fps: int = FPS) -> np.ndarray:
    """Per-second flags -> per-frame flags (second s covers frames [fps*s, fps*(s+1)))."""
    g = np.repeat(np.asarray(sounding, dtype=bool), fps)[:num_frames]
    if len(g) < num_frames:  # a short score vector: later frames count as silent
        g = np.concatenate([g, np.zeros(num_frames - len(g), dtype=bool)])
    return g


def format_scores(scores: np.ndarray) -> str:
    """Provenance form of per-second scores: '0.912,0.031,...' (Agent params hold scalars only)."""
    return ",".join(f"{float(s):.3f}" for s in scores)


def parse_scores(text: str) -> np.ndarray:
    return np.array([float(x) for x in text.split(",") if x], dtype=np.float32)


def similar(a: str, b: str) -> float:
    """Similarity of two captions in [0, 1] (case and spacing ignored)."""
    a, b = " ".join(a.lower().split()), " ".join(b.lower().split())
    return 1.0 if a == b else SequenceMatcher(None, a, b).ratio()


def merge_captions(captions: list[str | None], threshold: float) -> list[str | None]:
    """Replace each caption that is near-identical (similarity >= threshold) to the caption of the span it
    continues by that span's text, so that equal neighbours compress into one span. None breaks a span."""
    out: list[str | None] = []
    current: str | None = None
    for c in captions:
        if c is None or not c.strip():
            out.append(None)
            current = None
            continue
        if current is not None and similar(current, c) >= threshold:
            out.append(current)
        else:
            current = c
            out.append(c)
    return out


def caption_picks(has_mask: list[bool], every: int = FPS) -> list[tuple[int, int, int]]:
    """Stretches of `every` frames (1 Hz at every=30) as (start, end, frame): the frame to caption is the
    masked frame nearest the stretch's middle; stretches without a masked frame are left out."""
    if every < 1:
        raise ValueError(f"caption interval {every} must be >= 1 frame")
    picks = []
    for a in range(0, len(has_mask), every):
        b = min(a + every, len(has_mask))
        mid = (a + b) // 2
        cands = [f for f in range(a, b) if has_mask[f]]
        if cands:
            picks.append((a, b, min(cands, key=lambda f: abs(f - mid))))
    return picks
