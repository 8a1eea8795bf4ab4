"""Frame spans: half-open frame ranges [start, end) carrying a value.

Captions and provenance are stored as spans so that 300 identical per-frame values take one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
S = TypeVar("S")


def expand_spans(spans: Sequence[S], num_frames: int, value: Callable[[S], T],
                 start: Callable[[S], int] = lambda s: s.start,  # type: ignore[attr-defined]
                 end: Callable[[S], int] = lambda s: s.end) -> list[T | None]:  # type: ignore[attr-defined]
    """One value per frame (None where no span covers it)."""
    out: list[T | None] = [None] * num_frames
    for s in spans:
        for f in range(start(s), min(end(s), num_frames)):
            out[f] = value(s)
    return out


def compress_to_spans(values: Sequence[T | None]) -> list[tuple[int, int, T]]:
    """Per-frame values -> (start, end, value) runs of equal non-None values."""
    runs: list[tuple[int, int, T]] = []
    start = 0
    for f in range(1, len(values) + 1):
        if f == len(values) or values[f] != values[start]:
            if values[start] is not None:
                runs.append((start, f, values[start]))  # type: ignore[arg-type]
            start = f
    return runs
