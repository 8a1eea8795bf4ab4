"""Benchmark ssu-collect's normalization against the bare ffmpeg command doing the same transcode, and the
runner with 1 vs 2 worker processes. All figures come from this run, on the real clips in
../shared/data/media/vggsound (or --media-dir).

    .venv/bin/python bench/collect.py [--rounds 2] [--media-dir DIR]

"tool" = collection.normalize.normalize_clip: probe the source (PyAV), build the graph, run ffmpeg,
check the outputs (frame count, wav length, silence). "bare" = the identical ffmpeg argv run directly.
Bare and tool runs alternate clip by clip, so a change in machine load hits both alike.
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
    check_outputs,
    encode,
    fit_video,
    geometry,
    inspect_source,
    normalize_clip,
    source_streams,
    wav_level_db,
)


def bare_argv(src: Path, out: Path, opts: NormalizeOptions) -> list[str]:
    info, allowed = inspect_source(src, 0.0, opts)
    v, a = source_streams(src, 0.0, info, opts, allowed)
    return encode(fit_video(v, geometry(info.width, info.height, opts.fit)), a, out / "bare.mp4", out / "bare.wav",
                  opts)


def bench_normalize(clips: list[Path], rounds: int, tmp: Path) -> tuple[float, float]:
    opts = NormalizeOptions()
    argvs = {c: bare_argv(c, tmp, opts) for c in clips}  # built outside the timed part: bare is just ffmpeg
    t_bare = t_tool = 0.0
    n = 0
    for r in range(rounds):
        for i, c in enumerate(clips):
            order = ("bare", "tool") if (i + r) % 2 == 0 else ("tool", "bare")
            for what in order:
                t0 = time.perf_counter()
                if what == "bare":
                    subprocess.run(argvs[c], check=True, capture_output=True, stdin=subprocess.DEVNULL)
                    t_bare += time.perf_counter() - t0
                else:
                    normalize_clip(c, 0.0, tmp / "tool.mp4", tmp / "tool.wav", opts)
                    t_tool += time.perf_counter() - t0
            n += 1
    return n / t_bare, n / t_tool


def tool_overhead(clips: list[Path], tmp: Path) -> float:
    """Seconds per clip the tool spends outside ffmpeg (probe before, checks after): load-independent-ish."""
    opts = NormalizeOptions()
    t0 = time.perf_counter()
    for c in clips:
        inspect_source(c, 0.0, opts)
        check_outputs(tmp / "tool.mp4", tmp / "tool.wav", c.name)
        wav_level_db(tmp / "tool.wav")
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
    from collection.job import build_job, run_job

    d = tmp / f"local{workers}"
    d.mkdir()
    (d / "index.csv").write_text("file,label\n" + "".join(f"{c},bench\n" for c in clips))
    root = tmp / f"root{workers}"
    job, name = build_job(
        source="local", index=d, keywords="bench", per_keyword=len(clips), seed=0, split=None, synonyms=None,
        media_dir=None, available_only=False, fill=False, mix=[], mix_count=1, fit="pad", short="reject",
        no_audio="reject", allow_silent=False, crf=20, preset="veryfast", workers=workers, ffmpeg_threads=0,
        ray=False, ray_address=None, url_template="https://www.youtube.com/watch?v={youtube_id}", cookies=None,
        retries=0, backoff=0, rate_limit=None, min_interval=0, root=root, name=None)
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
        bare, tool = bench_normalize(clips, a.rounds, tmp)
        print(f"normalize, 1 process   bare ffmpeg {bare:6.3f} clips/s   tool {tool:6.3f} clips/s   "
              f"tool/bare {tool / bare:5.1%}")
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
