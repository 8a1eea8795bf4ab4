"""`ssu-export all`: a release that stands alone. Moved elsewhere with the root deleted, every format loads in
its own consumer, and no path of the machine that made it is left inside. The release is made once (a module
fixture); each format's consumer is its own test."""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_export_yvis import MiniYTVOS
from typer.testing import CliRunner

from annotator.export.cli import app
from schemas import rle as rle_mod
from schemas.models import Annotation, ClipStatus


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


@dataclass
class Release:
    """`ssu-export all` of three clips (one per split), moved elsewhere, its root deleted."""

    output: str  # what the command printed
    moved: Path  # where the release lies now
    needles: list[str]  # paths of the exporting machine: the root, the first --out, the temp folder
    kept: dict[str, list[str]]  # split -> its one exported clip
    anns: dict[str, Annotation]  # the exported clips' annotations, read before the root went
    media_bytes: dict[str, tuple[bytes, bytes]]  # clip -> (mp4, wav) bytes of the root
    tmp: Path


@pytest.fixture(scope="module")
def release(_synth_root_master: Path, tmp_path_factory: pytest.TempPathFactory) -> Release:
    import annotator.export.hf as hf_mod
    from schemas.root import DatasetRoot

    tmp = tmp_path_factory.mktemp("release")
    shutil.copytree(_synth_root_master, tmp / "root")
    root = DatasetRoot.open(tmp / "root")
    kept = _three_clips(root)
    anns = {c: root.read_annotation(c) for ids in kept.values() for c in ids}
    media_bytes = {c: (root.clip_path(c).read_bytes(), root.audio_path(c).read_bytes()) for c in anns}
    out = tmp / "release"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf_mod, "media_decoder", lambda: None)  # bytes columns, whatever is installed here
        res = CliRunner().invoke(app, ["all", str(root.path), "--out", str(out), "--status", "auto",
                                       "--media", "hardlink"])
    assert res.exit_code == 0, res.output
    moved = tmp / "elsewhere" / "published"
    moved.parent.mkdir()
    shutil.move(out, moved)
    root_path = str(root.path.resolve())
    root.close()
    shutil.rmtree(root_path)
    return Release(res.output, moved, [root_path, str(out), str(tmp)], kept, anns, media_bytes, tmp)


@pytest.mark.slow
def test_release_has_every_clip_and_no_machine_path(release: Release) -> None:
    assert "exported 3 clip(s) (train 1, val 1, test 1); skipped 0" in release.output
    _no_machine_paths(release.moved, release.needles)


@pytest.mark.slow
def test_moved_yvis_loads_with_frames_and_media(release: Release) -> None:
    """YouTube-VIS: the API's access pattern; every file name relative to the json is a frame on disk."""
    for split, ids in release.kept.items():
        path = release.moved / "yvis" / f"{split}.json"
        api = MiniYTVOS(path)
        (v,) = api.loadVids(api.getVidIds())
        assert v["clip_id"] == ids[0] and "root" not in api.dataset["info"]
        ann = release.anns[v["clip_id"]]
        files = [path.parent / f for f in v["file_names"]]
        assert len(files) == 300 and all(f.is_file() for f in files)
        assert np.asarray(Image.open(files[150])).shape == (512, 512, 3)
        assert (path.parent / v["video_file"]).read_bytes() == release.media_bytes[v["clip_id"]][0]
        assert (path.parent / v["audio_file"]).read_bytes() == release.media_bytes[v["clip_id"]][1]
        for t in api.loadAnns(api.getAnnIds(vidIds=[v["id"]])):
            src = ann.source(t["source_id"])
            f = next(i for i, m in enumerate(src.masks) if m is not None)
            assert np.array_equal(api.annToMask(t, f).astype(bool), rle_mod.decode(src.masks[f].model_dump()))


@pytest.mark.slow
def test_moved_coco_loads_in_pycocotools(release: Release) -> None:
    """COCO: pycocotools, images relative to the json."""
    from pycocotools.coco import COCO

    for split in release.kept:
        coco = COCO(str(release.moved / "coco" / f"{split}.json"))
        for img in coco.loadImgs(coco.getImgIds()):
            assert (release.moved / "coco" / img["file_name"]).is_file()
        for a in coco.loadAnns(coco.getAnnIds()):
            assert a["area"] > 0 and a["bbox"][2] > 0  # no empty masks in a release


@pytest.mark.slow
def test_moved_hf_loads_offline_with_media(release: Release) -> None:
    """Hugging Face: load_dataset offline from the moved folder, into a fresh cache."""
    import av
    import datasets
    import soundfile as sf

    ds = datasets.load_dataset(str(release.moved), cache_dir=str(release.tmp / "hf-cache"))
    assert list(ds) == ["train", "validation", "test"]
    row = ds["validation"][0]
    assert row["clip_id"] == release.kept["val"][0]
    with av.open(io.BytesIO(row["video"]["bytes"])) as c:
        assert sum(1 for _ in c.decode(video=0)) == 300
    wav, sr = sf.read(io.BytesIO(row["audio"]["bytes"]))
    assert sr == 16000 and len(wav) == 160_000
    assert row["captions"] == release.anns[row["clip_id"]].frame_captions()


@pytest.mark.slow
def test_moved_wds_holds_every_clip_once(release: Release) -> None:
    """WebDataset: every clip once, its media inside the sample."""
    import webdataset as wds

    shards = sorted(str(p) for p in (release.moved / "wds").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert sorted(json.loads(s["json"])["clip_id"] for s in samples) == sorted(release.anns)
    assert all(s["mp4"] == release.media_bytes[json.loads(s["json"])["clip_id"]][0] for s in samples)


@pytest.mark.slow
def test_moved_croissant_checks_its_files(release: Release) -> None:
    """Croissant: mlcroissant checks every sha256; the clips table points at files of the release."""
    import mlcroissant as mlc

    doc = mlc.Dataset(jsonld=str(release.moved / "croissant.json"))
    for r in doc.records("clips"):
        cid = r["clips/clip_id"].decode()
        assert (release.moved / r["clips/video"].decode()).read_bytes() == release.media_bytes[cid][0]
        assert (release.moved / r["clips/audio"].decode()).read_bytes() == release.media_bytes[cid][1]


@pytest.mark.slow
def test_moved_card_describes_the_release(release: Release) -> None:
    """The card: front matter with configs and dataset_info, text from the recorded agent (a program)."""
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(release.moved / "README.md")
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
