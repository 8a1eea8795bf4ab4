"""ssu-collect end to end on real clips: acceptance run, bad input, resume after kills, multi-source mix."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from collection.cli import app
from schemas.constants import NUM_FRAMES, NUM_SAMPLES, SAMPLE_RATE, SIZE
from schemas.media import probe_video, read_wav
from schemas.models import ClipStatus, Origin
from schemas.root import DatasetRoot
from schemas.validate import validate_root

SMALL = ["M1pPtg6a_g8_000230", "MnEZwnRuQR8_000030", "nLKEdmVu3FY_000040", "0f0Rq7e5yX8_000160"]  # cheap ones


def collect(*args: str) -> None:
    r = CliRunner().invoke(app, [*map(str, args), "--quiet"])
    assert r.exit_code == 0, (r.output, r.exception)


def last_stats(root: Path) -> dict:
    return json.loads(sorted((root / "runs").glob("*.json"))[-1].read_text())


def snapshot(root: Path) -> dict:
    """What must match between an interrupted+resumed run and an uninterrupted one."""
    r = DatasetRoot.open(root)
    rows = {row.clip_id: row.model_dump(mode="json", exclude={"created_at", "updated_at", "lease_owner",
                                                              "lease_expires"}) for row in r.catalog.rows()}
    r.close()
    files = sorted(str(p.relative_to(root)) for sub in ("clips", "audio") for p in (root / sub).iterdir())
    return {"rows": rows, "files": files}


@pytest.mark.slow
def test_acceptance_vggsound_keywords(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    collect(root, "--source", "vggsound", "--index", shared_data / "index/vggsound/test.csv", "--media-dir",
            shared_data / "media/vggsound", "--keywords", "playing piano,orchestra,cow lowing")
    report = validate_root(root)
    assert report.ok, [str(p) for p in report.problems]
    r = DatasetRoot.open(root)
    done = r.catalog.rows(status=ClipStatus.collected)
    assert {(x.clip_id, x.category) for x in done} == {("M1pPtg6a_g8_000230", "playing piano"),
                                                       ("nLKEdmVu3FY_000040", "orchestra"),
                                                       ("-0pJqpNjft4_000267", "cow lowing")}
    for row in done:
        info = probe_video(r.clip_path(row.clip_id), decode=True)
        assert (info.width, info.height, info.frames, round(info.fps)) == (SIZE, SIZE, NUM_FRAMES, 30)
        wav, sr = read_wav(r.audio_path(row.clip_id))
        assert (sr, wav.ndim, wav.shape[0]) == (SAMPLE_RATE, 1, NUM_SAMPLES) and np.abs(wav).max() > 0.01
        assert row.origin == Origin.vggsound and row.transform and row.transform.fit == "pad"
        assert row.youtube_id and row.start_seconds is not None
    # the other 147 sampled rows have no local copy: each recorded with its reason
    failed = r.catalog.rows(status=ClipStatus.failed)
    assert len(failed) == 147 and all(f.reason and f.reason.startswith("missing_media: ") for f in failed)
    cats = {c.name: c.supercategory for c in r.manifest.categories}
    assert cats == {"playing piano": "music", "orchestra": "music", "cow lowing": "animals"}
    assert r.manifest.sources == ["vggsound"]
    r.close()
    s = last_stats(root)
    assert (s["done"], s["failed"], s["state"]) == (3, 147, "finished")
    assert s["failed_by_reason"] == {"missing_media": 147} and s["by_keyword"]["orchestra"]["done"] == 1
    # same command again: nothing redone, failures retried, no duplicates
    collect(root, "--source", "vggsound", "--index", shared_data / "index/vggsound/test.csv", "--media-dir",
            shared_data / "media/vggsound", "--keywords", "playing piano,orchestra,cow lowing")
    s = last_stats(root)
    assert (s["done"], s["skipped"], s["failed"]) == (0, 3, 147)
    assert len(DatasetRoot.open(root).catalog) == 150


def make_local_index(tmp_path: Path, shared_data: Path) -> Path:
    """A local source with good clips and every kind of bad input."""
    d = tmp_path / "local"
    d.mkdir()
    for i, cid in enumerate(SMALL[:3]):
        shutil.copy(shared_data / f"media/vggsound/{cid}.mp4", d / f"good{i}.mp4")
    (d / "notvideo.mp4").write_text("this is not a video\n" * 50)
    data = (shared_data / f"media/vggsound/{SMALL[3]}.mp4").read_bytes()
    (d / "corrupt.mp4").write_bytes(data[: len(data) // 3])  # cut off: the moov atom is gone
    (d / "index.csv").write_text(
        "file,label,start\n"
        "good0.mp4,piano,0\ngood1.mp4,piano,0\ngood2.mp4,orchestra,0\n"
        "missing.mp4,orchestra,0\nnotvideo.mp4,piano,0\ncorrupt.mp4,orchestra,0\n"
        ",orchestra,0\n"            # malformed: no file
        "good0.mp4,piano,-3\n")     # malformed: negative start
    return d


@pytest.mark.slow
def test_bad_input_recorded_run_goes_on_rerun_completes(shared_data: Path, tmp_path: Path) -> None:
    d = make_local_index(tmp_path, shared_data)
    root = tmp_path / "root"
    args = [root, "--source", "local", "--index", d, "--keywords", "piano,orchestra", "--per-keyword", "10"]
    collect(*args)
    r = DatasetRoot.open(root)
    reasons = {row.clip_id: (row.reason or "").split(":")[0] for row in r.catalog.rows(status=ClipStatus.failed)}
    assert reasons == {"missing_000000": "missing_media", "notvideo_000000": "not_video",
                       "corrupt_000000": "corrupt_video"}
    assert len(r.catalog.rows(status=ClipStatus.collected)) == 3
    s = last_stats(root)
    assert s["bad_index_rows"] == 2 and "negative start" in " ".join(s["bad_index_examples"])
    assert validate_root(root).ok
    # fix two inputs and run the same command: only those are redone
    shutil.copy(shared_data / f"media/vggsound/{SMALL[3]}.mp4", d / "missing.mp4")
    shutil.copy(shared_data / f"media/vggsound/{SMALL[3]}.mp4", d / "corrupt.mp4")
    collect(*args)
    s = last_stats(root)
    assert (s["done"], s["skipped"], s["failed"]) == (2, 3, 1)
    assert s["failed_by_reason"] == {"not_video": 1}
    assert validate_root(root).ok and len(DatasetRoot.open(root).catalog) == 6


@pytest.mark.slow
def test_killed_runs_resume_to_the_same_root(shared_data: Path, tmp_path: Path) -> None:
    d = make_local_index(tmp_path, shared_data)
    args = ["--source", "local", "--index", str(d), "--keywords", "piano,orchestra", "--quiet"]
    ref = tmp_path / "ref"
    collect(ref, *args[:-1])
    want = snapshot(ref)
    assert sum(r["status"] == "collected" for r in want["rows"].values()) == 3

    root = tmp_path / "killed"
    cmd = [sys.executable, "-c", "from collection.cli import main; main()", str(root), *args, "--workers", "2"]
    rng = random.Random()
    delays = [rng.uniform(1.0, 3.0), rng.uniform(2.0, 5.0)]
    for delay in delays:  # kill twice at random points, then let it finish
        p = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = snapshot(root)
    assert got == want, f"kills after {delays}"
    assert not list((root / "clips").glob(".*")) and not (root / ".collect-work").exists()
    assert validate_root(root).ok


@pytest.mark.slow
def test_mix_two_sources(shared_data: Path, tmp_path: Path) -> None:
    from media_oracles import window_audio

    from collection.compose import LAYOUTS

    root = tmp_path / "root"
    collect(root, "--source", "vggsound", "--index", shared_data / "index/vggsound/test.csv", "--media-dir",
            shared_data / "media/vggsound", "--mix", "piano+orchestra", "--available-only")
    assert validate_root(root).ok
    r = DatasetRoot.open(root)
    (row,) = r.catalog.rows()
    assert row.origin == Origin.mix and row.status == ClipStatus.collected
    assert row.keywords == ["playing piano", "orchestra"] and row.category == "playing piano"
    assert [(g.x, g.y, g.w, g.h) for g in row.regions] == LAYOUTS[2]
    assert [(g.keyword, g.source_clip) for g in row.regions] == [("playing piano", "M1pPtg6a_g8_000230"),
                                                                 ("orchestra", "nLKEdmVu3FY_000040")]
    assert {c.name for c in r.manifest.categories} >= {"playing piano", "orchestra"}
    # the mix's audio is g1*s1 + g2*s2: a least-squares fit finds both sources at their recorded gains
    mix, _ = read_wav(r.audio_path(row.clip_id))
    srcs = [window_audio(shared_data / f"media/vggsound/{g.source_clip}.mp4", 0.0)[:NUM_SAMPLES] for g in row.regions]
    n = min(len(s) for s in srcs)
    a = np.stack([s[:n] for s in srcs], axis=1)
    coef, *_ = np.linalg.lstsq(a, mix[:n], rcond=None)
    resid = mix[:n] - a @ coef
    expect = [10 ** (t["gain_db"] / 20) for t in row.meta["tiles"]]
    assert np.allclose(coef, expect, rtol=0.25), (coef, expect)
    assert np.var(resid) < 0.1 * np.var(mix[:n])
    # and each half of the frame shows its own source
    from schemas.media import read_frames

    f = read_frames(r.clip_path(row.clip_id), [150]).astype(float)[0]
    assert np.abs(f[:, :256].mean((0, 1)) - f[:, 256:].mean((0, 1))).max() > 3


@pytest.mark.slow
def test_ray_local_instance(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from collection.index import SourceKind
    from collection.job import build_job, run_job
    from collection.request import CollectRequest
    from schemas.models import Fit

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    d = make_local_index(tmp_path, shared_data)
    root = tmp_path / "root"
    job, name = build_job(root, CollectRequest(source=SourceKind.local, index=d, keywords="orchestra",
                                               per_keyword=10, fit=Fit.crop, workers=2, ray=True, retries=0,
                                               backoff=0))
    assert job.ray is not None
    job.ray.object_store_memory = 80 * 1024**2
    stats = run_job(root, job, name, quiet=True)
    assert (stats.done, stats.failed) == (1, 2) and stats.args["distributor"] == "ray"
    assert dict(stats.failed_by_reason) == {"missing_media": 1, "corrupt_video": 1}
    row = DatasetRoot.open(root).catalog.get("good2_000000")
    assert row and row.transform and row.transform.fit == "crop" and row.transform.offset_x < 0
    assert validate_root(root).ok


@pytest.mark.slow
def test_fill_replaces_failed_candidates(shared_data: Path, tmp_path: Path) -> None:
    d = tmp_path / "local"
    d.mkdir()
    for i in range(2):
        shutil.copy(shared_data / f"media/vggsound/{SMALL[0]}.mp4", d / f"good{i}.mp4")
    (d / "junk.mp4").write_text("junk")
    (d / "index.csv").write_text("file,label\njunk.mp4,piano\nmissing1.mp4,piano\nmissing2.mp4,piano\n"
                                 "good0.mp4,piano\ngood1.mp4,piano\n")
    root = tmp_path / "root"
    collect(root, "--source", "local", "--index", d, "--keywords", "piano", "--per-keyword", "2", "--fill")
    r = DatasetRoot.open(root)
    assert len(r.catalog.rows(status=ClipStatus.collected)) == 2  # whatever order sampling took
    s = last_stats(root)
    assert (s["done"], s["failed"], s["planned"]) == (2, 3, 5)  # seed 0 order: junk, good1, missing x2, good0


@pytest.mark.slow
def test_music_avqa_window_from_local_60s_video(shared_data: Path, tmp_path: Path) -> None:
    """MUSIC-AVQA: the clip is the seeded 10 s window of the local 60 s <video_id>.mp4."""
    from collection.index import read_music_avqa

    ix = read_music_avqa(shared_data / "index/music_avqa/avqa-test.json", seed=0)
    entry = next(e for e in ix.entries if "violin" in e.labels)
    media = tmp_path / "avqa"
    media.mkdir()
    subprocess.run([sys.executable, "-c", "import sys, subprocess; from schemas.media import ffmpeg_exe; "
                    "subprocess.run([ffmpeg_exe(), '-v', 'error', '-stream_loop', '5', '-i', sys.argv[1], '-c', "
                    "'copy', sys.argv[2]], check=True)", str(shared_data / f"media/vggsound/{SMALL[0]}.mp4"),
                    str(media / f"{entry.meta['video_id']}.mp4")], check=True)
    root = tmp_path / "root"
    collect(root, "--source", "music_avqa", "--index", shared_data / "index/music_avqa/avqa-test.json",
            "--media-dir", media, "--keywords", "violin", "--per-keyword", "1", "--available-only")
    r = DatasetRoot.open(root)
    (row,) = r.catalog.rows()
    assert row.clip_id == entry.clip_id and row.status == ClipStatus.collected, row.reason
    assert row.origin == Origin.music_avqa and row.category == "violin"
    assert row.transform and row.transform.src_start == entry.start == row.start_seconds
    assert validate_root(root).ok


def test_root_whose_creation_was_killed_is_recreated(tmp_path: Path) -> None:
    from collection.job import open_or_create
    from schemas.catalog import Catalog
    from schemas.errors import UserError

    half = tmp_path / "half"
    for sub in ("clips", "audio", "annotations", "splits"):
        (half / sub).mkdir(parents=True)
    Catalog(half / "catalog.sqlite", create=True).close()  # killed before ssu.json was written
    assert open_or_create(half, "half").manifest.name == "half"
    other = tmp_path / "other"
    (other / "clips").mkdir(parents=True)
    (other / "clips" / "keep.mp4").write_bytes(b"x")  # not an empty skeleton: refuse, touch nothing
    with pytest.raises(UserError, match="not empty"):
        open_or_create(other, "other")
    assert (other / "clips" / "keep.mp4").exists()
