"""Atomic writes: write to a temp file in the same folder, fsync, then os.replace.

A reader (or a killed writer) therefore sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside `dest`; on success it is renamed onto `dest`, on error removed.

    For tools that write files themselves (ffmpeg, sqlite backups): give them the yielded path.
    The suffix defaults to dest's so that tools which pick a format by extension still work.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Hidden name (leading dot) so listings and validators skip leftovers of a killed writer.
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", suffix=suffix if suffix is not None else dest.suffix,
                               dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file owner-only; give it the mode a plain open() would (or the replaced file's)
    os.chmod(tmp_path, dest.stat().st_mode & 0o777 if dest.exists() else 0o666 & ~current_umask())
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@functools.cache
def current_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(dest) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(dest: str | os.PathLike[str], text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))


def write_json(dest: str | os.PathLike[str], obj: Any, indent: int | None = None) -> None:
    write_text(dest, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")
