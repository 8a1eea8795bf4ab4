"""annotator.draft.gating: per-second gate, score formatting, caption merging and picks (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from annotator.draft import gating
from annotator.draft.cli import main


def test_gate_and_scores_round_trip() -> None:
    scores = np.array([0.9, 0.2, 0.5, 0.49, 1.0, 0, 0, 0.7, 0.1, 0.6], np.float32)
    heard = gating.sounding_seconds(scores, 0.5)
    assert heard.tolist() == [True, False, True, False, True, False, False, True, False, True]
    g = gating.frame_gate(heard)
    assert g.shape == (300,) and g[:30].all() and not g[30:60].any() and g[60:90].all()
    assert gating.frame_gate(heard[:3])[90:].sum() == 0  # missing seconds count as silent
    assert np.allclose(gating.parse_scores(gating.format_scores(scores)), scores, atol=1e-3)


def test_merge_captions_merges_near_identical_neighbours_only() -> None:
    caps = ["a red piano on the left", "a red piano on the left.", None, "a red piano on the left",
            "a dog barking loudly", "a dog barking loudly"]
    out = gating.merge_captions(caps, 0.9)
    assert out == ["a red piano on the left", "a red piano on the left", None, "a red piano on the left",
                   "a dog barking loudly", "a dog barking loudly"]
    assert gating.merge_captions(["abc", "xyz"], 0.9) == ["abc", "xyz"]
    assert gating.merge_captions(["", "x"], 0.9) == [None, "x"]


def test_caption_picks_choose_masked_frame_nearest_middle() -> None:
    has = [False] * 300
    for f in (3, 20, 40, 299):
        has[f] = True
    assert gating.caption_picks(has, 30) == [(0, 30, 20), (30, 60, 40), (270, 300, 299)]
    with pytest.raises(ValueError):
        gating.caption_picks(has, 0)


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path), "--offline"])
    assert e.value.code == 2 and "not a dataset root" in capsys.readouterr().err
    bad = tmp_path / "cfg.yaml"
    bad.write_text("audio_threshold: 0.5\nnot_a_setting: 1\n")
    with pytest.raises(SystemExit) as e:
        main(["run", str(tmp_path), "--config", str(bad)])
    assert e.value.code == 2 and "not_a_setting" in capsys.readouterr().err
