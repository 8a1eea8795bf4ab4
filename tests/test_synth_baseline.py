"""The union-of-all-objects baseline: every object's pixels, so it contains every sounding mask."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from schemas import rle
from schemas.models import Annotation


def test_union_baseline_covers_every_sounding_mask(synth_root, tmp_path):
    out = tmp_path / "pred"
    exe = Path(sys.executable).with_name("ssu-synth")
    p = subprocess.run([str(exe), str(synth_root.path), "--union-baseline", str(out), "--split", "test",
                        "--caption", "a red circle is beeping", "--no-progress"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    (clip_id,) = synth_root.read_split("test")
    pred = Annotation.model_validate_json((out / "annotations" / f"{clip_id}.json").read_text())
    gt = synth_root.read_annotation(clip_id)
    assert pred.frame_captions()[0] == "a red circle is beeping"
    silent_somewhere = False
    for f in (0, 45, 150, 299):
        union = rle.decode(pred.semantic_rle(f))
        sounding = rle.decode(gt.semantic_rle(f))
        assert not (sounding & ~union).any()  # the baseline holds every sounding pixel
        silent_somewhere |= bool((union & ~sounding).sum() > 100)  # and silent objects too
    assert silent_somewhere
    assert np.mean([m is not None for m in pred.sources[0].masks]) == 1.0
