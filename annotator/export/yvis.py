"""YouTube-VIS style JSON, one file per split, extended with per-frame captions.

The layout follows the YouTube-VIS 2019/2021 annotation files that the `ytvos.py` API (YTVOS class of the
youtubevos cocoapi fork) reads:
    videos:      {id, width, height, length, file_names[...]} (+ clip_id, fps, video_file, captions[frame])
    annotations: {id, video_id, category_id, iscrowd, segmentations[frame], bboxes[frame], areas[frame]}
                 with one compressed RLE (or null) per frame (+ source_id, name, captions[frame], scores[frame] or null)
    categories:  {id, name, supercategory}
One annotation is one sound source (a track); a frame where it is silent or hidden has null mask, bbox and
area, exactly as YouTube-VIS marks frames where an instance is absent.

Every path is relative to the folder of the json that holds it, so the release can move: `file_names` are
`JPEGImages/<clip_id>/<frame>.jpg` (frames written unless `frames=False`), `video_file`/`audio_file` point to
the release's `clips/` and `audio/` (annotator.export.media), e.g. `../clips/<clip_id>.mp4`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from annotator.export.common import Selection, bbox_area, categories, rel, remove_stale, write_frame_dir
from annotator.export.media import release_paths
from schemas import atomic
from schemas.constants import FPS, NUM_FRAMES, SIZE
from schemas.models import Annotation

FRAMES = "JPEGImages"


def frame_name(clip_id: str, frame: int) -> str:
    return f"{FRAMES}/{clip_id}/{frame:05d}.jpg"


def build_split(sel: Selection, clip_ids: list[str], cat_names: list[str], split: str, out: Path,
                release: Path) -> dict[str, Any]:
    """The YouTube-VIS dict of one split, written to OUT, whose media lie in the release folder."""
    root = sel.root
    cat_id = {c: i + 1 for i, c in enumerate(cat_names)}
    sup = {c.name: c.supercategory for c in root.manifest.categories}
    videos: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for vid, clip_id in enumerate(clip_ids, start=1):
        ann: Annotation = root.read_annotation(clip_id)
        videos.append({
            "id": vid, "clip_id": clip_id, "width": SIZE, "height": SIZE, "length": NUM_FRAMES, "fps": FPS,
            "file_names": [frame_name(clip_id, f) for f in range(NUM_FRAMES)],
            "video_file": rel(release_paths(release, clip_id)[0], out),
            "audio_file": rel(release_paths(release, clip_id)[1], out),
            "captions": ann.frame_captions(), "status": ann.status.value,
        })
        for src in ann.sources:
            segs, boxes, areas = [], [], []
            for m in src.masks:
                if m is None:
                    segs.append(None)
                    boxes.append(None)
                    areas.append(None)
                    continue
                d = m.model_dump()
                box, area = bbox_area(d)  # type: ignore[arg-type]
                segs.append(d)
                boxes.append(box)
                areas.append(area)
            seen = [a for a in areas if a]
            anns.append({
                "id": len(anns) + 1, "video_id": vid, "category_id": cat_id[src.category], "iscrowd": 0,
                "segmentations": segs, "bboxes": boxes, "areas": areas, "height": SIZE, "width": SIZE,
                "length": 1, "avg_area": float(sum(seen) / len(seen)) if seen else 0.0,
                "source_id": src.id, "name": src.name, "captions": src.frame_captions(),
                "scores": src.scores,  # a drafting model's confidence per frame (null: truth, or no mask there)
            })
    return {
        "info": {"description": f"{root.manifest.name} ({split}): sound-source masks and captions, "
                                "YouTube-VIS layout", "version": root.manifest.version,
                 "year": datetime.now(UTC).year, "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
                 "split": split,
                 "statuses": sorted(s.value for s in sel.statuses)},
        "licenses": [{"id": 1, "name": root.manifest.license or "see dataset card", "url": ""}],
        "videos": videos,
        "annotations": anns,
        "categories": [{"id": cat_id[c], "name": c, "supercategory": sup.get(c) or c} for c in cat_names],
    }


def export_yvis(sel: Selection, out: Path, release: Path, frames: bool = True) -> list[Path]:
    """Write OUT/<split>.json for every split and OUT/JPEGImages/<clip>/<frame>.jpg (unless not `frames`).

    `release` is the folder whose clips/ and audio/ hold the media (annotator.export.media.place_media);
    files of splits and clips this run does not export are removed."""
    from tqdm import tqdm

    root = sel.root
    cat_names = categories(root, (root.read_annotation(c) for c in sel.clip_ids))
    written: list[Path] = []
    for split, ids in sel.splits.items():
        data = build_split(sel, ids, cat_names, split, out, release)
        path = out / f"{split}.json"
        atomic.write_json(path, data)
        written.append(path)
    remove_stale(out, {p.name for p in written}, "*.json")
    if frames:
        for clip_id in tqdm(sel.clip_ids, desc="yvis frames", unit="clip"):
            write_frame_dir(out / FRAMES / clip_id, root.clip_path(clip_id), None, lambda f: f"{f:05d}.jpg")
        remove_stale(out / FRAMES, set(sel.clip_ids))
        written.append(out / FRAMES)
    return written
