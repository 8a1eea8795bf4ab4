"""Hugging Face `datasets` layout: OUT/data/<split>-NNNNN-of-MMMMM.parquet + OUT/README.md with `configs:`.

`datasets.load_dataset(OUT)` opens it offline, no loading script. Splits are train, validation, test (the
root's `val` is named as `datasets` users expect). One row per clip:
    clip_id, category, origin, keywords, youtube_id, start_seconds, status
    video           {bytes: the mp4 file, path: "<clip_id>.mp4"}
    audio           {bytes: the wav file (16 kHz mono), path: "<clip_id>.wav"}
    captions        list[300] of str: the clip's caption per frame ("" where nothing sounds)
    semantic_masks  list[300] of {size, counts}: COCO RLE of the union of the sounding sources
    sources         list of {id, category, name, masks: list[300] of RLE or null, captions: list[300] of str or null,
                    scores: list[300] of float or null (a drafting model's confidence), or null (truth)}
    annotation      the full annotation JSON (provenance: agents, mask_by, caption spans)
The media are embedded: nothing refers to a file outside the shard; `path` is only the file's name. The
features (hub.features) are `Video()`/`Audio()` where torchcodec is importable at export time, plain
`{bytes, path}` structs otherwise (decode with PyAV/decord and soundfile: docs/export.md). Shards are
rewritten only when their clips or the features changed (fingerprint in the Parquet metadata).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from annotator.export.common import Selection, remove_stale
from annotator.export.hf_vocabulary import DATA, features, front_matter, hf_split, media_decoder, minimal_card
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
    """Non-empty runs of at most `size` clips (no clips: no shard; an empty file would not load)."""
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def clip_record(sel: Selection, clip_id: str) -> dict[str, Any]:
    """One clip as a row of the Parquet table (also used by the WebDataset json, without the media)."""
    root = sel.root
    ann = root.read_annotation(clip_id)
    row = root.catalog.get(clip_id)
    return {
        "clip_id": clip_id, "category": row.category if row else None, "origin": row.origin.value if row else None,
        "keywords": row.keywords if row else [], "youtube_id": row.youtube_id if row else None,
        "start_seconds": row.start_seconds if row else None, "status": ann.status.value,
        "video": {"bytes": root.clip_path(clip_id).read_bytes(), "path": f"{clip_id}.mp4"},
        "audio": {"bytes": root.audio_path(clip_id).read_bytes(), "path": f"{clip_id}.wav"},
        "captions": ann.frame_captions(),
        "semantic_masks": [dict(ann.semantic_rle(f)) for f in range(NUM_FRAMES)],
        "sources": [{"id": s.id, "category": s.category, "name": s.name,
                     "masks": [None if m is None else m.model_dump() for m in s.masks],
                     "captions": s.frame_captions(), "scores": s.scores} for s in ann.sources],
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


def _write_shard(sel: Selection, ids: list[str], path: Path, fp: str, feats: Any, rows_per_group: int = 8) -> None:
    """Stream clips into one Parquet file (row groups of a few clips keep memory small), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = feats.arrow_schema  # carries datasets' `huggingface` metadata (the features)
    sch = base.with_metadata({**(base.metadata or {}), FINGERPRINT_KEY: fp.encode()})
    with atomic.atomic_path(path) as tmp, pq.ParquetWriter(tmp, sch, compression="zstd") as w:
        for i in range(0, len(ids), rows_per_group):
            batch = [clip_record(sel, c) for c in ids[i:i + rows_per_group]]
            w.write_table(pa.Table.from_pylist(batch, schema=sch))


def ensure_readme(out: Path, sel: Selection) -> Path:
    """Put `configs:` and `dataset_info:` into OUT/README.md: update an existing card, or write a minimal one."""
    from huggingface_hub import DatasetCard

    path = out / "README.md"
    if path.is_file():
        card = DatasetCard.load(path)
        for key, value in front_matter(out).items():
            setattr(card.data, key, value)
        atomic.write_text(path, str(card))
    else:
        atomic.write_text(path, minimal_card(sel, out))
    return path


def _plan(sel: Selection, shard_size: int) -> Iterator[tuple[str, list[str], Path]]:
    for split, ids in sel.splits.items():
        parts = shards(sorted(ids), shard_size)
        name = hf_split(split)
        for i, part in enumerate(parts):
            yield name, part, Path(DATA) / f"{name}-{i:05d}-of-{len(parts):05d}.parquet"


def export_hf(sel: Selection, out: Path, shard_size: int = 200) -> list[Path]:
    """Write (or bring up to date) the Parquet shards and the README front matter; returns shards + README."""
    from tqdm import tqdm

    decoder = media_decoder()
    feats = features(decoder is not None)
    plan = list(_plan(sel, shard_size))
    # shards of an earlier run with another shard count, clip set or split set
    remove_stale(out / DATA, {p.name for _, _, p in plan}, "*.parquet")
    written = []
    for _split, ids, relpath in tqdm(plan, desc="hf shards", unit="shard"):
        path = out / relpath
        fp = fingerprint(sel, ids, f"hf-v2:{decoder is not None}")
        if not (path.is_file() and _existing_fingerprint(path) == fp):
            _write_shard(sel, ids, path, fp, feats)
        written.append(path)
    return [*written, ensure_readme(out, sel)]
