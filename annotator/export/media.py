"""The clips and wavs of a release: OUT/clips/<clip_id>.mp4 and OUT/audio/<clip_id>.wav.

The YouTube-VIS json and Croissant's clips.csv refer to these files by paths relative to themselves, so
the release folder works wherever it is moved or uploaded. `--media` chooses how they get there:
- `hardlink` (default): no extra space; a copy where the release is on another filesystem. Independent of
  the root afterwards (ra-ssu replaces files atomically, so a later edit of the root never changes them).
- `copy`: always a copy.
- `symlink`: absolute links into the root; for local use only: the release breaks when the root moves.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from annotator.export.common import Selection, remove_stale
from annotator.export.options import MediaMode
from schemas import atomic

CLIPS, AUDIO = "clips", "audio"


def release_paths(out: Path, clip_id: str) -> tuple[Path, Path]:
    """Where a clip's mp4 and wav lie in the release folder OUT."""
    return out / CLIPS / f"{clip_id}.mp4", out / AUDIO / f"{clip_id}.wav"


def _same(src: Path, dest: Path, mode: MediaMode) -> bool:
    """Is `dest` already `src` placed with `mode` (then it is kept: reruns are cheap)?"""
    if mode == MediaMode.symlink:
        return dest.is_symlink() and os.readlink(dest) == str(src.resolve())
    if dest.is_symlink() or not dest.is_file():
        return False
    a, b = src.stat(), dest.stat()
    linked = (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)
    if mode == MediaMode.hardlink and (linked or a.st_dev == b.st_dev):
        return linked  # on one filesystem a hardlink is wanted, not an earlier run's copy
    return not linked and a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns  # a copy (copy2 keeps mtime)


def _place(src: Path, dest: Path, mode: MediaMode) -> None:
    if _same(src, dest, mode):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        if mode == MediaMode.symlink:
            os.symlink(src.resolve(), tmp)
        else:
            try:
                if mode != MediaMode.hardlink:
                    raise OSError(errno.EXDEV, "copy asked")
                os.link(src, tmp)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                shutil.copy2(src, tmp)
                tmp.chmod(0o666 & ~atomic.current_umask())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def place_media(sel: Selection, out: Path, mode: MediaMode = MediaMode.hardlink) -> list[Path]:
    """Put every selected clip's mp4 and wav into OUT (see the module doc); remove those of clips no longer
    exported. Returns the two folders."""
    from tqdm import tqdm

    root = sel.root
    for clip_id in tqdm(sel.clip_ids, desc="media", unit="clip", leave=False):
        video, audio = release_paths(out, clip_id)
        _place(root.clip_path(clip_id), video, mode)
        _place(root.audio_path(clip_id), audio, mode)
    remove_stale(out / CLIPS, {f"{c}.mp4" for c in sel.clip_ids})
    remove_stale(out / AUDIO, {f"{c}.wav" for c in sel.clip_ids})
    return [out / CLIPS, out / AUDIO]
