"""How fast ssu-synth writes clips: python bench/synth.py [--clips 100] [--workers 2] [--preset veryfast].

Prints, for one clip, the time of each stage (frames + ground truth in numpy, audio, H.264 encoding of
pre-rendered frames alone) and then the clips/s of a whole root of --clips clips, with the share of a
clip's time that the encoder alone takes (the baseline: the floor for any generator writing this format).
Also prints CPU seconds per clip (this process and all its children): on a machine shared with other
work, cores / (CPU s per clip) is the rate the same cores would give when idle.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from collection import synth
from schemas.media import write_wav


def stage_times(preset: synth.Preset) -> dict[str, float]:
    spec = synth.clip_spec(12345, 0)
    t0 = time.perf_counter()
    chunks = [frames for frames, _ in synth.iter_seconds(spec)]
    t1 = time.perf_counter()
    audio = synth.render_audio(spec)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        wav, mp4 = Path(d) / "a.wav", Path(d) / "v.mp4"
        write_wav(wav, audio, 16_000)
        t3 = time.perf_counter()
        proc = subprocess.Popen(synth.ffmpeg_cmd(mp4, wav, 0, preset), stdin=subprocess.PIPE)
        assert proc.stdin is not None
        for c in chunks:
            proc.stdin.write(c.tobytes())
        proc.stdin.close()
        if proc.wait() != 0:
            raise SystemExit("ffmpeg failed")
        t4 = time.perf_counter()
    return {"frames+masks": t1 - t0, "audio": t2 - t1, "encode only": t4 - t3}


def _cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=100)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--preset", default="veryfast", choices=[p.value for p in synth.Preset])
    ap.add_argument("--keep", type=Path, default=None, help="write the root here and keep it")
    args = ap.parse_args()
    preset = synth.Preset(args.preset)

    stages = stage_times(preset)
    print("one clip, one process: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    out = args.keep or tmp / "root"
    try:
        cpu0 = _cpu()
        run = synth.generate(out, clips=args.clips, seed=0, workers=args.workers, preset=preset, progress=True)
        run.root.close()
        cpu = (_cpu() - cpu0) / max(1, run.made)  # pool workers and their ffmpeg are reaped by now
        mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
        per_clip = run.seconds / max(1, run.made)
        print(f"{run.made} clips in {run.seconds:.1f} s = {run.clips_per_second:.2f} clips/s "
              f"({args.workers} workers, preset {preset.value}, {os.cpu_count()} cores, load "
              f"{os.getloadavg()[0]:.1f}); {mb:.0f} MB on disk")
        print(f"{cpu:.2f} CPU s per clip: on {args.workers} idle cores ~{args.workers / cpu:.2f} clips/s, "
              f"100 clips in ~{100 * cpu / args.workers:.0f} s")
        print(f"100 clips would take {100 * per_clip:.0f} s; encoding alone is "
              f"{stages['encode only'] / (per_clip * args.workers):.0%} of a clip's worker time")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
