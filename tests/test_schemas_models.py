import json

import numpy as np
import pytest
from pydantic import ValidationError

from schemas import rle
from schemas.models import (
    RLE,
    Agent,
    AgentKind,
    Annotation,
    CaptionSpan,
    Manifest,
    SoundSource,
    check_clip_id,
)
from schemas.spans import compress_to_spans, expand_spans


def make_source(sid: int = 0, frames_on: range = range(0, 300), box=(10, 10, 50, 50)) -> SoundSource:
    m = np.zeros((512, 512), bool)
    y0, x0, y1, x1 = box
    m[y0:y1, x0:x1] = True
    r = RLE(**rle.encode(m))
    masks = [r if f in frames_on else None for f in range(300)]
    return SoundSource(id=sid, category="violin", masks=masks)


def test_spans_expand_and_compress_round_trip():
    vals = ["a"] * 10 + [None] * 5 + ["b"] * 3 + ["a"] * 2 + [None] * 280
    runs = compress_to_spans(vals)
    assert runs == [(0, 10, "a"), (15, 18, "b"), (18, 20, "a")]
    spans = [CaptionSpan(start=s, end=e, text=t) for s, e, t in runs]
    assert expand_spans(spans, 300, lambda s: s.text) == vals


def test_source_frame_captions_round_trip():
    s = make_source()
    caps = ["a violin plays"] * 150 + ["a violin plays loudly"] * 150
    s.set_frame_captions(caps, by=None)
    assert len(s.captions) == 2 and s.frame_captions() == caps


def test_annotation_json_round_trip_identical():
    s = make_source()
    s.set_frame_captions(["x"] * 300)
    ann = Annotation(clip_id="abc_000001", sources=[s], agents={"sam2": Agent(kind=AgentKind.model, name="sam2")})
    s.set_masks(s.masks, by="sam2")
    ann = Annotation.model_validate(ann.model_dump())
    text = ann.model_dump_json()
    back = Annotation.model_validate_json(text)
    assert back == ann and back.model_dump_json() == text


def test_semantic_mask_is_union_of_sources_in_frame():
    a = make_source(0, range(0, 100), (0, 0, 10, 10))
    b = make_source(1, range(50, 300), (5, 5, 20, 20))
    ann = Annotation(clip_id="c", sources=[a, b])
    assert rle.area(ann.semantic_rle(0)) == 100
    assert rle.area(ann.semantic_rle(60)) == 100 + 225 - 25
    assert rle.area(ann.semantic_rle(200)) == 225
    with pytest.raises(IndexError):
        ann.semantic_rle(300)


def test_frame_captions_joins_sources():
    a, b = make_source(0), make_source(1)
    a.set_frame_captions(["a red circle beeps"] * 300)
    b.set_frame_captions([None] * 100 + ["a blue square buzzes"] * 200)
    caps = Annotation(clip_id="c", sources=[a, b]).frame_captions()
    assert caps[0] == "a red circle beeps" and caps[150] == "a red circle beeps and a blue square buzzes"


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "", "a..b", "x" * 200, "a b"])
def test_bad_clip_ids_rejected(bad):
    with pytest.raises(ValueError):
        check_clip_id(bad)


def test_youtube_like_ids_accepted():
    assert check_clip_id("-0pJqpNjft4_000267") == "-0pJqpNjft4_000267"


def test_wrong_size_rle_and_frame_count_rejected():
    s = make_source()
    small = rle.encode(np.ones((256, 256), bool))
    raw = s.model_dump()
    raw["masks"][3] = small
    with pytest.raises(ValidationError, match="frame 3"):
        SoundSource.model_validate(raw)
    raw = s.model_dump()
    raw["masks"] = raw["masks"][:299]
    with pytest.raises(ValidationError):
        SoundSource.model_validate(raw)


def test_span_past_300_and_overlap_rejected():
    with pytest.raises(ValidationError):
        CaptionSpan(start=290, end=301, text="x")
    with pytest.raises(ValidationError):
        CaptionSpan(start=10, end=10, text="x")
    s = make_source().model_dump()
    s["captions"] = [{"start": 0, "end": 20, "text": "a"}, {"start": 10, "end": 30, "text": "b"}]
    with pytest.raises(ValidationError, match="overlap"):
        SoundSource.model_validate(s)


def test_unknown_agent_reference_rejected():
    s = make_source()
    s.captions = [CaptionSpan(start=0, end=5, text="a", by="nobody")]
    with pytest.raises(ValidationError, match="unknown agent"):
        Annotation(clip_id="c", sources=[s])


def test_set_masks_tracks_provenance_spans():
    s = make_source()
    s.set_masks(s.masks, by="auto")
    s.set_masks([None] * 10, by="alice", frames=range(100, 110))
    assert [(p.start, p.end, p.by) for p in s.mask_by] == [(0, 100, "auto"), (100, 110, "alice"), (110, 300, "auto")]
    assert s.masks[105] is None and s.masks[99] is not None


def test_scores_are_a_models_and_leave_with_its_masks():
    s = make_source()
    s.scores = [0.9] * 300
    s.set_masks(s.masks[100:110], by="alice", frames=range(100, 110))  # a refiner redraws ten frames
    assert s.scores[99] == 0.9 and s.scores[100:110] == [None] * 10
    s.set_masks(s.masks, by="alice")
    assert s.scores is None  # nothing of the model's left
    with pytest.raises(ValidationError):
        SoundSource(id=0, category="x", masks=[None] * 300, scores=[1.5] * 300)
    with pytest.raises(ValidationError):
        SoundSource(id=0, category="x", masks=[None] * 300, scores=[0.5] * 10)


def test_manifest_fixed_shape():
    Manifest(name="x")
    with pytest.raises(ValidationError, match="fps"):
        Manifest(name="x", fps=25)
    assert json.loads(Manifest(name="x").model_dump_json())["size"] == 512
