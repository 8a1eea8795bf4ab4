"""COCO instances JSON per split over frames sampled at --fps, with the frame images written out.

One COCO image is one sampled frame (`images/<clip_id>/<frame>.jpg`, relative to the JSON's folder); one
annotation is one sound source sounding in that frame: its compressed RLE, area, bbox, category, plus the
source's caption (`caption`), id and confidence (`score`: a drafting model's, null for truth). The frame's
clip-level caption rides on the image entry (`caption`).
Loads with `pycocotools.coco.COCO(path)`; silent frames have images without annotations.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from annotator.export.common import Selection, bbox_area, categories, remove_stale, write_frame_dir
from schemas import atomic
from schemas.constants import FPS, NUM_FRAMES, SIZE
from schemas.errors import UserError


def sample_frames(fps: float) -> list[int]:
    """Frame indices sampled at `fps` per second from frame 0 (1 fps: 0, 30, ..., 270)."""
    if not 0 < fps <= FPS:
        raise UserError(f"--fps {fps}: use a rate in (0, {FPS}]")
    step = FPS / fps
    out, k = [], 0
    while round(k * step) < NUM_FRAMES:
        out.append(int(round(k * step)))
        k += 1
    return out


def image_name(clip_id: str, frame: int) -> str:
    return f"images/{clip_id}/{frame:05d}.jpg"


def build_split(sel: Selection, clip_ids: list[str], cat_names: list[str], frames: list[int],
                split: str) -> dict[str, Any]:
    root = sel.root
    cat_id = {c: i + 1 for i, c in enumerate(cat_names)}
    sup = {c.name: c.supercategory for c in root.manifest.categories}
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for clip_id in clip_ids:
        ann = root.read_annotation(clip_id)
        clip_caps = ann.frame_captions()
        src_caps = {s.id: s.frame_captions() for s in ann.sources}
        for f in frames:
            img_id = len(images) + 1
            images.append({"id": img_id, "file_name": image_name(clip_id, f), "width": SIZE, "height": SIZE,
                           "clip_id": clip_id, "frame_index": f, "time": f / FPS, "caption": clip_caps[f]})
            for src in ann.sources:
                m = src.masks[f]
                if m is None:
                    continue
                d = m.model_dump()
                box, area = bbox_area(d)  # type: ignore[arg-type]
                anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat_id[src.category],
                             "segmentation": d, "area": area, "bbox": box, "iscrowd": 0,
                             "source_id": src.id, "name": src.name, "caption": src_caps[src.id][f],
                             # a drafting model's confidence in this mask (null: truth made by people/programs)
                             "score": src.scores[f] if src.scores is not None else None})
    return {
        "info": {"description": f"{root.manifest.name} ({split}): sound-source masks on frames sampled from "
                               "10 s clips", "version": root.manifest.version, "year": datetime.now(UTC).year,
                 "date_created": datetime.now(UTC).isoformat(timespec="seconds"), "split": split,
                 "frames_per_clip": len(frames)},
        "licenses": [{"id": 1, "name": root.manifest.license or "see dataset card", "url": ""}],
        "images": images,
        "annotations": anns,
        "categories": [{"id": cat_id[c], "name": c, "supercategory": sup.get(c) or c} for c in cat_names],
    }


def _write_images(sel: Selection, out: Path, frames: list[int]) -> int:
    """Frame JPEGs per clip; a clip folder that already holds exactly these frames is kept (resumable)."""
    from tqdm import tqdm

    want = {Path(image_name("x", f)).name for f in frames}
    n = 0
    for clip_id in tqdm(sel.clip_ids, desc="coco frames", unit="clip"):
        dest = out / "images" / clip_id
        if dest.is_dir() and {p.name for p in dest.iterdir()} != want:
            shutil.rmtree(dest)  # left by a run with another --fps
        n += write_frame_dir(dest, sel.root.clip_path(clip_id), frames, lambda f: f"{f:05d}.jpg")
    remove_stale(out / "images", set(sel.clip_ids))  # frames of clips an earlier run exported
    return n


def export_coco(sel: Selection, out: Path, fps: float = 1.0) -> list[Path]:
    """Write OUT/<split>.json for every split and OUT/images/<clip_id>/<frame>.jpg."""
    frames = sample_frames(fps)
    root = sel.root
    cat_names = categories(root, (root.read_annotation(c) for c in sel.clip_ids))
    _write_images(sel, out, frames)
    written = []
    for split, ids in sel.splits.items():
        path = out / f"{split}.json"
        atomic.write_json(path, build_split(sel, ids, cat_names, frames, split))
        written.append(path)
    remove_stale(out, {p.name for p in written}, "*.json")  # splits an earlier run had
    return [*written, out / "images"]
