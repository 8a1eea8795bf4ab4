"""Get a source video for an index entry: a local copy from --media-dir, or a yt-dlp download of exactly
the clip's [start, start + 10 s] section, with retries and backoff, rate limiting and --cookies.

yt-dlp can exit 0 with a broken file (a 261-byte mp4 from a server without Range support), so whatever
arrives is probed: it must be a readable video of about 10 s, or the clip fails with bad_download.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from collection.index import IndexEntry
from collection.reasons import CollectError, FailReason
from schemas.constants import SECONDS
from schemas.errors import UserError
from schemas.media import ffmpeg_exe, probe_video

DEFAULT_URL = "https://www.youtube.com/watch?v={youtube_id}"
VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".mov")
# Messages after which retrying cannot help: the video is gone or never was.
_PERMANENT = ("video unavailable", "private video", "http error 404", "http error 410", "http error 403",
              "not available", "has been removed", "unsupported url", "account associated", "copyright",
              "sign in to confirm your age", "members-only")


@dataclass(frozen=True)
class FetchOptions:
    media_dir: Path | None = None
    url_template: str = DEFAULT_URL
    cookies: Path | None = None
    retries: int = 3            # download attempts after the first, for transient errors
    backoff: float = 2.0        # seconds before the first retry; doubles each time (with jitter)
    rate_limit: int | None = None  # bytes/s per download (yt-dlp's ratelimit)
    min_interval: float = 0.0   # seconds between the starts of two downloads in one worker
    socket_timeout: float = 20.0
    tolerance: float = 0.5      # an arrived section may be this much shorter than 10 s


@dataclass(frozen=True)
class Fetched:
    path: Path
    start: float      # where the clip starts inside `path`
    downloaded: bool  # True: a temp file the caller deletes


def parse_rate(text: str | None) -> int | None:
    """'500K', '2M', '1.5M' or bytes -> bytes/s."""
    if not text:
        return None
    t = text.strip().upper().removesuffix("B")
    mult = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise UserError(f"--rate-limit {text!r}: use bytes per second like 500K or 2M") from None


def local_file(entry: IndexEntry, media_dir: Path | None) -> Path:
    """The local copy of the entry, or CollectError(missing_media)."""
    assert entry.local_name is not None
    name = Path(entry.local_name)
    if name.is_absolute():
        candidates = [name]
    elif media_dir is not None:
        candidates = [media_dir / name] + [media_dir / name.with_suffix(x) for x in VIDEO_EXTS if x != name.suffix]
    else:
        candidates = []
    for c in candidates:
        if c.is_file():
            return c
    where = str(candidates[0]) if candidates else f"{name} (no --media-dir)"
    raise CollectError(FailReason.missing_media, f"{where}: no such file")


_last_download = 0.0


def _throttle(min_interval: float) -> None:
    global _last_download
    wait = _last_download + min_interval - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    _last_download = time.monotonic()


def _ffmpeg_dir(work: Path) -> Path:
    """A folder with `ffmpeg` -> imageio-ffmpeg's binary: yt-dlp looks for that name (ffmpeg_location
    pointing at the versioned binary is not enough for section downloads)."""
    bindir = work / ".bin"
    link = bindir / "ffmpeg"
    if not link.exists():
        bindir.mkdir(parents=True, exist_ok=True)
        tmp = bindir / f".ffmpeg-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(ffmpeg_exe())
        os.replace(tmp, link)
    return bindir


@contextlib.contextmanager
def _on_path(bindir: Path) -> Iterator[None]:
    """`bindir` first on PATH while yt-dlp runs, then PATH as it was: left in place, the `ffmpeg` there
    (with no ffprobe beside it) would mislead other libraries in this process, e.g. gradio's video check."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{bindir}{os.pathsep}{old}"
    try:
        yield
    finally:
        os.environ["PATH"] = old


class _Log:
    """Collects yt-dlp's messages instead of printing them (the runner owns the terminal)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        self.errors.append(msg)


def check_download(path: Path, expect: float, tolerance: float) -> None:
    try:
        info = probe_video(path)
    except UserError as e:
        raise CollectError(FailReason.bad_download, f"{path.name} ({path.stat().st_size} bytes) is not a readable "
                                                    f"video: {str(e).split(': ', 1)[-1]}") from None
    if info.duration < expect - tolerance or info.duration > expect + 5:
        raise CollectError(FailReason.bad_download, f"{path.name}: {info.duration:.2f} s arrived, expected "
                                                    f"{expect:g} s")


def download(entry: IndexEntry, opts: FetchOptions, work: Path) -> Fetched:
    """yt-dlp the [start, start+10] section into `work` (a folder of this task's own)."""
    import yt_dlp
    from yt_dlp.utils import DownloadError, download_range_func

    if not entry.youtube_id:
        raise CollectError(FailReason.missing_media, f"{entry.clip_id}: no YouTube id to download and no local copy")
    work.mkdir(parents=True, exist_ok=True)
    bindir = _ffmpeg_dir(work.parent)
    url = opts.url_template.format(youtube_id=entry.youtube_id, start=int(entry.start), clip_id=entry.clip_id)
    log = _Log()
    ydl_opts = {
        "outtmpl": str(work / f"{entry.clip_id}.%(ext)s"),
        "format": "bv*[height<=720]+ba/b[height<=720]/bv*+ba/b",
        "merge_output_format": "mp4",
        "download_ranges": download_range_func(None, [(entry.start, entry.start + SECONDS)]),
        "ffmpeg_location": str(bindir),
        "noplaylist": True, "quiet": True, "no_warnings": True, "noprogress": True, "overwrites": True,
        "retries": 0, "fragment_retries": 0, "socket_timeout": opts.socket_timeout, "logger": log,
        "cachedir": False,
    }
    if opts.cookies is not None:
        ydl_opts["cookiefile"] = str(opts.cookies)
    if opts.rate_limit:
        ydl_opts["ratelimit"] = opts.rate_limit
    rng = random.Random(entry.clip_id)  # jitter, reproducible per clip
    for attempt in range(opts.retries + 1):
        for old in work.glob(f"{entry.clip_id}.*"):
            old.unlink()
        _throttle(opts.min_interval)
        try:
            with _on_path(bindir), yt_dlp.YoutubeDL(ydl_opts) as ydl:  # type: ignore[arg-type]
                ydl.download([url])
        except DownloadError as e:
            msg = (log.errors[-1] if log.errors else str(e)).removeprefix("ERROR: ")
            if any(p in msg.lower() for p in _PERMANENT):
                raise CollectError(FailReason.unavailable, msg[:300]) from None
            if attempt == opts.retries:
                raise CollectError(FailReason.network, f"{msg[:250]} (after {attempt + 1} attempts)") from None
            time.sleep(opts.backoff * 2**attempt * (0.75 + 0.5 * rng.random()))
            continue
        got = sorted(p for p in work.glob(f"{entry.clip_id}.*") if p.suffix in VIDEO_EXTS)
        if not got:
            raise CollectError(FailReason.bad_download, f"{url}: yt-dlp reported success but wrote no video")
        check_download(got[0], SECONDS, opts.tolerance)
        return Fetched(got[0], 0.0, downloaded=True)
    raise AssertionError("unreachable")


def fetch(entry: IndexEntry, opts: FetchOptions, work: Path) -> Fetched:
    """Local copy when --media-dir is given (or the index names a file), else a download."""
    if opts.media_dir is not None or (entry.local_name and Path(entry.local_name).is_absolute()):
        return Fetched(local_file(entry, opts.media_dir), entry.media_start, downloaded=False)
    return download(entry, opts, work)
