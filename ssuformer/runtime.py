"""Where a training process runs: its rank in the process group, its device, precision and random state.

Seeds: every rank draws from its own stream (seed, rank), so dropout masks differ across ranks as they would
in one big batch; model init uses the shared seed (and DDP broadcasts rank 0's weights anyway). Checkpoints
carry the CPU and CUDA random states of every rank, gathered on rank 0, so a resumed run continues each
rank's stream.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch

from schemas.errors import UserError
from ssuformer.config import Precision

# compute capability from which bf16 runs in hardware (Ampere); below it torch emulates bf16 slowly
NATIVE_BF16 = (8, 0)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_dist(device: str | None, timeout_s: int = 1800) -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes (WORLD_SIZE > 1): nccl on GPUs, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
        d = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    else:
        d = Dist()
    if cuda:
        torch.cuda.set_device(d.local_rank)
        return d, torch.device("cuda", d.local_rank)
    return d, torch.device(device or "cpu")


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU) with the stream of (seed, rank)."""
    s = seed if rank == 0 else int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)  # also seeds every CUDA device
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also NaN-fills every new tensor (a debugging aid against reads of uninitialised
    # memory); no op of ours reads one, and the fills were ~20 % of a CPU training step (issue 29).
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["cpu"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def gather_objects(obj: Any, dist: Dist) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank (CPU tensors inside are fine for gloo and nccl)."""
    if dist.world == 1:
        return [obj]
    out: list[Any] = [None] * dist.world
    torch.distributed.all_gather_object(out, obj)
    return out


def all_sum(values: dict[str, float], dist: Dist, dev: torch.device) -> dict[str, float]:
    """Sum each value over ranks (every rank must pass the same keys)."""
    if dist.world == 1:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=dev)
    torch.distributed.all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))


def autocast_dtype(precision: Precision, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: None on a CPU or for fp32; bf16 only where the GPU computes it natively
    (compute capability >= 8.0); `auto` falls back to fp16 (with a GradScaler) on older GPUs such as V100."""
    if device.type != "cuda" or precision == Precision.fp32:
        return None
    native = tuple(torch.cuda.get_device_capability(device)) >= NATIVE_BF16
    if precision == Precision.auto:
        return torch.bfloat16 if native else torch.float16
    if precision == Precision.bf16 and not native:
        major, minor = torch.cuda.get_device_capability(device)
        raise UserError(f"train.precision bf16: {torch.cuda.get_device_name(device)} (sm_{major}{minor}) has no "
                        "native bf16 (needs compute capability 8.0+); use fp16 or auto")
    return torch.bfloat16 if precision == Precision.bf16 else torch.float16
