"""Drawing for the viewer: the frame with every source's mask in its own colour, prompts, and the captions.

Pure numpy/PIL, no Gradio: the controller returns these images and the tests look at their pixels.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from annotator.overlay import outline
from schemas import rle as rle_mod
from schemas.models import Annotation

# Distinct, colour-blind-friendly-ish colours (Okabe-Ito plus extras); source i gets PALETTE[i % len].
PALETTE: list[tuple[int, int, int]] = [
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
    (204, 121, 167), (255, 255, 255), (140, 86, 75), (127, 255, 0),
]
ALPHA = 0.5


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def hex_colour(index: int) -> str:
    r, g, b = colour(index)
    return f"#{r:02x}{g:02x}{b:02x}"


def overlay(frame: np.ndarray, ann: Annotation, index: int, selected: int | None = None,
            points: Sequence[tuple[float, float, int]] = (), box: Sequence[float] | None = None) -> np.ndarray:
    """(H, W, 3) uint8: masks blended in their colours with outlines (thicker for the selected source),
    positive points green, negative red, a box prompt in white."""
    from PIL import Image, ImageDraw

    out = frame.astype(np.float32).copy()
    outlines: list[tuple[np.ndarray, tuple[int, int, int]]] = []
    for i, s in enumerate(ann.sources):
        m = s.masks[index]
        if m is None:
            continue
        mask = rle_mod.decode(m.model_dump())  # type: ignore[arg-type]
        c = np.array(colour(i), np.float32)
        a = ALPHA + (0.1 if s.id == selected else 0.0)
        out[mask] = out[mask] * (1 - a) + c * a
        outlines.append((outline(mask, 4 if s.id == selected else 2), colour(i)))
    for edge, c in outlines:
        out[edge] = c
    img = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    if box is not None:
        x0, y0, x1, y1 = box
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=(255, 255, 255), width=2)
    for x, y, label in points:
        fill = (0, 220, 0) if label else (230, 0, 0)
        draw.ellipse([x - 6, y - 6, x + 6, y + 6], fill=fill, outline=(0, 0, 0), width=2)
    return np.asarray(img)


def captions_html(ann: Annotation, index: int, selected: int | None = None) -> str:
    """The frame's caption per source, each with its colour swatch; the selected source in bold."""
    rows = []
    for i, s in enumerate(ann.sources):
        text = s.frame_captions()[index]
        label = html.escape(f"#{s.id} {s.name or s.category} ({s.category})")
        body = html.escape(text) if text else "<i>silent / no caption</i>"
        weight = "bold" if s.id == selected else "normal"
        rows.append(f'<div class="ssu-cap" style="font-weight:{weight}"><span class="ssu-swatch" '
                    f'style="background:{hex_colour(i)}"></span>{label}: {body}</div>')
    if not rows:
        rows.append("<div><i>no sources yet: add one in Sources</i></div>")
    return f'<div class="ssu-caps"><div class="ssu-frame">frame {index}</div>{"".join(rows)}</div>'


# Candidates for mask colours: saturated hues and a few tints. A clip gets the ones farthest from its own
# dominant colours, so a green mask never sits on a green object (the fixed palette above did).
CANDIDATES: list[tuple[int, int, int]] = [
    (255, 0, 255), (0, 255, 255), (255, 255, 0), (255, 0, 0), (0, 255, 0), (0, 80, 255), (255, 128, 0),
    (128, 0, 255), (0, 255, 128), (255, 0, 128), (128, 255, 0), (0, 128, 255), (255, 255, 255), (255, 160, 200),
    (160, 255, 255), (255, 220, 120),
]


def distinct_palette(frames: Sequence[np.ndarray], n: int) -> list[str]:
    """n hex colours, far from the picture's dominant colours and from each other."""
    n = max(n, 1)
    px = np.concatenate([f[::8, ::8].reshape(-1, 3) for f in frames]).astype(np.int32) if frames else \
        np.zeros((1, 3), np.int32)
    bins = px // 32  # 8 levels per channel
    keys, counts = np.unique(bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2], return_counts=True)
    common = keys[counts >= max(1, 0.01 * len(px))]
    centres = np.stack([common // 64, (common // 8) % 8, common % 8], 1).astype(np.float32) * 32 + 16
    cand = np.array(CANDIDATES, np.float32)
    from_picture = np.linalg.norm(cand[:, None] - centres[None], axis=-1).min(axis=1)
    chosen: list[int] = []
    for _ in range(min(n, len(cand))):
        score = from_picture.copy()
        if chosen:
            score = np.minimum(score, 0.8 * np.linalg.norm(cand[:, None] - cand[chosen][None], axis=-1).min(axis=1))
        score[chosen] = -1
        chosen.append(int(score.argmax()))
    while len(chosen) < n:  # more sources than candidates: repeat
        chosen.append(chosen[len(chosen) % len(CANDIDATES)])
    return ["#{:02x}{:02x}{:02x}".format(*CANDIDATES[i]) for i in chosen]
