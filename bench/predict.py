"""Streaming prediction: frames/s and peak memory of ssuformer.predict for 2 and 8 clips at 512 px.

    .venv/bin/python bench/predict.py                    # makes an 8-clip synthetic root and a random model
    .venv/bin/python bench/predict.py --clips 2,8 --chunk-frames 150 --work /tmp/bench-predict

Each count of clips runs predict_root in a fresh subprocess; its peak RSS comes from the kernel's rusage of
that child (os.wait4), its frames/s from the child's own clock around predict_root (model load excluded).
Prediction streams a clip a chunk of frames at a time, so peak RSS must not grow with the clips: the 8-clip
figure should be within 10 % of the 2-clip one. The model is SSUFormer's tiny config at data.image_size 512
with random weights and segmentation only (captions do not change what is streamed); by default mask_stride
1, so all 300 frames of every clip are predicted (frames/s counts predicted frames). Prints the load average:
the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = 512


def make_checkpoint(path: Path, size: int) -> Path:
    import torch

    from ssuformer.checkpoint import save_checkpoint
    from ssuformer.config import load_config
    from ssuformer.model import SSUFormer

    torch.manual_seed(0)
    cfg = load_config("tiny", [f"data.image_size={size}", "model.caption=false", "model.mcm=false",
                               "model.rcc=false"])
    model = SSUFormer(cfg.model, None)
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg.model_dump(mode="json"), "tokenizer": None})
    return path


def make_root(path: Path, clips: int) -> None:
    from collection.synth import make_synthetic_root

    if not (path / "ssu.json").is_file() or len(list((path / "clips").glob("*.mp4"))) < clips:
        make_synthetic_root(path, clips=clips, seed=0, progress=True)


def child(args: argparse.Namespace) -> None:
    """One measurement: predict the root's test split (set by the parent), print JSON."""
    import torch

    from ssuformer.predict import predict_root

    torch.set_num_threads(args.threads)
    work = Path(args.out)
    t0 = time.perf_counter()
    out = predict_root(args.ckpt, args.root, "test", work / "pred", device="cpu", progress=False,
                       cache=str(work / "cache"), chunk_frames=args.chunk_frames, mask_stride=args.mask_stride)
    seconds = time.perf_counter() - t0
    clips = len(list((out / "annotations").glob("*.json")))
    frames = len(json.loads((out / "predictions.json").read_text())["predicted_frames"])
    print(json.dumps({"clips": clips, "frames": frames * clips, "seconds": seconds}))


def set_test_split(root_path: Path, n: int) -> None:
    from schemas.models import Split
    from schemas.root import DatasetRoot

    root = DatasetRoot.open(root_path)
    ids = sorted(root.clip_ids())[:n]
    root.write_splits({Split.test: ids, Split.train: [], Split.val: []})
    root.close()


def measure(n: int, args: argparse.Namespace, work: Path) -> dict:
    out = work / f"run-{n}"
    set_test_split(args.work / "root", n)
    cmd = [sys.executable, __file__, "--child", "--n", str(n), "--root", str(args.work / "root"),
           "--ckpt", str(args.work / "model.pt"), "--out", str(out), "--chunk-frames", str(args.chunk_frames),
           "--mask-stride", str(args.mask_stride),
           "--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    stdout = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"child for {n} clips failed (status {status})")
    doc = json.loads(stdout.strip().splitlines()[-1])
    doc["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: kilobytes
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="2,8", help="comma-separated clip counts, each in a fresh subprocess")
    ap.add_argument("--chunk-frames", type=int, default=150)
    ap.add_argument("--mask-stride", type=int, default=1, help="predict every k-th frame (a slow CPU: e.g. 15)")
    ap.add_argument("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    ap.add_argument("--work", type=Path, default=None, help="keeps the synthetic root and model between runs")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--ckpt", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    counts = [int(x) for x in args.clips.split(",")]
    args.work = args.work or Path(tempfile.mkdtemp(prefix="bench-predict-"))
    make_root(args.work / "root", max(counts))
    if not (args.work / "model.pt").is_file():
        make_checkpoint(args.work / "model.pt", SIZE)
    print(f"{SIZE} px, tiny SSUFormer (segmentation), mask_stride {args.mask_stride}, chunk {args.chunk_frames} "
          f"frames, {args.threads} torch "
          f"threads; load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)")
    results = []
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for n in counts:
            r = measure(n, args, Path(tmp))
            results.append(r)
            print(f"  {n} clips: {r['frames'] / r['seconds']:7.2f} frames/s   peak RSS {r['peak_rss_mb']:7.1f} MB   "
                  f"({r['seconds']:.1f} s)")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        growth = b["peak_rss_mb"] / a["peak_rss_mb"] - 1
        print(f"peak RSS {b['clips']} vs {a['clips']} clips: {growth * 100:+.1f} % "
              f"({'ok' if abs(growth) <= 0.10 else 'GROWS'}: target within 10 %)")
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
