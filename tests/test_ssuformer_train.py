"""ssu-train on a synthetic root: loss falls, checkpoints, resume, reproducibility, DDP (gloo)."""

from __future__ import annotations

import csv
import os
import socket
from pathlib import Path

import pytest

from ssuformer.config import load_config

SMALL = [
    "data.image_size=32", "data.frames=2", "data.workers=0",
    "model.hidden=32", "model.heads=2", "model.fusion_blocks=1", "model.audio_queries=2",
    "model.mask_layers=1", "model.caption_layers=1", "model.max_caption_tokens=12", "model.vocab_size=100",
    "model.visual.tiny_dims=[8,16,32,64]", "model.audio.tiny_channels=[4,8]",
    "model.clip.tiny_hidden=16", "model.clip.tiny_image_size=16",
    "train.batch_size=2", "train.lr=0.003", "train.schedule=constant", "train.warmup_steps=0",
]


def small(cache: Path, *extra: str):
    return load_config("tiny", [*SMALL, f"data.cache={cache}", *extra])


def train_losses(run: Path) -> list[float]:
    with open(run / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["phase"] == "train"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ssu-cache")  # the shared synth root stays untouched


@pytest.fixture(scope="module")
def run_a(synth_root, cache, tmp_path_factory) -> Path:
    """2 epochs with validation, then resumed to a 3rd epoch."""
    from ssuformer.trainer import train

    out = tmp_path_factory.mktemp("run") / "a"
    train(synth_root.path, small(cache, "train.epochs=2"), out, seed=3, progress=False)
    assert len(train_losses(out)) == 2
    train(synth_root.path, small(cache, "train.epochs=3"), out, resume="auto", seed=3, progress=False)
    return out


@pytest.mark.slow
def test_train_writes_checkpoints_and_loss_falls(run_a):
    from ssuformer.checkpoint import read_checkpoint

    losses = train_losses(run_a)
    assert len(losses) == 3  # the resumed run added one epoch, it did not start over
    assert losses[-1] < losses[0]
    state = read_checkpoint(run_a / "last.pt")
    assert state["epoch"] == 2 and state["step"] == 6 and state["tokenizer"]
    assert {"model", "optimizer", "scheduler", "config"} <= set(state)
    assert (run_a / "best.pt").is_file() and (run_a / "tokenizer.json").is_file()
    rows = list(csv.DictReader(open(run_a / "log.csv")))
    assert any(r["phase"] == "val" and r["miou"] != "" for r in rows)
    assert not list(run_a.glob(".*tmp*"))  # atomic writes leave no temp files


@pytest.mark.slow
def test_resume_matches_uninterrupted_run_and_seed_reproduces(synth_root, cache, run_a, tmp_path):
    from ssuformer.trainer import train

    out = tmp_path / "b"
    train(synth_root.path, small(cache, "train.epochs=3", "train.run_val=false"), out, seed=3, progress=False)
    assert train_losses(out) == pytest.approx(train_losses(run_a), rel=1e-5)


@pytest.mark.slow
def test_resume_refuses_other_model_settings(synth_root, cache, run_a):
    from schemas.errors import UserError
    from ssuformer.trainer import train

    with pytest.raises(UserError, match="other model/data settings"):
        train(synth_root.path, small(cache, "train.epochs=4", "model.hidden=64", "model.heads=4"), run_a,
              resume="auto", progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, root: str, cache: str, out: str, extra: tuple[str, ...] = ()
                ) -> None:
    import torch.distributed as dist

    from ssuformer.trainer import train

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    try:
        train(root, small(Path(cache), "train.epochs=1", "train.run_val=false", *extra), out, seed=5,
              progress=False)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(synth_root, cache, tmp_path):
    import torch.multiprocessing as mp

    from ssuformer.trainer import train

    single = tmp_path / "single"
    train(synth_root.path, small(cache, "train.epochs=1", "train.run_val=false"), single, seed=5, progress=False)
    ddp = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(synth_root.path), str(cache), str(ddp)), nprocs=2, join=True)
    one, two = train_losses(single), train_losses(ddp)
    assert len(one) == len(two) == 1
    assert two[0] == pytest.approx(one[0], rel=1e-4)


def test_cli_help_and_user_errors(tmp_path):
    from typer.testing import CliRunner

    from ssuformer.train_cli import app

    r = CliRunner().invoke(app, ["--help"])
    assert r.exit_code == 0 and "Example" in r.output
    r = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "not a dataset root" in str(r.exception)
    r = CliRunner().invoke(app, ["summary", "--config", "tiny"])
    assert r.exit_code == 0 and "total" in r.output and "FLOPs per sample" in r.output
