"""The editor's caption model (annotator/refine/static/captions.js) run in Node, without a browser: the three-way
merge of an unsaved draft with the saved spans, "+ span here", and the reasons a save would be refused."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[1] / "annotator" / "refine" / "static" / "captions.js"
N = 300


def run(expr: str):
    """Evaluate `expr` (with C = window.ssuCaptions) in Node and return its JSON value."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs); the browser tests cover the same code")
    code = f"global.window = {{}}; require({json.dumps(str(JS))}); const C = window.ssuCaptions;\n" \
           f"process.stdout.write(JSON.stringify((() => {expr})()));"
    out = subprocess.run([node, "-e", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def spans(*rows):
    return [{"start": a, "end": b, "text": t} for a, b, t in rows]


BASE = spans((0, 30, "a"), (120, 150, "b"))


def merge(base, mine, theirs):
    return run(f"{{ const m = C.merge3({json.dumps(base)}, {json.dumps(mine)}, {json.dumps(theirs)}, {N}); "
               "return {rows: m.rows, conflicts: m.conflicts, theirs: m.keepTheirs()}; }")


def test_a_split_on_the_server_and_typed_text_elsewhere_both_survive():
    m = merge(BASE, spans((0, 30, "typed"), (120, 150, "b")), spans((0, 30, "a"), (120, 130, "b"), (130, 150, "b")))
    assert m["rows"] == spans((0, 30, "typed"), (120, 130, "b"), (130, 150, "b")) and m["conflicts"] == []


def test_a_split_at_the_frame_where_the_draft_also_starts_a_span():
    mine = spans((0, 30, "a"), (120, 130, "b"), (130, 150, "new"))
    m = merge(BASE, mine, spans((0, 30, "a"), (120, 130, "b"), (130, 150, "b")))
    assert m["rows"] == mine and m["conflicts"] == []


def test_text_changed_on_both_sides_is_a_conflict_with_both_answers():
    m = merge(BASE, spans((0, 30, "a"), (120, 150, "mine")), spans((0, 30, "x"), (120, 150, "vlm")))
    assert m["conflicts"] == [{"start": 120, "end": 150, "mine": "mine", "theirs": "vlm"}]
    assert m["rows"] == spans((0, 30, "x"), (120, 150, "mine"))  # the server's change elsewhere is merged too
    assert m["theirs"] == spans((0, 30, "x"), (120, 150, "vlm"))


def test_no_draft_change_takes_the_server_and_no_server_change_keeps_the_draft():
    theirs = spans((0, 30, "z"))
    assert merge(BASE, BASE, theirs)["rows"] == theirs
    mine = spans((0, 40, "a longer"))
    assert merge(BASE, mine, BASE)["rows"] == mine


def test_a_draft_that_overlaps_is_one_conflict_never_merged_silently():
    m = merge(BASE, spans((0, 30, "a"), (20, 50, "c")), spans((0, 30, "a")))
    assert len(m["conflicts"]) == 1 and m["rows"] == spans((0, 30, "a"), (20, 50, "c"))


def test_span_here_splits_inside_and_adds_outside():
    inside = run(f"C.spanHere({json.dumps(BASE)}, 130, {N}, 30)")
    assert inside == {"rows": spans((0, 30, "a"), (120, 130, "b"), (130, 150, "b")), "index": 2}
    outside = run(f"C.spanHere({json.dumps(BASE)}, 100, {N}, 30)")
    assert outside["rows"][1] == {"start": 100, "end": 120, "text": ""}
    assert "already starts" in run(f"C.spanHere({json.dumps(BASE)}, 120, {N}, 30)")["error"]


def test_problem_names_what_the_server_would_refuse():
    assert run(f"C.problem({json.dumps(BASE)}, {N})") == ""
    assert "empty" in run(f"C.problem({json.dumps(spans((0, 30, '  ')))}, {N})")
    assert "overlap" in run(f"C.problem({json.dumps(spans((0, 30, 'a'), (20, 40, 'b')))}, {N})")
    assert "start < end" in run(f"C.problem({json.dumps(spans((40, 30, 'a')))}, {N})")
