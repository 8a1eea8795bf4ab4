"""ssuformer.tracks on hand-made masks: the ways tracks go wrong on the synthetic data (fast sources, sources
crossing and hiding each other, sources that fall silent, duplicate predictions) and the numbering."""

from __future__ import annotations

import numpy as np
import pytest

from ssuformer.tracks import Instance, TrackParams, colour_histogram, link, shift

S = 64  # frame size


def square(cx: float, cy: float, half: int = 6) -> np.ndarray:
    m = np.zeros((S, S), bool)
    x0, y0 = int(round(cx)) - half, int(round(cy)) - half
    m[max(y0, 0):max(y0 + 2 * half, 0), max(x0, 0):max(x0 + 2 * half, 0)] = True
    return m


def scene(objects: dict[str, list[tuple[float, float] | None]], frames: list[int], order: list[str] | None = None,
          half: dict[str, int] | None = None) -> tuple[list[tuple[int, list[Instance]]], dict[tuple[int, int], str]]:
    """Instances per frame of named objects (centre per frame index, None: not predicted); later objects in
    `order` cover earlier ones, as the synthetic source draws them (visible masks are disjoint). Returns the
    frames and who each (frame, instance index) is."""
    order = order or list(objects)
    out, who = [], {}
    for k, f in enumerate(frames):
        covered = np.zeros((S, S), bool)
        visible: dict[str, np.ndarray] = {}
        for name in reversed(order):  # the last drawn is on top
            pos = objects[name][k]
            if pos is None:
                continue
            m = square(*pos, half=(half or {}).get(name, 6)) & ~covered
            covered |= m
            if m.any():
                visible[name] = m
        insts = []
        for name in sorted(visible):  # instance order is the model's query order: arbitrary
            who[(f, len(insts))] = name
            insts.append(Instance(visible[name], 0.9, f"{name} sounds"))
        out.append((f, insts))
    return out, who


def identities(tracks, who) -> list[set[str]]:
    return [{who[(f, i)] for f, i in t.members.items()} for t in tracks]


def test_crossing_sources_hiding_each_other_keep_their_tracks():
    # a moves right, b (larger) moves left at 3 px/frame on the same row and passes in front of it: a is
    # partly hidden, then wholly for a few frames, then comes out on the other side
    frames = list(range(18))
    a = [(6 + 3 * k, 32) for k in frames]
    b = [(58 - 3 * k, 32) for k in frames]
    data, who = scene({"a": a, "b": b}, frames, order=["a", "b"], half={"b": 10})
    assert any(len(insts) == 1 for _, insts in data)  # a really vanishes behind b
    tracks = link(data)
    # no switch where they meet: b keeps one track; a keeps its track while half hidden (frame 7) and, having
    # re-emerged as a sliver of a third of its width away from its last place, is a new track (stated limit)
    assert identities(tracks, who) == [{"a"}, {"b"}, {"a"}]
    assert max(tracks[0].members) == 7 and len(tracks[1].members) == len(frames)
    # b smaller than a: a is never wholly hidden, one track each
    data, who = scene({"a": a, "b": b}, frames, order=["a", "b"], half={"b": 4})
    assert identities(link(data), who) == [{"a"}, {"b"}]


def test_fast_source_missed_for_frames_is_found_where_its_motion_leads():
    # 4 px a frame on a 12 px square: after 6 missed frames it is 28 px away (IoU with its last mask 0)
    frames = list(range(20))
    pos = [None if 8 <= k < 14 else (6 + 2.5 * k, 10 + 1.5 * k) for k in frames]
    data, who = scene({"a": pos}, frames)
    tracks = link(data)
    assert len(tracks) == 1 and len(tracks[0].members) == 14
    static = link(data, TrackParams(max_gap=2))  # not linkable after 2 unseen frames: a second track
    assert [sorted(t.members)[0] for t in static] == [0, 14]


def test_silent_source_does_not_lend_its_track_to_another():
    # a sounds for frames 0-9 then falls silent; b starts sounding at frame 12 beside a's last place (overlap
    # IoU < 0.3): b is a new source, not a continuing
    frames = list(range(24))
    a = [(20, 30) if k < 10 else None for k in frames]
    b = [None if k < 12 else (29, 30) for k in frames]
    data, who = scene({"a": a, "b": b}, frames)
    tracks = link(data)
    assert identities(tracks, who) == [{"a"}, {"b"}]
    # a silent for more than max_gap frames comes back as a new track (stated limit)
    back = [(20, 30) if k < 5 or k > 15 else None for k in frames]
    data, who = scene({"a": back}, frames)
    assert [sorted(t.members)[0] for t in link(data, TrackParams(max_gap=11))] == [0, 16]
    assert len(link(data, TrackParams(max_gap=12))) == 1


RGB = {"red": (225, 35, 35), "blue": (40, 80, 235), "green": (40, 200, 60)}


def painted(frames: list[int], objects: dict[str, dict[int, tuple[float, float]]], half: int = 6
            ) -> tuple[list[tuple[int, list[Instance]]], dict[tuple[int, int], str]]:
    """Frames of coloured squares on a grey background (name: colour[-n]; frame -> centre where it sounds),
    each sounding square an instance with its colour histogram as its appearance."""
    out, who = [], {}
    for f in frames:
        img = np.full((S, S, 3), 100, np.uint8)
        insts = []
        for name, path in objects.items():
            if f in path:
                m = square(*path[f], half=half)
                img[m] = RGB[name.split("-")[0]]
                who[(f, len(insts))] = name
                insts.append(Instance(m, 0.9, name))
        out.append((f, [Instance(i.mask, i.score, i.caption, colour_histogram(img, i.mask)) for i in insts]))
    return out, who


def test_source_back_from_silence_elsewhere_is_reidentified_by_colour():
    frames = list(range(0, 120, 2))
    red = {f: (12 + f / 10, 14) if f < 30 else (50, 50) for f in frames if f < 30 or f >= 70}  # silent, then far
    blue = {f: (50, 12) for f in frames}  # sounds all along, elsewhere
    green = {f: (14, 14) for f in frames if 40 <= f < 60}  # at red's last place while red is silent
    data, who = painted(frames, {"red": red, "blue": blue, "green": green})
    tracks = link(data)
    assert identities(tracks, who) == [{"red"}, {"blue"}, {"green"}]
    assert sorted(tracks[0].members)[-1] == 118 and len(tracks[0].members) == len(red)
    # IoU alone: green takes silent red's track, and red comes back as a new one
    assert identities(link(data, TrackParams(reid=None)), who) == [{"red", "green"}, {"blue"}, {"red"}]


def test_reidentification_does_not_guess_between_lookalikes():
    frames = list(range(0, 80, 2))
    a = {f: (12, 12) for f in frames if f < 20}
    b = {f: (52, 12) for f in frames if f < 20}
    back = {f: (32, 50) for f in frames if f >= 60}  # red again: a or b? equally like both
    data, who = painted(frames, {"red-a": a, "red-b": b, "red-back": back})
    assert identities(link(data), who) == [{"red-a"}, {"red-b"}, {"red-back"}]


def test_colour_vetoes_an_overlapping_link_to_another_source():
    # every 30th frame: red and blue swap places; by IoU each would take the other's track
    frames = [0, 30, 60]
    red = {0: (20, 30), 30: (31, 30), 60: (20, 30)}
    blue = {0: (31, 30), 30: (20, 30), 60: (31, 30)}
    data, who = painted(frames, {"red": red, "blue": blue}, half=5)
    assert all(len(i) == 2 for _, i in data)
    assert identities(link(data), who) == [{"red"}, {"blue"}]
    assert any(len(t) > 1 for t in identities(link(data, TrackParams(reid=None)), who))


def test_gap_is_counted_in_frames_between_predictions():
    one = Instance(square(20, 20), 0.8, "x")
    assert len(link([(0, [one]), (30, [one])], TrackParams(max_gap=30))) == 1
    assert len(link([(0, [one]), (31, [one])], TrackParams(max_gap=30))) == 2


def test_hungarian_not_greedy():
    # track 0 overlaps both new masks, track 1 only the one track 0 likes best: greedy would end track 1
    t0, t1 = square(20, 20, half=8), square(34, 20, half=8)
    a, b = square(28, 20, half=8), square(14, 20, half=8)
    tracks = link([(0, [Instance(t0, 1), Instance(t1, 1)]), (1, [Instance(a, 1), Instance(b, 1)])],
                  TrackParams(iou=0.2))
    assert len(tracks) == 2
    assert tracks[0].members == {0: 0, 1: 1} and tracks[1].members == {0: 1, 1: 0}


def test_duplicates_empty_masks_numbering_and_captions():
    left, right, later = square(12, 30), square(50, 30), square(30, 10)
    dup = left.copy()
    dup[24:26, 4:20] = True  # nearly the same pixels
    f0 = [Instance(right, 0.7, "r"), Instance(np.zeros((S, S), bool), 0.99, "empty"),
          Instance(dup, 0.6, "dup"), Instance(left, 0.9, "l")]
    f1 = [Instance(later, 0.8, "new"), Instance(left, 0.5, "l2"), Instance(right, 0.7, "r")]
    tracks = link([(0, f0), (3, f1)])
    # left to right at birth, the duplicate and the empty mask dropped, a later source numbered after them
    assert [t.id for t in tracks] == [0, 1, 2]
    assert [t.members for t in tracks] == [{0: 3, 3: 1}, {0: 0, 3: 2}, {3: 0}]
    assert tracks[0].scores == {0: 0.9, 3: 0.5} and tracks[0].captions == {0: "l", 3: "l2"}
    assert tracks[2].first == tracks[2].last == 3


def test_frames_must_increase_and_shift_clips_at_edges():
    one = Instance(square(20, 20), 0.8)
    with pytest.raises(ValueError, match="frames must increase"):
        link([(5, [one]), (5, [one])])
    m = square(4, 4, half=4)
    assert shift(m, -3, 0).sum() == 5 * 8 and shift(m, 100, 0).sum() == 0 and np.array_equal(shift(m, 0, 0), m)
    assert link([(0, []), (1, [])]) == []
