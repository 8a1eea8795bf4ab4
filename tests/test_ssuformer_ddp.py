"""Every config and Table V rung trains under 2-process DDP (gloo) without DDP's unused-parameter search;
checkpoints carry each rank's random state; sharded validation equals one-process validation."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from test_ssuformer_train import SMALL

# The paper-derived files with the tiny parts swapped in (random weights, tiny CLIP) so they run on a CPU.
TINY_PARTS = ["model.audio.tiny=true", "model.audio.weights=none", "model.visual.arch=pvt_v2_b0",
              "model.visual.weights=none", "model.clip.tiny=true", "model.max_caption_tokens=12"]
CONFIGS = ["tiny", "ssu_d", "ssu_s", "baseline", "focal", "mcm", "rcc", "mohe", "paper_i"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(name: str, cache: Path, expert: Path):
    from ssuformer.config import load_config

    extra = [f"data.cache={cache}", "train.epochs=1", "data.jitter=true", "model.expert.layers=[-1,-2]",
             "model.expert.tokens=2", f"model.expert.cache={expert}"]
    return load_config(name, [*SMALL, *(TINY_PARTS if name != "tiny" else []), *extra])


def _fake_expert_cache(root, folder: Path, dim: int = 8) -> None:
    """Expert features as `ssu-train cache-expert` lays them out (random: this tests the routing under DDP)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for ids in root.splits().values():
        for clip_id in ids:
            np.save(folder / f"{clip_id}.npy", rng.standard_normal((2, 2, 2, dim)).astype(np.float16))
    (folder / "meta.json").write_text(json.dumps({"dim": dim}))


def _worker(rank: int, world: int, port: int, root: str, tmp: str) -> None:
    import torch.distributed as dist

    from ssuformer.checkpoint import load_model
    from ssuformer.data import ClipDataset
    from ssuformer.runtime import Dist
    from ssuformer.trainer import train
    from ssuformer.validate import validate

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    base = Path(tmp)
    try:
        for name in CONFIGS:
            cfg = _config(name, base / "cache", base / "expert")
            train(root, cfg, base / name, seed=7, max_steps=2, progress=False)
        model, cfg, tok, _ = load_model(base / "tiny" / "last.pt")
        ds = ClipDataset(root, "train", cfg, tok)
        scores = validate(model, ds, cfg, torch.device("cpu"), None, Dist(rank, world, rank))
        if rank == 0:
            (base / "val-ddp.json").write_text(json.dumps(scores))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_every_config_trains_under_ddp(synth_root, tmp_path):
    import torch.multiprocessing as mp

    from ssuformer.checkpoint import load_model, read_checkpoint
    from ssuformer.data import ClipDataset
    from ssuformer.validate import validate

    _fake_expert_cache(synth_root, tmp_path / "expert")
    mp.spawn(_worker, args=(2, _free_port(), str(synth_root.path), str(tmp_path)), nprocs=2, join=True)
    for name in CONFIGS:
        state = read_checkpoint(tmp_path / name / "last.pt")
        assert state["step"] == 2, name  # a second step is where DDP fails on a parameter without gradient
        ranks = state["rng"]["ranks"]
        assert state["rng"]["world"] == 2 and len(ranks) == 2
        assert not torch.equal(ranks[0]["cpu"], ranks[1]["cpu"]), name  # each rank its own stream
    # validation sharded over 2 ranks (2 clips each) and reduced equals validation in one process
    model, cfg, tok, _ = load_model(tmp_path / "tiny" / "last.pt")
    one = validate(model, ClipDataset(synth_root.path, "train", cfg, tok), cfg, torch.device("cpu"), None)
    two = json.loads((tmp_path / "val-ddp.json").read_text())
    for k in ("loss", "dice", "text", "clip", "miou", "fscore", "bleu4", "score"):
        assert two[k] == pytest.approx(one[k], rel=1e-5, abs=1e-7), k
