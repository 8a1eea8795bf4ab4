"""Normalize one source video into a clip: 512x512 (--fit pad|crop|stretch), constant 30 fps, exactly 300
frames, AAC audio in the mp4, and a 16 kHz mono wav of exactly 160 000 samples.

One ffmpeg run (imageio-ffmpeg's binary; the graph is built with ffmpeg-python) writes both files and pipes
back the window's raw audio, whose level is the silence check's measure. The source is checked first (a
video? long enough? audio?) so that a rejection says why, and the outputs are checked after, so a truncated
source cannot slip through as padded frames. Placement is computed here in integers (geometry); the timeline
(loops and pads in sync) and the channel rules are collection.timeline's.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from collection.reasons import CollectError, FailReason
from collection.timeline import (
    MP4_AUDIO_RATE,
    ShortPolicy,
    Window,
    cycle_frames,
    exact_audio,
    mono_mix,
    timed_audio,
    timed_video,
)
from schemas.constants import FPS, NUM_FRAMES, NUM_SAMPLES, SAMPLE_RATE, SECONDS, SIZE
from schemas.errors import UserError
from schemas.media import VideoInfo, ffmpeg_exe, probe_video
from schemas.models import Fit, Transform

AAC_FRAME = 1024  # samples per AAC frame: the mp4's audio length is exact to within one
_VIDEO_MAGIC = (b"ftyp", b"\x1a\x45\xdf\xa3", b"RIFF", b"FLV", b"\x00\x00\x01\xba", b"OggS")


class NoAudioPolicy(StrEnum):
    reject = "reject"
    silence = "silence"  # add a silent track (the clip then has no sound source: use deliberately)


@dataclass(frozen=True)
class NormalizeOptions:
    fit: Fit = Fit.pad
    short: ShortPolicy = ShortPolicy.reject
    no_audio: NoAudioPolicy = NoAudioPolicy.reject
    allow_silent: bool = False
    # A source may lack this much of its 10 s (VGG-Sound cuts are ~9.97-10.07 s) before it is "short";
    # the gap is filled by holding the last frame. Kept small so that a truncated file is still caught.
    tolerance: float = 0.5
    silence_db: float = -60.0  # the source's RMS (dBFS, its window, all channels) below this is silent
    crf: int = 20
    preset: str = "veryfast"
    threads: int = 0  # ffmpeg's own threads per job; 0 lets ffmpeg choose
    timeout: float = 300.0


@dataclass
class Geometry:
    """How a w x h source lands on a W x H tile: the ffmpeg steps and the Transform they amount to."""

    fit: Fit
    src_w: int
    src_h: int
    scaled_w: int
    scaled_h: int
    offset_x: int  # where the scaled image's top-left lands on the tile (negative when cropped)
    offset_y: int

    def transform(self, src_start: float = 0.0, tile_x: int = 0, tile_y: int = 0) -> Transform:
        return Transform(fit=self.fit, src_width=self.src_w, src_height=self.src_h,
                         scale_x=self.scaled_w / self.src_w, scale_y=self.scaled_h / self.src_h,
                         offset_x=float(self.offset_x + tile_x), offset_y=float(self.offset_y + tile_y),
                         src_start=src_start)


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def _even_floor(x: int) -> int:
    return x - x % 2


def geometry(w: int, h: int, fit: Fit, tw: int = SIZE, th: int = SIZE) -> Geometry:
    """Integer placement: even sizes and even offsets, because ffmpeg's pad and crop move an odd position of a
    4:2:0 image to the even one below it. The image is centred to within a pixel and the Transform records
    exactly the pixels ffmpeg writes."""
    if fit == Fit.stretch:
        return Geometry(fit, w, h, tw, th, 0, 0)
    s = min(tw / w, th / h) if fit == Fit.pad else max(tw / w, th / h)
    sw, sh = _even(w * s), _even(h * s)
    if fit == Fit.pad:
        sw, sh = min(sw, tw), min(sh, th)
        return Geometry(fit, w, h, sw, sh, _even_floor((tw - sw) // 2), _even_floor((th - sh) // 2))
    sw, sh = max(sw, tw), max(sh, th)
    return Geometry(fit, w, h, sw, sh, -_even_floor((sw - tw) // 2), -_even_floor((sh - th) // 2))


def fit_video(stream: Any, g: Geometry, tw: int = SIZE, th: int = SIZE) -> Any:
    """Apply the geometry to an ffmpeg-python video stream, ending in a tw x th, square-pixel 4:2:0 image
    (the format fixed before pad/crop, so that their even-position rounding is the one geometry() assumed)."""
    stream = stream.filter("scale", g.scaled_w, g.scaled_h, flags="bicubic").filter("format", "yuv420p")
    if g.fit == Fit.pad and (g.scaled_w, g.scaled_h) != (tw, th):
        stream = stream.filter("pad", tw, th, g.offset_x, g.offset_y, color="black")
    elif g.fit == Fit.crop and (g.scaled_w, g.scaled_h) != (tw, th):
        stream = stream.filter("crop", tw, th, -g.offset_x, -g.offset_y)
    return stream.filter("setsar", 1)


def classify_unreadable(path: Path, err: str) -> CollectError:
    """A file PyAV cannot open: a damaged video if it starts like a container, otherwise not a video."""
    try:
        head = path.read_bytes()[:16] if path.stat().st_size < 64 else path.open("rb").read(16)
    except OSError:
        head = b""
    if any(m in head[:12] for m in _VIDEO_MAGIC) or head[:1] == b"\x47":
        return CollectError(FailReason.corrupt_video, f"{path.name}: cannot be read ({err})")
    return CollectError(FailReason.not_video, f"{path.name}: not a video file ({err})")


def inspect_source(path: Path, start: float, opts: NormalizeOptions) -> tuple[VideoInfo, dict[str, Any]]:
    """Probe the source and apply the reject rules. Returns the info and what was allowed (for the row)."""
    if not path.is_file():
        raise CollectError(FailReason.missing_media, f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CollectError(FailReason.not_video, f"{path.name}: empty file")
    try:
        info = probe_video(path)
    except UserError as e:
        msg = str(e).split(": ", 1)[-1]
        if "no video stream" in msg:
            raise CollectError(FailReason.not_video, f"{path.name}: no video stream") from None
        raise classify_unreadable(path, msg) from None
    if info.width < 2 or info.height < 2:
        raise CollectError(FailReason.corrupt_video, f"{path.name}: video size {info.width}x{info.height}")
    allowed: dict[str, Any] = {}
    # the picture's own end: an audio track that outlasts the video does not make a short source long
    avail = min(info.duration, info.video_end if info.video_end is not None else info.duration) - start
    if avail < SECONDS - opts.tolerance:
        if opts.short == ShortPolicy.reject or avail <= 0:
            raise CollectError(FailReason.too_short, f"{path.name}: {max(avail, 0):.2f} s from {start:g} s, "
                                                     f"need {SECONDS} s (--short pad|loop allows it)")
        allowed["short"] = {"policy": opts.short.value, "source_seconds": round(avail, 3)}
    if not info.has_audio:
        if opts.no_audio == NoAudioPolicy.reject:
            raise CollectError(FailReason.no_audio, f"{path.name}: no audio stream (--no-audio silence allows it)")
        allowed["no_audio"] = {"policy": opts.no_audio.value}
    return info, allowed


def window_of(info: VideoInfo, start: float, opts: NormalizeOptions, allowed: dict[str, Any]) -> Window:
    """The clip's timeline (collection.timeline): a short source's cycle is its whole frames at 30 fps."""
    short = allowed.get("short")
    if short is None:
        return Window(hold=math.ceil(opts.tolerance * FPS) + 1)
    return Window(frames=cycle_frames(short["source_seconds"]), policy=ShortPolicy(short["policy"]))


def clip_streams(path: Path, start: float, info: VideoInfo, win: Window, geo: Geometry, tw: int = SIZE,
                 th: int = SIZE, level: bool = False) -> tuple[Any, Any, Any]:
    """(video, audio, level) ffmpeg-python streams of one source's 10 s window on the clip's timeline: the video
    fitted to tw x th, 300 frames; the audio stereo 44.1 kHz, exactly 10 s; and with `level`, the window's raw
    audio (the source's own samples, before any downmix or padding) for measuring, else None."""
    import ffmpeg

    kw: dict[str, Any] = {"t": SECONDS}
    if start > 0:
        kw["ss"] = f"{start:.3f}"
    inp = ffmpeg.input(str(path), **kw)
    video = timed_video(inp.video, win, lambda v: fit_video(v, geo, tw, th))
    if not info.has_audio:
        silence = ffmpeg.input(f"anullsrc=r={MP4_AUDIO_RATE}:cl=stereo", f="lavfi", t=SECONDS).audio
        return video, exact_audio(silence), None
    raw = inp.audio
    measured = None
    if level:
        split = raw.filter_multi_output("asplit", 2)
        raw, measured = split[0], split[1]
    return video, timed_audio(raw, info.audio_channels, win), measured


def encode(video: Any, audio: Any, mp4: Path, wav: Path, opts: NormalizeOptions, level: Any = None) -> list[str]:
    """The ffmpeg argv writing the mp4 (H.264 + AAC), the 16 kHz mono wav, and with `level` the raw samples to
    measure (f32 on stdout), from one graph. `video` has its 300 frames and `audio` its 10 s already."""
    import ffmpeg

    split = audio.filter_multi_output("asplit", 2)
    a_mp4, a_wav = split[0], split[1]
    a_wav = (mono_mix(a_wav).filter("aresample", SAMPLE_RATE)
             .filter("apad", whole_len=NUM_SAMPLES).filter("atrim", end_sample=NUM_SAMPLES))
    vargs: dict[str, Any] = {"vcodec": "libx264", "pix_fmt": "yuv420p", "preset": opts.preset, "crf": opts.crf,
                             "r": FPS, "acodec": "aac", "ar": MP4_AUDIO_RATE, "b:a": "128k",
                             "movflags": "+faststart", "f": "mp4"}
    if opts.threads:
        vargs["threads"] = opts.threads
    outs = [ffmpeg.output(video, a_mp4, str(mp4), **vargs),
            ffmpeg.output(a_wav, str(wav), acodec="pcm_s16le", f="wav")]
    if level is not None:
        outs.append(ffmpeg.output(level.filter("aformat", sample_fmts="flt"), "pipe:", acodec="pcm_f32le",
                                  f="f32le"))
    merged = ffmpeg.merge_outputs(*outs).global_args("-hide_banner", "-nostdin", "-loglevel", "error")
    return ffmpeg.compile(merged.overwrite_output(), cmd=ffmpeg_exe())


def run_ffmpeg(argv: list[str], timeout: float) -> bytes:
    """Run ffmpeg; returns what it wrote to stdout (the level samples, when asked for)."""
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CollectError(FailReason.transcode_failed, f"ffmpeg ran over {timeout:.0f} s") from None
    if p.returncode != 0:
        last = (p.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"])[-1]
        raise CollectError(FailReason.transcode_failed, f"ffmpeg exit {p.returncode}: {last[:300]}")
    return p.stdout


def rms_db(samples: np.ndarray) -> float:
    """RMS level in dBFS over all samples (all channels alike); -200 for nothing or digital silence."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return 20 * math.log10(rms) if rms > 0 else -200.0


def f32_level_db(raw: bytes) -> float:
    return rms_db(np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<f4"))


def check_outputs(mp4: Path, wav: Path, source: str) -> None:
    """Cheap checks from headers (no decode): 512x512, 300 frames at 30 fps, 10 s of AAC (to within one AAC
    frame), 160 000 mono samples at 16 kHz."""
    import soundfile as sf

    info = probe_video(mp4)
    if (info.width, info.height) != (SIZE, SIZE) or not info.has_audio:
        raise CollectError(FailReason.transcode_failed, f"output {info.width}x{info.height}, audio={info.has_audio}")
    if info.audio_seconds is None or abs(info.audio_seconds - SECONDS) > AAC_FRAME / MP4_AUDIO_RATE:
        raise CollectError(FailReason.transcode_failed, f"mp4 audio track lasts {info.audio_seconds} s, not {SECONDS}")
    if info.frames != NUM_FRAMES:
        # with the last-frame hold capped at the tolerance, too few frames means the source stopped early
        raise CollectError(FailReason.corrupt_video, f"{source}: only {info.frames} of {NUM_FRAMES} frames decode "
                                                     "(truncated or damaged)")
    si = sf.info(str(wav))
    if si.samplerate != SAMPLE_RATE or si.channels != 1 or si.frames != NUM_SAMPLES:
        raise CollectError(FailReason.transcode_failed, f"wav {si.samplerate} Hz x{si.channels}, {si.frames} samples")


LEVEL_OF = "source_window"  # what audio_rms_db measures: the source's own samples in the 10 s window


@dataclass
class Normalized:
    transform: Transform
    meta: dict[str, Any] = field(default_factory=dict)


def build(src: Path, start: float, mp4: Path, wav: Path, opts: NormalizeOptions
          ) -> tuple[list[str], VideoInfo, dict[str, Any], Geometry]:
    """Check the source and build the ffmpeg argv that normalizes it (bench/collect.py runs the same argv)."""
    info, allowed = inspect_source(src, start, opts)
    geo = geometry(info.width, info.height, opts.fit)
    video, audio, level = clip_streams(src, start, info, window_of(info, start, opts, allowed), geo, level=True)
    return encode(video, audio, mp4, wav, opts, level), info, allowed, geo


def check_silence(name: str, level_db: float, opts: NormalizeOptions, allowed: dict[str, Any]) -> None:
    if level_db < opts.silence_db:
        if not opts.allow_silent:
            raise CollectError(FailReason.silent, f"{name}: audio RMS {level_db:.1f} dBFS < {opts.silence_db:g} "
                                                  "(--allow-silent keeps it)")
        allowed["silent"] = {"policy": "allowed"}


def normalize_clip(src: Path, start: float, mp4: Path, wav: Path, opts: NormalizeOptions) -> Normalized:
    """Write `mp4` and `wav` (give temp paths: on error they may hold garbage) from src[start, start+10]."""
    argv, info, allowed, geo = build(src, start, mp4, wav, opts)
    raw = run_ffmpeg(argv, opts.timeout)
    check_outputs(mp4, wav, src.name)
    meta: dict[str, Any] = {"source": {"width": info.width, "height": info.height, "fps": round(info.fps, 3),
                                       "duration": round(info.duration, 3), "audio_rate": info.audio_rate,
                                       "audio_channels": info.audio_channels}}
    if info.has_audio:
        level = f32_level_db(raw)
        check_silence(src.name, level, opts, allowed)
        meta.update(audio_rms_db=round(level, 1), audio_rms_of=LEVEL_OF)
    meta.update(allowed)
    return Normalized(transform=geo.transform(src_start=start), meta=meta)
