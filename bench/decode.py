"""decord against PyAV for the project's two ways of reading a clip: all 300 frames of a 512x512 clip (auto-
annotation, refinement, export) and T sampled frames (SSUFormer's data: T=10 at 15, 45, ..., 285; optionally
resized). The figures decide whether decord is worth a dependency (docs/install.md "Video decoding").

    .venv/bin/python bench/decode.py [--rounds 5] [--src ../shared/data/media/vggsound/<clip>.mp4]

The 512x512 clip is made by ssu-collect's own normalization (collection.normalize) from a real VGG-Sound clip.
"PyAV" is schemas.media.read_frames, the project's decoder. The two decoders alternate within each round so a
change in machine load hits both alike; each figure is the median over rounds. Pixel agreement is reported as
the mean absolute difference between the two decoders' frames (0-255 scale). Needs `pip install decord`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collection.normalize import NormalizeOptions, normalize_clip  # noqa: E402
from schemas.media import read_frames  # noqa: E402
from ssuformer.data import sample_frames  # noqa: E402

DEFAULT_SRC = ROOT.parent / "shared/data/media/vggsound"


def decord_frames(path: Path, indices: list[int] | None, size: int | None) -> np.ndarray:
    import decord

    kw = {} if size is None else {"width": size, "height": size}
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=0, **kw)
    idx = list(range(len(vr))) if indices is None else indices
    return vr.get_batch(idx).asnumpy()


def time_it(fn: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, help="source video (default: the first clip in ../shared/data/media/vggsound)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    src = args.src or sorted(DEFAULT_SRC.glob("*.mp4"))[0]
    cases: list[tuple[str, list[int] | None, int | None]] = [
        ("all 300 frames, 512x512", None, None),
        ("T=10 sampled frames, 512x512", sample_frames(10), None),
        ("T=10 sampled frames, resized to 224", sample_frames(10), 224),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        normalize_clip(src, 0.0, clip, Path(tmp) / "clip.wav", NormalizeOptions())
        print(f"clip: {src.name} normalized to 512x512, 300 frames; rounds={args.rounds}; "
              f"load average before: {os.getloadavg()[0]:.2f}")
        print(f"{'case':40s} {'PyAV s':>8s} {'decord s':>9s} {'PyAV/decord':>12s} {'mean |diff|':>12s}")
        for name, idx, size in cases:
            times: dict[str, list[float]] = {"av": [], "decord": []}
            outs: dict[str, np.ndarray] = {}
            for r in range(args.rounds):
                order = ("av", "decord") if r % 2 == 0 else ("decord", "av")
                for what in order:
                    if what == "av":
                        dt, outs["av"] = time_it(lambda idx=idx, size=size: read_frames(clip, idx, size=size))
                    else:
                        dt, outs["decord"] = time_it(lambda idx=idx, size=size: decord_frames(clip, idx, size))
                    times[what].append(dt)
            a, d = statistics.median(times["av"]), statistics.median(times["decord"])
            assert outs["av"].shape == outs["decord"].shape, (outs["av"].shape, outs["decord"].shape)
            diff = float(np.abs(outs["av"].astype(np.int16) - outs["decord"].astype(np.int16)).mean())
            print(f"{name:40s} {a:8.3f} {d:9.3f} {a / d:12.2f} {diff:12.2f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
