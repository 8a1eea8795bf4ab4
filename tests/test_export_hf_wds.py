"""Hugging Face Parquet and WebDataset exports read back with `datasets` and `webdataset`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from annotator.export.cli import app
from annotator.export.hf_vocabulary import hf_split
from schemas import rle as rle_mod
from schemas.media import read_wav
from schemas.models import ClipStatus


def _check_clip(root, clip_id: str, captions: list, semantic: list, sources: list) -> None:
    """Per-frame captions and masks of an exported clip equal the root's."""
    ann = root.read_annotation(clip_id)
    assert captions == ann.frame_captions()
    for f in (0, 45, 151, 299):
        assert np.array_equal(rle_mod.decode(semantic[f]), rle_mod.decode(ann.semantic_rle(f)))
    assert [s["id"] for s in sources] == [s.id for s in ann.sources]
    for got, src in zip(sources, ann.sources, strict=True):
        assert got["category"] == src.category and got["captions"] == src.frame_captions()
        for f, m in enumerate(src.masks):
            assert (got["masks"][f] is None) == (m is None)
            if m is not None and f % 50 == 7:
                assert np.array_equal(rle_mod.decode(got["masks"][f]), rle_mod.decode(m.model_dump()))


def test_hf_round_trip_with_load_dataset(synth_root, tmp_path: Path, monkeypatch) -> None:
    import datasets

    import annotator.export.hf as hf_mod

    monkeypatch.setattr(hf_mod, "media_decoder", lambda: None)  # bytes columns, whatever is installed here
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["hf", str(synth_root.path), "--out", str(out), "--status", "auto",
                                   "--shard-size", "3"])
    assert res.exit_code == 0, res.output
    assert len(list((out / "data").glob("train-*-of-00002.parquet"))) == 2
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    splits = {hf_split(s.value): ids for s, ids in synth_root.splits().items()}
    assert list(ds) == ["train", "validation", "test"]
    assert {k: sorted(ds[k]["clip_id"]) for k in ds} == {k: sorted(v) for k, v in splits.items()}
    for row in ds["train"]:
        cid = row["clip_id"]
        _check_clip(synth_root, cid, row["captions"], row["semantic_masks"], row["sources"])
        assert row["video"] == {"bytes": synth_root.clip_path(cid).read_bytes(), "path": f"{cid}.mp4"}
        import soundfile as sf

        wav, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        ref, _ = read_wav(synth_root.audio_path(cid))
        assert sr == 16000 and np.array_equal(wav, ref)
    # resumable: unchanged shards are not rewritten
    shard = next((out / "data").glob("validation-*.parquet"))
    before = shard.stat().st_mtime_ns
    assert CliRunner().invoke(app, ["hf", str(synth_root.path), "--out", str(out), "--status", "auto",
                                    "--shard-size", "3"]).exit_code == 0
    assert shard.stat().st_mtime_ns == before


def test_wds_round_trip_with_webdataset(synth_root, tmp_path: Path) -> None:
    import av
    import webdataset as wds

    res = CliRunner().invoke(app, ["wds", str(synth_root.path), "--out", str(tmp_path), "--status", "auto",
                                   "--shard-size", "2"])
    assert res.exit_code == 0, res.output
    urls = sorted(str(p) for p in (tmp_path / "wds").glob("*.tar"))
    assert len(urls) == 4  # train 4 -> 2 shards, val 1, test 1
    seen = {}
    for sample in wds.WebDataset(urls, shardshuffle=False):
        meta = json.loads(sample["json"])
        cid = meta["clip_id"]
        seen[cid] = meta["split"]
        _check_clip(synth_root, cid, meta["captions"], meta["semantic_masks"], meta["sources"])
        assert sample["mp4"] == synth_root.clip_path(cid).read_bytes()
        with av.open(io.BytesIO(sample["mp4"])) as c:  # decodable as a video
            assert c.streams.video[0].codec_context.width == 512
        assert sample["wav"] == synth_root.audio_path(cid).read_bytes()
    assert seen == {c: s.value for s, ids in synth_root.splits().items() for c in ids}
    index = json.loads((tmp_path / "wds" / "index.json").read_text())
    assert sum(len(v["clips"]) for v in index["shards"].values()) == 6


def test_hf_media_features_follow_the_decoder(synth_root_copy, tmp_path: Path, monkeypatch) -> None:
    """Video()/Audio() in the card's dataset_info where torchcodec imports, {bytes, path} structs elsewhere;
    either way the same Parquet bytes, readable without torchcodec through decode=False."""
    import datasets
    from huggingface_hub import DatasetCard

    import annotator.export.hf as hf_mod

    root = synth_root_copy
    for c in root.splits()[next(iter(root.splits()))][1:]:
        root.catalog.set_status(c, ClipStatus.rejected, "test")  # fewer clips: this test is about the schema
    out = tmp_path / "out"
    got = {}
    for decoder in (None, "torchcodec (test)"):
        monkeypatch.setattr(hf_mod, "media_decoder", lambda d=decoder: d)
        res = CliRunner().invoke(app, ["hf", str(root.path), "--out", str(out), "--status", "auto"])
        assert res.exit_code == 0, res.output
        feats = {f["name"]: f for f in DatasetCard.load(out / "README.md").data.dataset_info["features"]}
        got[decoder] = (feats["video"], feats["audio"])
    assert got[None][0] == {"name": "video", "struct": [{"name": "bytes", "dtype": "binary"},
                                                        {"name": "path", "dtype": "string"}]}
    assert got["torchcodec (test)"] == ({"name": "video", "dtype": "video"},
                                        {"name": "audio", "dtype": {"audio": {"sampling_rate": 16000}}})
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert isinstance(ds.features["video"], datasets.Video)
    ds = ds.cast_column("video", datasets.Video(decode=False)).cast_column("audio", datasets.Audio(decode=False))
    cid = ds[0]["clip_id"]
    assert ds[0]["video"]["bytes"] == root.clip_path(cid).read_bytes()
    assert ds[0]["audio"]["bytes"] == root.audio_path(cid).read_bytes()
