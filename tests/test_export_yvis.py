"""YouTube-VIS export read back through the YouTube-VIS API's access pattern, decoded by pycocotools."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

from annotator.export.cli import app
from schemas import rle as rle_mod
from schemas.models import Split


class MiniYTVOS:
    """The public surface of ytvos.py (youtubevos/cocoapi) that training code uses: createIndex,
    getVidIds/getAnnIds/getCatIds, loadVids/loadAnns/loadCats, annToRLE/annToMask. No pip package ships it."""

    def __init__(self, annotation_file: Path) -> None:
        self.dataset = json.loads(Path(annotation_file).read_text())
        assert isinstance(self.dataset, dict)
        self.anns = {a["id"]: a for a in self.dataset["annotations"]}
        self.vids = {v["id"]: v for v in self.dataset["videos"]}
        self.cats = {c["id"]: c for c in self.dataset["categories"]}
        self.vidToAnns: dict[int, list[dict]] = defaultdict(list)
        self.catToVids: dict[int, list[int]] = defaultdict(list)
        for a in self.dataset["annotations"]:
            self.vidToAnns[a["video_id"]].append(a)
            self.catToVids[a["category_id"]].append(a["video_id"])

    def getVidIds(self) -> list[int]:
        return list(self.vids)

    def getCatIds(self, catNms: list[str] = ()) -> list[int]:  # type: ignore[assignment]
        return [c["id"] for c in self.dataset["categories"] if not catNms or c["name"] in catNms]

    def getAnnIds(self, vidIds: list[int] = (), areaRng: list[float] = ()) -> list[int]:  # type: ignore[assignment]
        anns = list(itertools.chain.from_iterable(self.vidToAnns[v] for v in vidIds)) if vidIds \
            else self.dataset["annotations"]
        if areaRng:
            anns = [a for a in anns if areaRng[0] < a["avg_area"] < areaRng[1]]
        return [a["id"] for a in anns]

    def loadVids(self, ids: list[int]) -> list[dict]:
        return [self.vids[i] for i in ids]

    def loadAnns(self, ids: list[int]) -> list[dict]:
        return [self.anns[i] for i in ids]

    def loadCats(self, ids: list[int]) -> list[dict]:
        return [self.cats[i] for i in ids]

    def annToRLE(self, ann: dict, frameId: int) -> dict:
        t = self.vids[ann["video_id"]]
        segm = ann["segmentations"][frameId]
        if isinstance(segm, list):
            return mask_utils.merge(mask_utils.frPyObjects(segm, t["height"], t["width"]))
        if isinstance(segm["counts"], list):
            return mask_utils.frPyObjects(segm, t["height"], t["width"])
        return segm

    def annToMask(self, ann: dict, frameId: int) -> np.ndarray:
        return mask_utils.decode(self.annToRLE(ann, frameId))


def test_yvis_round_trip(synth_root, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["yvis", str(synth_root.path), "--out", str(tmp_path), "--status", "auto",
                                   "--no-frames"])  # frames: tests/test_export_release.py
    assert res.exit_code == 0, res.output
    splits = synth_root.splits()
    tmp_path = tmp_path / "yvis"
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{s.value}.json" for s in splits)
    checked_frames = 0
    for split, ids in splits.items():
        api = MiniYTVOS(tmp_path / f"{Split(split).value}.json")
        vids = api.loadVids(api.getVidIds())
        assert sorted(v["clip_id"] for v in vids) == sorted(ids)
        for v in vids:
            ann = synth_root.read_annotation(v["clip_id"])
            assert v["captions"] == ann.frame_captions()
            assert len(v["file_names"]) == v["length"] == 300
            tracks = api.loadAnns(api.getAnnIds(vidIds=[v["id"]]))
            assert len(tracks) == len(ann.sources)
            for t in tracks:
                src = ann.source(t["source_id"])
                assert api.loadCats([t["category_id"]])[0]["name"] == src.category
                assert t["captions"] == src.frame_captions()
                for f in (0, 37, 150, 299):
                    want = src.masks[f]
                    if want is None:
                        assert t["segmentations"][f] is None and t["areas"][f] is None
                        continue
                    got = api.annToMask(t, f).astype(bool)
                    assert np.array_equal(got, rle_mod.decode(want.model_dump()))
                    assert t["areas"][f] == int(got.sum())
                    x, y, w, h = t["bboxes"][f]
                    ys, xs = np.nonzero(got)
                    assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
                    checked_frames += 1
    assert checked_frames > 10
    assert api.getAnnIds(areaRng=[0, 1e9])  # avg_area present and usable by the API's filter


def test_yvis_default_status_is_accepted(synth_root, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["yvis", str(synth_root.path), "--out", str(tmp_path)])
    assert res.exit_code != 0
    assert "--status" in str(res.exception) or "--status" in res.output
