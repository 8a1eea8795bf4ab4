"""A contact sheet of search hits: each hit's representative frame with the source's region outlined, and a
label (rank, clip, frames, score, caption). The mask comes from the searched annotations (ground truth or a
model's predictions), the frame from the root's clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from annotator.overlay import outline
from annotator.search.engine import Hit
from annotator.search.segments import Corpus, read_annotation_file
from schemas import atomic
from schemas import rle as rle_mod
from schemas.media import read_frames
from schemas.root import DatasetRoot

THUMB = 320
LABEL_H = 44
# A two-tone ring (black outside, white inside) stays visible on any picture, whatever colour the object has.
RING = ((0, 0, 0), (255, 255, 255))
RING_PX = 4  # per tone, at 512 px: 2 px each after the thumbnail's downscale


def tile(frame: np.ndarray, mask: np.ndarray | None, label: list[str]) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = frame.copy()
    if mask is not None:
        ring = outline(mask, width=2 * RING_PX)
        inner = outline(mask, width=RING_PX)
        img[ring & ~inner] = RING[0]
        img[inner] = RING[1]
    thumb = Image.fromarray(img).resize((THUMB, THUMB), Image.BILINEAR)
    out = Image.new("RGB", (THUMB, THUMB + LABEL_H), (255, 255, 255))
    out.paste(thumb, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(label[:3]):
        draw.text((4, THUMB + 2 + 13 * i), line[:52], fill=(0, 0, 0))
    return np.asarray(out)


def write_contact_sheet(hits: list[Hit], root: DatasetRoot, corpus: Corpus, out: Path, columns: int = 4) -> Path:
    """PNG of up to len(hits) tiles, `columns` per row; returns its path."""
    from PIL import Image

    tiles = []
    for h in hits:
        seg = h.segment
        ann = read_annotation_file(corpus.annotations / f"{seg.clip_id}.json", seg.clip_id)
        src = ann.source(seg.source_id)
        frame = h.frame
        rle = src.masks[frame]
        if rle is None:  # a caption without a mask on that frame: take the span's nearest masked frame
            masked = [f for f in sorted(seg.frames) if src.masks[f] is not None]
            if masked:
                frame = min(masked, key=lambda f: abs(f - h.frame))
                rle = src.masks[frame]
        mask = None if rle is None else rle_mod.decode(rle.model_dump()).astype(bool)
        img = read_frames(root.clip_path(seg.clip_id), [frame])[0]
        tiles.append(tile(img, mask, [f"#{h.rank} {seg.clip_id} f{frame} ({h.spans_text()})",
                                      f"score {h.score:.3f}  source {seg.source_id}", seg.text]))
    rows = max(1, -(-len(tiles) // columns))
    sheet = np.full((rows * (THUMB + LABEL_H), min(columns, max(1, len(tiles))) * THUMB, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * (THUMB + LABEL_H):(r + 1) * (THUMB + LABEL_H), c * THUMB:(c + 1) * THUMB] = t
    with atomic.atomic_path(out, suffix=".png") as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    return out
