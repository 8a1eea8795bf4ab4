"""The synthetic source: a valid root, exact and reproducible ground truth that matches picture and sound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from collection import synth
from collection.synth import COLOURS, SHAPES, ClipSpec, ObjectSpec, Shape
from schemas import rle as rle_mod
from schemas.constants import FPS, NUM_FRAMES, NUM_SAMPLES, SAMPLE_RATE, SECONDS, SIZE
from schemas.media import probe_video, read_frames, read_wav
from schemas.models import ClipStatus, Origin, Split
from schemas.root import DatasetRoot


def _band_energy(x: np.ndarray, band: tuple[float, float]) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return float(spec[(freqs >= band[0]) & (freqs <= band[1])].sum())


def test_root_is_valid_with_splits(synth_root: DatasetRoot) -> None:
    from schemas.validate import validate_root

    report = validate_root(synth_root.path)
    assert report.ok, [str(p) for p in report.problems]
    splits = synth_root.splits()
    assert {s: len(v) for s, v in splits.items()} == {Split.train: 4, Split.val: 1, Split.test: 1}
    rows = synth_root.catalog.rows()
    assert [r.clip_id for r in rows] == [f"synth_0_{i:05d}" for i in range(6)]
    names = set(synth_root.manifest.category_names())
    for r in rows:
        assert r.origin == Origin.synthetic and r.status == ClipStatus.auto
        assert r.category in names and r.category in r.keywords
    info = probe_video(synth_root.clip_path(rows[0].clip_id))
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    audio, sr = read_wav(synth_root.audio_path(rows[0].clip_id))
    assert sr == SAMPLE_RATE and audio.shape == (NUM_SAMPLES,)


def test_every_second_has_sounding_and_silent_objects(synth_root: DatasetRoot) -> None:
    for cid in synth_root.annotated_ids():
        ann = synth_root.read_annotation(cid)
        assert 2 <= len(ann.sources) <= 3
        assert len({s.category for s in ann.sources}) == len(ann.sources)  # distinct shapes
        for s in range(SECONDS):
            on = [src.masks[s * FPS] is not None for src in ann.sources]
            assert any(on) and not all(on), (cid, s, on)
            for src in ann.sources:  # sounding state is constant within a second
                assert len({src.masks[f] is None for f in range(s * FPS, (s + 1) * FPS)}) == 1


def test_audio_holds_the_sounding_objects_sound(synth_root: DatasetRoot) -> None:
    checked = 0
    for cid in synth_root.annotated_ids():
        ann = synth_root.read_annotation(cid)
        audio, _ = read_wav(synth_root.audio_path(cid))
        for src in ann.sources:
            band = SHAPES[Shape(src.category)].band
            energy = [_band_energy(audio[s * SAMPLE_RATE:(s + 1) * SAMPLE_RATE], band) for s in range(SECONDS)]
            on = [e for s, e in enumerate(energy) if src.masks[s * FPS] is not None]
            off = [e for s, e in enumerate(energy) if src.masks[s * FPS] is None]
            if on and off:
                assert min(on) > 100 * max(off), (cid, src.name, energy)
                checked += 1
    assert checked >= 6


def test_masks_match_the_decoded_video(synth_root: DatasetRoot) -> None:
    from scipy.ndimage import binary_erosion

    cid = synth_root.annotated_ids()[0]
    ann = synth_root.read_annotation(cid)
    frames_idx = list(range(5, NUM_FRAMES, 73))  # something sounds in every frame
    frames = read_frames(synth_root.clip_path(cid), frames_idx)
    seen = 0
    for k, f in enumerate(frames_idx):
        for src in ann.sources:
            if src.masks[f] is None:
                continue
            full = rle_mod.decode(src.masks[f].model_dump())
            mask = binary_erosion(full, iterations=3)  # skip the edges that compression blurs
            if mask.sum() < 200:
                continue  # mostly hidden behind another object
            colour = frames[k][mask].astype(float).mean(axis=0)
            want = np.array(COLOURS[src.name.split()[0]], dtype=float)
            assert np.abs(colour - want).max() < 30, (cid, f, src.name, colour, want)
            # The pixels of that colour in the decoded frame are the mask (same frame, occlusion included).
            painted = np.abs(frames[k].astype(float) - want).max(axis=-1) < 50
            iou = (painted & full).sum() / (painted | full).sum()
            assert iou > 0.94, (cid, f, src.name, iou)
            nxt = rle_mod.decode(src.masks[f + 1].model_dump())  # same second: also sounding
            assert iou > (painted & nxt).sum() / (painted | nxt).sum()  # and not off by a frame
            ring = binary_erosion(~rle_mod.decode(ann.semantic_rle(f)), iterations=6)
            assert np.abs(frames[k][ring].astype(float).mean(axis=0) - want).max() > 30  # not painted elsewhere
            seen += 1
    assert seen >= 2


def test_captions_name_the_sounding_object(synth_root: DatasetRoot) -> None:
    ann = synth_root.read_annotation(synth_root.annotated_ids()[1])
    for src in ann.sources:
        caps = src.frame_captions()
        verb = SHAPES[Shape(src.category)].verb
        for f in range(NUM_FRAMES):
            if src.masks[f] is None:
                assert caps[f] is None
            else:
                assert caps[f] is not None and src.name in caps[f] and caps[f].endswith(f"is {verb}")
        assert len(src.captions) <= SECONDS  # identical neighbouring seconds merge into one span
    assert all(c for c in ann.frame_captions())  # something sounds in every frame


@pytest.mark.parametrize(("x", "y", "phrase"), [
    (10, 10, "in the top left"), (256, 256, "in the centre"), (500, 250, "on the right"),
    (256, 500, "at the bottom"), (10, 400, "in the bottom left")])
def test_position_phrase(x: float, y: float, phrase: str) -> None:
    assert synth.position_phrase(x, y) == phrase


def test_occluded_parts_are_not_in_the_mask() -> None:
    def obj(i: int, shape: Shape, path: tuple[float, ...]) -> ObjectSpec:
        return ObjectSpec(id=i, shape=shape, colour=list(COLOURS)[i], radius=60, path=path, spin=(0.0, 0.0),
                          sounding=(True,) * SECONDS)

    # Object 1 is drawn on top of object 0 at the same place: 0 is fully hidden, then half-covered.
    same = ClipSpec(seed=0, index=0, texture_seed=1,
                    objects=(obj(0, Shape.circle, (0.0, 0.0, 0.0, 0.0)), obj(1, Shape.circle, (0.0, 0.0, 0.0, 0.0))))
    tex, speed = synth.background(same)
    frames, owner = synth.render_second(same, 0, tex, speed, [o.centres() for o in same.objects])
    assert not (owner == 0).any()
    assert abs((owner[0] == 1).sum() - np.pi * 60**2) < 0.02 * np.pi * 60**2
    shifted = ClipSpec(seed=0, index=0, texture_seed=1,
                       objects=(obj(0, Shape.square, (0.0, 0.0, 0.0, 0.0)), obj(1, Shape.square, (0.0, 0.0, 0.3, 0.0))))
    centres = [o.centres() for o in shifted.objects]
    _, owner = synth.render_second(shifted, 0, tex, speed, centres)
    full = (0.8 * 60 * 2 + 1) ** 2
    a0, a1 = (owner[0] == 0).sum(), (owner[0] == 1).sum()
    assert 0.1 * full < a0 < 0.9 * full and abs(a1 - full) < 0.05 * full  # top one whole, bottom one cut
    assert frames.shape == (FPS, SIZE, SIZE, 3)


@pytest.mark.slow
def test_same_seed_same_files_and_resume(synth_root: DatasetRoot, tmp_path: Path) -> None:
    out = tmp_path / "again"
    run = synth.generate(out, clips=1, seed=0)
    assert run.made == 1 and run.clips_per_second > 0
    again = DatasetRoot.open(out)
    assert again.annotated_ids() == ["synth_0_00000"]
    assert again.annotation_path("synth_0_00000").read_bytes() == \
        synth_root.annotation_path("synth_0_00000").read_bytes()
    assert (out / "ssu.json").read_bytes() == (synth_root.path / "ssu.json").read_bytes()
    # Resume: a complete clip is skipped; a clip without its annotation is made again, identically.
    run = synth.generate(out, clips=1, seed=0)
    assert (run.made, run.skipped) == (0, 1)
    again.annotation_path("synth_0_00000").unlink()
    run = synth.generate(out, clips=1, seed=0)
    assert (run.made, run.skipped) == (1, 0)
    assert again.annotation_path("synth_0_00000").read_bytes() == \
        synth_root.annotation_path("synth_0_00000").read_bytes()


@pytest.mark.slow
def test_different_seed_differs(synth_root: DatasetRoot) -> None:
    other = synth.render_clip(synth.clip_spec(1, 0))
    mine = synth_root.read_annotation("synth_0_00000")
    assert other.annotation.clip_id == "synth_1_00000"
    assert other.frames.shape == (NUM_FRAMES, SIZE, SIZE, 3) and other.audio.shape == (NUM_SAMPLES,)
    assert [s.model_dump() for s in other.annotation.sources] != [s.model_dump() for s in mine.sources]
    assert synth.clip_spec(1, 0) == synth.clip_spec(1, 0) != synth.clip_spec(1, 1)


def test_splits_rules() -> None:
    ids = [f"c{i}" for i in range(100)]
    s = synth.assign_splits(ids, 0, (0.7, 0.15, 0.15))
    assert [len(s[k]) for k in Split] == [70, 15, 15]
    assert sorted(sum(s.values(), [])) == sorted(ids)
    assert [len(v) for v in synth.assign_splits(ids[:3], 0, (0.9, 0.05, 0.05)).values()] == [1, 1, 1]
    assert [len(v) for v in synth.assign_splits(ids[:2], 0, (0.7, 0.15, 0.15)).values()] == [2, 0, 0]


def test_an_empty_root_made_elsewhere_gets_the_shape_categories(tmp_path: Path) -> None:
    from schemas.models import Category, Manifest

    DatasetRoot.create(tmp_path / "r", Manifest(name="mine", categories=[Category(name="violin")]))
    root = synth._open_or_create(tmp_path / "r", 0, {"synth_0_00000"})
    reopened = DatasetRoot.open(tmp_path / "r")
    assert reopened.manifest.category_names() == ["violin", *[s.value for s in Shape]]
    assert "synthetic" in reopened.manifest.sources and root.manifest == reopened.manifest


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collection.synth_cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_help_and_bad_input(tmp_path: Path) -> None:
    r = _cli("--help")
    assert r.returncode == 0 and "Example: ssu-synth" in r.stdout
    r = _cli(str(tmp_path / "r"), "--clips", "3", "--splits", "0.5,0.6,0.2")
    assert r.returncode == 2 and "--splits" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _cli(str(tmp_path / "r"), "--clips", "0")
    assert r.returncode == 2 and "--clips" in r.stderr
    r = _cli(str(tmp_path / "r"), "--seed", "-3")
    assert r.returncode == 2 and "--seed" in r.stderr
    assert not (tmp_path / "r").exists()  # nothing written before the input is checked
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("not a root")
    r = _cli(str(tmp_path / "busy"), "--clips", "1")
    assert r.returncode == 2 and "not empty" in r.stderr


def test_cli_refuses_a_root_of_another_seed(synth_root_copy: DatasetRoot) -> None:
    r = _cli(str(synth_root_copy.path), "--clips", "6", "--seed", "5")
    assert r.returncode == 2 and "another run" in r.stderr
