"""Index readers: turn a source's list of videos into IndexEntry records (one per candidate clip).

Every reader keeps going past a malformed row: it returns the good entries and a BadRow per bad one
(line number, text, reason) so that the runner can record them in the run's stats and go on.

Layouts read here (examples in ../shared/data/index/):
- VGG-Sound full CSV: `youtube_id,start_seconds,label,split`, no header, labels with commas quoted.
- VGG-Sound official test list: `<youtube_id>_<start:06d>.mp4,<label>`, no header, CRLF.
- MUSIC-AVQA question JSON: a list of records with `video_id` and `templ_values` (a JSON string).
- MUSIC (Sound-of-Pixels): `{"videos": {"<instrument>[ <instrument>]": [youtube ids]}}`.
- a local folder: `index.csv` with a header; columns `file,label` required, `start,split,youtube_id` optional.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from schemas.constants import SECONDS
from schemas.errors import UserError
from schemas.models import Origin, check_clip_id

# MUSIC-AVQA's 22 instruments; templ_values also holds words such as "left" or "first", which are not labels.
AVQA_INSTRUMENTS = frozenset(
    "accordion acoustic_guitar bagpipe banjo bassoon cello clarinet congas drum electric_bass erhu flute guzheng "
    "piano pipa saxophone suona trumpet tuba ukulele violin xylophone".split())
AVQA_VIDEO_SECONDS = 60  # MUSIC-AVQA distributes 60 s videos
YTID_RE = re.compile(r"^[A-Za-z0-9_\-]{11}$")
VGG_NAME_RE = re.compile(r"^(?P<ytid>[A-Za-z0-9_\-]{11})_(?P<start>\d{1,6})\.mp4$")


class SourceKind(StrEnum):
    vggsound = "vggsound"
    music_avqa = "music_avqa"
    music21 = "music21"
    local = "local"

    @property
    def origin(self) -> Origin:
        return Origin(self.value)


@dataclass(frozen=True)
class IndexEntry:
    """One candidate clip. `labels` are the index's own labels (a duet has two)."""

    clip_id: str
    origin: Origin
    labels: tuple[str, ...]
    youtube_id: str | None = None
    start: float = 0.0          # seconds into the source video where the 10 s clip starts
    split: str | None = None
    local_name: str | None = None   # file name to look for in --media-dir (or a path for local indexes)
    media_start: float = 0.0    # where the clip starts inside that local file (VGG-Sound copies are pre-cut: 0)
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class BadRow:
    file: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason} ({self.text[:80]!r})"


@dataclass
class Index:
    kind: SourceKind
    path: Path
    entries: list[IndexEntry]
    bad_rows: list[BadRow]

    def labels(self, split: str | None = None) -> dict[str, int]:
        """Label -> number of entries (in `split` when given), sorted by label."""
        counts: dict[str, int] = {}
        for e in self.entries:
            if split is None or e.split is None or e.split == split:
                for lab in e.labels:
                    counts[lab] = counts.get(lab, 0) + 1
        return dict(sorted(counts.items()))


def vgg_clip_id(ytid: str, start: float) -> str:
    return f"{ytid}_{int(start):06d}"


def window_start(video_key: str, seed: int, video_seconds: float = AVQA_VIDEO_SECONDS) -> int:
    """A deterministic 10 s window inside a longer video: whole seconds in [0, video_seconds - 10].

    Derived from sha256(seed, video_key), so it does not depend on the order of the index or on
    which other videos were chosen, and the same --seed always picks the same window.
    """
    span = max(0, int(video_seconds) - SECONDS)
    digest = hashlib.sha256(f"{seed}:{video_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (span + 1)


def _open_text(path: Path) -> str:
    if path.is_dir():
        raise UserError(f"--index {path}: is a folder; pass the index file of the chosen --source (a folder "
                        "with index.csv is read only with --source local)")
    if not path.is_file():
        raise UserError(f"--index {path}: no such file; pass the index file of the chosen --source")
    try:
        return path.read_text(encoding="utf-8-sig")  # tolerate a BOM
    except UnicodeDecodeError as e:
        raise UserError(f"--index {path}: not UTF-8 text ({e}); pass a CSV or JSON index") from None


def read_vggsound(path: Path) -> Index:
    """Either VGG-Sound layout, detected per row (the two are easy to tell apart)."""
    entries: list[IndexEntry] = []
    bad: list[BadRow] = []
    text = _open_text(path)
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        raw = ",".join(row)
        if not row or not raw.strip():
            continue
        row = [c.strip() for c in row]
        try:
            if len(row) == 2 and (m := VGG_NAME_RE.match(row[0])):  # official test list
                ytid, start, label, split = m["ytid"], float(m["start"]), row[1], "test"
            elif len(row) == 4:
                ytid, label, split = row[0], row[2], row[3] or None
                start = float(row[1])
            else:
                raise ValueError(f"expected 4 columns (youtube_id,start_seconds,label,split) or 2 "
                                 f"(<ytid>_<start>.mp4,label), got {len(row)}")
            if not YTID_RE.match(ytid):
                raise ValueError(f"bad YouTube id {ytid!r}")
            if not label:
                raise ValueError("empty label")
            if start < 0 or start != int(start):
                raise ValueError(f"bad start {row[1] if len(row) == 4 else start!r}")
            cid = vgg_clip_id(ytid, start)
            entries.append(IndexEntry(clip_id=cid, origin=Origin.vggsound, labels=(label,), youtube_id=ytid,
                                      start=start, split=split, local_name=f"{cid}.mp4", media_start=0.0))
        except ValueError as e:
            bad.append(BadRow(str(path), lineno, raw, str(e)))
    return Index(SourceKind.vggsound, path, entries, bad)


def read_music_avqa(path: Path, seed: int) -> Index:
    """One entry per video (its instruments merged over all its questions); window by window_start()."""
    try:
        records = json.loads(_open_text(path))
    except json.JSONDecodeError as e:
        raise UserError(f"--index {path}: invalid JSON ({e}); pass avqa-{{train,val,test}}.json") from None
    if not isinstance(records, list):
        raise UserError(f"--index {path}: expected a JSON list of MUSIC-AVQA question records")
    instruments: dict[str, set[str]] = {}
    bad: list[BadRow] = []
    for i, rec in enumerate(records, start=1):
        try:
            vid = str(rec["video_id"])
            check_clip_id(vid)
            values = json.loads(rec.get("templ_values") or "[]")
            if not isinstance(values, list):
                raise ValueError("templ_values is not a list")
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
            bad.append(BadRow(str(path), i, json.dumps(rec)[:200], f"bad record: {e}"))
            continue
        found = instruments.setdefault(vid, set())
        found.update(v for v in values if isinstance(v, str) and v in AVQA_INSTRUMENTS)
    entries = []
    for vid, insts in sorted(instruments.items()):
        if not insts:
            continue  # questions never named an instrument: nothing to retrieve it by
        start = window_start(vid, seed)
        entries.append(IndexEntry(clip_id=f"avqa_{vid}_{start:06d}", origin=Origin.music_avqa,
                                  labels=tuple(sorted(insts)), start=float(start), local_name=f"{vid}.mp4",
                                  media_start=float(start), meta={"video_id": vid}))
    return Index(SourceKind.music_avqa, path, entries, bad)


def read_music21(path: Path, seed: int, video_seconds: float = AVQA_VIDEO_SECONDS) -> Index:
    """Keys are 'instrument' (solo) or 'instrument instrument' (duet); videos are whole YouTube videos,
    so the 10 s window is chosen with window_start() inside the first `video_seconds`."""
    try:
        data = json.loads(_open_text(path))
        videos = data["videos"]
        if not isinstance(videos, dict):
            raise TypeError("'videos' is not an object")
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"--index {path}: not a MUSIC index ({e}); expected {{'videos': {{instrument: [ids]}}}}") \
            from None
    seen: dict[str, IndexEntry] = {}
    bad: list[BadRow] = []
    for key, ids in videos.items():
        labels = tuple(key.split())
        for n, ytid in enumerate(ids if isinstance(ids, list) else [ids], start=1):
            if not isinstance(ytid, str) or not YTID_RE.match(ytid):
                bad.append(BadRow(str(path), n, f"{key}: {ytid!r}", "bad YouTube id"))
                continue
            start = window_start(ytid, seed, video_seconds)
            cid = vgg_clip_id(ytid, start)
            old = seen.get(cid)
            merged = tuple(sorted(set(labels) | set(old.labels if old else ())))
            seen[cid] = IndexEntry(clip_id=cid, origin=Origin.music21, labels=merged, youtube_id=ytid,
                                   start=float(start), local_name=f"{ytid}.mp4", media_start=float(start))
    return Index(SourceKind.music21, path, [seen[k] for k in sorted(seen)], bad)


def read_local(path: Path) -> Index:
    """A folder with index.csv (or the CSV itself); `file` is relative to the CSV's folder."""
    csv_path = path / "index.csv" if path.is_dir() else path
    if path.is_dir() and not csv_path.is_file():
        raise UserError(f"--index {path}: is a folder without index.csv; add one (file,label[,start,split]) or "
                        "pass the CSV itself")
    text = _open_text(csv_path)
    reader = csv.DictReader(text.splitlines())
    missing = {"file", "label"} - set(reader.fieldnames or [])
    if missing:
        raise UserError(f"--index {csv_path}: header lacks {sorted(missing)}; expected file,label[,start,split]")
    entries: list[IndexEntry] = []
    bad: list[BadRow] = []
    ids: set[str] = set()
    for lineno, rec in enumerate(reader, start=2):
        raw = ",".join(str(v) for v in rec.values())
        try:
            name, label = (rec.get("file") or "").strip(), (rec.get("label") or "").strip()
            if not name or not label:
                raise ValueError("empty file or label")
            start = float(rec.get("start") or 0)
            if start < 0:
                raise ValueError(f"negative start {start}")
            stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(name).stem).lstrip(".")
            cid = check_clip_id(f"{stem}_{int(start):06d}")
            if cid in ids:
                raise ValueError(f"duplicate clip {cid} (same file and start)")
            ids.add(cid)
            ytid = (rec.get("youtube_id") or "").strip() or None
            entries.append(IndexEntry(clip_id=cid, origin=Origin.local, labels=(label,), youtube_id=ytid,
                                      start=start, split=(rec.get("split") or "").strip() or None,
                                      local_name=str((csv_path.parent / name).resolve()), media_start=start))
        except ValueError as e:
            bad.append(BadRow(str(csv_path), lineno, raw, str(e)))
    return Index(SourceKind.local, csv_path, entries, bad)


def read_index(kind: SourceKind, path: Path, seed: int = 0) -> Index:
    if kind == SourceKind.vggsound:
        return read_vggsound(path)
    if kind == SourceKind.music_avqa:
        return read_music_avqa(path, seed)
    if kind == SourceKind.music21:
        return read_music21(path, seed)
    return read_local(path)
