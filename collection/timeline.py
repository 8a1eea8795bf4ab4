"""A clip's timeline and channels: how a source's 10 s window becomes exactly 300 frames and exactly 10 s of
audio that stay in sync, and how its channels become the clip's stereo (mp4) and mono (wav) tracks.

The rule (docs/collect.md, "Timeline"):
- time 0 is the window's start for both streams: video frame k shows the source at k/30 s (`fps` with
  `start_time=0`), audio sample 0 is the source at 0 s (`aresample` with `first_pts=0`, which pads or trims a
  stream that starts late or early);
- a short source (--short pad|loop) has N whole frames at 30 fps; its *cycle* is N/30 s, and both streams are
  cut there: the video to N frames, the audio to exactly N x 1470 samples at 44.1 kHz (trimmed to the frame
  grid, or padded with silence up to it). `loop` repeats the cycle, so video and audio restart together at
  k*N/30 s; `pad` holds the last frame and continues with silence from N/30 s;
- the loop is made in the filter graph (`loop`/`aloop`), not with `-stream_loop`: the demuxer restarts each
  stream after its own duration (an AAC track outlasts its video by its padding), which drifts more every loop;
- channels: a mono source is copied to both channels (ffmpeg's own upmix puts it at -3 dB), stereo is kept,
  more channels are downmixed to stereo by ffmpeg's matrix scaled to rule out clipping; the wav is
  (L + R) / 2, which keeps a mono source's level and cannot clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from schemas.constants import FPS, NUM_FRAMES, SECONDS

MP4_AUDIO_RATE = 44_100            # the mp4's AAC track; a whole number of samples per frame (1470)
SAMPLES_PER_FRAME = MP4_AUDIO_RATE // FPS
MP4_SAMPLES = MP4_AUDIO_RATE * SECONDS
assert SAMPLES_PER_FRAME * FPS == MP4_AUDIO_RATE


class ShortPolicy(StrEnum):
    reject = "reject"  # fewer than 10 s: fail with too_short
    pad = "pad"        # hold the last frame and pad the audio with silence
    loop = "loop"      # play the source again from its start


@dataclass(frozen=True)
class Window:
    """What the clip takes from its source: `frames` whole frames at 30 fps (a cycle of frames/30 s) and what
    fills the rest of the 10 s. policy None: the source covers the 10 s (within the tolerance)."""

    frames: int = NUM_FRAMES
    policy: ShortPolicy | None = None
    hold: int = 0  # frames the last picture may be held when the source ends a little early (policy None)

    @property
    def audio_samples(self) -> int:
        """The cycle's length in 44.1 kHz samples: exactly `frames` frame durations."""
        return self.frames * SAMPLES_PER_FRAME


def cycle_frames(video_seconds: float) -> int:
    """Whole frames at 30 fps in `video_seconds` of source video (what `fps=30` makes of it), 1..300."""
    return max(1, min(NUM_FRAMES, round(video_seconds * FPS)))


def timed_video(stream: Any, win: Window, fit: Any) -> Any:
    """Source video -> exactly 300 frames at 30 fps, frame k at k/30 s. `fit` maps a stream to the tile size;
    it is applied before the loop so that the loop buffers fitted frames, not full-size source frames."""
    v = stream.filter("fps", FPS, start_time=0)
    if win.policy is None:
        v = fit(v.filter("tpad", stop_mode="clone", stop=win.hold))
    else:
        # the cycle: exactly N frames (the last one held if the container promised a frame more than decodes)
        v = fit(v.filter("tpad", stop_mode="clone", stop=-1).filter("trim", end_frame=win.frames))
        if win.policy == ShortPolicy.loop:
            v = v.filter("loop", loop=-1, size=win.frames)
        else:
            v = v.filter("tpad", stop_mode="clone", stop=-1)
    # frame-count trim (not -frames:v on the output, which ends the mp4 before its audio is all written)
    return v.filter("trim", end_frame=NUM_FRAMES).filter("setpts", f"N/({FPS}*TB)")


def to_stereo(stream: Any, channels: int | None) -> Any:
    """The source's channels as the clip's stereo, by the source's layout (see the module's docstring)."""
    if channels == 1:
        return stream.filter("pan", "stereo|c0<c0|c1<c0")
    if channels == 2:
        return stream.filter("pan", "stereo|c0<c0|c1<c1")  # also names an unlabelled 2-channel layout
    # ffmpeg's standard downmix matrix, scaled so that no output can exceed full scale (in float, which the
    # graph works in, swresample does not scale it by itself: a 5.1 source came out 7.7 dB louder)
    return stream.filter("aresample", ochl="stereo", rematrix_maxval=1.0)


def timed_audio(stream: Any, channels: int | None, win: Window) -> Any:
    """Source audio -> stereo 44.1 kHz, exactly 10 s, sample 0 at the window's start, cut with the video."""
    a = to_stereo(stream, channels).filter("aresample", MP4_AUDIO_RATE, first_pts=0)
    if win.policy is not None:
        a = a.filter("apad").filter("atrim", end_sample=win.audio_samples)
        if win.policy == ShortPolicy.loop:
            a = a.filter("aloop", loop=-1, size=win.audio_samples)
    return exact_audio(a)


def exact_audio(stream: Any) -> Any:
    """Pad with silence / cut to exactly 10 s of 44.1 kHz samples, timestamps by sample count."""
    return (stream.filter("apad").filter("atrim", end_sample=MP4_SAMPLES)
            .filter("asetpts", "N/SR/TB"))


def mono_mix(stereo: Any) -> Any:
    """The wav's mono: (L + R) / 2. A mono source (L = R) keeps its level; the average cannot clip."""
    return stereo.filter("pan", "mono|c0<c0+c1")
