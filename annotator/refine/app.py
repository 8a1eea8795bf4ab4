"""The Gradio 6 shell of ssu-refine: login, the queue, uploads and the dashboard. The frame editor is a
page of its own (/ssu/editor, annotator/refine/static/editor.js over the JSON API in api.py) mounted on the same
FastAPI app, so every key and stroke is handled in the browser, in order, and frames are served from memory.

Handlers take the gr.Request (its session hash keys the controller's session, its username is the logged-in
user) and return dicts {component: value}; a UserError becomes the message line.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import gradio as gr  # this module is imported only when the server starts (refine/cli.py imports it lazily)

from annotator.refine import api, assets, dashboard, gate, upload
from annotator.refine.confidence import QueueOrder
from annotator.refine.config import check_category
from annotator.refine.controller import Controller
from annotator.refine.sessions import Logins
from schemas.errors import UserError
from schemas.models import ClipStatus

QUEUE_HEADERS = ["clip_id", "category", "status", "leased_by", "updated"]
ALL = "all"
LOGOUT = ("() => fetch('/logout', {method: 'POST', credentials: 'same-origin', headers: {'X-SSU-Request': '1'}})"
          ".then(() => { window.location.href = '/'; })")  # a POST (gate.py): no link or image can log one out
OPEN_EDITOR_JS = "(c) => { if (c) window.location.href = '/ssu/editor?clip=' + encodeURIComponent(c); }"


def build_app(ctl: Controller) -> Any:
    # delete_cache: uploads are copied into the root; Gradio's copies are removed within the hour
    with gr.Blocks(title="ssu-refine", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        with gr.Row(elem_id="ssu-top"):
            header = gr.Markdown("ssu-refine", elem_id="ssu-header")
            logout = gr.Button("Log out", size="sm", scale=0, elem_id="ssu-logout")
        msg = gr.Markdown("", elem_id="ssu-msg")
        with gr.Tabs(elem_id="ssu-tabs"):
            with gr.Tab("Queue", id="queue", elem_id="ssu-tab-queue"):
                with gr.Row():
                    f_status = gr.Dropdown([ALL] + [s.value for s in ClipStatus.annotated()], value=ALL,
                                           label="Status", elem_id="ssu-f-status")
                    f_cat = gr.Dropdown([ALL, *ctl.categories], value=ALL, label="Category", elem_id="ssu-f-cat")
                    f_query = gr.Textbox(label="Captions match", placeholder="e.g. violin on the left",
                                         elem_id="ssu-f-query", scale=2)
                    f_order = gr.Dropdown([o.value for o in QueueOrder], value=QueueOrder.clip.value, label="Order",
                                          elem_id="ssu-f-order")  # least confident: the drafter's worst second
                    refresh_q = gr.Button("Refresh", elem_id="ssu-refresh")
                    next_btn = gr.Button("Next clip", variant="primary", elem_id="ssu-next-clip")
                table = gr.Dataframe(headers=QUEUE_HEADERS, interactive=False, elem_id="ssu-queue")
                with gr.Row():
                    clip_box = gr.Textbox(label="Clip id", elem_id="ssu-clip-id", scale=3)
                    open_btn = gr.Button("Open in the editor", elem_id="ssu-open", scale=1)
                gr.Markdown("The editor opens in this tab; its shortcuts are listed on its right side.")
            with gr.Tab("Upload", id="upload", elem_id="ssu-tab-upload"):
                gr.Markdown("Drop videos here: each is normalized exactly as `ssu-collect --source local` does "
                            "(512×512, 30 fps, 10 s, 16 kHz audio; the same refusal reasons) and enters the queue.")
                files = gr.File(file_count="multiple", file_types=["video"], label="Videos", elem_id="ssu-files")
                label = gr.Dropdown(ctl.categories, allow_custom_value=ctl.config.new_categories,
                                    label="Category of these videos",
                                    elem_id="ssu-up-label")
                up_btn = gr.Button("Upload and add to the queue", variant="primary", elem_id="ssu-upload")
                up_log = gr.Markdown("", elem_id="ssu-upload-log")
            with gr.Tab("Dashboard", id="dashboard", elem_id="ssu-tab-dash") as dash_tab:
                dash_refresh = gr.Button("Refresh", elem_id="ssu-dash-refresh")
                with gr.Row():
                    d_status = gr.Dataframe(label="Clips per status", interactive=False, elem_id="ssu-d-status")
                    d_hours = gr.Dataframe(label="Edits per hour (UTC, last 24 h)", interactive=False)
                d_people = gr.Dataframe(label="Per person", interactive=False, elem_id="ssu-d-people")
                d_cats = gr.Dataframe(label="Changes to the automatic draft, per category (1.0 = untouched)",
                                      interactive=False, elem_id="ssu-d-cats")
                d_drafters = gr.Dataframe(label="Drafters: what refiners kept of each one's drafts (submitted and "
                                          "accepted clips)", interactive=False, elem_id="ssu-d-drafters")
        go = gr.Textbox(visible="hidden", elem_id="ssu-go")
        logout.click(None, None, None, js=LOGOUT)

        # -- queue --------------------------------------------------------------------------------
        def load_queue(st: str, c: str, query: str, order: str, request: gr.Request) -> dict:
            try:
                s = ctl.open_session(request.session_hash, request.username)
                rows = ctl.queue(s.session_id, None if st == ALL else ClipStatus(st), None if c == ALL else c, query,
                                 QueueOrder(order))
            except UserError as e:
                return {msg: f"⚠️ {e}"}
            heads = QUEUE_HEADERS + [k for k in (rows[0] if rows else {}) if k not in QUEUE_HEADERS]
            return {table: gr.update(value=[[r[h] for h in heads] for r in rows], headers=heads), msg: "",
                    up_btn: gr.update(interactive=s.user.can_review),  # uploads are a reviewer's job
                    header: f"**ssu-refine** · {ctl.root_path.name} · logged in as **{s.user.name}** "
                            f"({s.user.role.value})"}

        q_in, q_out = [f_status, f_cat, f_query, f_order], [table, header, msg, up_btn]
        demo.load(load_queue, q_in, q_out)
        for ev in (refresh_q.click, f_status.input, f_cat.input, f_query.submit, f_order.input):
            ev(load_queue, q_in, q_out)
        open_btn.click(None, [clip_box], None, js=OPEN_EDITOR_JS)

        def pick(evt: gr.SelectData) -> str:
            row = evt.row_value if evt.row_value else []
            return str(row[0]) if row else ""

        table.select(pick, None, [go]).then(None, [go], None, js=OPEN_EDITOR_JS)

        def next_clip(c: str, order: str, request: gr.Request) -> dict:
            try:
                ctl.open_session(request.session_hash, request.username)
                return {go: ctl.next_clip_id(request.session_hash, None if c == ALL else c, QueueOrder(order)),
                        msg: ""}
            except UserError as e:
                return {go: "", msg: f"⚠️ {e}"}

        next_btn.click(next_clip, [f_cat, f_order], [go, msg]).then(None, [go], None, js=OPEN_EDITOR_JS)

        # -- upload -------------------------------------------------------------------------------
        def do_upload(paths: list[str] | None, lab: str, request: gr.Request, progress=gr.Progress()) -> Any:
            try:
                s = ctl.open_session(request.session_hash, request.username)
                if not s.user.can_review:
                    raise UserError("only a reviewer can add videos to the root")
                lines: list[str] = []

                def say(m: str) -> None:
                    lines.append(m)
                    progress(len(lines) / (len(paths or []) + 1), desc=m)
                lab = check_category(lab, ctl.categories, ctl.config.new_categories)
                results = upload.ingest(ctl.root_path, [Path(p) for p in paths or []], lab, s.user.name, say,
                                        draft=ctl.draft, limits=ctl.config)
            except UserError as e:
                return {up_log: f"⚠️ {upload.no_paths(str(e))}"}
            finally:
                for p in paths or []:  # Gradio's copies in its cache: the root keeps what it collected
                    Path(p).unlink(missing_ok=True)
            ctl.reload_categories()
            def cell(t: str) -> str:
                return t.replace("|", "\\|").replace("\n", " ")
            rows = "\n".join(f"| {cell(r.file)} | {r.clip_id or ''} | {'in the queue' if r.ok else 'REFUSED'} | "
                             f"{cell(r.reason)} |" for r in results)
            return {up_log: "| file | clip | result | why |\n|---|---|---|---|\n" + rows, files: None}

        up_btn.click(do_upload, [files, label], [up_log, files]).then(load_queue, q_in, q_out)

        # -- dashboard ----------------------------------------------------------------------------
        def load_dash(request: gr.Request) -> dict:
            try:
                ctl.open_session(request.session_hash, request.username)
            except UserError as e:
                return {msg: f"⚠️ {e}"}
            s = dashboard.summary(ctl.root)

            def df(rows: list[dict[str, object]]) -> Any:
                import pandas as pd

                return pd.DataFrame(rows) if rows else pd.DataFrame({"": ["nothing yet"]})
            return {d_status: df(s["status"]), d_people: df(s["people"]), d_hours: df(s["hours"]),
                    d_cats: df(s["categories"]), d_drafters: df(s["drafters"])}

        dash_out = [d_status, d_people, d_hours, d_cats, d_drafters, msg]
        dash_refresh.click(load_dash, None, dash_out)
        dash_tab.select(load_dash, None, dash_out)

        def unload(request: gr.Request) -> None:
            ctl.close_session(request.session_hash)

        demo.unload(unload)
    return demo


class Served:
    """A running ssu-refine: the FastAPI app (the gate, our routes, Gradio mounted at /) under uvicorn."""

    def __init__(self, demo: Any, app: Any, server: Any, thread: threading.Thread | None) -> None:
        self.demo, self.app, self.server, self.thread = demo, app, server, thread

    def close(self) -> None:
        self.demo.close(verbose=False)  # stops Gradio's queue
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)


def build_web(ctl: Controller, host: str, port: int, *, with_gate: bool = True) -> Any:
    """The whole web app: our routes first, Gradio mounted at / (its CORS replaced by ours: same origin only),
    login sessions from the users file as it is now, and the request gate in front of everything.
    with_gate=False exists only for bench/refine.py, which measures what the gate costs."""
    from fastapi import FastAPI
    from starlette.middleware.cors import CORSMiddleware

    cfg = ctl.config
    demo = build_app(ctl)
    demo.queue(default_concurrency_limit=8)
    origins = gate.Origins.of(host, port, cfg.public_url)
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # Gradio adds its own CORS (which echoes loopback origins with credentials) unless the parent app has one
    web.add_middleware(CORSMiddleware, allow_origins=sorted(origins.origins), allow_credentials=False,
                       allow_methods=["GET"], allow_headers=[])
    logins = Logins(ctl.users, cfg.login_idle_minutes * 60, cfg.login_hours * 3600,
                    on_end=lambda name: end_user(ctl, name))
    holder: dict[str, Any] = {}

    def current_user(request: Any) -> str | None:
        name = holder["cookie"]
        # without the gate (bench/refine.py only) Gradio's own login runs, and sets its "unsecure" cookie too
        token = request.cookies.get(name) or request.cookies.get(name.replace("-token-", "-token-unsecure-"))
        return logins.user_of(token)

    web.include_router(api.make_router(ctl, current_user))
    gr.mount_gradio_app(
        web, demo, path="/", auth=lambda u, p: ctl.users.authenticate(u, p) is not None,
        auth_message="ssu-refine: log in with the name and password your project lead gave you",
        allowed_paths=[],  # media only through /ssu/api (regular files inside clips/), never /gradio_api/file=
        max_file_size=cfg.max_upload_mb * 2**20, footer_links=[], css=assets.CSS, show_error=False,
        ssr_mode=False, enable_monitoring=False, mcp_server=False, pwa=False, server_name=host, server_port=port)
    gradio_app = next(r.app for r in web.routes if getattr(r, "path", None) == "" and hasattr(r.app, "tokens"))
    gradio_app.tokens = logins  # Gradio's routes resolve the login cookie through the same sessions as ours
    holder["cookie"] = f"access-token-{gradio_app.cookie_id}"
    if with_gate:
        web.add_middleware(gate.RequestGate, config=cfg, origins=origins, users=ctl.users, logins=logins,
                           cookie_name=holder["cookie"])
    return demo, web


def end_user(ctl: Controller, name: str) -> None:
    """A user removed, re-roled or with a new password (or logged out everywhere): their editor sessions end
    and the clips they held are released."""
    for session_id, s in list(ctl.sessions.items()):
        if s.user.name == name:
            ctl.close_session(session_id)
    for row in ctl.catalog.rows():  # leases without an open tab too (claimed before a restart)
        if row.lease_owner == name:
            ctl.catalog.release(row.clip_id, name)


def launch(ctl: Controller, host: str, port: int, *, block: bool = True, with_gate: bool = True) -> Served:
    """Start the server with login required; media served only from the root's clips/ (ssu/api); the
    editor page and its API mounted on the same app. block=False returns at once with the server running
    in a thread (tests call .close() on it)."""
    import time

    import uvicorn

    demo, web = build_web(ctl, host, port, with_gate=with_gate)
    server = uvicorn.Server(uvicorn.Config(web, host=host, port=port, log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=2))
    if block:
        server.run()
        return Served(demo, web, server, None)
    thread = threading.Thread(target=server.run, name="ssu-refine-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise UserError(f"--port {port}: the server did not start (is the port in use?)")
        time.sleep(0.02)
    return Served(demo, web, server, thread)
