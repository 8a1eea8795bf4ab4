"""The editor page's small JSON API, mounted on the same FastAPI app as the Gradio UI (same login cookie).

Every call names its browser tab (`tab`, a random id the page keeps in sessionStorage): one controller
session per tab. Edits carry the revision the page showed and a sequence number; the page sends them one
at a time, in order, so none is dropped, and the server refuses a sequence number it has already seen.
Answers: 200 with the editor state; 400 {error} for a user mistake; 409 {error, state} for a stale view;
401 {error} when the login is gone (server restarted, logged out): the page then asks for a login.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from annotator.refine import assets, payload
from annotator.refine.controller import Controller, StaleEdit
from annotator.refine.state import ClipView
from schemas.errors import UserError
from schemas.models import check_clip_id

STATIC = Path(__file__).resolve().parent / "static"  # the editor page: editor.js, editor.css
STATIC_FILES = {"editor.js": ("editor.js", "text/javascript"), "editor.css": ("editor.css", "text/css"),
                "captions.js": ("captions.js", "text/javascript"), "lookahead.js": ("lookahead.js", "text/javascript")}
JPEG_QUALITY = 90


class NotLoggedIn(Exception):
    pass


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int:
    v = body.get(key, default)
    try:
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # None, "x", NaN, 1e400 (JSON's infinity)
        raise UserError(f"{key}: expected a whole number, got {str(v)[:40]!r}") from None


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# the shape of each list an edit may carry: (field, how long each item is, what it holds)
_SHAPES = {"points": ((2, 3), "[x, y] or [x, y, label] numbers"), "box": ((4,), "4 numbers [x0, y0, x1, y1]")}


def check_shapes(body: dict[str, Any]) -> None:
    """Malformed numbers and shapes in an edit are the caller's mistake (400 naming the field), never a 500."""
    for key in ("frame", "source_id", "radius", "start", "end", "index", "seq"):
        if key in body and body[key] is not None:
            _int(body, key)
    pts = body.get("points")
    if pts is not None:
        if not isinstance(pts, list) or len(pts) > 100_000:
            raise UserError("points: expected a list of [x, y] points")
        for p in pts:
            if not isinstance(p, list) or len(p) not in _SHAPES["points"][0] or not all(map(_number, p)):
                raise UserError(f"points: each point is {_SHAPES['points'][1]}, got {str(p)[:40]}")
    box = body.get("box")
    if box is not None and (not isinstance(box, list) or len(box) != 4 or not all(map(_number, box))):
        raise UserError(f"box: expected {_SHAPES['box'][1]}, got {str(box)[:40]}")
    spans = body.get("spans")
    if spans is not None and (not isinstance(spans, list) or not all(isinstance(x, dict) for x in spans)):
        raise UserError("spans: expected a list of {start, end, text} objects")
    for x in spans or []:
        for key in ("start", "end"):
            _int(x, key)
        if not isinstance(x.get("text"), str):
            raise UserError("spans: each span's text is a string")
    for key in ("category", "name", "note", "decision", "direction", "kind", "rev"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise UserError(f"{key}: expected text")


def media_file(path: Path, folder: Path) -> Path:
    """The file a media URL names, only if it is a regular file inside `folder` (the root's clips/ or audio/)
    once links are resolved: a link planted there cannot serve users.toml or anything else."""
    real, base = path.resolve(), folder.resolve()
    if not real.is_relative_to(base) or not real.is_file():
        raise UserError(f"{path.name}: the clip's media is missing from the root")
    return real


def _source_id(body: dict[str, Any]) -> int:
    return _int(body, "source_id")


def _frame(body: dict[str, Any]) -> int:
    return _int(body, "frame")


def _points(body: dict[str, Any]) -> list[Any]:
    return list(body.get("points") or [])


# -- the edits, one named handler per `kind` the page sends: (controller, session id, revision, body) -> view ----
def edit_stroke(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.stroke(session_id, rev, _frame(body), _source_id(body), _points(body), _int(body, "radius", 12),
                      bool(body.get("erase")))


def edit_polygon(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.polygon(session_id, rev, _frame(body), _source_id(body), _points(body), bool(body.get("erase")))


def edit_sam(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.sam_prompt(session_id, rev, _frame(body), _source_id(body), [tuple(p) for p in _points(body)],
                          body.get("box"))


def edit_propagate(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.propagate(session_id, rev, _frame(body), _source_id(body), str(body.get("direction", "both")),
                         _int(body, "start", 0), _int(body, "end", 300))


def edit_spans(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    rows = [[x.get("start"), x.get("end"), x.get("text")] for x in body.get("spans") or []]
    return ctl.set_spans(session_id, rev, _source_id(body), rows)


def edit_split(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.split_span(session_id, rev, _frame(body), _source_id(body))


def edit_regenerate(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.regenerate_span(session_id, rev, _source_id(body), _int(body, "index", 0))


def edit_add_source(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.add_source(session_id, rev, str(body.get("category") or ""), body.get("name"))


def edit_set_category(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.set_category(session_id, rev, _source_id(body), str(body.get("category") or ""), body.get("name"))


def edit_remove_source(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.remove_source(session_id, rev, _source_id(body))


def edit_undo(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.undo(session_id, rev)


def edit_redo(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.redo(session_id, rev)


def edit_decide(ctl: Controller, session_id: str, rev: str | None, body: dict[str, Any]) -> ClipView:
    return ctl.decide(session_id, rev, str(body.get("decision") or ""), body.get("note"))


EditHandler = Callable[[Controller, str, str | None, dict[str, Any]], ClipView]
EDITS: dict[str, EditHandler] = {
    "stroke": edit_stroke, "polygon": edit_polygon, "sam": edit_sam, "propagate": edit_propagate,
    "spans": edit_spans, "split": edit_split, "regenerate": edit_regenerate, "add_source": edit_add_source,
    "set_category": edit_set_category, "remove_source": edit_remove_source, "undo": edit_undo, "redo": edit_redo,
    "decide": edit_decide,
}


def make_router(ctl: Controller, current_user: Callable[[Request], str | None]) -> APIRouter:
    r = APIRouter()

    def user_of(request: Request) -> str:
        user = current_user(request)
        if not user or ctl.users.get(user) is None:
            raise NotLoggedIn()
        return user

    def known_clip(clip_id: str) -> str:
        """The clip id from a URL, checked: well-formed and in the catalog."""
        try:
            cid = check_clip_id(clip_id)
        except ValueError as e:
            raise UserError(str(e)) from None
        if ctl.catalog.get(cid) is None:
            raise UserError(f"unknown clip {cid!r}")
        return cid

    def session_of(request: Request, body: dict[str, Any]) -> str:
        """The session id of the tab the body names, its session opened for the logged-in user."""
        tab = str(body.get("tab") or "")
        if not 8 <= len(tab) <= 64 or not tab.replace("-", "").isalnum():
            raise UserError("tab: missing or malformed tab id; reload the page")
        session_id = f"tab:{tab}"
        ctl.open_session(session_id, user_of(request))
        return session_id

    seq_lock = threading.Lock()

    async def off_loop(fn: Callable[[], Any]) -> Response:
        """answer(fn) in the thread pool: SAM, SAM2 and the captioner run for seconds, and the event loop that
        serves every user's frames, heartbeats and the Gradio UI must not wait for them."""
        return await run_in_threadpool(answer, fn)

    def answer(fn: Callable[[], Any]) -> Response:
        try:
            out = fn()
            return out if isinstance(out, Response) else JSONResponse(out)
        except NotLoggedIn:
            return JSONResponse({"error": "your session ended (the server restarted or you logged out): log in "
                                          "again; unsaved caption text is kept in this browser"}, 401)
        except StaleEdit as e:
            return JSONResponse({"error": str(e)}, 409)
        except UserError as e:
            return JSONResponse({"error": str(e)}, 400)

    async def body_of(request: Request) -> dict[str, Any]:
        import json

        try:
            data = json.loads(await request.body() or b"{}")  # the gate let only application/json through
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UserError("request body: expected a JSON object")
        return data

    @r.get("/ssu/editor")
    def editor_page(request: Request) -> Response:
        if current_user(request) is None:
            return RedirectResponse("/", 303)  # Gradio's login form, then the queue
        return HTMLResponse(assets.editor_html())

    @r.get("/ssu/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return Response(status_code=404)
        fname, mime = STATIC_FILES[name]
        return Response((STATIC / fname).read_bytes(), media_type=mime, headers={"Cache-Control": "no-cache"})

    @r.get("/ssu/api/frame/{clip_id}/{frame}.jpg")
    def frame(request: Request, clip_id: str, frame: int) -> Response:
        def run() -> Response:
            from PIL import Image

            user_of(request)
            cid = known_clip(clip_id)
            buf = io.BytesIO()
            Image.fromarray(ctl.frame_image(cid, frame)).save(buf, "JPEG", quality=JPEG_QUALITY)
            # served from memory (the shared frame cache), never through a temp file; the page asks with the
            # clip's mtime in the query, so the browser may keep it
            return Response(buf.getvalue(), media_type="image/jpeg",
                            headers={"Cache-Control": "private, max-age=3600"})
        return answer(run)

    @r.get("/ssu/api/video/{clip_id}.mp4")
    def video(request: Request, clip_id: str) -> Response:
        def run() -> Response:
            user_of(request)
            path = media_file(ctl.root.clip_path(known_clip(clip_id)), ctl.root_path / "clips")
            return FileResponse(path, media_type="video/mp4")  # answers Range requests: the video can seek
        return answer(run)

    @r.post("/ssu/api/open")
    async def open_(request: Request) -> Response:
        body = await body_of(request)

        def run() -> dict[str, Any]:
            return payload.editor_state(ctl, ctl.open_clip(session_of(request, body), str(body.get("clip") or "")))
        return await off_loop(run)

    @r.post("/ssu/api/state")
    async def state(request: Request) -> Response:
        body = await body_of(request)
        return await off_loop(lambda: payload.editor_state(ctl, ctl.view(session_of(request, body))))

    @r.post("/ssu/api/heartbeat")
    async def heartbeat(request: Request) -> Response:
        body = await body_of(request)
        return await off_loop(lambda: ctl.heartbeat(session_of(request, body)))

    @r.post("/ssu/api/close")
    async def close(request: Request) -> Response:
        body = await body_of(request)

        def run() -> dict[str, Any]:
            user_of(request)
            tab = str(body.get("tab") or "")
            s = ctl.sessions.get(f"tab:{tab}")
            if s is not None and s.user.name == current_user(request):
                ctl.close_session(f"tab:{tab}")
            return {"closed": s is not None}
        return await off_loop(run)

    @r.post("/ssu/api/edit")
    async def edit(request: Request) -> Response:
        body = await body_of(request)

        def run() -> dict[str, Any]:
            session_id = session_of(request, body)
            s = ctl.session(session_id)
            check_shapes(body)
            seq = _int(body, "seq")
            with seq_lock:  # requests run in parallel threads: check-and-set the tab's sequence number at once
                if seq <= s.last_seq:
                    raise UserError(f"edit #{seq} arrived after #{s.last_seq}: refused (not applied twice); reload")
                s.last_seq = seq
            kind = str(body.get("kind") or "")
            if kind not in EDITS:
                raise UserError(f"unknown edit {kind!r}; use one of {', '.join(EDITS)}")
            try:
                view = EDITS[kind](ctl, session_id, body.get("rev"), body)
            except ValueError as e:  # a bad enum value from the page
                raise UserError(str(e)) from None
            out = payload.editor_state(ctl, view)
            out["seq"] = seq
            return out

        return await off_loop(run)

    return r
