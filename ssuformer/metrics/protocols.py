"""Evaluation protocols: how frames are grouped before averaging, and the constants of the AVS literature.

The AVSBench / AVSegFormer test scripts average a metric over each evaluation *batch* of frames, then
average the batch values unweighted. The result therefore depends on batch size and order; we reproduce
it in the compatibility protocols and offer a batch-independent default (see docs/metrics.md).
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache

import numpy as np

# Bump when any number produced by this package could change for the same input.
SEGMENTATION_VERSION = "seg-1"
CAPTION_VERSION = "cap-1"

NUM_THRESHOLDS = 255  # Eval_Fmeasure's pr_num
BETA2 = 0.3  # Eval_Fmeasure's beta^2
IOU_THRESHOLD = 0.5  # mask_iou binarizes sigmoid(logit) > 0.5 (strict)
IOU_EPS = 1e-7  # mask_iou: inter / (union + eps), in float32
F_EPS = 1e-20  # _eval_pr: tp / (count + eps), in float32


class Protocol(StrEnum):
    per_frame = "per-frame"  # batch-independent: every frame weighs the same (default)
    avsegformer = "avsegformer"  # AVSegFormer test.py: 2 videos x 5 frames = 10 frames per batch
    avsbench = "avsbench"  # AVSBench test.sh: --test_batch_size 4 x 5 frames = 20 frames per batch

    @property
    def batch_frames(self) -> int | None:
        """Frames per evaluation batch, or None when the protocol does not batch."""
        return {Protocol.avsegformer: 10, Protocol.avsbench: 20}.get(self)

    def describe(self) -> str:
        if self.batch_frames is None:
            return ("per-frame: mIoU = mean IoU over all frames; F-score = max over 255 thresholds of the "
                    "mean F curve over all frames with a non-empty ground truth")
        return (f"{self.value}: metrics averaged within consecutive batches of {self.batch_frames} frames in "
                "dataset order, then unweighted mean of batch values (float32, as the reference code)")


@cache
def fscore_thresholds() -> np.ndarray:
    """The 255 float32 thresholds of `torch.linspace(0, 1 - 1e-10, 255)` (float32), bit for bit.

    1 - 1e-10 rounds to 1.0 in float32. torch 2.x computes the step in float32 and the values in double
    from both ends (start + step*i below the halfway index, end - step*(n-1-i) above) before rounding;
    numpy's linspace differs from that in 10 of the 255 values by one ulp. tests/test_metrics_segmentation.py
    checks this table against torch when torch is importable.
    """
    n = NUM_THRESHOLDS
    end = float(np.float32(1 - 1e-10))
    step = float(np.float32(end) / np.float32(n - 1))
    i = np.arange(n, dtype=np.float64)
    vals = np.where(i < n // 2, step * i, end - step * (n - 1 - i))
    out = vals.astype(np.float32)
    out.setflags(write=False)
    return out
