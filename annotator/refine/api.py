"""The editor page's small JSON API, mounted on the same FastAPI app as the Gradio UI (same login cookie).

Every call names its browser tab (`tab`, a random id the page keeps in sessionStorage): one controller
session per tab. Edits carry the revision the page showed and a sequence number; the page sends them one
at a time, in order, so none is dropped, and the server refuses a sequence number it has already seen.
Answers: 200 with the editor state; 400 {error} for a user mistake; 409 {error, state} for a stale view;
401 {error} when the login is gone (server restarted, logged out): the page then asks for a login.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from annotator.refine import assets, payload
from annotator.refine.controller import Controller, StaleEdit
from annotator.refine.models_hub import Direction
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
    except (TypeError, ValueError):
        raise UserError(f"{key}: expected a whole number, got {v!r}") from None


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

    def sid_of(request: Request, body: dict[str, Any]) -> str:
        tab = str(body.get("tab") or "")
        if not 8 <= len(tab) <= 64 or not tab.replace("-", "").isalnum():
            raise UserError("tab: missing or malformed tab id; reload the page")
        sid = f"tab:{tab}"
        ctl.open_session(sid, user_of(request)).render_image = False
        return sid

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
            data = json.loads(await request.body() or b"{}")  # sendBeacon posts text/plain: parse by hand
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
            path = ctl.root.clip_path(known_clip(clip_id))
            if not path.is_file():
                raise UserError(f"{path.name}: the clip's video is missing from the root")
            return FileResponse(path, media_type="video/mp4")  # answers Range requests: the video can seek
        return answer(run)

    @r.post("/ssu/api/open")
    async def open_(request: Request) -> Response:
        body = await body_of(request)

        def run() -> dict[str, Any]:
            sid = sid_of(request, body)
            v = ctl.open_clip(sid, str(body.get("clip") or ""))
            return payload.editor_state(ctl, sid, v.message)
        return await off_loop(run)

    @r.post("/ssu/api/state")
    async def state(request: Request) -> Response:
        body = await body_of(request)
        return await off_loop(lambda: payload.editor_state(ctl, sid_of(request, body)))

    @r.post("/ssu/api/heartbeat")
    async def heartbeat(request: Request) -> Response:
        body = await body_of(request)
        return await off_loop(lambda: ctl.heartbeat(sid_of(request, body)))

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

    edits: dict[str, Callable[[str, str | None, dict[str, Any]], Any]] = {
        "stroke": lambda sid, rev, b: ctl.stroke(sid, rev, _int(b, "frame"), _int(b, "source_id"),
                                                 list(b.get("points") or []), _int(b, "radius", 12),
                                                 bool(b.get("erase"))),
        "polygon": lambda sid, rev, b: ctl.polygon(sid, rev, _int(b, "frame"), _int(b, "source_id"),
                                                   list(b.get("points") or []), bool(b.get("erase"))),
        "sam": lambda sid, rev, b: ctl.sam_prompt(sid, rev, _int(b, "frame"), _int(b, "source_id"),
                                                  [tuple(p) for p in b.get("points") or []], b.get("box")),
        "propagate": lambda sid, rev, b: (ctl._at(sid, _int(b, "frame"), _int(b, "source_id")),
                                          ctl.propagate(sid, rev, Direction(str(b.get("direction", "both"))),
                                                        _int(b, "start", 0), _int(b, "end", 300)))[1],
        "spans": lambda sid, rev, b: (ctl._at(sid, _int(b, "frame"), _int(b, "source_id")),
                                      ctl.set_spans(sid, rev, [[x.get("start"), x.get("end"), x.get("text")]
                                                               for x in b.get("spans") or []]))[1],
        "split": lambda sid, rev, b: (ctl._at(sid, _int(b, "frame"), _int(b, "source_id")),
                                      ctl.split_span(sid, rev))[1],
        "regenerate": lambda sid, rev, b: (ctl._at(sid, _int(b, "frame"), _int(b, "source_id")),
                                           ctl.regenerate_span(sid, rev, _int(b, "index", 0)))[1],
        "add_source": lambda sid, rev, b: ctl.add_source(sid, rev, str(b.get("category") or ""), b.get("name")),
        "set_category": lambda sid, rev, b: (ctl._at(sid, _int(b, "frame"), _int(b, "source_id")),
                                             ctl.set_category(sid, rev, str(b.get("category") or ""),
                                                              b.get("name")))[1],
        "remove_source": lambda sid, rev, b: (ctl._at(sid, _int(b, "frame"), _int(b, "source_id")),
                                              ctl.remove_source(sid, rev))[1],
        "undo": lambda sid, rev, b: ctl.undo(sid, rev),
        "redo": lambda sid, rev, b: ctl.redo(sid, rev),
        "decide": lambda sid, rev, b: ctl.decide(sid, rev, str(b.get("decision") or ""), b.get("note")),
    }

    @r.post("/ssu/api/edit")
    async def edit(request: Request) -> Response:
        body = await body_of(request)

        def run() -> dict[str, Any]:
            sid = sid_of(request, body)
            s = ctl.session(sid)
            seq = _int(body, "seq")
            with seq_lock:  # requests run in parallel threads: check-and-set the tab's sequence number at once
                if seq <= s.last_seq:
                    raise UserError(f"edit #{seq} arrived after #{s.last_seq}: refused (not applied twice); reload")
                s.last_seq = seq
            kind = str(body.get("kind") or "")
            if kind not in edits:
                raise UserError(f"unknown edit {kind!r}; use one of {', '.join(edits)}")
            try:
                v = edits[kind](sid, body.get("rev"), body)
            except ValueError as e:  # a bad enum value from the page
                raise UserError(str(e)) from None
            out = payload.editor_state(ctl, sid, v.message)
            out["seq"] = seq
            return out

        return await off_loop(run)

    return r
