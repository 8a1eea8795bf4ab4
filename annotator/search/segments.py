"""The searchable units of a dataset root or of a predictions folder, and their cache.

A segment is one sound source of one clip described by one caption text: (clip, source, text) with every frame
span where that text is the source's caption (the synthetic captions, for instance, change as an object moves, and
come back when it returns). All spans of a segment get the same score, so a hit names all frames the description
fits, not an arbitrary one of them.

Reading every annotation of a large root is the slow part, so segments are cached per clip in one JSON file under
the user's cache folder ($SSU_CACHE_DIR, else $XDG_CACHE_HOME/ra-ssu, else ~/.cache/ra-ssu), keyed by the folder
searched. A clip is read again only when its annotation file changed (size or modification time: writers replace
the whole file, see schemas.atomic), and clips whose file disappeared drop out.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import ValidationError

from schemas import atomic
from schemas.errors import UserError
from schemas.models import Annotation, ClipStatus
from schemas.root import format_validation_error

CACHE_VERSION = 1


@dataclass(frozen=True)
class Segment:
    clip_id: str
    source_id: int
    category: str
    text: str
    spans: tuple[tuple[int, int], ...]  # half-open [start, end) frame spans, sorted, never touching

    @property
    def frames(self) -> set[int]:
        return {f for s, e in self.spans for f in range(s, e)}

    def document(self) -> str:
        """What the rankers read: the caption, and the category when the caption does not name it."""
        if self.category.lower() in self.text.lower():
            return self.text
        return f"{self.text} ({self.category})"

    @classmethod
    def from_json(cls, d: dict) -> Segment:
        return cls(d["clip_id"], d["source_id"], d["category"], d["text"], tuple(tuple(s) for s in d["spans"]))


def segments_of(ann: Annotation) -> list[Segment]:
    """The annotation's segments, sources in order, texts in order of first appearance."""
    out = []
    for src in ann.sources:
        spans: dict[str, list[tuple[int, int]]] = {}
        for c in src.captions:
            spans.setdefault(c.text, []).append((c.start, c.end))
        for text, ss in spans.items():
            merged: list[tuple[int, int]] = []
            for s, e in ss:  # captions are sorted and do not overlap; touching spans of one text join
                if merged and merged[-1][1] == s:
                    merged[-1] = (merged[-1][0], e)
                else:
                    merged.append((s, e))
            out.append(Segment(ann.clip_id, src.id, src.category, text, tuple(merged)))
    return out


@dataclass(frozen=True)
class Corpus:
    """Where annotations are read from: a dataset root, or a predictions folder (annotation format)."""

    root: Path                       # the dataset root: split lists and videos for previews
    annotations: Path                # the folder of <clip_id>.json files that is searched
    predictions: bool                # True when `annotations` holds a model's predictions

    @classmethod
    def of(cls, root: Path, predictions: Path | None = None) -> Corpus:
        if predictions is None:
            return cls(root, root / "annotations", False)
        if not predictions.exists():
            raise UserError(f"--predictions {predictions}: no such folder; pass the folder ssu-eval or "
                            "ssuformer's predict wrote")
        if not predictions.is_dir():
            raise UserError(f"--predictions {predictions}: is a file, expected a folder of annotation JSON files")
        sub = predictions / "annotations"
        return cls(root, sub if sub.is_dir() else predictions, True)

    def files(self) -> dict[str, Path]:
        """clip id -> annotation file (hidden files are a writer's leftovers, see schemas.atomic)."""
        return dict(sorted((p.stem, p) for p in self.annotations.glob("*.json") if not p.name.startswith(".")))

    def cache_file(self) -> Path:
        base = os.environ.get("SSU_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
            / "ra-ssu"
        key = hashlib.sha256(str(self.annotations.resolve()).encode()).hexdigest()[:16]
        return Path(base) / "search" / f"segments-{key}.json"


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def read_annotation_file(path: Path, clip_id: str) -> Annotation:
    try:
        ann = Annotation.model_validate_json(path.read_bytes())
    except ValidationError as e:
        raise UserError(format_validation_error(path, e)) from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if ann.clip_id != clip_id:
        raise UserError(f"{path}: holds clip_id {ann.clip_id!r}, expected {clip_id!r}")
    return ann


def load_segments(corpus: Corpus, clip_ids: Iterable[str] | None = None,
                  skip_status: frozenset[ClipStatus] = frozenset({ClipStatus.rejected})) -> tuple[list[Segment], int]:
    """Segments of the asked clips, refreshing the cache; returns (segments, clips read from disk this time)."""
    cache_path = corpus.cache_file()
    try:
        cache = json.loads(cache_path.read_text())
        if cache.get("version") != CACHE_VERSION:
            cache = {}
    except (OSError, ValueError):
        cache = {}
    clips: dict[str, dict] = cache.get("clips", {})
    files = corpus.files()
    read = 0
    for cid, path in files.items():
        stamp = _stamp(path)
        entry = clips.get(cid)
        if entry is None or entry["stamp"] != stamp:
            ann = read_annotation_file(path, cid)
            clips[cid] = {"stamp": stamp, "status": ann.status.value,
                          "segments": [asdict(s) for s in segments_of(ann)]}
            read += 1
    gone = set(clips) - set(files)
    for cid in gone:
        del clips[cid]
    if read or gone or not cache_path.exists():
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_json(cache_path, {"version": CACHE_VERSION, "folder": str(corpus.annotations.resolve()),
                                           "clips": clips})
        except OSError:  # a read-only cache folder only costs speed next time
            pass
    wanted = list(files) if clip_ids is None else [c for c in clip_ids if c in clips]
    skip = {s.value for s in skip_status}
    segs = [Segment.from_json(d) for c in wanted if clips[c]["status"] not in skip for d in clips[c]["segments"]]
    return segs, read
