"""Evaluation metrics: segmentation (mIoU, F-score; AVSBench/AVSegFormer protocols) and captions (coco-caption).

Public API (stable):
    segmentation_scores(probs, gts, protocol="per-frame") -> {"miou", "fscore", ...}
    SegmentationMeter(protocol).update(probs, gts) ... .compute()   streaming version
    caption_scores(candidates, references) -> {"bleu1".."bleu4", "meteor", "rouge_l", "cider"}
    Protocol, CaptionGrouping

Importing this package is cheap (numpy only); pycocoevalcap and Java start only when captions are scored.
"""

from ssuformer.metrics.captions import (
    CaptionGrouping,
    caption_scores,
    caption_scores_groups,
    group_frame_captions,
)
from ssuformer.metrics.protocols import CAPTION_VERSION, SEGMENTATION_VERSION, Protocol
from ssuformer.metrics.segmentation import SegmentationMeter, frame_stats, segmentation_scores

__all__ = [
    "CAPTION_VERSION",
    "SEGMENTATION_VERSION",
    "CaptionGrouping",
    "Protocol",
    "SegmentationMeter",
    "caption_scores",
    "caption_scores_groups",
    "frame_stats",
    "group_frame_captions",
    "segmentation_scores",
]
