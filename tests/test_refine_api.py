"""The editor page's JSON API (annotator/refine/api.py) without a browser: every edit kind editor.js sends goes
through its named handler to the controller, answers follow the page's contract (200 state, 400, 409, 401),
and an edit reads the annotation once."""

from __future__ import annotations

import numpy as np
import pytest
from test_refine_support import ColourPropagator, ColourSegmenter, EchoCaptioner, make_users

from annotator.refine import api
from annotator.refine.auth import UserStore
from annotator.refine.controller import Controller, RefineConfig
from annotator.refine.frames import FrameStore
from annotator.refine.tool_models import ToolModels
from schemas import rle as rle_mod
from schemas.root import DatasetRoot

CLIP = "synth_0_00000"
TAB = "tab-0123456789"
# what editor.js reads from every answer (applyState, openClip): the page may be given more, never less
STATE_KEYS = {"clip_id", "status", "read_only", "lease_owner", "revision", "message", "notice", "note", "notes",
              "can_undo", "can_redo", "user", "review_required", "sources", "source_id", "frame", "categories",
              "loudness", "size", "num_frames", "fps", "models", "shortcuts", "heartbeat_s", "media_version", "video"}


@pytest.fixture()
def page(synth_root_copy, tmp_path):
    """A test client speaking to the router as the page does; `page.post(path, user=..., **json)`."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    ctl = Controller(synth_root_copy.path, UserStore(make_users(tmp_path / "users.toml")),
                     ToolModels(ColourSegmenter(), ColourPropagator(), EchoCaptioner()), RefineConfig(),
                     FrameStore(cap_mb=128))
    app = FastAPI()
    app.include_router(api.make_router(ctl, lambda request: request.headers.get("x-user")))
    client = TestClient(app)

    class Page:
        seq = 0

        def __init__(self) -> None:
            self.ctl, self.state = ctl, {}

        def post(self, path: str, user: str | None = "alice", **body):
            r = client.post(f"/ssu/api/{path}", json={"tab": TAB, **body}, headers={"x-user": user} if user else {})
            if r.status_code == 200 and "revision" in r.json():
                self.state = r.json()
            return r

        def edit(self, kind: str, **body):
            """One edit as the page queues it: the frame and source it shows, the revision it saw, the next seq."""
            Page.seq += 1
            body = {"frame": self.state["frame"], "source_id": self.state["source_id"], **body}
            return self.post("edit", kind=kind, rev=self.state["revision"], seq=Page.seq, **body)

    return Page()


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def mask(page, source_id: int, frame: int) -> np.ndarray:
    m = DatasetRoot.open(page.ctl.root_path).read_annotation(CLIP).source(source_id).masks[frame]
    return np.zeros((512, 512), bool) if m is None else rle_mod.decode(m.model_dump())


def test_every_edit_kind_through_its_handler(page):
    st = ok(page.post("open", clip=CLIP))
    assert STATE_KEYS <= set(st) and st["frame"] == 0 and st["source_id"] == 0 and not st["read_only"]
    assert set(api.EDITS) == {"stroke", "polygon", "sam", "propagate", "spans", "split", "regenerate", "add_source",
                              "set_category", "remove_source", "undo", "redo", "decide"}

    st = ok(page.edit("stroke", frame=3, source_id=1, points=[[20, 300], [200, 340]], radius=6))
    assert STATE_KEYS | {"seq"} <= set(st) and st["frame"] == 3 and st["source_id"] == 1
    assert mask(page, 1, 3)[300, 20] and st["message"].startswith("saved: brush stroke")
    ok(page.edit("polygon", points=[[100, 100], [200, 100], [150, 200]], erase=True))
    assert not mask(page, 1, 3)[130, 150]
    ys, xs = np.nonzero(mask(page, 0, 0))
    st = ok(page.edit("sam", frame=0, source_id=0, points=[[float(xs[0]), float(ys[0]), 1]], box=None))
    assert st["message"].startswith("saved: SAM 1 point")
    st = ok(page.edit("propagate", direction="forward", start=0, end=5))
    assert "SAM2 propagate forward" in st["message"]
    spans = [dict(c) for c in st["sources"][0]["captions"]]
    spans[0]["text"] = "a green square hums"
    st = ok(page.edit("spans", spans=spans))
    assert st["sources"][0]["captions"][0]["text"] == "a green square hums"
    st = ok(page.edit("split", frame=10))
    assert [c["end"] for c in st["sources"][0]["captions"]][:2] == [10, 30]
    st = ok(page.edit("regenerate", index=0))
    assert st["sources"][0]["captions"][0]["text"].startswith("a square covering")
    st = ok(page.edit("add_source", category="circle", name="bell"))
    assert st["source_id"] == 3 and st["sources"][3]["name"] == "bell"
    st = ok(page.edit("set_category", category="diamond", name="gong"))
    assert st["sources"][3]["category"] == "diamond"
    st = ok(page.edit("remove_source"))
    assert [s["id"] for s in st["sources"]] == [0, 1, 2]
    st = ok(page.edit("undo"))
    assert [s["id"] for s in st["sources"]] == [0, 1, 2, 3] and st["can_redo"]
    st = ok(page.edit("redo"))
    assert [s["id"] for s in st["sources"]] == [0, 1, 2]
    st = ok(page.edit("decide", decision="accept", note="done"))
    assert st["status"] == "needs_review" and st["read_only"] and st["notes"][-1]["note"] == "done"


def test_refusals_keep_the_pages_contract(page):
    ok(page.post("open", clip=CLIP))
    assert page.post("state", user=None).status_code == 401
    r = page.edit("wave")
    assert r.status_code == 400 and "unknown edit 'wave'" in r.json()["error"]
    r = page.edit("propagate", direction="sideways")
    assert r.status_code == 400 and "sideways" in r.json()["error"]
    r = page.edit("stroke", source_id=None, points=[[5, 5]])
    assert r.status_code == 400 and r.json()["error"].startswith("source_id: expected a whole number")
    r = page.edit("decide", decision="maybe")
    assert r.status_code == 400 and "use accept, reject, send_back" in r.json()["error"]
    r = page.post("edit", kind="undo", rev=page.state["revision"], seq=1)  # a sequence number already seen
    assert r.status_code == 400 and "not applied twice" in r.json()["error"]
    seen = page.state["revision"]
    ok(page.edit("stroke", points=[[5, 5]], radius=4))
    page.state["revision"] = seen  # as if the page had not yet seen that edit
    r = page.edit("stroke", points=[[50, 50]], radius=4)
    assert r.status_code == 409 and "NOT saved" in r.json()["error"]
    assert not mask(page, 0, 0)[50, 50]


def test_an_edit_reads_the_annotation_once(page, monkeypatch):
    ok(page.post("open", clip=CLIP))
    reads = []
    real = DatasetRoot.read_annotation

    def counted(self, clip_id):
        reads.append(clip_id)
        return real(self, clip_id)
    monkeypatch.setattr(DatasetRoot, "read_annotation", counted)
    for kind, body in [("stroke", {"points": [[30, 30]], "radius": 5}), ("spans", {"spans": []}), ("undo", {})]:
        reads.clear()
        st = ok(page.edit(kind, **body))
        assert reads == [CLIP], f"{kind} read the annotation {len(reads)} times"
        assert st["revision"] == page.ctl.view(f"tab:{TAB}").revision  # what it answered is what it saved
    reads.clear()
    ok(page.post("state"))
    assert reads == [CLIP]
