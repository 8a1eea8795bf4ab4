"""Is the data loader the bottleneck? Loader samples/s (cold: decoding, warm: from the cache) vs one training
step of the tiny model, measured in the same run.

    python bench/loader.py --data ROOT [--config tiny] [--workers 2] [--steps 3]

Prints clips/s of the loader (cold and warm) and of training; the ratio warm-loader / train must be > 1
for the loader to keep up.
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    import torch

    from schemas.root import DatasetRoot
    from ssuformer.config import load_config
    from ssuformer.data import ClipDataset, collate
    from ssuformer.model import SSUFormer
    from ssuformer.trainer import caption_tokenizer, make_optimizer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        cfg = load_config(a.config, [*a.set, f"data.cache={cache}", f"data.workers={a.workers}"])
        root = DatasetRoot.open(a.data)
        tok, _ = caption_tokenizer(root, cfg)  # as ssu-train builds it (limit resolved from the data)
        ds = ClipDataset(root, "train", cfg, tok)
        bs = cfg.train.batch_size

        def loader():
            return torch.utils.data.DataLoader(ds, batch_size=bs, collate_fn=collate, num_workers=a.workers)

        rates = {}
        for phase in ("cold", "warm"):
            t0 = time.perf_counter()
            n = sum(len(b["clip_id"]) for b in loader())
            rates[phase] = n / (time.perf_counter() - t0)
        model = SSUFormer(cfg.model, tok)
        opt, _ = make_optimizer(model, cfg, 100)
        batch = next(iter(loader()))
        times = []
        for _ in range(a.steps + 1):
            t0 = time.perf_counter()
            loss = model.losses(model(batch), batch, cfg.loss)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        train_rate = bs / (sum(times[1:]) / a.steps)  # the first step warms up allocators
    print(f"clips: {len(ds)}, batch {bs}, frames {cfg.data.frames} at {cfg.data.image_size}px, "
          f"workers {a.workers}, torch threads {torch.get_num_threads()}")
    print(f"loader cold (decode + cache): {rates['cold']:.2f} clips/s")
    print(f"loader warm (from cache):     {rates['warm']:.2f} clips/s")
    print(f"training step ({cfg.name}):   {train_rate:.2f} clips/s")
    print(f"warm loader / train = {rates['warm'] / train_rate:.1f}x  (> 1: the loader keeps up)")


if __name__ == "__main__":
    main()
