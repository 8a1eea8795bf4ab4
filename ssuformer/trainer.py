"""The SSUFormer trainer: one process, or one per device under torchrun (DDP: gloo on CPU, nccl on GPU).

The global batch (train.batch_size clips) is split evenly over processes; every loss is a mean of
per-frame values, so DDP's gradient average equals the single-process gradient. Checkpoints (RUN/last.pt
each epoch, RUN/best.pt on a better validation score) hold everything needed to resume exactly.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from schemas import atomic
from schemas.errors import UserError
from schemas.models import Split
from schemas.root import DatasetRoot
from ssuformer.checkpoint import read_checkpoint, save_checkpoint
from ssuformer.config import Optimizer, Precision, Schedule, SSUConfig, config_from_dict
from ssuformer.data import ClipDataset, collate, train_captions
from ssuformer.tokenizer import CaptionTokenizer

LOG_FIELDS = ["epoch", "step", "phase", "loss", "dice", "bce", "text", "clip", "miou", "fscore", "bleu4",
              "rouge_l", "score", "lr", "seconds"]


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainResult:
    run: Path
    last: Path
    best: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def setup_dist(device: str | None) -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        d = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    else:
        d = Dist()
    if cuda:
        torch.cuda.set_device(d.local_rank)
        return d, torch.device("cuda", d.local_rank)
    return d, torch.device(device or "cpu")


class GlobalBatches:
    """Shuffled global batches of clip indices (seed + epoch); rank r takes items r, r+world, ... of each."""

    def __init__(self, n: int, batch: int, dist: Dist, seed: int, shuffle: bool = True) -> None:
        if batch % dist.world:
            raise UserError(f"train.batch_size {batch} must be divisible by the {dist.world} processes")
        self.n, self.batch, self.dist, self.seed, self.shuffle, self.epoch = n, batch, dist, seed, shuffle, 0

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
        for s in range(0, self.n, self.batch):
            chunk = order[s:s + self.batch]
            while len(chunk) % self.dist.world:  # a short last batch: repeat clips to split it evenly
                chunk.append(chunk[len(chunk) % len(order[s:s + self.batch])])
            yield chunk[self.dist.rank::self.dist.world]


def autocast_dtype(precision: Precision, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or precision == Precision.fp32:
        return None
    if precision == Precision.auto:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == Precision.bf16 else torch.float16


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def make_optimizer(model: torch.nn.Module, cfg: SSUConfig, total_steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    t = cfg.train
    opt_cls = torch.optim.Adam if t.optimizer == Optimizer.adam else torch.optim.AdamW
    opt = opt_cls(params, lr=t.lr, weight_decay=t.weight_decay)

    def factor(step: int) -> float:
        if t.warmup_steps and step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        if t.schedule == Schedule.cosine:
            p = min(1.0, (step - t.warmup_steps) / max(1, total_steps - t.warmup_steps))
            return 0.5 * (1 + math.cos(math.pi * p))
        return 1.0

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


class RunLog:
    """RUN/log.csv (rewritten atomically) and TensorBoard events under RUN/tb when tensorboard imports."""

    def __init__(self, run: Path, rows: list[dict[str, Any]]) -> None:
        self.run, self.rows = run, list(rows)
        self.tb = None
        with contextlib.suppress(Exception):
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run / "tb"))

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        lines = [",".join(LOG_FIELDS)]
        for r in self.rows:
            lines.append(",".join("" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]))
                                  for k in LOG_FIELDS))
        atomic.write_text(self.run / "log.csv", "\n".join(lines) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                    self.tb.add_scalar(f"{row['phase']}/{k}", v, row["step"])
            self.tb.flush()


def _resume_state(out: Path, resume: str | None) -> dict[str, Any] | None:
    if resume is None or resume == "never":
        return None
    if resume == "auto":
        return read_checkpoint(out / "last.pt") if (out / "last.pt").is_file() else None
    return read_checkpoint(resume)


def train(data: str | Path, cfg: SSUConfig, out: str | Path, resume: str | None = "auto", seed: int = 0,
          device: str | None = None, max_steps: int | None = None, progress: bool = True) -> TrainResult:
    """Train on `data`'s train split, validating on its val split when there is one."""
    from tqdm import tqdm

    from ssuformer.model import SSUFormer
    from ssuformer.validate import validate

    out = Path(out)
    dist, dev = setup_dist(device)
    state = _resume_state(out, resume)
    if state is not None:
        saved = config_from_dict(state["config"], source="checkpoint")
        same_data = (saved.data.frames, saved.data.image_size) == (cfg.data.frames, cfg.data.image_size)
        if saved.model != cfg.model or not same_data:
            raise UserError(f"{out}: the checkpoint was trained with other model/data settings; resume with the "
                            "same --config and --set, or start afresh with --resume never")
    seed_everything(seed)
    root = DatasetRoot.open(data)
    tok = None
    if cfg.model.caption:
        tok = (CaptionTokenizer.from_json(state["tokenizer"]) if state and state.get("tokenizer")
               else CaptionTokenizer.train(train_captions(root), cfg.model.vocab_size))
    from ssuformer.mohe import expert_cache_for, read_meta

    expert_dir = expert_cache_for(root.path, cfg)
    expert_dim = int(read_meta(expert_dir)["dim"]) if expert_dir is not None else None
    model = SSUFormer(cfg.model, tok, expert_dim=expert_dim).to(dev)
    train_ds = ClipDataset(root, Split.train, cfg, tok, expert_dir)
    val_ds = None
    if cfg.train.run_val and root.split_path(Split.val).is_file() and root.read_split(Split.val):
        val_ds = ClipDataset(root, Split.val, cfg, tok, expert_dir)
    batches = GlobalBatches(len(train_ds), cfg.train.batch_size, dist, seed)
    steps_per_epoch = math.ceil(len(batches) / cfg.train.grad_accum)
    opt, sched = make_optimizer(model, cfg, steps_per_epoch * cfg.train.epochs)
    amp = autocast_dtype(cfg.train.precision, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    step, start_epoch, best_score, history = 0, 0, -math.inf, []
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state.get("scaler", {}) or scaler.state_dict())
        step, start_epoch = int(state["step"]), int(state["epoch"]) + 1
        best_score, history = float(state.get("best_score", -math.inf)), list(state.get("history", []))
        rng = state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
    net: torch.nn.Module = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    loader = torch.utils.data.DataLoader(train_ds, batch_sampler=batches, collate_fn=collate,
                                         num_workers=cfg.data.workers, pin_memory=dev.type == "cuda",
                                         persistent_workers=cfg.data.workers > 0)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        if tok is not None:
            tok.save(out / "tokenizer.json")
        import yaml

        atomic.write_text(out / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    log = RunLog(out, history) if dist.main else None
    best_path = out / "best.pt" if (out / "best.pt").is_file() else None
    for epoch in range(start_epoch, cfg.train.epochs):
        if max_steps is not None and step >= max_steps:
            break
        batches.epoch = epoch
        net.train()
        sums: dict[str, float] = {}
        count, t0 = 0, time.time()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch",
                   disable=not (progress and dist.main), leave=False)
        for i, batch in enumerate(bar):
            batch = to_device(batch, dev)
            last_micro = (i + 1) % cfg.train.grad_accum == 0 or i + 1 == len(batches)
            sync = contextlib.nullcontext() if (last_micro or dist.world == 1) else net.no_sync()
            with sync:
                with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
                    outputs = net(batch)
                parts = model.losses(outputs, batch, cfg.loss)
                scaler.scale(parts["loss"] / cfg.train.grad_accum).backward()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            count += 1
            if last_micro:
                if cfg.train.grad_clip:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                sched.step()
                step += 1
                bar.set_postfix(loss=f"{parts['loss'].item():.4f}")
                if max_steps is not None and step >= max_steps:
                    break
        means = _all_mean({k: v / max(count, 1) for k, v in sums.items()}, dist, dev)
        row: dict[str, Any] = {"epoch": epoch, "step": step, "phase": "train", **means,
                               "lr": sched.get_last_lr()[0], "seconds": round(time.time() - t0, 2)}
        if log is not None:
            log.add(row)
        history.append(row)
        if dist.main:
            if val_ds is not None and ((epoch + 1) % cfg.train.val_every == 0 or epoch + 1 == cfg.train.epochs):
                vrow = {"epoch": epoch, "step": step, "phase": "val",
                        **validate(model, val_ds, cfg, dev, amp, progress=progress)}
                log.add(vrow)  # type: ignore[union-attr]
                history.append(vrow)
                if vrow["score"] > best_score:
                    best_score = vrow["score"]
                    best_path = out / "best.pt"
            ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "scaler": scaler.state_dict(), "step": step, "epoch": epoch,
                    "config": cfg.model_dump(mode="json"), "tokenizer": tok.to_json() if tok else None,
                    "expert_dim": expert_dim, "best_score": best_score, "history": history, "seed": seed,
                    "rng": {"torch": torch.get_rng_state()}}
            save_checkpoint(out / "last.pt", ckpt)
            if best_path is not None and history[-1].get("score") == best_score:
                save_checkpoint(best_path, ckpt)
        if dist.world > 1:
            torch.distributed.barrier()
    root.close()
    return TrainResult(run=out, last=out / "last.pt", best=best_path, history=history)


def _all_mean(values: dict[str, float], dist: Dist, dev: torch.device) -> dict[str, float]:
    if dist.world == 1:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=dev)
    torch.distributed.all_reduce(t)
    return {k: float(v) / dist.world for k, v in zip(keys, t.tolist(), strict=True)}
