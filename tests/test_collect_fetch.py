"""The yt-dlp path end to end against a loopback HTTP server (127.0.0.1 only) serving real clips."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from collection.cli import app
from collection.fetch import check_download, parse_rate
from collection.reasons import CollectError, FailReason
from schemas.errors import UserError
from schemas.media import ffmpeg_exe
from schemas.models import ClipStatus
from schemas.root import DatasetRoot
from schemas.validate import validate_root


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support (python's own server has none; yt-dlp needs it for seeking)."""

    seen_cookies: list[str] = []

    def log_message(self, *a: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        if c := self.headers.get("Cookie"):
            self.seen_cookies.append(c)
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        size = os.path.getsize(path)
        f = open(path, "rb")  # noqa: SIM115 - closed by the base class
        m = re.match(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if m and (m[1] or m[2]):
            a = int(m[1]) if m[1] else size - int(m[2])
            b = min(int(m[2]) if m[1] and m[2] else size - 1, size - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{size}")
            f.seek(a)
            self._left = b - a + 1
        else:
            self.send_response(200)
            self._left = size
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(self._left))
        self.end_headers()
        return f

    def copyfile(self, src, dst) -> None:  # type: ignore[no-untyped-def]
        try:
            while self._left > 0 and (buf := src.read(min(65536, self._left))):
                dst.write(buf)
                self._left -= len(buf)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (ffmpeg seeks away): normal


@pytest.fixture()
def served(shared_data: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A server on 127.0.0.1 with a 20 s 'YouTube video' (a real clip twice, faststart) and a real clip as is."""
    d = tmp_path / "www"
    d.mkdir()
    subprocess.run([ffmpeg_exe(), "-v", "error", "-stream_loop", "1", "-i",
                    str(shared_data / "media/vggsound/M1pPtg6a_g8_000230.mp4"), "-c", "copy", "-movflags",
                    "+faststart", str(d / "M1pPtg6a_g8.mp4")], check=True)
    shutil.copy(shared_data / "media/vggsound/nLKEdmVu3FY_000040.mp4", d / "nLKEdmVu3FY.mp4")  # moov at the end
    RangeHandler.seen_cookies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(d)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{youtube_id}}.mp4", d
    finally:
        server.shutdown()
        server.server_close()


def write_index(path: Path) -> Path:
    path.write_text("M1pPtg6a_g8,5,playing piano,test\n"
                    "nLKEdmVu3FY,0,orchestra,test\n"
                    "AAAAAAAAAAA,0,orchestra,test\n")  # not on the server: 404
    return path


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(*args: object, code: int = 0) -> str:
    r = CliRunner().invoke(app, [*map(str, args), "--quiet"])
    assert r.exit_code == code, (r.output, r.exception)
    return r.output


@pytest.mark.slow
def test_ytdlp_sections_network_failure_and_rerun(served: tuple[str, Path], tmp_path: Path) -> None:
    from media_oracles import window_audio

    from schemas.media import read_wav

    url, www = served
    index = write_index(tmp_path / "vggsound.csv")
    root = tmp_path / "root"
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc123\n")
    common = [root, "--source", "vggsound", "--index", index, "--keywords", "playing piano,orchestra",
              "--retries", "1", "--backoff", "0.05"]
    # 1) the network is down: every clip fails with its reason, after a retry, and the run finishes
    # (nothing collected: exit 1, and the summary is printed even with --quiet)
    out = run(*common, "--url-template", f"http://127.0.0.1:{closed_port()}/{{youtube_id}}.mp4", code=1)
    assert "failed 3 (network 3)" in out and "error: all 3 clip(s) failed" in out
    r = DatasetRoot.open(root)
    rows = r.catalog.rows()
    assert len(rows) == 3 and all(x.status == ClipStatus.failed for x in rows)
    assert all(x.reason and x.reason.startswith("network: ") and "after 2 attempts" in x.reason for x in rows)
    # 2) same command with the server up: downloads exactly the sections, 404 is 'unavailable'
    run(*common, "--url-template", url, "--cookies", cookies)
    assert validate_root(root).ok
    got = {x.clip_id: x for x in r.catalog.rows()}
    assert got["M1pPtg6a_g8_000005"].status == ClipStatus.collected
    assert got["nLKEdmVu3FY_000000"].status == ClipStatus.collected
    assert (got["AAAAAAAAAAA_000000"].reason or "").startswith("unavailable: ")
    row = got["M1pPtg6a_g8_000005"]
    assert row.meta["fetched"] == "yt-dlp" and row.source_path == url.format(youtube_id="M1pPtg6a_g8")
    assert row.start_seconds == 5 and row.transform and row.transform.src_start == 0  # the section starts at 0
    assert any("session=abc123" in c for c in RangeHandler.seen_cookies)  # --cookies reached the server
    # the clip is the [5, 15] s section: its audio lines up with the source's audio from 5 s
    clip, _ = read_wav(r.audio_path(row.clip_id))
    src = window_audio(www / "M1pPtg6a_g8.mp4", 5.0)
    n = 4 * 16000
    corr = np.corrcoef(clip[:n], src[:n])[0, 1]
    wrong = np.corrcoef(clip[:n], window_audio(www / "M1pPtg6a_g8.mp4", 0.0)[:n])[0, 1]
    assert corr > 0.9 and corr > wrong + 0.3, (corr, wrong)
    stats = json.loads(sorted((root / "runs").glob("*.json"))[-1].read_text())
    assert stats["done"] == 2 and stats["failed_by_reason"] == {"unavailable": 1}


def test_broken_download_is_caught(shared_data: Path, tmp_path: Path) -> None:
    """yt-dlp against a server without Range support 'succeeds' with a 261-byte file: the check refuses it."""
    stub = tmp_path / "x.mp4"
    stub.write_bytes((shared_data / "media/vggsound/nLKEdmVu3FY_000040.mp4").read_bytes()[:261])
    with pytest.raises(CollectError) as e:
        check_download(stub, 10, 0.5)
    assert e.value.reason == FailReason.bad_download and "261 bytes" in e.value.detail
    with pytest.raises(CollectError) as e:
        check_download(shared_data / "media/avsbench_multi/multi_sources__0meOlo03O3g.mp4", 10, 0.5)
    assert e.value.reason == FailReason.bad_download and "5.00 s arrived" in e.value.detail
    check_download(shared_data / "media/vggsound/nLKEdmVu3FY_000040.mp4", 10, 0.5)


def test_rate_parsing() -> None:
    assert parse_rate("500K") == 512000 and parse_rate("2M") == 2 * 1024**2 and parse_rate("1000") == 1000
    assert parse_rate(None) is None
    with pytest.raises(UserError, match="--rate-limit"):
        parse_rate("fast")


def test_download_leaves_path_as_it_was(tmp_path):
    """yt-dlp needs `ffmpeg` on PATH; leaving it there would make gradio look for an ffprobe that is absent."""
    import os
    import shutil

    from collection.fetch import _ffmpeg_dir, _on_path

    before = os.environ.get("PATH", "")
    bindir = _ffmpeg_dir(tmp_path)
    with _on_path(bindir):
        assert shutil.which("ffmpeg") == str(bindir / "ffmpeg")
    assert os.environ.get("PATH", "") == before
