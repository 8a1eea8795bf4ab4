"""Caption metrics: coco-caption numbers computed by hand on tiny corpora, grouping of frames into images."""

from __future__ import annotations

import math

import pytest

from ssuformer.metrics import CaptionGrouping, caption_scores, caption_scores_groups, group_frame_captions


def test_grouping_frame_and_span():
    clips = {"c": (["a dog", "a dog", None, "x"], ["a dog barks", "a dog barks", "a cat", ""])}
    cands, refs = group_frame_captions(clips, CaptionGrouping.frame)
    assert cands == {"c#0": "a dog", "c#1": "a dog", "c#2": ""}  # frame 3 has no reference: left out
    assert refs == {"c#0": ["a dog barks"], "c#1": ["a dog barks"], "c#2": ["a cat"]}
    cands, refs = group_frame_captions(clips, "span")
    assert cands == {"c#0-2": "a dog", "c#2-3": ""}
    assert refs["c#0-2"] == ["a dog barks"]
    with pytest.raises(ValueError, match="3 candidate frames"):
        group_frame_captions({"c": (["a"] * 3, ["a"] * 4)})


def test_bleu_rouge_by_hand_without_meteor():
    # tokenized: candidate "a man plays the violin" (5 words), reference adds "now" (6 words)
    got = caption_scores({"x": "A man plays the violin."}, {"x": ["a man plays the violin now"]}, meteor=False)
    bp = math.exp(1 - 6 / 5)  # brevity penalty: every n-gram precision is 1
    for n in (1, 2, 3, 4):
        assert got[f"bleu{n}"] == pytest.approx(bp, abs=1e-6)
    p, r, beta = 5 / 5, 5 / 6, 1.2  # ROUGE-L: LCS 5
    assert got["rouge_l"] == pytest.approx((1 + beta**2) * p * r / (r + beta**2 * p), abs=1e-9)
    assert got["meteor"] is None and got["images"] == 1
    # CIDEr-D needs several images for its document frequencies; here only its sign is checked
    two = caption_scores({"a": "a dog barks", "b": "a cat"}, {"a": ["a dog barks"], "b": ["a bird sings"]},
                         meteor=False)
    assert two["cider"] > 0 and two["bleu1"] < 1


def test_bad_caption_inputs():
    with pytest.raises(ValueError, match="same ids"):
        caption_scores({"a": "x"}, {"b": ["x"]}, meteor=False)
    with pytest.raises(ValueError, match="non-empty list"):
        caption_scores({"a": "x"}, {"a": "x"}, meteor=False)
    with pytest.raises(ValueError, match="no captions"):
        caption_scores({}, {}, meteor=False)


@pytest.mark.slow
def test_meteor_and_groups_one_jvm():
    """The one METEOR test (~12 s of JVM): identical captions score 1 and unrelated ones score near 0."""
    cands = {"a": "a dog is barking loudly", "b": "the red car", "c": ""}
    refs = {"a": ["a dog is barking loudly"], "b": ["an old man sings a song"], "c": ["a cat"]}
    got = caption_scores_groups(cands, refs, {"same": ["a"], "diff": ["b", "c"], "all": ["a", "b", "c"]})
    assert got["same"]["meteor"] == pytest.approx(1.0, abs=0.05)  # METEOR's fragmentation penalty: ~0.9995
    assert got["diff"]["meteor"] < 0.1
    assert got["diff"]["meteor"] < got["all"]["meteor"] < got["same"]["meteor"]
    assert got["same"]["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert got["all"]["images"] == 3
