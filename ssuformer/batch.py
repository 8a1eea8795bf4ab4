"""Batches of samples: stacking (DataLoader collate) and moving to a device; shared by training,
validation and prediction."""

from __future__ import annotations

from typing import Any

import torch


def collate(items: list[dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals  # type: ignore[arg-type]
    return out


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
