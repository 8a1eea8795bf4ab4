"""The Gradio 6 shell of ssu-refine: login, the queue, uploads and the dashboard. The frame editor is a
page of its own (/ssu/editor, annotator/refine/static/editor.js over the JSON API in api.py) mounted on the same
FastAPI app, so every key and stroke is handled in the browser, in order, and frames are served from memory.

Handlers take the gr.Request (its session hash keys the controller's session, its username is the logged-in
user) and return dicts {component: value}; a UserError becomes the message line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr  # this module is imported only when the server starts (refine/cli.py imports it lazily)

from annotator.refine import api, assets, dashboard, upload
from annotator.refine.confidence import QueueOrder
from annotator.refine.controller import Controller
from schemas.errors import UserError
from schemas.models import ClipStatus

QUEUE_HEADERS = ["clip_id", "category", "status", "leased_by", "updated"]
ALL = "all"
GO = "(c) => { if (c) window.location.href = '/ssu/editor?clip=' + encodeURIComponent(c); }"


def build_app(ctl: Controller) -> Any:
    # delete_cache: uploads are copied into the root; Gradio's copies are removed within the hour
    with gr.Blocks(title="ssu-refine", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        with gr.Row(elem_id="ssu-top"):
            header = gr.Markdown("ssu-refine", elem_id="ssu-header")
            gr.Button("Log out", link="/logout", size="sm", scale=0, elem_id="ssu-logout")
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
                label = gr.Dropdown(ctl.categories, allow_custom_value=True, label="Category of these videos",
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
        open_btn.click(None, [clip_box], None, js=GO)

        def pick(evt: gr.SelectData) -> str:
            row = evt.row_value if evt.row_value else []
            return str(row[0]) if row else ""

        table.select(pick, None, [go]).then(None, [go], None, js=GO)

        def next_clip(c: str, order: str, request: gr.Request) -> dict:
            try:
                ctl.open_session(request.session_hash, request.username)
                return {go: ctl.next_clip_id(request.session_hash, None if c == ALL else c, QueueOrder(order)),
                        msg: ""}
            except UserError as e:
                return {go: "", msg: f"⚠️ {e}"}

        next_btn.click(next_clip, [f_cat, f_order], [go, msg]).then(None, [go], None, js=GO)

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
                results = upload.ingest(ctl.root_path, [Path(p) for p in paths or []], lab, s.user.name, say,
                                        draft=ctl.draft)
            except UserError as e:
                return {up_log: f"⚠️ {e}"}
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


def launch(ctl: Controller, host: str, port: int, *, block: bool = True) -> Any:
    """Start the server with login required; media served only from the root's clips/ and audio/; the
    editor page and its API mounted on the same app. block=False returns the running gr.Blocks at once
    (tests call .close() on it)."""
    demo = build_app(ctl)
    demo.queue(default_concurrency_limit=8)
    app, _, _ = demo.launch(
        server_name=host, server_port=port, auth=lambda u, p: ctl.users.authenticate(u, p) is not None,
        auth_message="ssu-refine: log in with the name and password your project lead gave you",
        allowed_paths=[str(ctl.root_path / "clips"), str(ctl.root_path / "audio")],
        prevent_thread_lock=True, quiet=True, footer_links=[], css=assets.CSS, show_error=False,
        ssr_mode=False, enable_monitoring=False, mcp_server=False, pwa=False)

    def current_user(request: Any) -> str | None:
        # the same lookup as Gradio's own /user route: the login cookie names a token of this process
        token = (request.cookies.get(f"access-token-{app.cookie_id}")
                 or request.cookies.get(f"access-token-unsecure-{app.cookie_id}"))
        return app.tokens.get(token)

    app.include_router(api.make_router(ctl, current_user))
    if block:
        demo.block_thread()
    return demo



