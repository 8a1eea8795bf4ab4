"""The SSUFormer trainer: one process, or one per device under torchrun (DDP: gloo on CPU, nccl on GPU).

Stages, each returning its result: `setup` (data, tokenizer, model, optimizer, resume state) -> per epoch
`fit` (one pass over the train split: the train log row) -> `validate` (the val row, sharded over ranks)
-> `save` (the checkpoints written). `train` runs them in order.

The global batch (train.batch_size clips) is split evenly over processes; every loss is a mean of
per-frame values, so DDP's gradient average equals the single-process gradient. Checkpoints (RUN/last.pt
each epoch, RUN/best.pt on a better validation score) hold everything needed to resume exactly, the
random state of every rank included.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from schemas import atomic
from schemas.errors import UserError
from schemas.models import Split
from schemas.root import DatasetRoot
from ssuformer.batch import collate, to_device
from ssuformer.checkpoint import read_checkpoint, save_checkpoint, without_files
from ssuformer.config import Optimizer, Schedule, SSUConfig, config_from_checkpoint
from ssuformer.data import ClipDataset, train_captions
from ssuformer.model import SSUFormer
from ssuformer.mohe import expert_cache_for, read_meta
from ssuformer.runtime import (
    Dist,
    all_sum,
    autocast_dtype,
    gather_objects,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_dist,
)
from ssuformer.tokenizer import CaptionTokenizer
from ssuformer.validate import validate as run_validation
from ssuformer.weights import check_pretrained

__all__ = ["GlobalBatches", "TrainResult", "TrainRun", "fit", "make_optimizer", "save", "setup", "to_device",
           "train", "validate"]

LOG_FIELDS = ["epoch", "step", "phase", "loss", "dice", "bce", "inst_mask", "cls", "aux", "text", "clip", "truncated",
              "miou", "fscore", "bleu4", "rouge_l", "score", "lr", "seconds"]


@dataclass
class TrainResult:
    run: Path
    last: Path
    best: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)


class GlobalBatches:
    """Shuffled global batches of clip indices (seed + epoch); rank r takes items r, r+world, ... of each.

    With `jitter`, items are (index, epoch) pairs: ClipDataset then draws the frames of that epoch."""

    def __init__(self, n: int, batch: int, dist: Dist, seed: int, shuffle: bool = True, jitter: bool = False) -> None:
        if batch % dist.world:
            raise UserError(f"train.batch_size {batch} must be divisible by the {dist.world} processes")
        self.n, self.batch, self.dist, self.seed, self.shuffle, self.epoch = n, batch, dist, seed, shuffle, 0
        self.jitter = jitter

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
        for s in range(0, self.n, self.batch):
            chunk = order[s:s + self.batch]
            while len(chunk) % self.dist.world:  # a short last batch: repeat clips to split it evenly
                chunk.append(chunk[len(chunk) % len(order[s:s + self.batch])])
            mine = chunk[self.dist.rank::self.dist.world]
            yield [(i, self.epoch) for i in mine] if self.jitter else mine


def make_optimizer(model: torch.nn.Module, cfg: SSUConfig, total_steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    t = cfg.train
    opt_cls = torch.optim.Adam if t.optimizer == Optimizer.adam else torch.optim.AdamW
    # fused: one kernel for all parameters instead of ~10 tensor ops per parameter per step (the same update
    # up to float rounding); CPU and CUDA fp32 parameters have one
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in params)
    opt = opt_cls(params, lr=t.lr, weight_decay=t.weight_decay, fused=fused or None)

    def factor(step: int) -> float:
        if t.warmup_steps and step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        if t.schedule == Schedule.cosine:
            p = min(1.0, (step - t.warmup_steps) / max(1, total_steps - t.warmup_steps))
            return 0.5 * (1 + math.cos(math.pi * p))
        return 1.0

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


class RunLog:
    """RUN/log.csv (rewritten atomically), RUN/run.log (setup provenance and warnings, also on stderr) and
    TensorBoard events under RUN/tb when tensorboard imports."""

    def __init__(self, run: Path, rows: list[dict[str, Any]], echo: bool = True) -> None:
        self.run, self.rows, self.echo = run, list(rows), echo
        self.notes = (run / "run.log").read_text().splitlines() if (run / "run.log").is_file() else []
        self.tb = None
        with contextlib.suppress(Exception):
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run / "tb"))

    def note(self, text: str) -> None:
        self.notes.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}")
        atomic.write_text(self.run / "run.log", "\n".join(self.notes) + "\n")
        if self.echo:
            print(f"ssu-train: {text}", file=sys.stderr)

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


@dataclass
class TrainRun:
    """Everything `setup` builds and the later stages use."""

    out: Path
    cfg: SSUConfig
    dist: Dist
    dev: torch.device
    seed: int
    tok: CaptionTokenizer | None
    expert_dim: int | None
    model: torch.nn.Module
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    amp: torch.dtype | None
    train_ds: ClipDataset
    val_ds: ClipDataset | None
    batches: GlobalBatches
    loader: Any
    log: RunLog | None
    step: int = 0
    start_epoch: int = 0
    best_score: float = -math.inf
    best_path: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _resume_state(out: Path, resume: str | None) -> dict[str, Any] | None:
    if resume is None or resume == "never":
        return None
    if resume == "auto":
        return read_checkpoint(out / "last.pt") if (out / "last.pt").is_file() else None
    return read_checkpoint(resume)


def caption_limit(tok: CaptionTokenizer, texts: list[str], limit: int | str) -> tuple[int, str]:
    """The caption length limit (tokens, EOS included) and a line on how much of the data it covers:
    `auto` takes the longest train caption target, a number is checked against the data."""
    counts = Counter(texts)
    lengths = np.repeat([tok.length(t) for t in counts], list(counts.values()))
    p50, p95, p99 = (int(np.percentile(lengths, q)) for q in (50, 95, 99))
    n = int(lengths.max()) if limit == "auto" else int(limit)
    covered = float((lengths <= n).mean()) * 100
    return n, (f"caption length limit {n} tokens ({'auto: the longest' if limit == 'auto' else 'set'}): covers "
               f"{covered:.2f} % of {len(lengths)} train frame captions (tokens with EOS: p50 {p50}, p95 {p95}, "
               f"p99 {p99}, max {int(lengths.max())})")


def caption_tokenizer(root: DatasetRoot, cfg: SSUConfig, saved: str | None = None) -> tuple[CaptionTokenizer, str]:
    """The caption tokenizer (trained on the train split's distinct caption targets, or the saved one) and the
    line on its length limit; sets cfg.model.max_caption_tokens from the data when it is `auto`."""
    texts = train_captions(root)
    tok = (CaptionTokenizer.from_json(saved) if saved
           else CaptionTokenizer.train(sorted(set(texts)), cfg.model.vocab_size))
    cfg.model.max_caption_tokens, line = caption_limit(tok, texts, cfg.model.max_caption_tokens)
    return tok, line


def setup(data: str | Path, cfg: SSUConfig, out: str | Path, resume: str | None = "auto", seed: int = 0,
          device: str | None = None) -> TrainRun:
    """Stage 1: process group, resume state, tokenizer, model (pretrained parts loaded), data, optimizer."""

    out = Path(out)
    cfg = cfg.model_copy(deep=True)
    dist, dev = setup_dist(device, cfg.train.dist_timeout_s)
    state = _resume_state(out, resume)
    sources = check_pretrained(cfg.model, resumed=state is not None)  # every missing file named, before any work
    if state is not None:
        saved = config_from_checkpoint(state["config"])
        if cfg.model.max_caption_tokens == "auto":
            cfg.model.max_caption_tokens = saved.model.max_caption_tokens
        same_data = (saved.data.frames, saved.data.image_size) == (cfg.data.frames, cfg.data.image_size)
        if saved.model != cfg.model or not same_data:
            raise UserError(f"{out}: the checkpoint was trained with other model/data settings; resume with the "
                            "same --config and --set, or start afresh with --resume never")
    seed_everything(seed)  # the shared stream: every rank builds the same initial model
    root = DatasetRoot.open(data)
    notes = [*sources, f"{dist.world} process(es) on {dev}"]
    tok = None
    if cfg.model.caption:
        tok, line = caption_tokenizer(root, cfg, state.get("tokenizer") if state else None)
        notes.append(line)
    elif cfg.model.max_caption_tokens == "auto":
        cfg.model.max_caption_tokens = 1  # no caption head: the limit is unused
    expert_dir = expert_cache_for(root.path, cfg)
    expert_dim = int(read_meta(expert_dir)["dim"]) if expert_dir is not None else None
    # resuming, the checkpoint holds the trained encoders: the pretrained files are not loaded again
    built = without_files(cfg.model) if state is not None else cfg.model
    model = SSUFormer(built, tok, expert_dim=expert_dim, loss=cfg.loss).to(dev)
    train_ds = ClipDataset(root, Split.train, cfg, tok, expert_dir, jitter=cfg.data.jitter, seed=seed)
    val_ds = None
    if cfg.train.run_val and root.split_path(Split.val).is_file() and root.read_split(Split.val):
        val_ds = ClipDataset(root, Split.val, cfg, tok, expert_dir)
    root.close()
    batches = GlobalBatches(len(train_ds), cfg.train.batch_size, dist, seed, jitter=cfg.data.jitter)
    steps_per_epoch = math.ceil(len(batches) / cfg.train.grad_accum)
    opt, sched = make_optimizer(model, cfg, steps_per_epoch * cfg.train.epochs)
    amp = autocast_dtype(cfg.train.precision, dev)
    notes.append(f"precision {cfg.train.precision.value}: " + (f"autocast {amp}" if amp else "fp32")
                 + (" with GradScaler" if amp == torch.float16 else ""))
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    run = TrainRun(out=out, cfg=cfg, dist=dist, dev=dev, seed=seed, tok=tok, expert_dim=expert_dim, model=model,
                   net=model, opt=opt, sched=sched, scaler=scaler, amp=amp, train_ds=train_ds, val_ds=val_ds,
                   batches=batches, loader=None, log=None)
    _restore(run, state, notes)
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Every config uses all its trainable parameters in every step (a test trains each under DDP), so
        # DDP's unused-parameter search (an extra graph walk per step) stays off.
        run.net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    run.loader = torch.utils.data.DataLoader(train_ds, batch_sampler=batches, collate_fn=collate,
                                             num_workers=cfg.data.workers, pin_memory=dev.type == "cuda",
                                             persistent_workers=cfg.data.workers > 0)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        if tok is not None:
            tok.save(out / "tokenizer.json")
        import yaml

        atomic.write_text(out / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        run.log = RunLog(out, run.history)
        for line in notes:
            run.log.note(line)
    run.best_path = out / "best.pt" if (out / "best.pt").is_file() else None
    return run


def _restore(run: TrainRun, state: dict[str, Any] | None, notes: list[str]) -> None:
    """Resume from a checkpoint: weights, optimizer, counters and this rank's random state."""
    if state is None:
        seed_everything(run.seed, run.dist.rank)  # from here on each rank draws its own stream
        return
    run.model.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state.get("scaler", {}) or run.scaler.state_dict())
    run.step, run.start_epoch = int(state["step"]), int(state["epoch"]) + 1
    run.best_score, run.history = float(state.get("best_score", -math.inf)), list(state.get("history", []))
    ranks = state.get("rng", {}).get("ranks", [])
    if len(ranks) == run.dist.world:
        set_rng_state(ranks[run.dist.rank])
    else:
        seed_everything(run.seed + run.start_epoch, run.dist.rank)
        notes.append(f"resumed on {run.dist.world} process(es) from a checkpoint of {len(ranks)}: random streams "
                     "reseeded (the run is not bit-identical to an uninterrupted one)")
    notes.append(f"resumed {run.out / 'last.pt'} at epoch {run.start_epoch}, step {run.step}")


def fit(run: TrainRun, epoch: int, max_steps: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Stage 2: one epoch of training; returns its log row (loss parts averaged over ranks)."""
    from tqdm import tqdm

    cfg, dist = run.cfg, run.dist
    run.batches.epoch = epoch
    run.net.train()
    sums: dict[str, float] = {}
    count, truncated, dropped, t0 = 0, 0, 0, time.time()
    bar = tqdm(run.loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch",
               disable=not (progress and dist.main), leave=False)
    for i, batch in enumerate(bar):
        batch = to_device(batch, run.dev)
        truncated += int(batch["truncated"].sum()) if "truncated" in batch else 0
        dropped += int(batch["inst_dropped"].sum()) if "inst_dropped" in batch else 0
        last_micro = (i + 1) % cfg.train.grad_accum == 0 or i + 1 == len(run.batches)
        sync = contextlib.nullcontext() if (last_micro or dist.world == 1) else run.net.no_sync()
        with sync:
            with torch.autocast(run.dev.type, dtype=run.amp, enabled=run.amp is not None):
                outputs = run.net(batch)
            parts = run.model.losses(outputs, batch, cfg.loss)
            run.scaler.scale(parts["loss"] / cfg.train.grad_accum).backward()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        count += 1
        if last_micro:
            if cfg.train.grad_clip:
                run.scaler.unscale_(run.opt)
                torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.train.grad_clip)
            run.scaler.step(run.opt)
            run.scaler.update()
            run.opt.zero_grad(set_to_none=True)
            run.sched.step()
            run.step += 1
            bar.set_postfix(loss=f"{parts['loss'].item():.4f}")
            if max_steps is not None and run.step >= max_steps:
                break
    totals = all_sum({**{k: v / max(count, 1) for k, v in sums.items()}, "truncated": float(truncated),
                      "dropped": float(dropped)}, dist, run.dev)
    row: dict[str, Any] = {"epoch": epoch, "step": run.step, "phase": "train",
                           **{k: v / dist.world for k, v in totals.items() if k not in ("truncated", "dropped")},
                           "truncated": int(totals["truncated"]),
                           "lr": run.sched.get_last_lr()[0], "seconds": round(time.time() - t0, 2)}
    if totals["dropped"] and run.log is not None:
        run.log.note(f"epoch {epoch + 1}: {int(totals['dropped'])} frame sources had no query to match "
                     f"(more sources than model.audio_queries = {cfg.model.audio_queries})")
    if row["truncated"] and run.log is not None:
        run.log.note(f"epoch {epoch + 1}: {row['truncated']} caption targets were cut at "
                     f"{cfg.model.max_caption_tokens} tokens (model.max_caption_tokens)")
    return row


def validate(run: TrainRun, epoch: int, progress: bool = True) -> dict[str, Any] | None:
    """Stage 3: the val row when this epoch validates (every rank takes part), else None."""
    cfg = run.cfg
    if run.val_ds is None or not ((epoch + 1) % cfg.train.val_every == 0 or epoch + 1 == cfg.train.epochs):
        return None
    # validation draws no training randomness: the training streams continue as if it had not run
    with torch.random.fork_rng(devices=[run.dev] if run.dev.type == "cuda" else []):
        scores = run_validation(run.model, run.val_ds, cfg, run.dev, run.amp, run.dist, progress=progress)
    return {"epoch": epoch, "step": run.step, "phase": "val", **scores}


def save(run: TrainRun, epoch: int) -> list[Path]:
    """Stage 4: last.pt (and best.pt on a better validation score) with every rank's random state;
    returns the files written (none on ranks other than 0)."""
    ranks = gather_objects(rng_state(), run.dist)
    if not run.dist.main:
        return []
    ckpt = {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(),
            "scaler": run.scaler.state_dict(), "step": run.step, "epoch": epoch,
            "config": run.cfg.model_dump(mode="json"), "tokenizer": run.tok.to_json() if run.tok else None,
            "expert_dim": run.expert_dim, "best_score": run.best_score, "history": run.history, "seed": run.seed,
            "rng": {"world": run.dist.world, "ranks": ranks}}
    written = [run.out / "last.pt"]
    save_checkpoint(written[0], ckpt)
    if run.best_path is not None and run.history[-1].get("score") == run.best_score:
        save_checkpoint(run.best_path, ckpt)
        written.append(run.best_path)
    return written


def train(data: str | Path, cfg: SSUConfig, out: str | Path, resume: str | None = "auto", seed: int = 0,
          device: str | None = None, max_steps: int | None = None, progress: bool = True) -> TrainResult:
    """Train on `data`'s train split, validating on its val split when there is one."""
    run = setup(data, cfg, out, resume, seed, device)
    for epoch in range(run.start_epoch, run.cfg.train.epochs):
        if max_steps is not None and run.step >= max_steps:
            break
        for row in (fit(run, epoch, max_steps, progress), validate(run, epoch, progress)):
            if row is None:
                continue
            run.history.append(row)
            if run.log is not None:
                run.log.add(row)
            if row["phase"] == "val" and row["score"] > run.best_score:
                run.best_score, run.best_path = row["score"], run.out / "best.pt"
        save(run, epoch)
        if run.dist.world > 1:
            torch.distributed.barrier()
    return TrainResult(run=run.out, last=run.out / "last.pt", best=run.best_path, history=run.history)
