"""`ssu-export all`: a release that stands alone. Moved elsewhere with the root deleted, every format loads in
its own consumer, and no path of the machine that made it is left inside."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_export_yvis import MiniYTVOS
from typer.testing import CliRunner

from annotator.export.cli import app
from schemas import rle as rle_mod
from schemas.models import ClipStatus


def _three_clips(root) -> dict[str, list[str]]:
    """Keep one clip per split (the others rejected): every format on every split, cheaply."""
    splits = {s.value: ids for s, ids in root.splits().items()}
    for ids in splits.values():
        for c in ids[1:]:
            root.catalog.set_status(c, ClipStatus.rejected, "test")
    return {s: ids[:1] for s, ids in splits.items()}


def _no_machine_paths(release: Path, needles: list[str]) -> None:
    """The `grep -r` of the acceptance: no file (binary ones included) holds a path of the exporting machine."""
    files = [p for p in release.rglob("*") if p.is_file() or p.is_symlink()]
    assert files and not any(p.is_symlink() for p in files)
    for p in files:
        data = p.read_bytes()
        for n in needles:
            assert n.encode() not in data, (p, n)


@pytest.mark.parametrize("media", ["hardlink"])
def test_moved_release_loads_everywhere_without_the_root(synth_root_copy, tmp_path: Path, monkeypatch,
                                                         media: str) -> None:
    import av
    import datasets
    import mlcroissant as mlc
    import soundfile as sf
    import webdataset as wds
    from pycocotools.coco import COCO

    import annotator.export.hf as hf_mod

    monkeypatch.setattr(hf_mod, "media_decoder", lambda: None)  # bytes columns, whatever is installed here
    root = synth_root_copy
    kept = _three_clips(root)
    anns = {c: root.read_annotation(c) for ids in kept.values() for c in ids}
    media_bytes = {c: (root.clip_path(c).read_bytes(), root.audio_path(c).read_bytes()) for c in anns}
    out = tmp_path / "release"
    res = CliRunner().invoke(app, ["all", str(root.path), "--out", str(out), "--status", "auto", "--media", media])
    assert res.exit_code == 0, res.output
    assert "exported 3 clip(s) (train 1, val 1, test 1); skipped 0" in res.output

    moved = tmp_path / "elsewhere" / "published"
    moved.parent.mkdir()
    shutil.move(out, moved)
    root_path = str(root.path.resolve())
    root.close()
    shutil.rmtree(root_path)
    _no_machine_paths(moved, [root_path, str(out), str(tmp_path)])

    # YouTube-VIS: the API's access pattern; every file name relative to the json is a frame on disk
    for split, ids in kept.items():
        path = moved / "yvis" / f"{split}.json"
        api = MiniYTVOS(path)
        (v,) = api.loadVids(api.getVidIds())
        assert v["clip_id"] == ids[0] and "root" not in api.dataset["info"]
        ann = anns[v["clip_id"]]
        files = [path.parent / f for f in v["file_names"]]
        assert len(files) == 300 and all(f.is_file() for f in files)
        assert np.asarray(Image.open(files[150])).shape == (512, 512, 3)
        assert (path.parent / v["video_file"]).read_bytes() == media_bytes[v["clip_id"]][0]
        assert (path.parent / v["audio_file"]).read_bytes() == media_bytes[v["clip_id"]][1]
        for t in api.loadAnns(api.getAnnIds(vidIds=[v["id"]])):
            src = ann.source(t["source_id"])
            f = next(i for i, m in enumerate(src.masks) if m is not None)
            assert np.array_equal(api.annToMask(t, f).astype(bool), rle_mod.decode(src.masks[f].model_dump()))

    # COCO: pycocotools, images relative to the json
    for split in kept:
        coco = COCO(str(moved / "coco" / f"{split}.json"))
        for img in coco.loadImgs(coco.getImgIds()):
            assert (moved / "coco" / img["file_name"]).is_file()
        for a in coco.loadAnns(coco.getAnnIds()):
            assert a["area"] > 0 and a["bbox"][2] > 0  # no empty masks in a release

    # Hugging Face: load_dataset offline from the moved folder, into a fresh cache
    ds = datasets.load_dataset(str(moved), cache_dir=str(tmp_path / "hf-cache"))
    assert list(ds) == ["train", "validation", "test"]
    row = ds["validation"][0]
    assert row["clip_id"] == kept["val"][0]
    with av.open(io.BytesIO(row["video"]["bytes"])) as c:
        assert sum(1 for _ in c.decode(video=0)) == 300
    wav, sr = sf.read(io.BytesIO(row["audio"]["bytes"]))
    assert sr == 16000 and len(wav) == 160_000
    assert row["captions"] == anns[row["clip_id"]].frame_captions()

    # WebDataset: every clip once, its media inside the sample
    samples = list(wds.WebDataset(sorted(str(p) for p in (moved / "wds").glob("*.tar")), shardshuffle=False))
    assert sorted(json.loads(s["json"])["clip_id"] for s in samples) == sorted(anns)
    assert all(s["mp4"] == media_bytes[json.loads(s["json"])["clip_id"]][0] for s in samples)

    # Croissant: mlcroissant checks every sha256; the clips table points at files of the release
    doc = mlc.Dataset(jsonld=str(moved / "croissant.json"))
    for r in doc.records("clips"):
        cid = r["clips/clip_id"].decode()
        assert (moved / r["clips/video"].decode()).read_bytes() == media_bytes[cid][0]
        assert (moved / r["clips/audio"].decode()).read_bytes() == media_bytes[cid][1]

    # the card: front matter with configs and dataset_info, text from the recorded agent (a program)
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(moved / "README.md")
    info = card.data.dataset_info
    assert [s["name"] for s in info["splits"]] == ["train", "validation", "test"]
    assert {f["name"] for f in info["features"]} >= {"video", "audio", "semantic_masks", "sources"}
    assert "drafted by models" not in card.text and "exact by construction" in card.text


def test_media_modes_and_stale_media(synth_root_copy, tmp_path: Path) -> None:
    """copy / hardlink / symlink place the same bytes; clips no longer exported leave the release."""
    root = synth_root_copy
    out = tmp_path / "rel"
    for mode in ("copy", "hardlink", "symlink"):
        res = CliRunner().invoke(app, ["croissant", str(root.path), "--out", str(out), "--status", "auto",
                                       "--media", mode, "--no-validate"])
        assert res.exit_code == 0, res.output
        mp4s = sorted((out / "clips").glob("*.mp4"))
        assert len(mp4s) == 6 and all(p.is_symlink() == (mode == "symlink") for p in mp4s)
        assert mp4s[0].read_bytes() == root.clip_path(mp4s[0].stem).read_bytes()
        if mode == "hardlink":
            assert os.path.samefile(mp4s[0], root.clip_path(mp4s[0].stem))
    gone = mp4s[0].stem
    root.catalog.set_status(gone, ClipStatus.rejected, "test")
    res = CliRunner().invoke(app, ["croissant", str(root.path), "--out", str(out), "--status", "auto",
                                   "--no-validate"])
    assert res.exit_code == 0, res.output
    assert not (out / "clips" / f"{gone}.mp4").exists() and not (out / "audio" / f"{gone}.wav").exists()
    assert len(list((out / "clips").glob("*.mp4"))) == 5
