"""Per-instance metrics of instance predictions (SSUFormer-I): each sounding source as its own mask and caption.

What is compared
    Every frame f of every clip is scored on its own. Its ground-truth instances are the truth annotation's
    sources whose masks[f] is non-null and non-empty; its predicted instances are the predicted annotation's
    sources whose masks[f] is non-null and non-empty, with confidence sources[i].scores[f] (1.0 when the
    prediction has no scores, or none for that frame). Masks are the annotations' COCO RLEs at 512x512;
    IoUs come from pycocotools.mask.iou on the RLEs (nothing is decoded). An empty mask is no instance: it
    could never be matched, and it has no extent to be wrong about.

Matching (instance mIoU, counts, per-source captions)
    Per frame, predictions are assigned to ground-truth instances one to one by the Hungarian algorithm
    (scipy.optimize.linear_sum_assignment) maximizing the summed IoU. A pair is *matched* when its IoU is
    >= 0.5 (IOU_MATCH).
    miou        instance-matched mIoU: the assigned IoUs summed over all frames, divided by the number of
                instances either side would have to account for, sum over frames of max(#truth, #predicted):
                a truth without a prediction counts 0, and so does a prediction without a truth (a silent
                object said to sound). A model that outlines every object whether it sounds or not (what an
                audio-blind model can at best do) is penalized for the silent ones, as it should be: the
                task is to say *which* region sounds.
    miou_truth  the same IoUs over the ground-truth instances only (predictions in excess are free): the
                recall side of miou
    matched     matched pairs; missed = ground-truth instances without a match; unmatched = predictions
                without a match (false positives, including those assigned at IoU < 0.5)
    precision   matched / predicted instances; recall = matched / ground-truth instances (None when the
                denominator is 0)

Mask AP (COCO, pycocotools.cocoeval.COCOeval(iouType="segm"))
    Each (clip, frame) holding a truth or a predicted instance is one COCO image; one category ("sound
    source", class-agnostic); ground truth = the truth instances (iscrowd 0), detections = the predicted
    instances with their scores. ap = AP at IoU 0.50:0.05:0.95, ap50 and ap75 = stats[0], [1], [2] of
    COCOeval.summarize() (area "all", 100 detections per image). COCO matches greedily by score, not by
    the Hungarian assignment above. A frame's predictions are handed to COCO in a fixed order (score, then
    RLE) so that the order of the predicted sources does not change the result even when scores tie.
    None when there is no ground-truth instance at all.

Per-source captions (coco-caption, ssuformer.metrics.captions)
    For every matched pair whose truth source has a caption at frame f: candidate = the predicted source's
    caption at f (its frame_captions()[f], "" when it has none), reference = the truth source's caption at
    f. The (candidate, reference) sequences of each truth source are grouped into coco-caption images like
    the clip captions (CaptionGrouping: one image per frame, or per run of an unchanged pair) under ids
    `<clip>/<truth source id>#<frame>` and scored as one corpus: BLEU-1..4, ROUGE-L, CIDEr-D, METEOR.
    captions.pairs = the scored pairs (frames), captions.empty_candidates = those whose predicted source
    says nothing at that frame. Truth captions of missed instances are not scored here (the recall above
    counts them).

Memory: the meter keeps the RLE strings and scores (a few hundred bytes an instance) and two caption lists
per truth source, never a decoded mask.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools import mask as mask_util  # light (schemas.rle imports it too); COCOeval is imported lazily

from schemas.constants import NUM_FRAMES, SIZE
from schemas.models import Annotation, SoundSource
from ssuformer.metrics.captions import CaptionGrouping, caption_scores, group_frame_captions

INSTANCES_VERSION = "inst-2"  # bump when any number of this module could change for the same input
IOU_MATCH = 0.5
CATEGORY = {"id": 1, "name": "sound source"}


def _coco(rle: Any) -> dict[str, Any]:
    return {"size": list(rle.size), "counts": rle.counts}


def _instances(src: list[SoundSource], f: int) -> list[tuple[SoundSource, dict[str, Any], int]]:
    """(source, RLE, area) of the sources with a non-empty mask in frame f."""
    out = []
    for s in src:
        if (m := s.masks[f]) is not None:
            r = _coco(m)
            if (a := int(mask_util.area(r))) > 0:
                out.append((s, r, a))
    return out


def _score(s: SoundSource, f: int) -> float:
    v = s.scores[f] if s.scores is not None else None
    return 1.0 if v is None else float(v)


class InstanceMeter:
    """Fed one clip at a time with (truth, prediction) annotations; compute() gives the numbers above."""

    def __init__(self, captions: bool = True) -> None:
        self.captions = captions
        self.gt_instances = 0
        self.pred_instances = 0
        self.matched = 0
        self.iou_sum = 0.0  # of the assigned IoUs, over truth instances
        self.slots = 0  # sum over frames of max(#truth, #predicted): miou's denominator
        self._images: list[dict[str, Any]] = []
        self._gt: list[dict[str, Any]] = []
        self._dt: list[dict[str, Any]] = []
        self._keys: set[str] = set()
        # "<clip>/<truth source id>" -> (candidate per frame, reference per frame); None where not scored
        self._cap: dict[str, tuple[list[str | None], list[str | None]]] = {}

    def update(self, truth: Annotation, pred: Annotation, key: str | None = None) -> None:
        """Score one clip. `key` names it in caption ids (default: the truth's clip id)."""
        from scipy.optimize import linear_sum_assignment

        key = key or truth.clip_id
        if pred.clip_id != truth.clip_id:
            raise ValueError(f"prediction of clip {pred.clip_id!r} given for clip {truth.clip_id!r}")
        if key in self._keys:
            raise ValueError(f"clip {key!r} was already scored")
        self._keys.add(key)
        truth_caps = {s.id: s.frame_captions() for s in truth.sources} if self.captions else {}
        pred_caps = {id(s): s.frame_captions() for s in pred.sources} if self.captions else {}
        for f in range(NUM_FRAMES):
            gts = _instances(truth.sources, f)
            dts = _instances(pred.sources, f)
            if not gts and not dts:
                continue
            dts.sort(key=lambda x: (-_score(x[0], f), x[1]["counts"]))
            self.gt_instances += len(gts)
            self.pred_instances += len(dts)
            self.slots += max(len(gts), len(dts))
            image_id = len(self._images) + 1
            self._images.append({"id": image_id, "height": SIZE, "width": SIZE})
            for _, r, a in gts:
                self._gt.append({"id": len(self._gt) + 1, "image_id": image_id, "category_id": 1,
                                 "segmentation": r, "area": a, "iscrowd": 0})
            for s, r, a in dts:
                self._dt.append({"id": len(self._dt) + 1, "image_id": image_id, "category_id": 1,
                                 "segmentation": r, "area": a, "score": _score(s, f)})
            if not gts or not dts:
                continue
            iou = np.asarray(mask_util.iou([x[1] for x in dts], [x[1] for x in gts], [0] * len(gts)),
                             dtype=np.float64).reshape(len(dts), len(gts))
            rows, cols = linear_sum_assignment(iou, maximize=True)
            for d, g in zip(rows, cols, strict=True):
                v = float(iou[d, g])
                self.iou_sum += v
                if v < IOU_MATCH:
                    continue
                self.matched += 1
                if self.captions:
                    t_src, p_src = gts[g][0], dts[d][0]
                    ref = truth_caps[t_src.id][f]
                    if ref and ref.strip():
                        cands, refs = self._cap.setdefault(f"{key}/{t_src.id}",
                                                           ([None] * NUM_FRAMES, [None] * NUM_FRAMES))
                        cands[f], refs[f] = pred_caps[id(p_src)][f] or "", ref

    def caption_pairs(self, grouping: CaptionGrouping | str = CaptionGrouping.frame,
                      ) -> tuple[dict[str, str], dict[str, list[str]]]:
        """coco-caption (candidates, references) of the matched pairs, ids `<clip>/<source>#<frame>`."""
        return group_frame_captions(self._cap, grouping)

    def empty_candidates(self) -> int:
        return sum(1 for c, r in self._cap.values() for x, y in zip(c, r, strict=True) if y and not (x or "").strip())

    def caption_frames(self) -> int:
        return sum(1 for _, r in self._cap.values() for y in r if y)

    def coco_ap(self) -> dict[str, float | None]:
        """COCO mask AP (stats[0:3]) of everything fed so far; None without ground truth."""
        if not self._gt:
            return {"ap": None, "ap50": None, "ap75": None}
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        quiet = io.StringIO()  # pycocotools prints its progress; ssu-eval's stdout is the table
        with contextlib.redirect_stdout(quiet):
            gt, dt = COCO(), COCO()
            # copies: COCOeval writes into the annotation dicts (ignore flags), the meter keeps its own
            gt.dataset = {"images": self._images, "categories": [CATEGORY], "annotations": [dict(a) for a in self._gt]}
            dt.dataset = {"images": self._images, "categories": [CATEGORY], "annotations": [dict(a) for a in self._dt]}
            gt.createIndex()
            dt.createIndex()
            ev = COCOeval(gt, dt, iouType="segm")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        stats = [None if s < 0 else float(s) for s in ev.stats[:3]]
        return dict(zip(("ap", "ap50", "ap75"), stats, strict=True))

    def compute(self, caption_result: Mapping[str, object] | None = None) -> dict[str, Any]:
        """Matching counts, instance mIoU, mask AP; `caption_result` (scores of caption_pairs()) goes under
        "captions"."""
        n_gt, n_dt, m = self.gt_instances, self.pred_instances, self.matched
        out: dict[str, Any] = {
            "miou": self.iou_sum / self.slots if self.slots else None,
            "miou_truth": self.iou_sum / n_gt if n_gt else None,
            "gt_instances": n_gt, "pred_instances": n_dt,
            "matched": m, "missed": n_gt - m, "unmatched": n_dt - m,
            "precision": m / n_dt if n_dt else None, "recall": m / n_gt if n_gt else None,
            "iou_match": IOU_MATCH, "images": len(self._images), "clips": len(self._keys),
            **self.coco_ap(), "version": INSTANCES_VERSION,
        }
        if self.captions:
            cap: dict[str, object] = dict(caption_result) if caption_result else {}
            cap.update(pairs=self.caption_frames(), empty_candidates=self.empty_candidates())
            out["captions"] = cap
        return out

    def scores(self, meteor: bool = True, grouping: CaptionGrouping | str = CaptionGrouping.frame) -> dict[str, Any]:
        """compute() with the per-source captions scored here (one METEOR JVM unless meteor=False)."""
        sc: dict[str, object] | None = None
        if self.captions:
            cands, refs = self.caption_pairs(grouping)
            if cands:
                sc = caption_scores(cands, refs, meteor=meteor)
                sc["grouping"] = CaptionGrouping(grouping).value
        return self.compute(sc)
