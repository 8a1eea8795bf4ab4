"""Hugging Face `datasets` layout: OUT/data/<split>-NNNNN-of-MMMMM.parquet + OUT/README.md with `configs:`.

`datasets.load_dataset(OUT)` opens it offline, no loading script. One row per clip:
    clip_id, category, origin, keywords, youtube_id, start_seconds, status
    video (binary: the mp4 file's bytes), video_path (relative to the dataset root)
    audio (binary: the wav file's bytes), audio_path
    captions        list[300] of str: the clip's caption per frame ("" where nothing sounds)
    semantic_masks  list[300] of {size, counts}: COCO RLE of the union of the sounding sources
    sources         list of {id, category, name, masks: list[300] of RLE or null, captions: list[300] of str or null}
    annotation      the full annotation JSON (provenance: agents, mask_by, caption spans)
Why binary and not datasets' Video()/Audio() features: those decode only through torchcodec, which needs FFmpeg
shared libraries that many machines lack; plain bytes decode anywhere (PyAV, decord, soundfile: see
docs/export.md). Shards are rewritten only when their clips changed (fingerprint in the Parquet metadata).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from annotator.export.common import Selection, rel
from schemas import atomic
from schemas.constants import NUM_FRAMES

FINGERPRINT_KEY = b"ra_ssu_fingerprint"


def fingerprint(sel: Selection, clip_ids: list[str], fmt: str) -> str:
    """Changes when any clip's annotation, catalog row or media changes (media by size and mtime)."""
    root = sel.root
    h = hashlib.sha256(fmt.encode())
    for c in clip_ids:
        h.update(c.encode())
        h.update(root.annotation_path(c).read_bytes())
        row = root.catalog.get(c)
        h.update(row.model_dump_json(exclude={"updated_at", "lease_owner", "lease_expires"}).encode() if row else b"")
        for p in (root.clip_path(c), root.audio_path(c)):
            st = p.stat() if p.exists() else None
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode() if st else b"missing")
    return h.hexdigest()


def shards(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)] or [[]]


def schema() -> Any:
    import pyarrow as pa

    rle = pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])
    source = pa.struct([("id", pa.int64()), ("category", pa.string()), ("name", pa.string()),
                        ("masks", pa.list_(rle)), ("captions", pa.list_(pa.string()))])
    return pa.schema([
        ("clip_id", pa.string()), ("category", pa.string()), ("origin", pa.string()),
        ("keywords", pa.list_(pa.string())), ("youtube_id", pa.string()), ("start_seconds", pa.float64()),
        ("status", pa.string()), ("video", pa.binary()), ("video_path", pa.string()), ("audio", pa.binary()),
        ("audio_path", pa.string()), ("captions", pa.list_(pa.string())), ("semantic_masks", pa.list_(rle)),
        ("sources", pa.list_(source)), ("annotation", pa.string()),
    ])


def clip_record(sel: Selection, clip_id: str) -> dict[str, Any]:
    """One clip as a row of the Parquet table (also used by the WebDataset json)."""
    root = sel.root
    ann = root.read_annotation(clip_id)
    row = root.catalog.get(clip_id)
    vpath, apath = root.clip_path(clip_id), root.audio_path(clip_id)
    return {
        "clip_id": clip_id, "category": row.category if row else None, "origin": row.origin.value if row else None,
        "keywords": row.keywords if row else [], "youtube_id": row.youtube_id if row else None,
        "start_seconds": row.start_seconds if row else None, "status": ann.status.value,
        "video": vpath.read_bytes() if vpath.is_file() else None, "video_path": rel(vpath, root.path),
        "audio": apath.read_bytes() if apath.is_file() else None, "audio_path": rel(apath, root.path),
        "captions": ann.frame_captions(),
        "semantic_masks": [dict(ann.semantic_rle(f)) for f in range(NUM_FRAMES)],
        "sources": [{"id": s.id, "category": s.category, "name": s.name,
                     "masks": [None if m is None else m.model_dump() for m in s.masks],
                     "captions": s.frame_captions()} for s in ann.sources],
        "annotation": ann.model_dump_json(),
    }


def _existing_fingerprint(path: Path) -> str | None:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:  # a foreign or damaged file: rewrite it
        return None
    v = meta.get(FINGERPRINT_KEY)
    return v.decode() if v else None


def _write_shard(sel: Selection, ids: list[str], path: Path, fp: str, rows_per_group: int = 8) -> None:
    """Stream clips into one Parquet file (row groups of a few clips keep memory small), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sch = schema().with_metadata({FINGERPRINT_KEY: fp.encode()})
    with atomic.atomic_path(path) as tmp, pq.ParquetWriter(tmp, sch, compression="zstd") as w:
        for i in range(0, max(1, len(ids)), rows_per_group):
            batch = [clip_record(sel, c) for c in ids[i:i + rows_per_group]]
            w.write_table(pa.Table.from_pylist(batch, schema=sch))


def configs(splits: list[str]) -> list[dict[str, Any]]:
    """The README `configs:` entry that tells `datasets` where each split's shards are."""
    return [{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits]}]


def hf_splits(out: Path) -> list[str]:
    """Splits that have Parquet shards under OUT/data (in train/val/test order)."""
    names = {p.name.split("-")[0] for p in (out / "data").glob("*-*-of-*.parquet") if not p.name.startswith(".")}
    order = ["train", "val", "test"]
    return sorted(names, key=lambda s: (order.index(s) if s in order else len(order), s))


def ensure_readme(out: Path, sel: Selection) -> Path:
    """Put `configs:` into OUT/README.md: update an existing card, or write a minimal one."""
    from huggingface_hub import DatasetCard

    path = out / "README.md"
    if path.is_file():
        card = DatasetCard.load(path)
        card.data.configs = configs(hf_splits(out))
        atomic.write_text(path, str(card))
        return path
    from annotator.export.card import minimal_card

    atomic.write_text(path, minimal_card(sel, configs(hf_splits(out))))
    return path


def _plan(sel: Selection, shard_size: int) -> Iterator[tuple[str, list[str], Path]]:
    for split, ids in sel.splits.items():
        parts = shards(sorted(ids), shard_size)
        for i, part in enumerate(parts):
            yield split, part, Path("data") / f"{split}-{i:05d}-of-{len(parts):05d}.parquet"


def export_hf(sel: Selection, out: Path, shard_size: int = 200) -> list[Path]:
    """Write (or bring up to date) the Parquet shards and the README configs; returns shard paths + README."""
    from tqdm import tqdm

    plan = list(_plan(sel, shard_size))
    keep = {out / p for _, _, p in plan}
    for split in sel.splits:  # shards of an earlier run with another shard count or clip set
        for old in (out / "data").glob(f"{split}-*-of-*.parquet"):
            if old not in keep:
                old.unlink()
    written = []
    for _split, ids, relpath in tqdm(plan, desc="hf shards", unit="shard"):
        path = out / relpath
        fp = fingerprint(sel, ids, "hf-v1")
        if not (path.is_file() and _existing_fingerprint(path) == fp):
            _write_shard(sel, ids, path, fp)
        written.append(path)
    return [*written, ensure_readme(out, sel)]

