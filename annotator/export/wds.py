"""WebDataset tar shards for streaming training: OUT/<split>-NNNNNN.tar, one sample per clip.

A sample is three tar members sharing a key: `<key>.mp4` (the clip), `<key>.wav` (16 kHz mono) and
`<key>.json` (catalog fields, per-frame captions, per-frame semantic RLE masks, sources with per-frame RLE
masks, captions and scores (a drafting model's confidence, or null), and the full annotation; no file paths:
the sample's own members are its media). The
key is the clip id with '.' replaced by '_' (WebDataset splits a member name at its first dot); the json
keeps the real `clip_id`. Read with
`webdataset.WebDataset(urls, shardshuffle=False)` and decode mp4/wav yourself (PyAV/decord, soundfile):
webdataset's built-in torch video/audio decoders need torchvision.io.read_video / torchaudio.

OUT/index.json lists every shard's clips and a fingerprint of their inputs; a shard whose fingerprint is
unchanged is kept, so an interrupted export resumes where it stopped.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from annotator.export.common import Selection, remove_stale
from annotator.export.hf import clip_record, fingerprint, shards
from schemas import atomic
from schemas.errors import UserError

INDEX = "index.json"


def sample_key(clip_id: str) -> str:
    return clip_id.replace(".", "_")


def sample_json(sel: Selection, clip_id: str, split: str) -> tuple[dict[str, Any], bytes, bytes]:
    """The sample's json (the Parquet row without the media) and its mp4 and wav bytes."""
    rec = clip_record(sel, clip_id)
    video, audio = rec.pop("video")["bytes"], rec.pop("audio")["bytes"]
    rec["annotation"] = json.loads(rec["annotation"])
    rec["split"] = split
    return rec, video, audio


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # fixed metadata: same input, same bytes
    tar.addfile(info, io.BytesIO(data))


def write_shard(sel: Selection, split: str, ids: list[str], path: Path) -> None:
    with atomic.atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for clip_id in ids:
            rec, video, audio = sample_json(sel, clip_id, split)
            key = sample_key(clip_id)
            _add(tar, f"{key}.mp4", video)
            _add(tar, f"{key}.wav", audio)
            _add(tar, f"{key}.json", json.dumps(rec, ensure_ascii=False).encode())


def export_wds(sel: Selection, out: Path, shard_size: int = 100) -> list[Path]:
    """Write (or bring up to date) the tar shards and OUT/index.json; returns the shard paths."""
    from tqdm import tqdm

    keys = [sample_key(c) for c in sel.clip_ids]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise UserError(f"clip ids differ only by '.' vs '_' ({dup}); WebDataset keys would collide: rename one")
    index_path = out / INDEX
    old: dict[str, Any] = json.loads(index_path.read_text()) if index_path.is_file() else {}
    index: dict[str, Any] = {"format": "ra-ssu webdataset v1", "shards": {}}
    plan = [(split, part, f"{split}-{i:06d}.tar")
            for split, ids in sel.splits.items() for i, part in enumerate(shards(sorted(ids), shard_size)) if part]
    keep = {name for _, _, name in plan}
    remove_stale(out, keep, "*.tar")  # shards of an earlier run with another shard size or clip set
    written = []
    for split, ids, name in tqdm(plan, desc="wds shards", unit="shard"):
        path = out / name
        fp = fingerprint(sel, ids, "wds-v2")
        if not (path.is_file() and old.get("shards", {}).get(name, {}).get("fingerprint") == fp):
            write_shard(sel, split, ids, path)
        index["shards"][name] = {"split": split, "clips": ids, "fingerprint": fp}
        atomic.write_json(index_path, index, indent=1)  # after each shard: a killed run resumes here
        written.append(path)
    atomic.write_json(index_path, index, indent=1)
    return written
