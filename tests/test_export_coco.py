"""COCO export: pycocotools.coco.COCO loads it; masks, captions and frame images match the root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from typer.testing import CliRunner

from annotator.export.cli import app
from annotator.export.coco import sample_frames
from schemas import rle as rle_mod
from schemas.errors import UserError
from schemas.media import read_frames


def test_sample_frames() -> None:
    assert sample_frames(1) == list(range(0, 300, 30))
    assert sample_frames(2)[:3] == [0, 15, 30] and len(sample_frames(2)) == 20
    assert len(sample_frames(30)) == 300
    with pytest.raises(UserError, match="--fps"):
        sample_frames(0)


def test_coco_round_trip(synth_root, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["coco", str(synth_root.path), "--out", str(tmp_path), "--status", "auto",
                                   "--fps", "1"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "coco"
    n_anns = 0
    for split, ids in synth_root.splits().items():
        coco = COCO(str(out / f"{split.value}.json"))
        imgs = coco.loadImgs(coco.getImgIds())
        assert len(imgs) == 10 * len(ids)
        assert {i["clip_id"] for i in imgs} == set(ids)
        for img in imgs:
            ann = synth_root.read_annotation(img["clip_id"])
            f = img["frame_index"]
            assert img["caption"] == ann.frame_captions()[f]
            got = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
            sounding = [s for s in ann.sources if s.masks[f] is not None]
            assert sorted(a["source_id"] for a in got) == sorted(s.id for s in sounding)
            for a in got:
                src = ann.source(a["source_id"])
                assert coco.loadCats([a["category_id"]])[0]["name"] == src.category
                assert a["caption"] == src.frame_captions()[f]
                assert np.array_equal(coco.annToMask(a).astype(bool), rle_mod.decode(src.masks[f].model_dump()))
                n_anns += 1
    assert n_anns > 0
    # the written frame is the clip's frame (JPEG: close, not equal)
    img = coco.loadImgs(coco.getImgIds())[-1]
    jpeg = np.asarray(Image.open(out / img["file_name"])).astype(float)
    ref = read_frames(synth_root.clip_path(img["clip_id"]), [img["frame_index"]])[0].astype(float)
    assert jpeg.shape == (512, 512, 3) and np.abs(jpeg - ref).mean() < 4
    # resumable: a second run keeps the frame folders and rewrites the JSON
    before = (out / img["file_name"]).stat().st_mtime_ns
    assert CliRunner().invoke(app, ["coco", str(synth_root.path), "--out", str(tmp_path), "--status",
                                    "auto"]).exit_code == 0
    assert (out / img["file_name"]).stat().st_mtime_ns == before
