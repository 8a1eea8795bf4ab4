"""The Gradio 6 view of ssu-refine: a thin layer over Controller. No logic lives here.

Every handler takes the gr.Request (its session hash keys the controller's session, its username is the
logged-in user), calls one controller method and returns a dict {component: value or gr.update}. A
UserError becomes the message line; a stale revision also refreshes the view to the saved version.
"""

import inspect
from collections.abc import Callable
from typing import Any

import gradio as gr  # this module is imported only when the server starts (refine_cli imports it lazily)

from annotator.refine import assets, dashboard
from annotator.refine.controller import ClipView, Controller, StaleEdit
from annotator.refine.tools import Tool
from schemas.constants import NUM_FRAMES
from schemas.errors import UserError
from schemas.models import ClipStatus

QUEUE_HEADERS = ["clip_id", "category", "status", "leased_by", "updated"]
ALL = "all"


def build_app(ctl: Controller) -> Any:
    with gr.Blocks(title="ssu-refine", analytics_enabled=False) as demo:
        rev = gr.State("")
        with gr.Row(elem_id="ssu-top"):
            header = gr.Markdown("ssu-refine", elem_id="ssu-header")
            gr.Button("Log out", link="/logout", size="sm", scale=0, elem_id="ssu-logout")
        msg = gr.Markdown("", elem_id="ssu-msg")
        with gr.Tabs(elem_id="ssu-tabs") as tabs:
            with gr.Tab("Queue", id="queue", elem_id="ssu-tab-queue"):
                with gr.Row():
                    f_status = gr.Dropdown([ALL] + [s.value for s in ClipStatus.annotated()], value=ALL,
                                           label="Status", elem_id="ssu-f-status")
                    f_cat = gr.Dropdown([ALL, *ctl.categories], value=ALL, label="Category", elem_id="ssu-f-cat")
                    refresh_q = gr.Button("Refresh", elem_id="ssu-refresh")
                    next_btn = gr.Button("Next clip", variant="primary", elem_id="ssu-next-clip")
                table = gr.Dataframe(headers=QUEUE_HEADERS, interactive=False, elem_id="ssu-queue")
                with gr.Row():
                    clip_box = gr.Textbox(label="Clip id", elem_id="ssu-clip-id", scale=3)
                    open_btn = gr.Button("Open", elem_id="ssu-open", scale=1)
            with gr.Tab("Editor", id="editor", elem_id="ssu-tab-editor"):
                with gr.Row():
                    with gr.Column(scale=3):
                        status_md = gr.Markdown("", elem_id="ssu-status")
                        image = gr.Image(interactive=False, label="Frame: click to edit the selected source",
                                         format="png", elem_id="ssu-frame", buttons=[], height=512)
                        with gr.Row():
                            prev_btn = gr.Button("◀ prev", elem_id="ssu-prev", scale=0, min_width=80)
                            slider = gr.Slider(0, NUM_FRAMES - 1, step=1, value=0, label="Frame",
                                               elem_id="ssu-slider")
                            next_f = gr.Button("next ▶", elem_id="ssu-next", scale=0, min_width=80)
                        video = gr.Video(label="Clip with sound", elem_id="ssu-video", interactive=False,
                                         height=260)
                        with gr.Accordion("Captions of the selected source", open=True):
                            spans = gr.Dataframe(headers=["start", "end", "text"], datatype=["number", "number", "str"],
                                                 interactive=True, elem_id="ssu-spans", wrap=True,
                                                 column_widths=["60px", "60px", "auto"])
                            with gr.Row():
                                save_spans = gr.Button("Save captions", elem_id="ssu-save-spans")
                                split_btn = gr.Button("Split at this frame", elem_id="ssu-split")
                            with gr.Row():
                                span_idx = gr.Number(0, label="Span # (from 0)", precision=0, elem_id="ssu-span-idx")
                                regen_btn = gr.Button("Regenerate with VLM", elem_id="ssu-regen")
                    with gr.Column(scale=2):
                        caps = gr.HTML("", elem_id="ssu-caps")
                        source = gr.Radio([], label="Source", elem_id="ssu-source")
                        tool = gr.Radio([t.value for t in Tool], value=Tool.positive.value, label="Tool",
                                        elem_id="ssu-tool")
                        with gr.Row():
                            radius = gr.Slider(1, 128, step=1, value=12, label="Brush radius", elem_id="ssu-radius")
                            clear_btn = gr.Button("Clear clicks", elem_id="ssu-clear", scale=0)
                        with gr.Accordion("Propagate with SAM2", open=True):
                            with gr.Row():
                                direction = gr.Radio(["forward", "backward", "both"], value="both",
                                                     label="Direction", elem_id="ssu-direction")
                                p_start = gr.Number(0, label="From frame", precision=0, elem_id="ssu-p-start")
                                p_end = gr.Number(NUM_FRAMES, label="To frame (excl.)", precision=0,
                                                  elem_id="ssu-p-end")
                            prop_btn = gr.Button("Propagate from this frame", elem_id="ssu-propagate")
                        with gr.Accordion("Sources", open=False):
                            with gr.Row():
                                cat = gr.Dropdown(ctl.categories, label="Category", elem_id="ssu-cat")
                                name = gr.Textbox(label="Name (optional)", elem_id="ssu-name")
                            with gr.Row():
                                add_btn = gr.Button("Add source", elem_id="ssu-add-source")
                                setcat_btn = gr.Button("Set category/name", elem_id="ssu-set-cat")
                                rm_btn = gr.Button("Remove source", variant="stop", elem_id="ssu-remove-source")
                        with gr.Row():
                            undo_btn = gr.Button("↶ Undo", elem_id="ssu-undo")
                            redo_btn = gr.Button("↷ Redo", elem_id="ssu-redo")
                        note = gr.Textbox(label="Note (for reject / send back)", elem_id="ssu-note")
                        with gr.Row():
                            accept_btn = gr.Button("Accept", variant="primary", elem_id="ssu-accept")
                            reject_btn = gr.Button("Reject", variant="stop", elem_id="ssu-reject")
                            back_btn = gr.Button("Send back", elem_id="ssu-send-back")
            with gr.Tab("Dashboard", id="dashboard", elem_id="ssu-tab-dash") as dash_tab:
                dash_refresh = gr.Button("Refresh", elem_id="ssu-dash-refresh")
                with gr.Row():
                    d_status = gr.Dataframe(label="Clips per status", interactive=False, elem_id="ssu-d-status")
                    d_hours = gr.Dataframe(label="Edits per hour (UTC, last 24 h)", interactive=False)
                d_people = gr.Dataframe(label="Per person", interactive=False, elem_id="ssu-d-people")
                d_cats = gr.Dataframe(label="Changes to the automatic draft, per category (1.0 = untouched)",
                                      interactive=False, elem_id="ssu-d-cats")

        view_outputs = [msg, status_md, image, slider, caps, source, spans, rev, video, p_start, p_end, note,
                        undo_btn, redo_btn, tabs]

        def show(v: ClipView, with_video: bool = False, switch: bool = False) -> dict:
            lease = f" · leased by **{v.lease_owner}**" if v.lease_owner else ""
            mode = "🔒 read-only" if v.read_only else "✏️ editing"
            out: dict = {
                msg: v.message, rev: v.revision, image: v.image, slider: v.frame, caps: v.captions_html,
                status_md: f"**{v.clip_id}** · status **{v.status.value}**{lease} · {mode}"
                           + (f" · note: _{v.note}_" if v.note else ""),
                source: gr.update(choices=[(s.label, str(s.id)) for s in v.sources],
                                  value=None if v.source_id is None else str(v.source_id)),
                spans: gr.update(value=v.spans or [[None, None, None]], interactive=not v.read_only),
                undo_btn: gr.update(interactive=v.can_undo), redo_btn: gr.update(interactive=v.can_redo),
            }
            if with_video:
                out[video] = str(v.video)
            if switch:
                out[tabs] = gr.Tabs(selected="editor")
            return out

        def run(request: gr.Request, fn: Callable[[str], ClipView], with_video: bool = False,
                switch: bool = False) -> dict:
            try:
                sid = ctl.open_session(request.session_hash, request.username).sid
                return show(fn(sid), with_video, switch)
            except StaleEdit as e:
                return show(ctl.view(request.session_hash, message=f"⚠️ {e}"))
            except UserError as e:
                return {msg: f"⚠️ {e}"}

        # -- queue --------------------------------------------------------------------------------
        def load_queue(st: str, c: str, request: gr.Request) -> dict:
            try:
                s = ctl.open_session(request.session_hash, request.username)
                rows = ctl.queue(s.sid, None if st == ALL else ClipStatus(st), None if c == ALL else c)
            except UserError as e:
                return {msg: f"⚠️ {e}"}
            return {table: [[r[h] for h in QUEUE_HEADERS] for r in rows],
                    header: f"**ssu-refine** · {ctl.root_path.name} · logged in as **{s.user.name}** "
                            f"({s.user.role.value})"}

        def handler(call: Callable[..., ClipView], n: int, video: bool = False, switch: bool = False) -> Callable:
            """A Gradio handler with n inputs plus the request, calling call(sid, *inputs)."""
            def h(*args: Any) -> dict:
                *vals, request = args
                return run(request, lambda sid: call(sid, *vals), video, switch)
            P = inspect.Parameter
            h.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
                [P(f"a{i}", P.POSITIONAL_OR_KEYWORD) for i in range(n)]
                + [P("request", P.POSITIONAL_OR_KEYWORD, annotation=gr.Request)])
            h.__annotations__ = {"request": gr.Request}
            return h

        q_in, q_out = [f_status, f_cat], [table, header, msg]
        demo.load(load_queue, q_in, q_out)
        for ev in (refresh_q.click, f_status.input, f_cat.input):
            ev(load_queue, q_in, q_out)
        open_btn.click(handler(lambda sid, c: ctl.open_clip(sid, c), 1, True, True), [clip_box], view_outputs)

        def pick(evt: gr.SelectData, request: gr.Request) -> dict:
            row = evt.row_value if evt.row_value else []
            if not row:
                return {}
            out = run(request, lambda sid: ctl.open_clip(sid, str(row[0])), True, True)
            out[clip_box] = str(row[0])
            return out

        table.select(pick, None, view_outputs + [clip_box])
        next_btn.click(handler(lambda sid, c: ctl.claim_next(sid, None if c == ALL else c), 1, True, True),
                       [f_cat], view_outputs)

        # -- viewer -------------------------------------------------------------------------------
        slider.release(handler(lambda sid, f: ctl.view(sid, frame=int(f)), 1), [slider], view_outputs)
        prev_btn.click(handler(lambda sid, f: ctl.view(sid, frame=int(f) - 1), 1), [slider], view_outputs)
        next_f.click(handler(lambda sid, f: ctl.view(sid, frame=int(f) + 1), 1), [slider], view_outputs)
        source.input(handler(lambda sid, s: ctl.view(sid, source_id=int(s) if s else None), 1), [source],
                     view_outputs)

        def set_tool(sid: str, t: str, rad: float) -> ClipView:
            ctl.set_tool(sid, t, int(rad))
            return ctl.view(sid, message=f"tool: {t}")

        tool.input(handler(set_tool, 2), [tool, radius], view_outputs)
        radius.release(handler(set_tool, 2), [tool, radius], view_outputs)
        clear_btn.click(handler(ctl.clear_prompts, 0), None, view_outputs)

        def click(rv: str, evt: gr.SelectData, request: gr.Request) -> dict:
            x, y = evt.index
            return run(request, lambda sid: ctl.click(sid, float(x), float(y), rv))

        image.select(click, [rev], view_outputs)
        prop_btn.click(handler(lambda sid, rv, d, a, b: ctl.propagate(sid, rv, d, int(a), int(b)), 4),
                       [rev, direction, p_start, p_end], view_outputs)

        # -- captions and sources -----------------------------------------------------------------
        def save(sid: str, rv: str, df: Any) -> ClipView:
            rows = df.values.tolist() if hasattr(df, "values") else list(df or [])
            return ctl.set_spans(sid, rv, rows)

        save_spans.click(handler(save, 2), [rev, spans], view_outputs)
        split_btn.click(handler(ctl.split_span, 1), [rev], view_outputs)
        regen_btn.click(handler(lambda sid, rv, i: ctl.regenerate_span(sid, rv, int(i or 0)), 2),
                        [rev, span_idx], view_outputs)
        add_btn.click(handler(lambda sid, rv, c, n: ctl.add_source(sid, rv, c or "", n), 3),
                      [rev, cat, name], view_outputs)
        setcat_btn.click(handler(lambda sid, rv, c, n: ctl.set_category(sid, rv, c or "", n or None), 3),
                         [rev, cat, name], view_outputs)
        rm_btn.click(handler(ctl.remove_source, 1), [rev], view_outputs)
        undo_btn.click(handler(ctl.undo, 1), [rev], view_outputs)
        redo_btn.click(handler(ctl.redo, 1), [rev], view_outputs)
        for btn, decision in ((accept_btn, "accept"), (reject_btn, "reject"), (back_btn, "send_back")):
            btn.click(handler(lambda sid, rv, n, d=decision: ctl.decide(sid, rv, d, n), 2), [rev, note],
                      view_outputs)

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
                    d_cats: df(s["categories"])}

        dash_out = [d_status, d_people, d_hours, d_cats, msg]
        dash_refresh.click(load_dash, None, dash_out)
        dash_tab.select(load_dash, None, dash_out)

        def unload(request: gr.Request) -> None:
            ctl.close_session(request.session_hash)

        demo.unload(unload)
    return demo


def launch(ctl: Controller, host: str, port: int, *, block: bool = True) -> Any:
    """Start the server with login required; media served only from the root's clips/ and audio/.
    block=False returns the running gr.Blocks at once (tests call .close() on it)."""
    demo = build_app(ctl)
    demo.queue(default_concurrency_limit=8)
    demo.launch(
        server_name=host, server_port=port, auth=lambda u, p: ctl.users.authenticate(u, p) is not None,
        auth_message="ssu-refine: log in with the name and password your project lead gave you",
        allowed_paths=[str(ctl.root_path / "clips"), str(ctl.root_path / "audio")],
        prevent_thread_lock=not block, quiet=True, footer_links=[], head=assets.JS, css=assets.CSS, show_error=False,
        ssr_mode=False, enable_monitoring=False, mcp_server=False, pwa=False)
    return demo
