import numpy as np
import pytest
from pycocotools import mask as cocomask

from schemas import rle


def _disk(h: int, w: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_encode_decode_round_trip_and_str_counts():
    m = _disk(512, 512, 100, 200, 50)
    r = rle.encode(m)
    assert isinstance(r["counts"], str) and r["size"] == [512, 512]
    assert np.array_equal(rle.decode(r), m)
    # pycocotools itself decodes what we store (bytes counts, as it expects)
    back = cocomask.decode({"size": r["size"], "counts": r["counts"].encode()})
    assert np.array_equal(back.astype(bool), m)


def test_encode_many_c_order_input_and_decode_many():
    ms = np.stack([_disk(64, 48, 10 + i, 20, 5 + i) for i in range(4)])  # C-ordered (N, H, W)
    rs = rle.encode_many(ms)
    assert len(rs) == 4
    assert np.array_equal(rle.decode_many(rs), ms)


def test_area_more_than_255_rles_does_not_overflow():
    ms = np.zeros((300, 32, 32), bool)
    for i in range(300):
        ms[i, : (i % 32) + 1, :] = True
    rs = rle.encode_many(ms)
    a = rle.area(rs)
    assert a.shape == (300,) and np.array_equal(a, ms.sum(axis=(1, 2)))
    assert rle.area(rs[5]) == ms[5].sum()


def test_union_and_iou():
    a, b = _disk(64, 64, 20, 20, 10), _disk(64, 64, 30, 30, 10)
    ra, rb = rle.encode(a), rle.encode(b)
    assert np.array_equal(rle.decode(rle.union([ra, rb])), a | b)
    assert rle.iou(ra, rb) == pytest.approx((a & b).sum() / (a | b).sum())
    assert rle.iou(ra, ra) == 1.0
    empty = rle.union([], size=(64, 64))
    assert rle.area(empty) == 0 and rle.iou(empty, empty) == 1.0
    assert rle.iou(ra, empty) == 0.0


def test_is_valid_reasons():
    good = rle.encode(np.ones((512, 512), bool))
    assert rle.is_valid(good, (512, 512)) is None
    assert "size" in rle.is_valid(rle.encode(np.ones((256, 256), bool)), (512, 512))
    assert rle.is_valid({"size": [512, 512]}, (512, 512)) is not None
    assert rle.is_valid({"size": [512, 512], "counts": "@@@@garbage"}, (512, 512)) is not None
