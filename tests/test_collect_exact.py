"""Every clip exact, on generated media whose truth is known: flashes and beeps at known instants (loops and
pads in sync), flat white sources (recorded transforms are the pixels), sines of known level (mono keeps its
level, stereo downmixes without clipping, the silence check measures the source), full 10 s AAC tracks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from collection.compose import TileSource, compose_clip, prepare_tile
from collection.normalize import NormalizeOptions, normalize_clip
from collection.reasons import CollectError, FailReason
from collection.timeline import MP4_AUDIO_RATE, ShortPolicy
from schemas.constants import FPS, NUM_FRAMES, SAMPLE_RATE, SECONDS, SIZE
from schemas.media import ffmpeg_exe, probe_video, read_frames, read_wav
from schemas.models import Fit, Transform

AAC_FRAME = 1024


def make_source(path: Path, *, seconds: float, audio: str, fps: str = "30", size: str = "64x64",
                video: str = "", rate: int = 48000, audio_seconds: float | None = None,
                acodec: str = "aac") -> Path:
    """A test source from lavfi: black `size` frames (+ the `video` filters) and `audio` (aevalsrc exprs,
    one per channel, '|'-separated). H.264 + `acodec` (aac in .mp4 like real sources; pcm in .mkv for levels)."""
    vf = f"color=black:s={size}:r={fps}:d={seconds}" + (f",{video}" if video else "")
    af = f"aevalsrc='{audio}':s={rate}:d={audio_seconds or seconds}"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", vf, "-f", "lavfi", "-i", af,
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", acodec, str(path)],
                   check=True)
    return path


def beep(at: float, amp: float = 0.8, seconds: float = 0.1) -> str:
    """A 1 kHz burst starting at full amplitude at `at` s (a sharp onset to find to the sample)."""
    return f"if(gte(t,{at})*lt(t,{at + seconds}),{amp}*cos(2*PI*1000*(t-{at})),0)"


def onsets(x: np.ndarray, rate: int, quiet: float = 0.025) -> np.ndarray:
    """Seconds where |x| first exceeds 0.3 after at least `quiet` s below it."""
    loud = np.abs(x) > 0.3
    idx = np.nonzero(loud)[0]
    if not idx.size:
        return np.zeros(0)
    gaps = np.diff(idx, prepend=-10 * rate) > quiet * rate
    return idx[gaps] / rate


def flash_frames(mp4: Path) -> np.ndarray:
    return np.nonzero(read_frames(mp4).mean(axis=(1, 2, 3)) > 128)[0]


def mp4_audio(mp4: Path) -> tuple[np.ndarray, float]:
    """The mp4's AAC track decoded with PyAV: (channels, samples) float32 and the first sample's time."""
    import av

    with av.open(str(mp4)) as c:
        frames = list(c.decode(audio=0))
        assert c.streams.audio[0].rate == MP4_AUDIO_RATE
    first = float(frames[0].pts * frames[0].time_base)
    return np.concatenate([f.to_ndarray() for f in frames], axis=1), first


def assert_full_tracks(mp4: Path) -> np.ndarray:
    """300 frames and 10 s of audio (to within one AAC frame), by decoding; returns the audio."""
    assert probe_video(mp4, decode=True).frames == NUM_FRAMES
    audio, first = mp4_audio(mp4)
    assert abs(first) < 1e-3
    assert abs(audio.shape[1] - SECONDS * MP4_AUDIO_RATE) <= AAC_FRAME, audio.shape
    return audio


SYNC = [
    # (seconds of video, fps, channels, flash/beep at, policy, container)
    (2.5, "30", 1, 0.5, ShortPolicy.loop, "mp4"),
    (5.0, "25", 2, 1.0, ShortPolicy.loop, "mp4"),
    (2.5, "30000/1001", 1, 0.5005, ShortPolicy.pad, "mkv"),  # Matroska: no per-stream duration in the header
]


@pytest.mark.parametrize("seconds,fps,channels,at,policy,ext", SYNC)
def test_loop_and_pad_keep_picture_and_sound_together(tmp_path: Path, seconds: float, fps: str, channels: int,
                                                       at: float, policy: ShortPolicy, ext: str) -> None:
    """A flash frame and a beep at the same instant stay together across every loop; the audio of a source
    whose sound outlasts its picture is cut where the picture ends (a second beep past the end never plays)."""
    tail = beep(seconds + 0.1)  # lies in the audio beyond the last frame: must be cut off
    expr = f"{beep(at)}+{tail}" if channels == 1 else f"{beep(at, 0.9)}+{tail}|0"  # stereo: beep on the left
    num, _, den = fps.partition("/")
    src_frame = round(at * int(num) / int(den or 1))  # the source frame with the flash
    src = make_source(tmp_path / f"s.{ext}", seconds=seconds, fps=fps, audio=expr, audio_seconds=seconds + 0.4,
                      video=f"drawbox=c=white:t=fill:enable='eq(n,{src_frame})'",
                      acodec="aac" if ext == "mp4" else "pcm_s16le")
    mp4, wav = tmp_path / "o.mp4", tmp_path / "o.wav"
    res = normalize_clip(src, 0.0, mp4, wav, NormalizeOptions(short=policy))
    assert res.meta["short"]["policy"] == policy.value
    cycle = round(seconds * FPS)  # the source's whole frames at 30 fps
    first = round(at * FPS)
    want = list(range(first, NUM_FRAMES, cycle)) if policy == ShortPolicy.loop else [first]
    assert flash_frames(mp4).tolist() == want  # frame-exact: no drift, loop after loop

    for x, rate in ((read_wav(wav)[0], SAMPLE_RATE), (assert_full_tracks(mp4)[0], MP4_AUDIO_RATE)):
        got = onsets(x, rate)
        assert len(got) == len(want), (got, want)
        lag = got - np.array(want) / FPS
        assert np.abs(lag).max() < 1.5e-3, lag  # each beep within 1.5 ms of its flash (the source's own offset)
        assert np.ptp(lag) < 0.5e-3, lag  # ... and the same offset every loop
    if policy == ShortPolicy.pad:  # silence from the cut on, the picture held
        w = read_wav(wav)[0]
        assert np.abs(w[int(cycle / FPS * SAMPLE_RATE) + 16:]).max() < 1e-3


def white_bbox(frame: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(frame.mean(-1) > 128)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def mapped(t: Transform, x: float, y: float) -> tuple[float, float]:
    return x * t.scale_x + t.offset_x, y * t.scale_y + t.offset_y


def assert_box(t: Transform, box: tuple[int, int, int, int], w: float, h: float, x0: float = 0,
               y0: float = 0) -> None:
    """The white pixels span exactly the mapped source rectangle [x0, w) x [y0, h) (within 0.5 px)."""
    (ex0, ey0), (ex1, ey1) = mapped(t, x0, y0), mapped(t, w, h)
    assert np.allclose(box, (ex0, ey0, ex1, ey1), atol=0.5), (box, (ex0, ey0, ex1, ey1), t)


WHITE_1S = dict(seconds=1.0, audio="0.3*sin(2*PI*440*t)")


@pytest.mark.parametrize("size,fit", [("96x58", Fit.pad), ("58x96", Fit.pad), ("90x58", Fit.crop)])
def test_recorded_transform_is_the_pixels(tmp_path: Path, size: str, fit: Fit) -> None:
    """Odd aspect ratios whose centred offset would be odd: the recorded Transform maps the source rectangle
    onto exactly the white pixels ffmpeg wrote. (Crop: the source's left half is white, to see the crop.)"""
    w, h = map(int, size.split("x"))
    half = fit == Fit.crop
    src = make_source(tmp_path / "w.mp4", size=size, video=f"drawbox=c=white:t=fill:w={w // 2 if half else w}",
                      **WHITE_1S)
    res = normalize_clip(src, 0.0, tmp_path / "o.mp4", tmp_path / "o.wav",
                         NormalizeOptions(fit=fit, short=ShortPolicy.loop))
    t = res.transform
    assert float(t.offset_x).is_integer() and float(t.offset_y).is_integer()
    box = white_bbox(read_frames(tmp_path / "o.mp4", [5])[0])
    if half:  # the left edge is cropped away; the white half ends where the transform says
        ex1 = mapped(t, w // 2, 0)[0]
        assert box[0] == 0 and abs(box[2] - ex1) <= 0.5 and (box[1], box[3]) == (0, SIZE), (box, ex1, t)
    else:
        assert_box(t, box, w, h)
        assert abs((SIZE - box[2]) - box[0]) <= 2 and abs((SIZE - box[3]) - box[1]) <= 2


def test_mix_tile_transforms_are_the_pixels(tmp_path: Path) -> None:
    """A synthetic 2-tile mix: each tile's recorded Transform (tile offset included) is its white pixels."""
    sizes = ["96x58", "44x96"]  # in 256x512 tiles: a centred y offset of 179 and an x offset of 11 (both odd)
    tiles = []
    for i, size in enumerate(sizes):
        src = make_source(tmp_path / f"t{i}.mp4", size=size, video="drawbox=c=white:t=fill", **WHITE_1S)
        tiles.append(prepare_tile(TileSource(src, 0.0, f"l{i}", f"c{i}"), NormalizeOptions(short=ShortPolicy.loop)))
    mp4 = tmp_path / "m.mp4"
    regions, meta = compose_clip(tiles, mp4, tmp_path / "m.wav", NormalizeOptions(short=ShortPolicy.loop))
    frame = read_frames(mp4, [5])[0]
    for size, region, tile in zip(sizes, regions, meta["tiles"], strict=True):
        w, h = map(int, size.split("x"))
        t = Transform.model_validate(tile["transform"])
        part = np.zeros_like(frame)
        part[region.y:region.y + region.h, region.x:region.x + region.w] = \
            frame[region.y:region.y + region.h, region.x:region.x + region.w]
        assert_box(t, white_bbox(part), w, h)
    assert_full_tracks(mp4)


def sine(f: float, amp: float) -> tuple[str, np.ndarray]:
    """An aevalsrc expression and the same signal in numpy (1 s at 48 kHz is enough to know its level)."""
    t = np.arange(48000) / 48000
    return f"{amp}*sin(2*PI*{f}*t)", amp * np.sin(2 * np.pi * f * t)


def db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


LEVELS = {  # the source's channels; its wav is their average here (all 5.1 channels alike, see below)
    "mono -20 dBFS": [sine(440, 0.1 * np.sqrt(2))],
    "stereo, near full scale, L = R": [sine(440, 0.9)] * 2,  # (AAC itself dims a 0.99 sine)
    "stereo, different": [sine(440, 0.5), sine(660, 0.25)],
    "5.1, near full scale, all alike": [sine(440, 0.9)] * 6,
}


@pytest.mark.parametrize("name", list(LEVELS))
def test_levels_kept(tmp_path: Path, name: str) -> None:
    """Mono keeps its level in the wav and in both mp4 channels; stereo goes to the wav as (L + R) / 2, which
    keeps a near full-scale L = R source at its level without clipping; a 5.1 downmix cannot clip either (six
    alike channels keep their level); audio_rms_db is the source's own level."""
    chans = LEVELS[name]
    src = make_source(tmp_path / "s.mkv", seconds=float(SECONDS), audio="|".join(e for e, _ in chans),
                      acodec="pcm_s16le")
    res = normalize_clip(src, 0.0, tmp_path / "o.mp4", tmp_path / "o.wav", NormalizeOptions())
    sig = [x for _, x in chans]
    assert res.meta["audio_rms_db"] == pytest.approx(db(np.concatenate(sig)), abs=0.1)
    assert res.meta["audio_rms_of"] == "source_window"
    wav = read_wav(tmp_path / "o.wav")[0]
    assert db(wav) == pytest.approx(db(sum(sig) / len(sig)), abs=0.1)
    assert np.abs(wav).max() < 0.999  # no clipping
    audio = assert_full_tracks(tmp_path / "o.mp4")
    for ch, x in zip(audio, sig if len(sig) == 2 else sig[:1] * 2, strict=True):
        assert db(ch[AAC_FRAME:-AAC_FRAME]) == pytest.approx(db(x), abs=0.25)


def test_silence_threshold_on_the_source_level(tmp_path: Path) -> None:
    """A 3 s mono source at -55.7 dBFS, padded to 10 s, is not silent at -60 (its wav is -60.9 dBFS);
    at -62 dBFS it is, and the reason gives the measured level."""
    for level, ok in ((-55.7, True), (-62.0, False)):
        expr, _ = sine(440, 10 ** (level / 20) * np.sqrt(2))
        src = make_source(tmp_path / f"q{ok}.mkv", seconds=3.0, audio=expr, acodec="pcm_s16le")
        opts = NormalizeOptions(short=ShortPolicy.pad, silence_db=-60.0)
        if ok:
            res = normalize_clip(src, 0.0, tmp_path / "o.mp4", tmp_path / "o.wav", opts)
            assert res.meta["audio_rms_db"] == pytest.approx(level, abs=0.15) and "silent" not in res.meta
            assert db(read_wav(tmp_path / "o.wav")[0]) < -60  # what the old check measured, and refused
        else:
            with pytest.raises(CollectError) as e:
                normalize_clip(src, 0.0, tmp_path / "o.mp4", tmp_path / "o.wav", opts)
            assert e.value.reason == FailReason.silent and "-62.0 dBFS < -60" in e.value.detail
