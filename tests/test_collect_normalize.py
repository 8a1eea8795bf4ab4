"""Normalization: geometry math, reject rules and their deliberate overrides, on the real edge clips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from collection.normalize import (
    NoAudioPolicy,
    NormalizeOptions,
    ShortPolicy,
    geometry,
    inspect_source,
    normalize_clip,
)
from collection.reasons import CollectError, FailReason
from schemas.constants import NUM_FRAMES, NUM_SAMPLES, SIZE
from schemas.media import ffmpeg_exe, probe_video, read_frames, read_wav
from schemas.models import Fit


def _map(t, x: float, y: float) -> tuple[float, float]:
    return x * t.scale_x + t.offset_x, y * t.scale_y + t.offset_y


@pytest.mark.parametrize("w,h", [(1280, 720), (320, 240), (360, 360), (540, 960)])
def test_geometry_maps_source_corners(w: int, h: int) -> None:
    pad = geometry(w, h, Fit.pad).transform()
    x0, y0 = _map(pad, 0, 0)
    x1, y1 = _map(pad, w, h)
    assert min(x0, y0) >= 0 and max(x1, y1) <= SIZE and (x1 - x0 == SIZE or y1 - y0 == SIZE)  # fits, touches
    crop = geometry(w, h, Fit.crop).transform()
    x0, y0 = _map(crop, 0, 0)
    x1, y1 = _map(crop, w, h)
    assert max(x0, y0) <= 0 and min(x1, y1) >= SIZE  # covers the frame
    assert _map(crop, w / 2, h / 2) == pytest.approx((SIZE / 2, SIZE / 2), abs=1)  # centred
    st = geometry(w, h, Fit.stretch).transform()
    assert _map(st, w, h) == (SIZE, SIZE)
    tile = geometry(w, h, Fit.pad, 256, 512).transform(tile_x=256)
    assert 256 <= _map(tile, 0, 0)[0] and _map(tile, w, h)[0] <= 512


def test_transform_maps_pixels_back(shared_data: Path, tmp_path: Path) -> None:
    """A bright square drawn into the source lands where the recorded Transform says (crop fit)."""
    src = tmp_path / "sq.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=black:s=640x360:r=30:d=10",
                    "-f", "lavfi", "-i", "sine=f=440:d=10", "-vf", "drawbox=x=400:y=100:w=80:h=60:c=white:t=fill",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(src)], check=True)
    res = normalize_clip(src, 0.0, tmp_path / "o.mp4", tmp_path / "o.wav", NormalizeOptions(fit=Fit.crop))
    frame = read_frames(tmp_path / "o.mp4", [10])[0].mean(-1)
    ys, xs = np.nonzero(frame > 128)
    t = res.transform
    ex0, ey0 = _map(t, 400, 100)
    ex1, ey1 = _map(t, 480, 160)
    assert abs(xs.min() - ex0) <= 2 and abs(xs.max() + 1 - ex1) <= 2
    assert abs(ys.min() - ey0) <= 2 and abs(ys.max() + 1 - ey1) <= 2


def test_rejects_with_reasons(shared_data: Path) -> None:
    edge = shared_data / "media/edge"
    opts = NormalizeOptions()
    with pytest.raises(CollectError) as e:
        inspect_source(edge / "no_audio_960x540_6.7s.mp4", 0.0, opts)
    assert e.value.reason == FailReason.too_short  # 6.7 s: the first rule that fails
    with pytest.raises(CollectError) as e:
        inspect_source(edge / "no_audio_960x540_6.7s.mp4", 0.0, NormalizeOptions(short=ShortPolicy.loop))
    assert e.value.reason == FailReason.no_audio and "--no-audio silence" in e.value.detail
    with pytest.raises(CollectError) as e:
        inspect_source(shared_data / "media/vggsound/M1pPtg6a_g8_000230.mp4", 5.0, opts)
    assert e.value.reason == FailReason.too_short and "5.00 s from 5 s" in e.value.detail  # video to 10.0 s
    info, allowed = inspect_source(shared_data / "media/vggsound/M1pPtg6a_g8_000230.mp4", 0.0, opts)
    assert info.has_audio and allowed == {}


def test_silent_rejected_then_allowed(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "media/edge/silent_audio_1280x720_29.97fps.mp4"  # 9.66 s: within the tolerance
    with pytest.raises(CollectError) as e:
        normalize_clip(src, 0.0, tmp_path / "a.mp4", tmp_path / "a.wav", NormalizeOptions())
    assert e.value.reason == FailReason.silent
    res = normalize_clip(src, 0.0, tmp_path / "a.mp4", tmp_path / "a.wav", NormalizeOptions(allow_silent=True))
    assert res.meta["silent"] == {"policy": "allowed"}
    assert probe_video(tmp_path / "a.mp4", decode=True).frames == NUM_FRAMES  # 290 source frames + held last


def test_short_no_audio_allowed_deliberately(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "media/edge/no_audio_960x540_6.7s.mp4"
    opts = NormalizeOptions(short=ShortPolicy.loop, no_audio=NoAudioPolicy.silence, fit=Fit.stretch)
    res = normalize_clip(src, 0.0, tmp_path / "b.mp4", tmp_path / "b.wav", opts)
    assert res.meta["short"] == {"policy": "loop", "source_seconds": 6.667}
    assert res.meta["no_audio"] == {"policy": "silence"}
    info = probe_video(tmp_path / "b.mp4", decode=True)
    assert (info.width, info.height, info.frames, info.has_audio) == (SIZE, SIZE, NUM_FRAMES, True)
    wav, sr = read_wav(tmp_path / "b.wav")
    assert wav.shape == (NUM_SAMPLES,) and sr == 16000 and not wav.any()
    # looped: frame 210 (7.0 s) shows the source's frame at 0.33 s, not a frozen last frame
    f = read_frames(tmp_path / "b.mp4", [10, 199, 210]).astype(float)
    assert np.abs(f[2] - f[0]).mean() < np.abs(f[2] - f[1]).mean()


def test_truncated_faststart_is_caught(shared_data: Path, tmp_path: Path) -> None:
    """A cut-off file that still opens (moov first) decodes too few frames: corrupt, not padded over."""
    fs = tmp_path / "fs.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(shared_data / "media/vggsound/M1pPtg6a_g8_000230.mp4"),
                    "-c", "copy", "-movflags", "+faststart", str(fs)], check=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fs.read_bytes()[: fs.stat().st_size // 2])
    with pytest.raises(CollectError) as e:
        normalize_clip(cut, 0.0, tmp_path / "c.mp4", tmp_path / "c.wav", NormalizeOptions())
    assert e.value.reason == FailReason.corrupt_video
