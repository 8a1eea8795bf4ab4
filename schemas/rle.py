"""COCO run-length encoding helpers over pycocotools, with its traps wrapped.

The stored form of a mask is COCO's compressed RLE, as JSON: {"size": [height, width], "counts": "<str>"}.
Arrays in and out are boolean (H, W) or (N, H, W). Traps handled here:
- pycocotools.encode wants a Fortran-ordered uint8 (H, W, N) array and returns `counts` as bytes.
- pycocotools 2.0.11 + numpy 2: mask.area over more than 255 RLEs at once overflows: we chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import numpy as np
from pycocotools import mask as _mask

_AREA_CHUNK = 200


class RLEDict(TypedDict):
    size: list[int]
    counts: str


def _to_coco(rle: RLEDict) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def encode_many(masks: np.ndarray) -> list[RLEDict]:
    """(N, H, W) bool/0-1 array -> N RLE dicts with str counts."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"encode_many wants (N, H, W), got shape {masks.shape}")
    arr = np.asfortranarray(np.moveaxis(masks.astype(bool).astype(np.uint8), 0, -1))
    out = _mask.encode(arr)
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in out]


def encode(mask: np.ndarray) -> RLEDict:
    """(H, W) bool/0-1 array -> one RLE dict with str counts."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"encode wants (H, W), got shape {mask.shape}")
    return encode_many(mask[None])[0]


def bbox_centre(rle: RLEDict) -> tuple[float, float]:
    """(x, y) of the mask's bounding-box centre, read from the RLE without decoding it."""
    x, y, w, h = _mask.toBbox(_to_coco(rle))
    return float(x + w / 2), float(y + h / 2)


def decode(rle: RLEDict) -> np.ndarray:
    """One RLE dict -> (H, W) bool array."""
    return _mask.decode(_to_coco(rle)).astype(bool)


def decode_many(rles: Sequence[RLEDict]) -> np.ndarray:
    """N RLE dicts of one size -> (N, H, W) bool array."""
    if not rles:
        raise ValueError("decode_many needs at least one RLE")
    arr = _mask.decode([_to_coco(r) for r in rles])  # (H, W, N)
    return np.moveaxis(arr, -1, 0).astype(bool)


def area(rles: Sequence[RLEDict] | RLEDict) -> np.ndarray | int:
    """Pixel count of one RLE (int) or of many (int64 array), chunked around the overflow trap."""
    if isinstance(rles, dict):
        return int(_mask.area(_to_coco(rles)))
    parts = [np.asarray(_mask.area([_to_coco(r) for r in rles[i:i + _AREA_CHUNK]]), dtype=np.int64)
             for i in range(0, len(rles), _AREA_CHUNK)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def union(rles: Sequence[RLEDict], size: tuple[int, int] | None = None) -> RLEDict:
    """Union of RLEs of one size; an empty list needs `size` and gives an empty mask."""
    if not rles:
        if size is None:
            raise ValueError("union of no RLEs needs size=(H, W)")
        return encode(np.zeros(size, dtype=bool))
    merged = _mask.merge([_to_coco(r) for r in rles], intersect=False)
    return {"size": [int(s) for s in merged["size"]], "counts": merged["counts"].decode("ascii")}


def iou(a: RLEDict, b: RLEDict) -> float:
    """IoU of two masks; two empty masks have IoU 1 (they agree)."""
    if list(a["size"]) != list(b["size"]):
        raise ValueError(f"iou of masks of different sizes {a['size']} and {b['size']}")
    inter = _mask.merge([_to_coco(a), _to_coco(b)], intersect=True)
    i = int(_mask.area(inter))
    u = area(a) + area(b) - i
    return 1.0 if u == 0 else i / u


def is_valid(rle: object, size: tuple[int, int]) -> str | None:
    """None when `rle` is a decodable RLE of `size`, else a short reason."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        return "not an RLE object with size and counts"
    if list(rle["size"]) != list(size):
        return f"RLE size {list(rle['size'])} is not {list(size)}"
    if not isinstance(rle["counts"], str):
        return "RLE counts must be a compressed COCO string"
    try:
        total = int(_mask.area(_to_coco(rle)))  # decodes the counts
        m = _mask.decode(_to_coco(rle))
    except Exception as e:  # pycocotools raises various types on garbage
        return f"RLE counts do not decode ({e})"
    if m.shape[:2] != tuple(size) or total > size[0] * size[1]:
        return "RLE counts do not match its size"
    return None
