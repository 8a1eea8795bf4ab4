"""ssu-train: train SSUFormer, cache the MoHE expert's features, print the model's size and FLOPs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from schemas.cli_util import folder_path, new_app, run_cli

app = new_app("Train SSUFormer on a dataset root (paper section IV).\n\n\b\nExamples:\n"
              "  ssu-train --data ROOT --config tiny --out runs/tiny\n"
              "  torchrun --nproc_per_node 4 -m ssuformer.train_cli --data ROOT --config paper --out RUN\n"
              "  ssu-train summary --config paper")

CONFIG_HELP = "config name (paper, tiny, ssu_s, ssu_d, baseline, focal, mcm, rcc, mohe) or a YAML path"
SET_HELP = "override a setting, e.g. --set model.fusion_blocks=2 (repeatable)"


@app.command()
def train(
    data: Path = typer.Option(..., "--data", parser=folder_path,
                              help="dataset root with splits/train.txt (and val.txt)"),
    out: Path = typer.Option(..., "--out", parser=folder_path,
                             help="run folder: checkpoints, log.csv, tb/, tokenizer.json"),
    config: str = typer.Option("tiny", "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    resume: str = typer.Option("auto", "--resume", help="auto (continue RUN/last.pt if any), never, or a path"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed for init, shuffling and dropout (same seed, same run)"),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)"),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="stop after this many optimizer steps"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train (the default command). Example: ssu-train --data ROOT --config tiny --out RUN --set train.epochs=20"""
    from ssuformer.config import load_config
    from ssuformer.trainer import train as run_train

    cfg = load_config(config, set_)
    res = run_train(data, cfg, out, resume=resume, seed=seed, device=device, max_steps=max_steps,
                    progress=progress)
    last = [h for h in res.history if h["phase"] == "train"]
    if last and os.environ.get("RANK", "0") == "0":  # under torchrun, one summary line, not one per process
        typer.echo(f"trained to step {last[-1]['step']}: loss {last[-1]['loss']:.4f}; "
                   f"checkpoints in {res.run} (best: {res.best or 'none, no val split'})")


@app.command("cache-expert")
def cache_expert_cmd(
    data: Path = typer.Option(..., "--data", parser=folder_path, help="dataset root"),
    config: str = typer.Option("paper", "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    expert: str | None = typer.Option(None, "--expert", help="LLaVA hub id or local folder (overrides config)"),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)"),
    size: int = typer.Option(336, "--size", min=16, help="frame size handed to the expert's processor"),
) -> None:
    """Run the frozen LLaVA expert once per clip and cache its prompt features for MoHE.

    Example: ssu-train cache-expert --data ROOT --config paper --expert llava-hf/llava-1.5-7b-hf
    """
    import torch

    from schemas.root import DatasetRoot
    from ssuformer.config import load_config
    from ssuformer.data import sample_frames
    from ssuformer.mohe import cache_expert

    cfg = load_config(config, set_)
    if expert:
        cfg.model.expert.name_or_path = expert
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    folder = cache_expert(DatasetRoot.open(data), cfg.model.expert, sample_frames(cfg.data.frames), size, dev)
    typer.echo(f"expert features cached in {folder}")


@app.command()
def summary(
    config: str = typer.Option("paper", "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    expert_dim: int = typer.Option(4096, "--expert-dim", min=1, help="MoHE expert width (LLaVA-1.5-7B: 4096)"),
) -> None:
    """Parameters per module and FLOPs per sample (one clip of T frames), measured.

    Example: ssu-train summary --config paper
    """
    from ssuformer.config import load_config
    from ssuformer.summary import summarize

    typer.echo(summarize(load_config(config, set_), expert_dim))


COMMANDS = {"train", "cache-expert", "summary"}


def main() -> None:
    # `ssu-train --data ROOT ...` means `ssu-train train --data ROOT ...`
    args = sys.argv[1:]
    if args and args[0] not in COMMANDS and args[0] not in ("--help", "-h"):
        sys.argv.insert(1, "train")
    run_cli(app)


if __name__ == "__main__":
    main()
