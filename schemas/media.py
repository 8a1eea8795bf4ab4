"""Reading media: probe a video, decode frames, read a wav. No ffprobe on these machines, so PyAV probes.

Heavy libraries (av, soundfile) are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from schemas.atomic import atomic_path
from schemas.errors import UserError


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int          # decoded count when decode=True, else the container's claim
    duration: float      # seconds
    has_audio: bool
    audio_rate: int | None
    audio_channels: int | None
    video_codec: str
    audio_codec: str | None
    # where the video stream ends on ffmpeg's timeline (the file's start time = 0): the container's duration is
    # the longest stream's, and an audio track often outlasts the video by its codec padding
    video_end: float | None = None
    audio_seconds: float | None = None  # the first audio stream's duration from its header (None: not stated)


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped by imageio-ffmpeg (these machines have no system ffmpeg)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _tag_seconds(tag: str | None) -> float | None:
    """Matroska/WebM's per-track DURATION tag, 'HH:MM:SS.nnnnnnnnn', in seconds."""
    try:
        h, m, sec = (tag or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def _stream_end(c: Any, vs: Any) -> float | None:
    """Where a stream ends on ffmpeg's timeline (the file's start = 0): its header duration (mp4/mov), else
    the DURATION tag Matroska/WebM writers put on each track; None when neither is there."""
    first = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
    first -= (c.start_time or 0) / 1_000_000
    if vs.duration and vs.time_base:
        return first + float(vs.duration * vs.time_base)
    tagged = _tag_seconds(vs.metadata.get("DURATION"))
    return None if tagged is None else first + tagged


def probe_video(path: str | Path, decode: bool = False) -> VideoInfo:
    """Metadata of a video file. decode=True counts frames by decoding (catches truncated files)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise UserError(f"{path}: no video stream")
            vs = c.streams.video[0]
            a = c.streams.audio[0] if c.streams.audio else None
            rate = vs.average_rate or vs.guessed_rate or Fraction(0)
            dur = float(c.duration / 1_000_000) if c.duration else float((vs.duration or 0) * (vs.time_base or 0))
            frames = vs.frames
            video_end = _stream_end(c, vs)
            audio_seconds = float(a.duration * a.time_base) if a is not None and a.duration and a.time_base else None
            if decode:
                frames = sum(1 for _ in c.decode(video=0))
            return VideoInfo(width=vs.codec_context.width, height=vs.codec_context.height, fps=float(rate),
                             frames=int(frames), duration=dur, has_audio=a is not None,
                             audio_rate=a.codec_context.sample_rate if a else None,
                             audio_channels=a.codec_context.channels if a else None,
                             video_codec=vs.codec_context.name, audio_codec=a.codec_context.name if a else None,
                             video_end=video_end, audio_seconds=audio_seconds)
    except UserError:
        raise
    except Exception as e:  # av raises InvalidDataError & co on corrupt files
        raise UserError(f"{path}: not a readable video ({type(e).__name__}: {e})") from None


def read_frames(path: str | Path, indices: Sequence[int] | None = None, size: int | None = None) -> np.ndarray:
    """Decode frames (all, or the given indices) as uint8 RGB (N, H, W, 3), optionally resized to size x size."""
    import av

    path = Path(path)
    want = None if indices is None else sorted(set(int(i) for i in indices))
    out: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as c:
            c.streams.video[0].thread_type = "AUTO"
            for i, frame in enumerate(c.decode(video=0)):
                if want is not None and i > want[-1]:
                    break
                if want is None or i in want:
                    if size is not None:
                        frame = frame.reformat(width=size, height=size)
                    out[i] = frame.to_ndarray(format="rgb24")
    except Exception as e:
        raise UserError(f"{path}: cannot decode frames ({type(e).__name__}: {e})") from None
    order = list(range(len(out))) if want is None else [int(i) for i in indices]  # type: ignore[union-attr]
    missing = [i for i in order if i not in out]
    if missing:
        raise UserError(f"{path}: frames {missing[:5]} not in the video ({len(out)} decoded)")
    return np.stack([out[i] for i in order]) if order else np.zeros((0, 0, 0, 3), np.uint8)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples float32 mono-or-(n, ch), sample_rate)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as e:
        raise UserError(f"{path}: not a readable audio file ({e})") from None
    return data, int(sr)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM wav, written atomically."""
    import soundfile as sf


    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.asarray(samples, dtype=np.float32), sample_rate, subtype="PCM_16", format="WAV")
