"""Per-instance metrics (InstanceMeter): matching counts, instance mIoU, COCO mask AP, per-source captions,
on hand-made annotations whose IoUs are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from schemas import rle
from schemas.models import RLE, Annotation, SoundSource
from ssuformer.metrics.instances import InstanceMeter

FRAMES = (0, 1, 2)  # frames that hold masks; the other 297 are empty
CAP_A, CAP_B = "a red circle is beeping loudly", "a blue square is humming softly"


def box(x0: int, y0: int = 50, side: int = 100) -> RLE:
    m = np.zeros((512, 512), bool)
    m[y0:y0 + side, x0:x0 + side] = True
    return RLE(**rle.encode(m))


A, B = box(50), box(300, 300)


def source(i: int, mask: RLE, caption: str | None = None, score: float | None = None,
           frames: tuple[int, ...] = FRAMES) -> SoundSource:
    s = SoundSource(id=i, category="thing", masks=[mask if f in frames else None for f in range(300)],
                    scores=None if score is None else [score if f in frames else None for f in range(300)])
    if caption:
        s.set_frame_captions([caption if f in frames else None for f in range(300)])
    return s


def truth() -> Annotation:
    return Annotation(clip_id="c", sources=[source(0, A, CAP_A), source(1, B, CAP_B)])


def score(*preds: SoundSource, captions: bool = False, gt: Annotation | None = None) -> dict:
    m = InstanceMeter(captions=captions)
    m.update(gt or truth(), Annotation(clip_id="c", sources=list(preds)))
    return m.scores(meteor=False)


def test_exact_prediction_is_perfect():
    got = score(source(5, B), source(7, A))  # other ids and order than the truth
    assert got["miou"] == pytest.approx(1.0)
    assert (got["gt_instances"], got["pred_instances"], got["matched"], got["missed"], got["unmatched"]) == (
        6, 6, 6, 0, 0)
    assert got["precision"] == got["recall"] == 1.0
    assert got["ap"] == pytest.approx(1.0) and got["ap50"] == pytest.approx(1.0) and got["ap75"] == pytest.approx(1.0)
    assert got["images"] == 3 and got["clips"] == 1


def test_shifted_and_far_predictions():
    # shifted 20 px: IoU 80/120; B exact
    got = score(source(0, box(70)), source(1, B))
    assert got["miou"] == pytest.approx((80 / 120 + 1) / 2)
    assert got["matched"] == 6 and got["missed"] == 0
    assert got["ap50"] == pytest.approx(1.0)
    assert got["ap75"] < 0.75 and got["ap"] < got["ap50"]  # the shifted one fails at IoU >= 0.75
    # shifted 60 px: IoU 40/160 < 0.5: assigned (counts in mIoU) but not matched
    got = score(source(0, box(110)), source(1, B))
    assert got["miou"] == pytest.approx((40 / 160 + 1) / 2)
    assert (got["matched"], got["missed"], got["unmatched"]) == (3, 3, 3)
    assert got["precision"] == pytest.approx(0.5) and got["recall"] == pytest.approx(0.5)


def test_missing_source_and_false_positive():
    got = score(source(0, A))
    assert got["miou"] == pytest.approx(0.5)  # B's instances get IoU 0
    assert (got["matched"], got["missed"], got["unmatched"]) == (3, 3, 0)
    assert got["precision"] == 1.0 and got["recall"] == pytest.approx(0.5)
    # a false positive ranked below every true detection costs nothing in COCO AP ...
    low = score(source(0, A, score=0.8), source(1, B, score=0.7), source(2, box(300, 50), score=0.1))
    assert (low["matched"], low["unmatched"]) == (6, 3) and low["precision"] == pytest.approx(6 / 9)
    assert low["ap"] == pytest.approx(1.0) and low["miou_truth"] == pytest.approx(1.0)
    assert low["miou"] == pytest.approx(2 / 3)  # each frame: 2 exact + 1 silent region said to sound
    # ... ranked above them it costs precision at every recall
    high = score(source(0, A, score=0.8), source(1, B, score=0.7), source(2, box(300, 50), score=0.9))
    assert high["ap"] < 0.9 and high["ap50"] < 0.9
    assert {k: high[k] for k in ("matched", "missed", "unmatched", "miou")} == {
        k: low[k] for k in ("matched", "missed", "unmatched", "miou")}
    # a frame without truth is a COCO image too: its confident prediction is a false positive
    alone = score(source(0, A, score=0.5), source(1, B, score=0.5), source(2, A, score=0.9, frames=(7,)))
    assert alone["images"] == 4 and alone["unmatched"] == 1 and alone["miou_truth"] == pytest.approx(1.0)
    assert alone["miou"] == pytest.approx(6 / 7)
    assert alone["ap"] < 1.0


def test_prediction_order_does_not_matter():
    # two detections on A tie at score 1.0 (no scores): COCO's greedy matching would follow their order
    near, far = source(0, A), source(1, box(70))
    one = score(near, far, source(2, B), source(3, box(300, 50), score=0.9))
    two = score(source(3, box(300, 50), score=0.9), source(2, B), far, near)
    assert one == two
    assert one["unmatched"] == 6


def test_empty_masks_and_missing_scores():
    empty = RLE(**rle.encode(np.zeros((512, 512), bool)))
    got = score(source(0, A), source(1, B), source(2, empty))  # an empty mask is no instance
    assert got["pred_instances"] == 6 and got["ap"] == pytest.approx(1.0)
    gt = truth()
    gt.sources.append(source(2, empty))
    assert score(source(0, A), source(1, B), gt=gt)["gt_instances"] == 6
    m = InstanceMeter()
    m.update(truth(), Annotation(clip_id="c", sources=[]))
    with pytest.raises(ValueError, match="already scored"):
        m.update(truth(), Annotation(clip_id="c", sources=[]))
    with pytest.raises(ValueError, match="given for clip"):
        m.update(Annotation(clip_id="d"), Annotation(clip_id="c"))
    got = m.compute()
    assert got["miou"] == 0.0 and got["ap"] == 0.0 and got["precision"] is None and got["recall"] == 0.0
    nothing = InstanceMeter(captions=False)
    nothing.update(Annotation(clip_id="c"), Annotation(clip_id="c"))
    assert nothing.compute()["miou"] is None and nothing.compute()["ap"] is None


def test_per_source_captions():
    same = score(source(0, A, CAP_A), source(1, B, CAP_B), captions=True)["captions"]
    assert same["bleu4"] == pytest.approx(1.0, abs=1e-6) and same["rouge_l"] == pytest.approx(1.0)
    assert same["pairs"] == 6 and same["empty_candidates"] == 0 and same["images"] == 6
    assert same["meteor"] is None and same["grouping"] == "frame"
    swapped = score(source(0, A, CAP_B), source(1, B, CAP_A), captions=True)["captions"]
    assert swapped["bleu4"] < 0.5 and swapped["rouge_l"] < same["rouge_l"]
    # only matched pairs are scored: the far prediction's caption does not count, its miss is in the recall
    part = score(source(0, A, CAP_A), source(1, box(400, 400, 100), CAP_B), captions=True)["captions"]
    assert part["pairs"] == 3 and part["bleu4"] == pytest.approx(1.0, abs=1e-6)
    silent = score(source(0, A), source(1, B, CAP_B), captions=True)["captions"]
    assert silent["empty_candidates"] == 3 and silent["bleu4"] < 0.5
    m = InstanceMeter()
    m.update(truth(), Annotation(clip_id="c", sources=[source(0, A, CAP_A)]))
    cands, refs = m.caption_pairs("span")
    assert cands == {"c/0#0-3": CAP_A.strip()} and refs == {"c/0#0-3": [CAP_A]}


def test_ap_equals_pycocotools_used_the_documented_way():
    """The meter builds COCO's indexes by hand; loadRes (COCO's own path for results) must give the same stats."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    preds = [source(0, box(70), score=0.6), source(1, B, score=0.7), source(2, box(300, 50), score=0.9),
             source(3, box(60), score=0.3, frames=(1, 5))]
    got = score(*preds)
    images = [{"id": f + 1, "height": 512, "width": 512} for f in range(300)]
    gt_anns = [{"id": i + 1, "image_id": f + 1, "category_id": 1, "iscrowd": 0, "area": 10000,
                "segmentation": {"size": m.size, "counts": m.counts}}
               for i, (f, m) in enumerate((f, s.masks[f]) for s in truth().sources for f in FRAMES)]
    dets = [{"image_id": f + 1, "category_id": 1, "score": s.scores[f],
             "segmentation": {"size": s.masks[f].size, "counts": s.masks[f].counts}}
            for s in preds for f in range(300) if s.masks[f] is not None]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "categories": [{"id": 1, "name": "x"}], "annotations": gt_anns}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert [got["ap"], got["ap50"], got["ap75"]] == pytest.approx(list(ev.stats[:3]), abs=1e-12)
    assert 0 < got["ap"] < got["ap50"] < 1
