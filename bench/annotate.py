"""Throughput of the auto-annotation stages: frames/s per stage and peak memory.

    .venv/bin/python bench/annotate.py                      # tiny random models, one synthetic clip, CPU
    .venv/bin/python bench/annotate.py --root R --clip ID --sam2 /models/sam2.1-hiera-large ... --device cuda

With no model flags it builds the tiny test models (tests/tiny_models.py) in a temp folder: the figures then
measure the plumbing (decode, JPEG windows, RLE, gating), not real-model speed. Stage figures are frames per
second of that stage's own work (detector: keyframes; SAM: seed frames; SAM2: frames x tracks; caption:
captioned frames). Peak memory: the process's max RSS (and CUDA's max allocated when on a GPU).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from annotator.models.settings import SAM2_WINDOW

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, help="dataset root (default: a fresh 1-clip synthetic root)")
    ap.add_argument("--clip", help="clip id (default: the root's first)")
    for k in ("sam", "sam2", "captioner", "detector", "audio-tagger"):
        ap.add_argument(f"--{k}")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sam2-window", type=int, default=SAM2_WINDOW)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = ap.parse_args()

    import torch

    from annotator.draft.pipeline import AutoAnnotator, DraftModels, PipelineConfig
    from annotator.models.loaders import Device, ModelsConfig, ModelSpec, Runtime
    from schemas.root import DatasetRoot

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench-annotate-"))
    if args.root is None:
        from collection.synth import make_synthetic_root

        args.root = tmp / "root"
        make_synthetic_root(args.root, clips=1, seed=0)
    rt = Runtime(device=Device(args.device), offline=True)
    names = {"sam": args.sam, "sam2": args.sam2, "captioner": args.captioner, "detector": args.detector,
             "audio_tagger": args.audio_tagger}
    if all(v is None for v in names.values()):
        sys.path.insert(0, str(ROOT / "tests"))  # the test models (tests/tiny_models.py): a dev-only fallback
        from tiny_models import build_tiny_models

        t = time.perf_counter()
        models = build_tiny_models(tmp / "models").models_config(device=args.device, offline=True)
        print(f"built tiny models in {time.perf_counter() - t:.1f} s (random weights)")
    else:
        if any(v is None for v in names.values()):
            sys.exit("give all five model flags, or none (tiny models)")
        models = ModelsConfig(**{k: ModelSpec(source=v) for k, v in names.items()}, runtime=rt)
    cfg = PipelineConfig(sam2_window=args.sam2_window)
    t = time.perf_counter()
    loaded = DraftModels.load(models, cfg)
    load_s = time.perf_counter() - t
    root = DatasetRoot.open(args.root)
    clip = args.clip or root.clip_ids()[0]
    t = time.perf_counter()
    res = AutoAnnotator(loaded, cfg).annotate(root, clip)
    total = time.perf_counter() - t
    print(f"clip {clip}: {len(res.annotation.sources)} track(s), device {rt.torch_device()}, "
          f"torch threads {torch.get_num_threads()}, models loaded in {load_s:.1f} s")
    print(f"{'stage':10} {'seconds':>8} {'frames':>7} {'frames/s':>9}")
    for stage, secs in res.seconds.items():
        n = res.frames.get(stage, 0)
        print(f"{stage:10} {secs:8.2f} {n:7d} {n / secs if secs > 0 else float('inf'):9.1f}")
    print(f"{'total':10} {total:8.2f} {300:7d} {300 / total:9.1f}   (clip frames per second of wall time)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB")
    if torch.cuda.is_available() and rt.torch_device().startswith("cuda"):
        print(f"peak CUDA allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # run as `python bench/annotate.py` from a checkout
    main()
