"""Multi-source clips: stitch 2 sources side by side (256x512 each) or 3-4 as a grid, and overlay their
audio after balancing loudness, in one ffmpeg run that writes the same outputs as normalize.

Layouts (x, y, w, h) on the 512x512 frame:
  2: left half | right half
  3: top-left, top-right 256x256; bottom 512x256
  4: 2x2 grid of 256x256
Each tile is fitted with the run's --fit; its Transform (source pixel -> clip pixel, tile offset
included) is kept in the row's meta and its rectangle in the row's regions.

Loudness: each source's 10 s window is decoded and its own level measured (RMS over all channels at its
own rate, the measure normalize uses); a gain brings it to TARGET_DB (capped at MAX_GAIN_DB of boost), so a
quiet violin is not buried under a loud drum. Each tile's picture and sound follow the timeline rule of
collection.timeline (a short tile loops or pads in sync).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collection.normalize import (
    LEVEL_OF,
    NormalizeOptions,
    check_outputs,
    check_silence,
    clip_streams,
    encode,
    f32_level_db,
    geometry,
    inspect_source,
    run_ffmpeg,
    window_of,
)
from collection.reasons import CollectError, FailReason
from schemas.constants import SECONDS, SIZE
from schemas.media import VideoInfo, ffmpeg_exe
from schemas.models import Region

TARGET_DB = -26.0
MAX_GAIN_DB = 30.0
H = SIZE // 2
LAYOUTS: dict[int, list[tuple[int, int, int, int]]] = {
    2: [(0, 0, H, SIZE), (H, 0, H, SIZE)],
    3: [(0, 0, H, H), (H, 0, H, H), (0, H, SIZE, H)],
    4: [(0, 0, H, H), (H, 0, H, H), (0, H, H, H), (H, H, H, H)],
}


@dataclass
class TileSource:
    path: Path
    start: float
    label: str
    source_clip: str          # the index entry's clip id
    info: VideoInfo | None = None
    allowed: dict[str, Any] | None = None
    rms_db: float = -200.0


def source_level_db(path: Path, start: float, timeout: float = 60) -> float:
    """The window's own level (dBFS): RMS over all its channels at its own rate, no downmix, no resampling."""
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-ss", f"{start:.3f}", "-t",
            str(SECONDS), "-i", str(path), "-map", "0:a:0", "-acodec", "pcm_f32le", "-f", "f32le", "-"]
    p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return f32_level_db(p.stdout) if p.returncode == 0 else -200.0


def prepare_tile(t: TileSource, opts: NormalizeOptions) -> TileSource:
    """Probe and level one tile's source; raises CollectError for the same reasons as a single clip."""
    t.info, t.allowed = inspect_source(t.path, t.start, opts)
    if t.info.has_audio:
        t.rms_db = source_level_db(t.path, t.start)
        check_silence(t.path.name, t.rms_db, opts, t.allowed)
    return t


def gain_db(level: float) -> float:
    if level <= -199:
        return 0.0
    return float(min(MAX_GAIN_DB, TARGET_DB - level))


def compose_clip(tiles: list[TileSource], mp4: Path, wav: Path, opts: NormalizeOptions) -> tuple[list[Region],
                                                                                                 dict[str, Any]]:
    """Stitch prepared tiles into mp4 + wav (temp paths). Returns the regions and the row's meta."""
    import ffmpeg

    layout = LAYOUTS.get(len(tiles))
    if layout is None:
        raise CollectError(FailReason.mix_incomplete, f"{len(tiles)} tiles; a mix has 2 to 4")
    videos, audios, regions, meta_tiles = [], [], [], []
    for t, (x, y, w, h) in zip(tiles, layout, strict=True):
        assert t.info is not None and t.allowed is not None, "prepare_tile first"
        geo = geometry(t.info.width, t.info.height, opts.fit, w, h)
        v, a, _ = clip_streams(t.path, t.start, t.info, window_of(t.info, t.start, opts, t.allowed), geo, w, h)
        videos.append(v)
        g = gain_db(t.rms_db) if t.info.has_audio else 0.0
        audios.append(a.filter("volume", f"{g:.2f}dB"))
        regions.append(Region(x=x, y=y, w=w, h=h, keyword=t.label, source_clip=t.source_clip))
        meta_tiles.append({"source_clip": t.source_clip, "label": t.label, "source_path": str(t.path),
                           "start": t.start, "rms_db": round(t.rms_db, 1), "rms_of": LEVEL_OF, "gain_db": round(g, 2),
                           "transform": geo.transform(t.start, x, y).model_dump(mode="json"), **t.allowed})
    video = ffmpeg.filter(videos, "xstack", inputs=len(videos), layout="|".join(f"{x}_{y}" for x, y, *_ in layout))
    audio = ffmpeg.filter(audios, "amix", inputs=len(audios), duration="longest", normalize=0)
    run_ffmpeg(encode(video, audio, mp4, wav, opts), opts.timeout)
    check_outputs(mp4, wav, "+".join(t.path.name for t in tiles))
    return regions, {"layout": len(tiles), "tiles": meta_tiles, "target_db": TARGET_DB}
