"""Bad clips: a stop with the clip named and nothing written, or --skip-bad with every skip reported;
empty masks are against the contract; empty splits and stale outputs leave no unloadable or dead files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotator.export.cli import app
from schemas.cli import app as validate_app
from schemas.models import RLE, ClipStatus
from schemas.validate import validate_root

EMPTY = RLE(size=[512, 512], counts="PPP8")  # 262144 background pixels: a present but empty mask


def _empty_mask(root, clip_id: str, frames: range) -> None:
    raw = json.loads(root.annotation_path(clip_id).read_text())
    for f in frames:
        raw["sources"][0]["masks"][f] = EMPTY.model_dump()
    root.annotation_path(clip_id).write_text(json.dumps(raw))


def test_empty_mask_is_reported_by_validate_and_stops_export(synth_root_copy, tmp_path: Path) -> None:
    from schemas import rle as rle_mod

    assert rle_mod.area(EMPTY.model_dump()) == 0 and rle_mod.is_valid(EMPTY.model_dump(), (512, 512)) is None
    root = synth_root_copy
    cid = root.splits()[next(iter(root.splits()))][0]
    assert validate_root(root.path, media=False).ok  # the synthetic source writes null, never an empty mask
    _empty_mask(root, cid, range(120, 124))
    report = validate_root(root.path, media=False)
    assert [str(p) for p in report.problems] == [
        f"{root.annotation_path(cid)}: source 0: empty mask in 4 frame(s) (120-123); write null for frames "
        "where the source is absent"]
    res = CliRunner().invoke(validate_app, [str(root.path), "--no-media"])
    assert res.exit_code != 0 and "empty mask" in res.output
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["coco", str(root.path), "--out", str(out), "--status", "auto"])
    assert res.exit_code != 0 and f"clip {cid}" in str(res.exception) and "empty mask" in str(res.exception)
    assert not out.exists()  # checked before anything is written


@pytest.mark.slow
def test_skip_bad_releases_the_rest_and_says_why(synth_root_copy, tmp_path: Path) -> None:
    root = synth_root_copy
    splits = {s.value: ids for s, ids in root.splits().items()}
    gone, empty = splits["train"][0], splits["train"][1]
    root.annotation_path(gone).unlink()  # a split-listed clip whose annotation was deleted
    _empty_mask(root, empty, range(3))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["coco", str(root.path), "--out", str(out), "--status", "auto"])
    assert res.exit_code != 0 and gone in str(res.exception) and "--skip-bad" in str(res.exception)
    assert not out.exists()
    for cmd in ("coco", "hf", "card"):
        res = CliRunner().invoke(app, [cmd, str(root.path), "--out", str(out), "--status", "auto", "--skip-bad"])
        assert res.exit_code == 0, res.output
        assert f"skipped {gone}: no annotation" in res.output and f"skipped {empty}: annotation source 0" in res.output
    coco = json.loads((out / "coco" / "train.json").read_text())
    assert {i["clip_id"] for i in coco["images"]} == set(splits["train"]) - {gone, empty}
    assert sorted(p.name for p in (out / "coco" / "images").iterdir()) == sorted(
        c for ids in splits.values() for c in ids if c not in (gone, empty))
    stats = json.loads((out / "stats.json").read_text())
    assert [s["clip_id"] for s in stats["skipped"]] == [gone, empty]
    text = (out / "README.md").read_text()
    assert "Clips left out of this release" in text and f"| {gone} | no annotation" in text

    # the clip is fixed by rejecting it: a rerun removes nothing else; frames of clips no longer exported go
    root.catalog.set_status(splits["val"][0], ClipStatus.rejected, "test")
    res = CliRunner().invoke(app, ["coco", str(root.path), "--out", str(out), "--status", "auto", "--skip-bad"])
    assert res.exit_code == 0, res.output
    assert not (out / "coco" / "images" / splits["val"][0]).exists()
    assert not (out / "coco" / "val.json").exists()  # an empty split: no file


def test_empty_splits_load_and_failed_runs_leave_no_folders(synth_root_copy, tmp_path: Path, monkeypatch) -> None:
    import datasets

    import annotator.export.common as common

    root = synth_root_copy
    res = CliRunner().invoke(app, ["splits", str(root.path), "--ratios", "100,0,0", "--status", "auto"])
    assert res.exit_code == 0, res.output
    assert "train 6, val 0, test 0" in res.output
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["hf", str(root.path), "--out", str(out), "--status", "auto"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name.split("-")[0] for p in (out / "data").glob("*.parquet")) == ["train"]
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert list(ds) == ["train"] and ds["train"].num_rows == 6

    def boom(*a, **k):
        raise RuntimeError("disk full")
        yield

    monkeypatch.setattr(common, "iter_frames", boom)  # fails while writing the first frame folder
    fresh = tmp_path / "fresh"
    res = CliRunner().invoke(app, ["all", str(root.path), "--out", str(fresh), "--status", "auto"])
    assert isinstance(res.exception, RuntimeError)
    empty = [d for d in fresh.rglob("*") if d.is_dir() and not any(d.iterdir())] if fresh.exists() else []
    assert empty == []


def test_synthetic_source_writes_null_for_a_hidden_sounding_object() -> None:
    """A sounding object fully covered by a later one is absent (null), not an empty mask."""
    from collection.synth import ClipSpec, ObjectSpec, Shape, iter_seconds

    still = (0.0, 0.0, 0.0, 0.0)  # no motion: both centred
    hidden = ObjectSpec(id=0, shape=Shape.circle, colour="red", radius=40, path=still, spin=(0, 0),
                        sounding=(True,) * 10)
    cover = ObjectSpec(id=1, shape=Shape.circle, colour="blue", radius=70, path=still, spin=(0, 0),
                       sounding=(False,) * 10)
    _, rles = next(iter_seconds(ClipSpec(seed=0, index=0, objects=(hidden, cover), texture_seed=1)))
    assert rles[0] == [None] * 30 and rles[1] == [None] * 30
