"""Helpers shared by the exporters: which clips to export, grouped by split, and per-clip records."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas import rle as rle_mod
from schemas.atomic import current_umask
from schemas.constants import NUM_FRAMES
from schemas.errors import UserError
from schemas.models import Annotation, CatalogRow, ClipStatus, Split
from schemas.root import DatasetRoot
from schemas.validate import annotation_problems

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
class Skipped:
    clip_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.clip_id}: {self.reason}"


@dataclass(frozen=True)
class Selection:
    """Clips to export, by split name (train/val/test, or 'full' when the root has no splits)."""

    root: DatasetRoot
    splits: dict[str, list[str]]  # non-empty splits only: an empty split would make unloadable files
    statuses: frozenset[ClipStatus]
    unsplit: int  # clips with a wanted status but in no split (left out)
    skipped: tuple[Skipped, ...] = ()  # bad clips left out with --skip-bad

    @property
    def clip_ids(self) -> list[str]:
        return [c for ids in self.splits.values() for c in ids]

    def split_of(self) -> dict[str, str]:
        return {c: s for s, ids in self.splits.items() for c in ids}


def clip_problem(root: DatasetRoot, clip_id: str) -> str | None:
    """Why one clip cannot be exported (annotation against the contract, media present), or None."""
    apath = root.annotation_path(clip_id)
    if not apath.is_file():
        return "no annotation (deleted, or never annotated)"
    problems = annotation_problems(apath, clip_id, decode=False)  # ssu-validate decodes every mask
    if problems:
        return f"annotation {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
    if root.catalog.get(clip_id) is None:
        return "annotation of a clip that is not in the catalog"
    for p, what in ((root.clip_path(clip_id), "mp4"), (root.audio_path(clip_id), "wav")):
        if not p.is_file() or p.stat().st_size == 0:
            return f"{what} missing or empty ({p.name})"
    return None


def select(root: DatasetRoot, statuses: set[ClipStatus], skip_bad: bool = False) -> Selection:
    """The clips of `statuses` grouped by the root's splits, every one checked (clip_problem) first.

    A bad clip (a split-listed clip whose annotation is gone included) stops the export with a message
    naming it, before anything is written; with `skip_bad` it is left out and listed in `skipped`."""
    on_disk = root.splits()
    of_status = set(root.clip_ids(status=set(statuses)))
    if on_disk:
        candidates = {s.value: [c for c in on_disk.get(s, []) if c in of_status] for s in Split if s in on_disk}
        unsplit = len((of_status & set(root.annotated_ids())) - {c for ids in candidates.values() for c in ids})
    else:
        candidates, unsplit = {FULL: sorted(of_status & set(root.annotated_ids()))}, 0
    if not any(candidates.values()):
        have = ", ".join(f"{k.value} {v}" for k, v in sorted(root.catalog.counts().items())) or "no clips"
        where = " in the splits" if on_disk else ""
        raise UserError(f"{root.path}: no annotated clips with status {'/'.join(sorted(statuses))}{where} "
                        f"(catalog has {have}); choose others with --status"
                        + (f" or re-run `ssu-export splits {root.path}`" if on_disk else ""))
    skipped: list[Skipped] = []
    splits: dict[str, list[str]] = {}
    for split, ids in candidates.items():
        keep = []
        for c in ids:
            why = clip_problem(root, c)
            if why is None:
                keep.append(c)
            elif not skip_bad:
                raise UserError(f"{root.path}: clip {c} ({split}) cannot be exported: {why}; fix it (ssu-validate "
                                "lists every problem) or pass --skip-bad to release the other clips")
            else:
                skipped.append(Skipped(c, why))
        if keep:
            splits[split] = keep
    if not splits:
        raise UserError(f"{root.path}: every selected clip is bad ({len(skipped)} skipped); run ssu-validate")
    return Selection(root, splits, frozenset(statuses), unsplit, tuple(skipped))


def check_out(root: DatasetRoot, out: Path, flag: str = "--out") -> Path:
    """The output folder: not a file, not the dataset root itself, not inside the root's own folders."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out}: is a file, not a folder; give a folder for the release")
    res, rpath = out.resolve(), root.path.resolve()
    if res == rpath or any(res.is_relative_to(rpath / sub) for sub in ("clips", "audio", "annotations", "splits")):
        raise UserError(f"{flag} {out}: would write into the dataset root's own files; use ROOT/export or "
                        "a folder outside the root")
    return out


@contextmanager
def no_empty_dirs_on_failure(top: Path) -> Iterator[None]:
    """A run that fails leaves no empty folders under `top` (its complete files stay: a rerun resumes)."""
    try:
        yield
    except BaseException:
        prune_empty_dirs(top)
        raise


def prune_empty_dirs(top: Path) -> None:
    """Remove empty folders under `top` (and `top` itself when empty): a failed run leaves no empty shells."""
    if not top.is_dir():
        return
    for d, _, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
        try:
            os.rmdir(d)  # only succeeds when empty
        except OSError:
            pass


def remove_stale(folder: Path, keep: set[str], pattern: str = "*") -> None:
    """Delete entries of `folder` matching `pattern` whose names are not in `keep` (outputs of clips or splits
    an earlier run exported and this one does not)."""
    import shutil

    if not folder.is_dir():
        return
    for p in folder.glob(pattern):
        if p.name in keep:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


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
    """POSIX path of `path` relative to the folder `start` (with '..' where needed): a release moved or
    uploaded as a whole keeps working, and no absolute path of this machine is written."""
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()


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
