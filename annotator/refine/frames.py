"""Decoded frames for the refinement app: a process-wide LRU of 1-second chunks shared by all sessions.

A whole clip decoded is 300 x 512 x 512 x 3 = 236 MB, too much to hold per session. The synthetic and
collected clips have a keyframe every ~250 frames, so a cold seek to frame 200 costs ~0.6 s (decoding from
the keyframe) and a full decode ~1 s. We therefore decode from the keyframe before the wanted frame up
to the end of its chunk and keep *every* chunk passed on the way: stepping and playback then hit the cache,
and two sessions on one clip share it. The cache is bounded in bytes (`cap_mb`). A chunk already being
decoded is waited for, not decoded a second time: the editor page asks for the next second ahead of the person
(look-ahead), and their own step may reach that second before its decode is done.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from schemas.constants import FPS, NUM_FRAMES
from schemas.errors import UserError

CHUNK = FPS  # frames per cached chunk (one second)


class FrameStore:
    def __init__(self, cap_mb: int = 1024) -> None:
        self.cap_bytes = cap_mb * 1024 * 1024
        self._chunks: OrderedDict[tuple[str, float, int], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._decoding: dict[tuple[str, float, int], threading.Event] = {}  # chunks being decoded -> done
        self.decodes = 0  # how many times we went to the decoder (tests and the dashboard read it)

    @property
    def nbytes(self) -> int:
        """Bytes of decoded frames held now (at most `cap_bytes`, or one chunk when the cap is below one)."""
        return self._bytes

    def _key(self, path: Path, chunk: int) -> tuple[str, float, int]:
        return (str(path), path.stat().st_mtime, chunk)  # mtime: a re-written clip is decoded again

    def _put(self, key: tuple[str, float, int], arr: np.ndarray) -> None:
        if key in self._chunks:
            return
        self._chunks[key] = arr
        self._bytes += arr.nbytes
        while self._bytes > self.cap_bytes and len(self._chunks) > 1:
            _, old = self._chunks.popitem(last=False)
            self._bytes -= old.nbytes

    def _decode_through(self, path: Path, chunk: int) -> None:
        """Decode from the keyframe at or before `chunk`'s first frame through the end of `chunk`."""
        import av

        self.decodes += 1
        first = chunk * CHUNK
        try:
            with av.open(str(path)) as c:
                vs = c.streams.video[0]
                vs.thread_type = "AUTO"
                tb, t0 = vs.time_base, vs.start_time or 0
                c.seek(int(round(first / FPS / tb)) + t0, stream=vs, backward=True, any_frame=False)
                pending: dict[int, np.ndarray] = {}
                for frame in c.decode(vs):
                    i = int(round((frame.pts - t0) * tb * FPS)) if frame.pts is not None else -1
                    if i < 0 or i >= NUM_FRAMES:
                        continue
                    pending[i] = frame.to_ndarray(format="rgb24")
                    ci = i // CHUNK
                    if all(j in pending for j in range(ci * CHUNK, ci * CHUNK + CHUNK)):
                        arr = np.stack([pending.pop(j) for j in range(ci * CHUNK, ci * CHUNK + CHUNK)])
                        with self._lock:
                            self._put(self._key(path, ci), arr)
                        if ci >= chunk:
                            return
        except Exception as e:  # corrupt or truncated media: tell the refiner which file
            raise UserError(f"{path}: cannot decode frames ({type(e).__name__}: {e})") from None
        raise UserError(f"{path}: has fewer than {first + CHUNK} frames; re-run ssu-validate on this root")

    def chunk(self, path: Path, chunk: int) -> np.ndarray:
        key = self._key(path, chunk)
        while True:
            with self._lock:
                if key in self._chunks:
                    self._chunks.move_to_end(key)
                    return self._chunks[key]
                done = self._decoding.get(key)
                if done is None:
                    done = self._decoding[key] = threading.Event()
                    break
            done.wait()  # another request decodes it; if that failed, the next turn decodes it here
        try:
            self._decode_through(path, chunk)
        finally:
            with self._lock:
                del self._decoding[key]
            done.set()
        with self._lock:
            if key not in self._chunks:  # evicted at once: the cap is below one chunk
                raise UserError(f"frame cache of {self.cap_bytes >> 20} MB is too small; raise --frame-cache-mb")
            return self._chunks[key]

    def frame(self, path: Path, index: int) -> np.ndarray:
        if not 0 <= index < NUM_FRAMES:
            raise UserError(f"frame {index} is outside 0..{NUM_FRAMES - 1}")
        return self.chunk(path, index // CHUNK)[index % CHUNK]

    def frames(self, path: Path, start: int, end: int) -> np.ndarray:
        """Frames [start, end) as one (N, H, W, 3) array."""
        parts = [self.chunk(path, c) for c in range(start // CHUNK, (end - 1) // CHUNK + 1)]
        allf = np.concatenate(parts)
        off = (start // CHUNK) * CHUNK
        return allf[start - off:end - off]

    def drop(self, path: Path) -> None:
        with self._lock:
            for k in [k for k in self._chunks if k[0] == str(path)]:
                self._bytes -= self._chunks.pop(k).nbytes
