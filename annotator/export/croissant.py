"""Croissant JSON-LD metadata (OUT/croissant.json) over CSV tables, validated with mlcroissant.

mlcroissant cannot read video/mp4 contents, so the videos and wavs are listed by path in a CSV record set:
    metadata/clips.csv    clip_id, split, category, origin, status, video, audio (OUT/clips/*.mp4 and
                          OUT/audio/*.wav, placed by annotator.export.media; paths relative to OUT)
    metadata/sources.csv  clip_id, source_id, category, name
    metadata/frames.csv   clip_id, frame, caption, mask (COCO RLE counts of the 512x512 semantic mask), area
Every FileObject carries @id, contentUrl, encodingFormat and sha256; every Field a dataType. The dataset's
`url` is --url when given, else absent: never a path of the machine that exported it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

from annotator.export.common import Selection, rel
from annotator.export.media import release_paths
from schemas import atomic
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SIZE
from schemas.errors import UserError

TABLES: dict[str, list[tuple[str, str, str]]] = {  # record set -> (column, dataType, description)
    "clips": [("clip_id", "Text", "clip id (file stem)"), ("split", "Text", "train, val, test (or full)"),
              ("category", "Text", "main sounding category"), ("origin", "Text", "where the clip came from"),
              ("status", "Text", "review status"), ("video", "Text", "mp4 path relative to this file's folder"),
              ("audio", "Text", "16 kHz mono wav path relative to this file's folder")],
    "sources": [("clip_id", "Text", "clip id"), ("source_id", "Integer", "sound source id within the clip"),
                ("category", "Text", "source category"), ("name", "Text", "free label of the source")],
    "frames": [("clip_id", "Text", "clip id"), ("frame", "Integer", f"frame index 0..{NUM_FRAMES - 1} at 30 fps"),
               ("caption", "Text", "captions of the sources sounding in this frame"),
               ("mask", "Text", f"COCO compressed RLE counts of the {SIZE}x{SIZE} semantic sound-source mask"),
               ("area", "Integer", "mask area in pixels")],
}


def _csv(rows: list[list[Any]], header: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def table_rows(sel: Selection, out: Path) -> dict[str, list[list[Any]]]:
    root = sel.root
    split_of = sel.split_of()
    rows: dict[str, list[list[Any]]] = {k: [] for k in TABLES}
    for clip_id in sel.clip_ids:
        ann = root.read_annotation(clip_id)
        row = root.catalog.get(clip_id)
        video, audio = release_paths(out, clip_id)
        rows["clips"].append([clip_id, split_of[clip_id], row.category if row else "", row.origin.value if row else "",
                              ann.status.value, rel(video, out), rel(audio, out)])
        for s in ann.sources:
            rows["sources"].append([clip_id, s.id, s.category, s.name or ""])
        caps = ann.frame_captions()
        sem = [ann.semantic_rle(f) for f in range(NUM_FRAMES)]
        areas = rle_mod.area(sem)
        for f in range(NUM_FRAMES):
            rows["frames"].append([clip_id, f, caps[f], sem[f]["counts"], int(areas[f])])  # type: ignore[index]
    return rows


def build(sel: Selection, out: Path, files: dict[str, tuple[str, str]], url: str | None = None) -> dict[str, Any]:
    """The JSON-LD dict; `files` maps record set -> (contentUrl, sha256)."""
    import mlcroissant as mlc

    m = sel.root.manifest
    dtypes = {"Text": mlc.DataType.TEXT, "Integer": mlc.DataType.INTEGER}
    dist = [mlc.FileObject(id=f"{name}.csv", name=f"{name}.csv", content_url=url, encoding_formats=["text/csv"],
                           sha256=sha, description=f"{name} table") for name, (url, sha) in files.items()]
    record_sets = [mlc.RecordSet(id=name, name=name, description=f"one row per {name[:-1]}", fields=[
        mlc.Field(id=f"{name}/{col}", name=col, description=desc, data_types=[dtypes[dt]],
                  source=mlc.Source(file_object=f"{name}.csv", extract=mlc.Extract(column=col)))
        for col, dt, desc in cols]) for name, cols in TABLES.items()]
    meta = mlc.Metadata(
        name=m.name, description=m.description or "A Region-Aware Sound Source Understanding (RA-SSU) dataset: "
        "10 s clips with per-frame sound-source masks and captions.",
        license=[m.license] if m.license else None, version=m.version, url=url,
        date_published=m.created_at, cite_as="RA-SSU: Region-Aware Sound Source Understanding (ra-ssu toolkit)",
        distribution=dist, record_sets=record_sets)
    return meta.to_json()


def validate_file(path: Path) -> None:
    """Load with mlcroissant (checks the structure and every file's sha256); raise with its errors."""
    import mlcroissant as mlc

    try:
        mlc.Dataset(jsonld=str(path))
    except mlc.ValidationError as e:
        raise UserError(f"{path}: Croissant validation failed: {e}") from None


def export_croissant(sel: Selection, out: Path, validate: bool = True, url: str | None = None) -> Path:
    """Write OUT/metadata/*.csv and OUT/croissant.json; check it with mlcroissant."""
    import json

    files: dict[str, tuple[str, str]] = {}
    for name, rows in table_rows(sel, out).items():
        data = _csv(rows, [c for c, _, _ in TABLES[name]])
        path = out / "metadata" / f"{name}.csv"
        atomic.write_bytes(path, data)
        files[name] = (f"metadata/{name}.csv", hashlib.sha256(data).hexdigest())
    doc = build(sel, out, files, url)
    dest = out / "croissant.json"
    atomic.write_text(dest, json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n")
    if validate:
        validate_file(dest)
    return dest
