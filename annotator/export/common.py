"""Helpers shared by the exporters: which clips to export, grouped by split, and per-clip records."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas import rle as rle_mod
from schemas.atomic import current_umask
from schemas.constants import NUM_FRAMES
from schemas.errors import UserError
from schemas.models import Annotation, CatalogRow, ClipStatus, Split
from schemas.root import DatasetRoot

# Name of the one split used when the root has no split files yet ("all" is reserved by `datasets`).
FULL = "full"


def parse_statuses(values: Iterable[str] | None, flag: str = "--status") -> set[ClipStatus]:
    """`--status accepted --status auto` (or comma lists) -> set of ClipStatus; default: accepted only."""
    out: set[ClipStatus] = set()
    for v in values or []:
        for part in str(v).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.add(ClipStatus(part))
            except ValueError:
                raise UserError(f"{flag} {part!r}: unknown status; use one of "
                                f"{', '.join(s.value for s in ClipStatus)}") from None
    return out or {ClipStatus.accepted}


@dataclass(frozen=True)
class Selection:
    """Clips to export, by split name (train/val/test, or 'full' when the root has no splits)."""

    root: DatasetRoot
    splits: dict[str, list[str]]
    statuses: frozenset[ClipStatus]
    unsplit: int  # clips with a wanted status but in no split (left out)

    @property
    def clip_ids(self) -> list[str]:
        return [c for ids in self.splits.values() for c in ids]

    def split_of(self) -> dict[str, str]:
        return {c: s for s, ids in self.splits.items() for c in ids}


def select(root: DatasetRoot, statuses: set[ClipStatus]) -> Selection:
    """The clips of `statuses` that have an annotation, grouped by the root's splits."""
    wanted = set(root.clip_ids(status=set(statuses))) & set(root.annotated_ids())
    if not wanted:
        have = ", ".join(f"{k.value} {v}" for k, v in sorted(root.catalog.counts().items())) or "no clips"
        raise UserError(f"{root.path}: no annotated clips with status {'/'.join(sorted(statuses))} "
                        f"(catalog has {have}); choose others with --status")
    on_disk = root.splits()
    if on_disk:
        splits = {s.value: [c for c in on_disk.get(s, []) if c in wanted] for s in Split if s in on_disk}
        placed = {c for ids in splits.values() for c in ids}
        return Selection(root, splits, frozenset(statuses), len(wanted - placed))
    return Selection(root, {FULL: sorted(wanted)}, frozenset(statuses), 0)


def categories(root: DatasetRoot, anns: Iterable[Annotation] = ()) -> list[str]:
    """Category names: the manifest's, then any used by annotations but missing there (sorted)."""
    names = list(root.manifest.category_names())
    extra = sorted({s.category for a in anns for s in a.sources} - set(names))
    return names + extra


def bbox_area(rle: rle_mod.RLEDict) -> tuple[list[float], int]:
    """COCO [x, y, w, h] and pixel area of one RLE (pycocotools' toBbox, through the schemas wrapper)."""
    from pycocotools import mask as _mask

    coco = {"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}
    return [float(v) for v in _mask.toBbox(coco)], int(rle_mod.area(rle))


def frame_masks(ann: Annotation) -> list[rle_mod.RLEDict]:
    """The clip's semantic mask per frame (union of sounding sources), as RLE dicts."""
    return [ann.semantic_rle(f) for f in range(NUM_FRAMES)]


def row_of(root: DatasetRoot, clip_id: str) -> CatalogRow:
    row = root.catalog.get(clip_id)
    if row is None:
        raise UserError(f"{root.path}: clip {clip_id!r} has an annotation but no catalog row; run ssu-validate")
    return row


def rel(path: Path, start: Path) -> str:
    """POSIX path of `path` relative to `start` when inside it, else absolute (manifests work on any OS)."""
    path, start = Path(path).resolve(), Path(start).resolve()
    return path.relative_to(start).as_posix() if path.is_relative_to(start) else path.as_posix()


def iter_frames(video: Path, indices: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Stream (index, RGB uint8 frame) of a video, all frames or only `indices`, without holding them all."""
    import av

    want = None if indices is None else set(int(i) for i in indices)
    last = None if want is None else max(want, default=-1)
    try:
        with av.open(str(video)) as c:
            c.streams.video[0].thread_type = "AUTO"
            for i, frame in enumerate(c.decode(video=0)):
                if last is not None and i > last:
                    break
                if want is None or i in want:
                    yield i, frame.to_ndarray(format="rgb24")
    except av.FFmpegError as e:
        raise UserError(f"{video}: cannot decode frames ({type(e).__name__}: {e})") from None


def write_frame_dir(dest: Path, video: Path, indices: Iterable[int] | None, name: Callable[[int], str],
                    quality: int = 90) -> int:
    """Write frames as JPEGs into `dest` all at once: a temp folder renamed into place (resumable: an
    existing `dest` is complete and kept). Returns frames written."""
    import shutil
    import tempfile

    from PIL import Image

    if dest.is_dir():
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes it owner-only; a published folder must be readable
    try:
        n = 0
        for i, rgb in iter_frames(video, indices):
            Image.fromarray(rgb).save(tmp / name(i), quality=quality)
            n += 1
        os.replace(tmp, dest)
        return n
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
