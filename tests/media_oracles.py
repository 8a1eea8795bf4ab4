"""Independent decodes that collection tests compare the clips with (plain ffmpeg, no collection code)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from schemas.constants import SAMPLE_RATE, SECONDS
from schemas.media import ffmpeg_exe


def window_audio(path: Path, start: float, timeout: float = 60) -> np.ndarray:
    """A source window's audio as 16 kHz mono float32 on the clip's timeline (sample 0 = the window's start, as
    the wav has it: a stream that starts late is padded), empty when the file has no audio."""
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-ss", f"{start:.3f}", "-t",
            str(SECONDS), "-i", str(path), "-vn", "-af", "aresample=first_pts=0", "-ac", "1", "-ar",
            str(SAMPLE_RATE), "-f", "s16le", "-"]
    p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        return np.zeros(0, np.float32)
    return np.frombuffer(p.stdout, dtype="<i2").astype(np.float32) / 32768.0
