"""Benchmark ssu-collect's normalization against the bare ffmpeg command doing the same transcode, and the
runner with 1 vs 2 worker processes. All figures come from this run, on the real clips in
../shared/data/media/vggsound (or --media-dir).

    .venv/bin/python bench/collect.py [--rounds 2] [--media-dir DIR]

"tool" = collection.normalize.normalize_clip: probe the source (PyAV), build the graph, run ffmpeg,
check the outputs (frame count, 10 s AAC track, wav length) and the source's level (measured by the same
ffmpeg run). "bare" = the identical ffmpeg argv run directly; "naive" = the ffmpeg command a user would write for the
same outputs (same scale/pad and codec settings, no timeline/channel/level handling).
The three run in rotating order clip by clip, so a change in machine load hits both alike.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collection.normalize import (  # noqa: E402
    NormalizeOptions,
    build,
    check_outputs,
    geometry,
    inspect_source,
    normalize_clip,
)
from schemas.media import ffmpeg_exe  # noqa: E402


def bare_argv(src: Path, out: Path, opts: NormalizeOptions) -> list[str]:
    return build(src, 0.0, out / "bare.mp4", out / "bare.wav", opts)[0]


def naive_argv(src: Path, out: Path, opts: NormalizeOptions) -> list[str]:
    """The same outputs as a user would ask ffmpeg for them by hand (same scale/pad, codecs and settings), without
    the tool's timeline, channel handling and level branch: what the exact graph costs over a plain command."""
    info, _ = inspect_source(src, 0.0, opts)
    g = geometry(info.width, info.height, opts.fit)
    vf = (f"[0:v]fps=30,scale={g.scaled_w}:{g.scaled_h}:flags=bicubic,pad=512:512:{g.offset_x}:{g.offset_y},"
          "setsar=1[v]")
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-t", "10", "-i", str(src),
            "-filter_complex", vf, "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset", opts.preset, "-crf",
            str(opts.crf), "-pix_fmt", "yuv420p", "-r", "30", "-frames:v", "300", "-c:a", "aac", "-b:a", "128k",
            "-ar", "44100", "-ac", "2", "-movflags", "+faststart", str(out / "naive.mp4"), "-map", "0:a", "-ac", "1",
            "-ar", "16000", "-c:a", "pcm_s16le", str(out / "naive.wav"), "-y"]


def bench_normalize(clips: list[Path], rounds: int, tmp: Path) -> dict[str, float]:
    """clips/s of the tool, its bare argv and the naive command, run in rotating order clip by clip."""
    opts = NormalizeOptions()
    # argvs built outside the timed part: bare and naive are just ffmpeg
    argvs = {"bare": {c: bare_argv(c, tmp, opts) for c in clips}, "naive": {c: naive_argv(c, tmp, opts) for c in clips}}
    kinds = ["bare", "tool", "naive"]
    spent = dict.fromkeys(kinds, 0.0)
    n = 0
    for r in range(rounds):
        for i, c in enumerate(clips):
            k = (i + r) % len(kinds)
            for what in kinds[k:] + kinds[:k]:
                t0 = time.perf_counter()
                if what == "tool":
                    normalize_clip(c, 0.0, tmp / "tool.mp4", tmp / "tool.wav", opts)
                else:
                    subprocess.run(argvs[what][c], check=True, capture_output=True, stdin=subprocess.DEVNULL)
                spent[what] += time.perf_counter() - t0
            n += 1
    return {k: n / v for k, v in spent.items()}


def tool_overhead(clips: list[Path], tmp: Path) -> float:
    """Seconds per clip the tool spends outside ffmpeg (probe before, checks after): load-independent-ish."""
    opts = NormalizeOptions()
    t0 = time.perf_counter()
    for c in clips:
        inspect_source(c, 0.0, opts)
        check_outputs(tmp / "tool.mp4", tmp / "tool.wav", c.name)
    return (time.perf_counter() - t0) / len(clips)


def bench_bare_parallel(clips: list[Path], tmp: Path, workers: int) -> float:
    opts = NormalizeOptions()
    jobs = []
    for i, c in enumerate(clips):
        d = tmp / f"p{i}"
        d.mkdir(exist_ok=True)
        jobs.append(bare_argv(c, d, opts))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda a: subprocess.run(a, check=True, capture_output=True, stdin=subprocess.DEVNULL), jobs))
    return len(clips) / (time.perf_counter() - t0)


def bench_runner(clips: list[Path], tmp: Path, workers: int) -> float:
    from collection.index import SourceKind
    from collection.job import build_job, run_job
    from collection.request import CollectRequest

    d = tmp / f"local{workers}"
    d.mkdir()
    (d / "index.csv").write_text("file,label\n" + "".join(f"{c},bench\n" for c in clips))
    root = tmp / f"root{workers}"
    job, name = build_job(root, CollectRequest(source=SourceKind.local, index=d, keywords="bench",
                                               per_keyword=len(clips), workers=workers, retries=0, backoff=0))
    t0 = time.perf_counter()
    stats = run_job(root, job, name, quiet=True)
    dt = time.perf_counter() - t0
    assert stats.done == len(clips), stats.summary()
    return len(clips) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media-dir", type=Path, default=ROOT.parent / "shared/data/media/vggsound")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--clips", type=int, default=0, help="use the first N clips (0: all)")
    a = ap.parse_args()
    clips = sorted(a.media_dir.glob("*.mp4"))[: a.clips or None]
    if not clips:
        sys.exit(f"no clips in {a.media_dir}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    try:
        print(f"{len(clips)} real clips from {a.media_dir} -> 512x512, 30 fps, 300 frames + 16 kHz wav")
        rate = bench_normalize(clips, a.rounds, tmp)
        bare, tool, naive = rate["bare"], rate["tool"], rate["naive"]
        print(f"normalize, 1 process   bare ffmpeg {bare:6.3f} clips/s   tool {tool:6.3f} clips/s   "
              f"tool/bare {tool / bare:5.1%}")
        print(f"                       naive ffmpeg command {naive:6.3f} clips/s   tool/naive {tool / naive:5.1%}")
        over = tool_overhead(clips, tmp)
        print(f"tool work outside ffmpeg (probe + output checks): {over * 1000:.0f} ms/clip = "
              f"{over * bare:.1%} of a bare transcode")
        b2 = bench_bare_parallel(clips, tmp, 2)
        w1 = bench_runner(clips, tmp, 1)
        w2 = bench_runner(clips, tmp, 2)
        print(f"runner (ssu-collect)   1 worker {w1:6.3f} clips/s   2 workers {w2:6.3f} clips/s   "
              f"speed-up {w2 / w1:4.2f}x   (bare ffmpeg x2 in parallel: {b2:6.3f} clips/s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
