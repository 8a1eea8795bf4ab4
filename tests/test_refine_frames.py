"""The refine app's frame cache: a chunk asked for twice at once is decoded once."""

from __future__ import annotations

import threading

import numpy as np

from annotator.refine.frames import FrameStore

CLIP = "synth_0_00000"


def test_one_chunk_asked_for_at_once_is_decoded_once(synth_root):
    store, path = FrameStore(cap_mb=256), synth_root.clip_path(CLIP)
    start, got = threading.Barrier(3), []

    def ask(f: int) -> None:
        start.wait()
        got.append((f, store.frame(path, f)))

    threads = [threading.Thread(target=ask, args=(f,)) for f in (95, 100, 119)]  # all in chunk 3
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert store.decodes == 1 and len(got) == 3
    from schemas.media import read_frames

    ref = dict(zip((95, 100, 119), read_frames(path, [95, 100, 119]), strict=True))
    assert all(np.array_equal(a, ref[f]) for f, a in got)
