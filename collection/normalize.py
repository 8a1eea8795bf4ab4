"""Normalize one source video into a clip: 512x512 (--fit pad|crop|stretch), constant 30 fps, exactly 300
frames, AAC audio in the mp4, and a 16 kHz mono wav of exactly 160 000 samples.

One ffmpeg run (imageio-ffmpeg's binary; the graph is built with ffmpeg-python) writes both files. The
source is checked first (a video? long enough? audio? silent?) so that a rejection says why, and the
outputs are checked after, so a truncated source cannot slip through as padded frames.
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
from schemas.constants import FPS, NUM_FRAMES, NUM_SAMPLES, SAMPLE_RATE, SECONDS, SIZE
from schemas.errors import UserError
from schemas.media import VideoInfo, ffmpeg_exe, probe_video
from schemas.models import Fit, Transform

MP4_AUDIO_RATE = 44_100
_VIDEO_MAGIC = (b"ftyp", b"\x1a\x45\xdf\xa3", b"RIFF", b"FLV", b"\x00\x00\x01\xba", b"OggS")


class ShortPolicy(StrEnum):
    reject = "reject"  # fewer than 10 s: fail with too_short
    pad = "pad"        # hold the last frame and pad the audio with silence
    loop = "loop"      # play the source again from its start


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
    silence_db: float = -60.0  # RMS below this (dBFS, 16 kHz mono) counts as silent
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


def geometry(w: int, h: int, fit: Fit, tw: int = SIZE, th: int = SIZE) -> Geometry:
    if fit == Fit.stretch:
        return Geometry(fit, w, h, tw, th, 0, 0)
    s = min(tw / w, th / h) if fit == Fit.pad else max(tw / w, th / h)
    sw, sh = _even(w * s), _even(h * s)
    if fit == Fit.pad:
        sw, sh = min(sw, tw), min(sh, th)
    else:
        sw, sh = max(sw, tw), max(sh, th)
    return Geometry(fit, w, h, sw, sh, (tw - sw) // 2, (th - sh) // 2)


def fit_video(stream: Any, g: Geometry, tw: int = SIZE, th: int = SIZE) -> Any:
    """Apply the geometry to an ffmpeg-python video stream, ending in a tw x th, square-pixel image."""
    stream = stream.filter("scale", g.scaled_w, g.scaled_h, flags="bicubic")
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
    avail = info.duration - start
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


def source_streams(path: Path, start: float, info: VideoInfo, opts: NormalizeOptions,
                   allowed: dict[str, Any]) -> tuple[Any, Any]:
    """(video, audio) ffmpeg-python streams of the source's 10 s window, already 30 fps CFR, 300+ frames."""
    import ffmpeg

    loop = allowed.get("short", {}).get("policy") == ShortPolicy.loop.value
    kw: dict[str, Any] = {"t": SECONDS}
    if start > 0:
        kw["ss"] = f"{start:.3f}"
    if loop:
        kw["stream_loop"] = -1
    inp = ffmpeg.input(str(path), **kw)
    if allowed.get("short", {}).get("policy") == ShortPolicy.pad.value:
        hold = -1  # hold the last frame as long as needed
    else:
        hold = math.ceil(opts.tolerance * FPS) + 1
    video = inp.video.filter("fps", FPS).filter("tpad", stop_mode="clone", stop=hold)
    if info.has_audio:
        audio = inp.audio
    else:
        audio = ffmpeg.input(f"anullsrc=r={MP4_AUDIO_RATE}:cl=stereo", f="lavfi", t=SECONDS).audio
    return video, audio


def encode(video: Any, audio: Any, mp4: Path, wav: Path, opts: NormalizeOptions) -> list[str]:
    """The ffmpeg argv writing the mp4 (H.264 + AAC, 300 frames) and the 16 kHz mono wav from one graph."""
    import ffmpeg

    split = audio.filter_multi_output("asplit", 2)
    a_mp4, a_wav = split[0], split[1]
    a_mp4 = (a_mp4.filter("aformat", sample_rates=MP4_AUDIO_RATE, channel_layouts="stereo")
             .filter("apad", whole_len=MP4_AUDIO_RATE * SECONDS).filter("atrim", end_sample=MP4_AUDIO_RATE * SECONDS))
    a_wav = (a_wav.filter("aformat", sample_rates=SAMPLE_RATE, channel_layouts="mono")
             .filter("apad", whole_len=NUM_SAMPLES).filter("atrim", end_sample=NUM_SAMPLES))
    vargs: dict[str, Any] = {"vcodec": "libx264", "pix_fmt": "yuv420p", "preset": opts.preset, "crf": opts.crf,
                             "r": FPS, "frames:v": NUM_FRAMES, "acodec": "aac", "b:a": "128k",
                             "movflags": "+faststart", "f": "mp4"}
    if opts.threads:
        vargs["threads"] = opts.threads
    out_mp4 = ffmpeg.output(video, a_mp4, str(mp4), **vargs)
    out_wav = ffmpeg.output(a_wav, str(wav), acodec="pcm_s16le", f="wav")
    merged = ffmpeg.merge_outputs(out_mp4, out_wav).global_args("-hide_banner", "-nostdin", "-loglevel", "error")
    return ffmpeg.compile(merged.overwrite_output(), cmd=ffmpeg_exe())


def run_ffmpeg(argv: list[str], timeout: float) -> None:
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CollectError(FailReason.transcode_failed, f"ffmpeg ran over {timeout:.0f} s") from None
    if p.returncode != 0:
        last = (p.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"])[-1]
        raise CollectError(FailReason.transcode_failed, f"ffmpeg exit {p.returncode}: {last[:300]}")


def wav_level_db(wav: Path) -> float:
    """RMS level (dBFS) of the written wav: free to read, unlike a second decode of the source."""
    import soundfile as sf

    data, _ = sf.read(str(wav), dtype="float32", always_2d=False)
    rms = float(np.sqrt(np.mean(np.square(data, dtype=np.float64)))) if data.size else 0.0
    return 20 * math.log10(rms) if rms > 0 else -200.0


def check_outputs(mp4: Path, wav: Path, source: str) -> None:
    """Cheap checks from headers (no decode): 512x512, 300 frames at 30 fps, audio, 160 000 mono samples."""
    import soundfile as sf

    info = probe_video(mp4)
    if (info.width, info.height) != (SIZE, SIZE) or not info.has_audio:
        raise CollectError(FailReason.transcode_failed, f"output {info.width}x{info.height}, audio={info.has_audio}")
    if info.frames != NUM_FRAMES:
        # with the last-frame hold capped at the tolerance, too few frames means the source stopped early
        raise CollectError(FailReason.corrupt_video, f"{source}: only {info.frames} of {NUM_FRAMES} frames decode "
                                                     "(truncated or damaged)")
    si = sf.info(str(wav))
    if si.samplerate != SAMPLE_RATE or si.channels != 1 or si.frames != NUM_SAMPLES:
        raise CollectError(FailReason.transcode_failed, f"wav {si.samplerate} Hz x{si.channels}, {si.frames} samples")


@dataclass
class Normalized:
    transform: Transform
    meta: dict[str, Any] = field(default_factory=dict)


def normalize_clip(src: Path, start: float, mp4: Path, wav: Path, opts: NormalizeOptions) -> Normalized:
    """Write `mp4` and `wav` (give temp paths: on error they may hold garbage) from src[start, start+10]."""
    info, allowed = inspect_source(src, start, opts)
    geo = geometry(info.width, info.height, opts.fit)
    video, audio = source_streams(src, start, info, opts, allowed)
    run_ffmpeg(encode(fit_video(video, geo), audio, mp4, wav, opts), opts.timeout)
    check_outputs(mp4, wav, src.name)
    level = wav_level_db(wav)
    if info.has_audio and level < opts.silence_db:
        if not opts.allow_silent:
            raise CollectError(FailReason.silent, f"{src.name}: audio RMS {level:.0f} dBFS < {opts.silence_db:g} "
                                                  "(--allow-silent keeps it)")
        allowed["silent"] = {"policy": "allowed"}
    meta: dict[str, Any] = {"source": {"width": info.width, "height": info.height, "fps": round(info.fps, 3),
                                       "duration": round(info.duration, 3), "audio_rate": info.audio_rate},
                            "audio_rms_db": round(level, 1), **allowed}
    return Normalized(transform=geo.transform(src_start=start), meta=meta)
