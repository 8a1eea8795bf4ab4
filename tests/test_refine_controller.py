"""ssu-refine's controller without a browser, through the editor page's API (every edit names its frame and
source): sessions, leases, every tool, undo/redo, concurrency, review."""

from __future__ import annotations

import numpy as np
import pytest
from test_refine_support import ColourPropagator, ColourSegmenter, EchoCaptioner, make_users

from annotator.refine import history
from annotator.refine.auth import UserStore
from annotator.refine.controller import Controller, RefineConfig, StaleEdit
from annotator.refine.frames import FrameStore
from annotator.refine.tool_models import ToolModels
from schemas import rle as rle_mod
from schemas.errors import UserError
from schemas.models import ClipStatus
from schemas.root import DatasetRoot

CLIP = "synth_0_00000"


@pytest.fixture()
def ctl(synth_root_copy, tmp_path):
    users = UserStore(make_users(tmp_path / "users.toml"))
    models = ToolModels(ColourSegmenter(), ColourPropagator(), EchoCaptioner())
    c = Controller(synth_root_copy.path, users, models, RefineConfig(), FrameStore(cap_mb=256))
    for name in ("alice", "bob", "rita"):
        c.open_session(f"s-{name}", name)
    return c


def mask_at(root_path, clip, source_id, frame):
    m = DatasetRoot.open(root_path).read_annotation(clip).source(source_id).masks[frame]
    return None if m is None else rle_mod.decode(m.model_dump())


def centroid(mask):
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def retext(ctl, session_id, v, index, text, source_id=0):
    """What the page's caption table does to change one span's text: save every row, one of them changed."""
    rows = [list(r) for r in v.spans]
    rows[index][2] = text
    return ctl.set_spans(session_id, v.revision, source_id, rows)


def test_claim_sets_in_progress_and_refuses_second_user(ctl):
    v = ctl.open_clip("s-alice", CLIP)
    assert not v.read_only and v.status == ClipStatus.in_progress and v.lease_owner == "alice"
    assert len(v.sources) == 3 and v.source_id == 0 and v.frame == 0 and v.spans[0][:2] == [0, 30]
    vb = ctl.open_clip("s-bob", CLIP)
    assert vb.read_only and "alice" in vb.message
    with pytest.raises(UserError, match=r"read-only for you \(leased by alice\)"):
        ctl.set_spans("s-bob", vb.revision, 0, [[0, 10, "x"]])
    with pytest.raises(UserError, match="invalid clip id"):
        ctl.open_clip("s-alice", "../../etc/passwd")
    with pytest.raises(UserError, match="log in"):
        ctl.open_session("s-x", "mallory")
    ctl.close_session("s-alice")  # logout releases the lease
    assert ctl.catalog.lease_of(CLIP) is None
    assert not ctl.open_clip("s-bob", CLIP).read_only


def test_sam_prompts_and_strokes(ctl):
    v = ctl.open_clip("s-alice", CLIP)
    ref = mask_at(ctl.root_path, CLIP, 0, 0)  # the green square's exact mask
    x, y = centroid(ref)
    # wipe the mask with a big eraser stroke first, then get it back with one SAM point
    v = ctl.stroke("s-alice", v.revision, 0, 0, [[x, y]], 128, erase=True)
    assert mask_at(ctl.root_path, CLIP, 0, 0) is None or mask_at(ctl.root_path, CLIP, 0, 0).sum() < ref.sum() / 4
    v = ctl.sam_prompt("s-alice", v.revision, 0, 0, [(x, y, 1)])
    got = mask_at(ctl.root_path, CLIP, 0, 0)
    assert rle_mod.iou(rle_mod.encode(got), rle_mod.encode(ref)) > 0.6
    assert "person:alice" in ctl.root.read_annotation(CLIP).agents
    assert v.message.startswith("saved: SAM 1 point(s) frame 0")
    # the view answers with the annotation it wrote: the same as what a fresh read finds
    assert v.annotation == ctl.root.read_annotation(CLIP) and v.revision == ctl.view("s-alice").revision
    # a brush stroke adds a disc away from the shape
    v = ctl.stroke("s-alice", v.revision, 0, 0, [[20, 20]], 5)
    assert mask_at(ctl.root_path, CLIP, 0, 0)[20, 20]
    # all of the frame's prompts at once (the page keeps them): a box around the shape and a negative point
    # outside it; SAM's answer replaces the mask, so the brushed disc outside the box is gone
    v2 = ctl.sam_prompt("s-alice", v.revision, 0, 0, [(x, y, 1), (20, 20, 0)], [x + 60, y + 60, x - 60, y - 60])
    assert v2.revision != v.revision and "+ box" in v2.message
    m = mask_at(ctl.root_path, CLIP, 0, 0)
    assert not m[20, 20] and rle_mod.iou(rle_mod.encode(m), rle_mod.encode(ref)) > 0.6
    with pytest.raises(UserError, match="point or draw a box"):
        ctl.sam_prompt("s-alice", v2.revision, 0, 0, [])
    with pytest.raises(UserError, match="outside"):
        ctl.sam_prompt("s-alice", v2.revision, 0, 0, [(600, 5, 1)])
    with pytest.raises(UserError, match="frame 300 is outside"):
        ctl.stroke("s-alice", v2.revision, 300, 0, [[5, 5]], 4)
    with pytest.raises(UserError, match="has no source 9"):
        ctl.stroke("s-alice", v2.revision, 0, 9, [[5, 5]], 4)
    assert ctl.view("s-alice").frame == 0  # the refused frame 300 did not move the session


def test_propagate_both_ways(ctl):
    v = ctl.open_clip("s-alice", CLIP)
    before = [mask_at(ctl.root_path, CLIP, 0, f) for f in (5, 25)]
    ys, xs = np.nonzero(mask_at(ctl.root_path, CLIP, 0, 15))
    v = ctl.stroke("s-alice", v.revision, 15, 0, [[xs[0], ys[0]]], 3, erase=True)  # frame 15 is now the person's
    assert v.message.startswith("saved: eraser stroke")
    v = ctl.propagate("s-alice", v.revision, 15, 0, "both", 0, 30)
    assert v.frame == 15
    ann = ctl.root.read_annotation(CLIP)
    src = ann.source(0)
    key = "refine:sam2:alice"
    assert key in ann.agents and ann.agents[key].name == "colour-track"
    owners = {sp.by for sp in src.mask_by if sp.start < 30}
    assert key in owners and "person:alice" in owners  # seed frame stays the person's
    for f, ref in zip((5, 25), before, strict=True):
        got = mask_at(ctl.root_path, CLIP, 0, f)
        assert rle_mod.iou(rle_mod.encode(got), rle_mod.encode(ref)) > 0.5
    with pytest.raises(UserError, match="must contain"):
        ctl.propagate("s-alice", v.revision, 15, 0, "forward", 20, 30)
    with pytest.raises(UserError, match="no mask on frame"):  # the star is silent on frame 15: no seed
        ctl.propagate("s-alice", v.revision, 15, 1, "forward", 0, 30)


def test_sources_and_categories(ctl):
    v = ctl.open_clip("s-alice", CLIP)
    v = ctl.add_source("s-alice", v.revision, "circle", "left bell")
    assert v.source_id == 3 and [s.id for s in v.sources] == [0, 1, 2, 3]
    with pytest.raises(UserError, match="not in this root"):
        ctl.set_category("s-alice", v.revision, 3, "banjo")
    v = ctl.set_category("s-alice", v.revision, 3, "diamond", "bell")
    assert v.sources[3].category == "diamond" and v.sources[3].name == "bell"
    v = ctl.remove_source("s-alice", v.revision, 3)
    assert [s.id for s in v.sources] == [0, 1, 2] and v.source_id == 0  # the selection moves to a source left
    v = ctl.undo("s-alice", v.revision)  # the removed source comes back, in place
    assert [s.id for s in v.sources] == [0, 1, 2, 3] and v.sources[3].category == "diamond"


def test_caption_tools_and_undo_redo(ctl):
    v = ctl.open_clip("s-alice", CLIP)
    first = v.spans[0]
    assert first[:2] == [0, 30]
    v = ctl.split_span("s-alice", v.revision, 10, 0)
    assert v.spans[0][:2] == [0, 10] and v.spans[1][:2] == [10, 30]
    v = retext(ctl, "s-alice", v, 1, "a green square hums loudly")
    assert v.spans[1][2] == "a green square hums loudly"
    rows = [list(r) for r in v.spans]
    rows[0][2] = "a quiet green square"
    v = ctl.set_spans("s-alice", v.revision, 0, rows)
    ann = ctl.root.read_annotation(CLIP)
    assert ann.source(0).captions[0].by == "person:alice" and ann.source(0).captions[2].by == "synth"
    with pytest.raises(UserError, match="overlap"):
        ctl.set_spans("s-alice", v.revision, 0, [[0, 20, "a"], [10, 30, "b"]])
    with pytest.raises(UserError, match="row 1"):
        ctl.set_spans("s-alice", v.revision, 0, [["x", 20, "a"]])
    assert ctl.set_spans("s-alice", v.revision, 0, rows).message == "edit caption spans: nothing changed"
    v = ctl.regenerate_span("s-alice", v.revision, 0, 0)
    assert v.spans[0][2].startswith("a square covering") and "new caption" in v.message
    # undo three times, redo once; everything goes through the audit log
    v = ctl.undo("s-alice", v.revision)
    assert v.spans[0][2] == "a quiet green square"
    v = ctl.undo("s-alice", v.revision)
    assert v.spans[0][2] == first[2]
    v = ctl.redo("s-alice", v.revision)
    assert v.spans[0][2] == "a quiet green square" and v.can_redo
    v = retext(ctl, "s-alice", v, 0, "new branch")  # a new edit clears the redo stack
    assert not v.can_redo
    with pytest.raises(UserError, match="nothing to redo"):
        ctl.redo("s-alice", v.revision)
    actions = [e.action for e in ctl.catalog.history(CLIP) if e.action in history.Action.all]
    assert actions.count("undo") == 2 and actions.count("redo") == 1


def test_one_lease_per_user_across_tabs_and_stale_revision(ctl):
    v1 = ctl.open_clip("s-alice", CLIP)
    ctl.open_session("s-alice-2", "alice")  # same user, second browser tab: it takes the clip over
    v2 = ctl.open_clip("s-alice-2", CLIP)
    assert not v2.read_only
    beat = ctl.heartbeat("s-alice")  # the first tab is told at its next heartbeat
    assert beat["read_only"] and "another tab" in beat["notice"]
    with pytest.raises(UserError, match="read-only"):
        retext(ctl, "s-alice", v1, 0, "first tab")
    retext(ctl, "s-alice-2", v2, 0, "second tab")
    with pytest.raises(StaleEdit, match="NOT saved"):  # a view older than the saved annotation
        retext(ctl, "s-alice-2", v2, 0, "from an old view")
    assert ctl.root.read_annotation(CLIP).source(0).captions[0].text == "second tab"
    ctl.close_session("s-alice")  # closing the read-only tab keeps the other tab's lease
    assert ctl.catalog.lease_of(CLIP).owner == "alice"
    assert not ctl.heartbeat("s-alice-2")["read_only"]


def test_stroke_and_polygon(ctl):
    from scipy import ndimage

    v = ctl.open_clip("s-alice", CLIP)
    before = mask_at(ctl.root_path, CLIP, 1, 40)
    pts = [[20 + 30 * i, 300 + 5 * i] for i in range(10)]  # far-apart samples of one fast drag
    v = ctl.stroke("s-alice", v.revision, 40, 1, pts, 6)
    added = mask_at(ctl.root_path, CLIP, 1, 40) & ~(before if before is not None else False)
    assert ndimage.label(added)[1] == 1 and added[300, 20] and added[345, 290]
    v = ctl.stroke("s-alice", v.revision, 40, 1, pts, 6, erase=True)
    m = mask_at(ctl.root_path, CLIP, 1, 40)
    assert m is None or not m[300, 20]
    v = ctl.polygon("s-alice", v.revision, 41, 1, [[100, 100], [200, 100], [150, 200]])
    m = mask_at(ctl.root_path, CLIP, 1, 41)
    assert m[130, 150] and not m[90, 150]
    with pytest.raises(UserError, match="at least 3"):
        ctl.polygon("s-alice", v.revision, 41, 1, [[1, 1], [2, 2]])
    with pytest.raises(UserError, match="outside"):
        ctl.stroke("s-alice", v.revision, 41, 1, [[600, 1]], 4)
    assert len([e for e in ctl.catalog.history(CLIP, action="edit")]) == 3


def test_review_workflow(ctl):
    v = ctl.open_clip("s-alice", CLIP)
    with pytest.raises(UserError, match="only a reviewer"):
        ctl.decide("s-alice", v.revision, "reject", "bad")
    v = ctl.decide("s-alice", v.revision, "accept", "done")
    assert v.status == ClipStatus.needs_review and v.read_only  # review required: refiner cannot finalise
    assert ctl.catalog.lease_of(CLIP) is None
    assert ctl.open_clip("s-bob", CLIP).read_only  # refiners do not edit clips under review
    v = ctl.open_clip("s-rita", CLIP)
    assert not v.read_only
    with pytest.raises(UserError, match="note"):
        ctl.decide("s-rita", v.revision, "send_back", "")
    v = ctl.decide("s-rita", v.revision, "send_back", "fix the star's mask")
    assert v.status == ClipStatus.in_progress
    v = ctl.open_clip("s-alice", CLIP)
    assert v.note == "fix the star's mask" and not v.read_only
    v = ctl.decide("s-alice", v.revision, "accept")
    v = ctl.open_clip("s-rita", ctl.next_clip_id("s-rita"))
    assert v.clip_id == CLIP
    v = ctl.decide("s-rita", v.revision, "accept")
    assert v.status == ClipStatus.accepted
    assert ctl.catalog.get(CLIP).status == ClipStatus.accepted
    assert ctl.root.read_annotation(CLIP).status == ClipStatus.accepted
    assert ctl.root.read_annotation(CLIP).note is None  # cleared on accept; the history keeps every note
    assert [n["note"] for n in ctl.notes(CLIP)] == ["done", "fix the star's mask"]
    # a reviewer's edit of an accepted clip sends it back to review
    v = ctl.open_clip("s-rita", CLIP)
    v = retext(ctl, "s-rita", v, 0, "late fix")
    assert v.status == ClipStatus.needs_review and "back to review" in v.message


def test_queue_filters_and_next(ctl):
    rows = ctl.queue("s-alice")
    assert len(rows) == 6 and all(r["status"] == "auto" for r in rows)
    v = ctl.open_clip("s-alice", ctl.next_clip_id("s-alice"))
    assert v.clip_id == rows[0]["clip_id"] and not v.read_only
    v2 = ctl.open_clip("s-bob", ctl.next_clip_id("s-bob"))
    assert v2.clip_id != v.clip_id  # a leased clip is skipped
    rows = ctl.queue("s-alice", status=ClipStatus.in_progress)
    assert {r["clip_id"] for r in rows} == {v.clip_id, v2.clip_id}
    assert {r["leased_by"] for r in rows} == {"alice", "bob"}
    cat = rows[0]["category"]
    assert all(r["category"] == cat for r in ctl.queue("s-alice", category=cat))


def test_queue_filters_by_a_caption_query(ctl, tmp_path, monkeypatch):
    monkeypatch.setenv("SSU_CACHE_DIR", str(tmp_path / "cache"))
    ann = DatasetRoot.open(ctl.root_path).read_annotation(CLIP)
    text = next(s for s in ann.sources if s.captions).captions[0].text
    rows = ctl.queue("s-alice", query=text)
    assert rows[0]["clip_id"] == CLIP  # best match first
    assert [r["clip_id"] for r in ctl.queue("s-alice", query="purple zeppelin")] == []
    v = ctl.open_clip("s-alice", CLIP)  # an edit is found by the next query: the index refreshes
    ctl.set_spans("s-alice", v.revision, 0, [[0, 300, "a purple zeppelin is droning"]])
    assert [r["clip_id"] for r in ctl.queue("s-alice", query="purple zeppelin")] == [CLIP]
    with pytest.raises(UserError, match="QUERY"):
        ctl.queue("s-alice", query="the of a")


def test_idle_sessions_are_closed(ctl):
    ctl.open_clip("s-alice", CLIP)
    ctl.config.idle_minutes = 0  # every session is now idle: the next request sweeps them
    ctl.sessions["s-alice"].last_seen -= 1
    ctl.open_session("s-new", "bob")
    assert "s-alice" not in ctl.sessions and ctl.catalog.lease_of(CLIP) is None
    with pytest.raises(UserError, match="session ended"):
        ctl.view("s-alice")


def test_killed_server_keeps_edits(ctl, synth_root_copy, tmp_path):
    v = ctl.open_clip("s-alice", CLIP)
    retext(ctl, "s-alice", v, 0, "saved before the crash")
    # a fresh controller (new process after a crash) sees the edit and can undo it from the log
    c2 = Controller(synth_root_copy.path, ctl.users, ctl.models, RefineConfig(), FrameStore(cap_mb=64))
    c2.open_session("s", "alice")
    v = c2.open_clip("s", CLIP)  # alice's own lease is still live: she gets it back
    assert v.spans[0][2] == "saved before the crash" and v.can_undo
    v = c2.undo("s", v.revision)
    assert v.spans[0][2] != "saved before the crash"


def test_frame_store_chunks(synth_root):
    store = FrameStore(cap_mb=256)
    path = synth_root.clip_path(CLIP)
    f200 = store.frame(path, 200)
    assert store.decodes == 1
    store.frame(path, 31)  # decoded on the way to 200: cached
    store.frame(path, 199)
    assert store.decodes == 1
    from schemas.media import read_frames
    ref = read_frames(path, [31, 200])
    assert np.array_equal(store.frame(path, 31), ref[0]) and np.array_equal(f200, ref[1])
    assert store.frames(path, 25, 65).shape == (40, 512, 512, 3)
    assert store.nbytes <= 256 << 20


def test_palette_avoids_picture_colours():
    from annotator.refine.palette import distinct_palette

    green = np.zeros((512, 512, 3), np.uint8)
    green[..., 1] = 200
    green[:100, :100] = (240, 0, 240)  # a magenta object too
    colours = distinct_palette([green], 3)
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], float)
    assert len(set(colours)) == 3
    for pic in ((0, 200, 0), (240, 0, 240)):
        assert np.linalg.norm(rgb - np.array(pic, float), axis=1).min() > 100


def test_an_instance_prediction_opens_as_a_draft_and_edits_drop_its_scores(ctl):
    """SSUFormer-I writes one source per predicted instance with per-frame scores (ssuformer.predict): the
    editor opens such a draft like any other, and a refiner's mask replaces the model's confidence."""
    draft = ctl.root.read_annotation(CLIP)
    for s in draft.sources:
        s.scores = [None if m is None else 0.8 for m in s.masks]
    ctl.root.write_annotation(draft)
    v = ctl.open_clip("s-alice", CLIP)
    assert len(v.sources) == len(draft.sources)
    before = ctl.root.read_annotation(CLIP).source(0).scores
    assert before[0] == 0.8 and before[1] == 0.8
    v = ctl.stroke("s-alice", v.revision, 0, 0, [[20, 20]], 5)  # frame 0 of source 0, by hand
    after = ctl.root.read_annotation(CLIP).source(0).scores
    assert after[0] is None and after[1] == 0.8
    ctl.undo("s-alice", v.revision)  # undo gives the model's mask back, and its score with it
    assert ctl.root.read_annotation(CLIP).source(0).scores == before
