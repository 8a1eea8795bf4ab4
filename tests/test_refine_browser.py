"""ssu-refine in a real browser (Playwright + Debian's Chromium): one server and one browser for the module.

Every test sets up its own state, so any order (or one test alone, `-k name`) works: its own copy of the
synthetic clip (`clip`, a fresh id with the same video, annotation and catalog row) and its own logged-in
browser contexts (`pages`), closed after the test. Screenshots go to $RA_SSU_ARTIFACTS/refine (or a temp
folder); with RA_SSU_UPDATE_DOCS=1 they are copied to docs/img/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_refine_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORDS,
    ColourPropagator,
    ColourSegmenter,
    EchoCaptioner,
    make_users,
)

from schemas import rle as rle_mod
from schemas.models import ClipStatus

pytestmark = pytest.mark.browser
ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]  # the editor plays with sound
CLIP = "synth_0_00000"  # never edited here: each test edits a copy of it (the `clip` fixture)
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
T = 60_000  # ms: the CI machines are slow and shared
VIEW = {"width": 1400, "height": 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def full_tool_models():
    from annotator.refine.tool_models import ToolModels

    return ToolModels(ColourSegmenter(), ColourPropagator(), EchoCaptioner())


class Server:
    """A running ssu-refine on one port; restart() stops it and starts a new process-like instance."""

    def __init__(self, root_path: Path, users: Path) -> None:
        self.root_path, self.users, self.port = root_path, users, free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.start()

    def start(self) -> None:
        from annotator.refine.app import launch
        from annotator.refine.auth import UserStore
        from annotator.refine.controller import Controller, RefineConfig

        self.ctl = Controller(self.root_path, UserStore(self.users), full_tool_models(),
                              RefineConfig(heartbeat_seconds=1.0))
        self.demo = launch(self.ctl, "127.0.0.1", self.port, block=False)

    def restart(self) -> None:
        self.demo.close()
        self.start()


@pytest.fixture(scope="module")
def env(tmp_path_factory, _synth_root_master):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium; see ENVIRONMENT.md)")
    sync_api = pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("refine-browser")
    shutil.copytree(_synth_root_master, tmp / "root")
    server = Server(tmp / "root", make_users(tmp / "users.toml"))
    art = Path(os.environ.get("RA_SSU_ARTIFACTS") or tmp) / "refine"
    art.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield {"server": server, "browser": browser, "art": art, "shots": shots}
        finally:
            browser.close()
            server.demo.close()
    if os.environ.get("RA_SSU_UPDATE_DOCS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for s in shots:
            shutil.copy(s, DOCS_IMG / s.name)


def clone(env, clip_id: str) -> str:
    """A new clip `clip_id` in the server's root: CLIP's video, audio, annotation and catalog row (status auto)."""
    from schemas.root import DatasetRoot

    root = DatasetRoot.open(env["server"].root_path)
    try:
        for path in (root.clip_path, root.audio_path):
            shutil.copyfile(path(CLIP), path(clip_id))
        root.write_annotation(root.read_annotation(CLIP).model_copy(update={"clip_id": clip_id}), sync_status=False)
        root.catalog.upsert(root.catalog.get(CLIP).model_copy(update={"clip_id": clip_id}), action="test copy")
    finally:
        root.close()
    return clip_id


@pytest.fixture()
def clip(env, request) -> str:
    """This test's own clip (a copy of CLIP named after the test)."""
    return clone(env, "t_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:80])


@pytest.fixture()
def pages(env):
    """pages(user) -> a new page in a new browser context, logged in as `user` (None: not logged in)."""
    made = []

    def make(user: str | None = "alice"):
        ctx = env["browser"].new_context(viewport=VIEW)
        made.append(ctx)
        if user:
            r = ctx.request.post(env["server"].url + "login", form={"username": user, "password": PASSWORDS[user]})
            assert r.ok, r.status
        return ctx.new_page()

    yield make
    for ctx in made:
        ctx.close()


def shot(env, page, name: str, full: bool = False) -> None:
    env["shots"].append(env["art"] / f"refine-{name}.png")
    page.screenshot(path=str(env["shots"][-1]), full_page=full)


def login(page, url: str, user: str) -> None:
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Login").click()
    page.get_by_text("logged in as").first.wait_for(timeout=T)


def open_editor(page, clip: str, url: str | None = None) -> None:
    """Through the queue's Open button, or straight to the editor's address when url is given."""
    if url:
        page.goto(f"{url}ssu/editor?clip={clip}")
    else:
        page.locator("#ssu-clip-id textarea, #ssu-clip-id input").first.fill(clip)
        page.locator("#ssu-open").click()
        page.wait_for_url("**/ssu/editor?clip=*", timeout=T)
    page.wait_for_function("() => document.body.dataset.shown === '0'", timeout=T)


def wait_shown(page, frame: int) -> None:
    page.wait_for_function("f => document.body.dataset.shown === String(f)", arg=frame, timeout=T)


def go(page, frame: int) -> None:
    page.locator("#ssu-frame-no").fill(str(frame))
    page.keyboard.press("Enter")
    wait_shown(page, frame)


def wait_saved(page) -> str:
    page.wait_for_function("() => document.querySelector('#ssu-pending').dataset.n === '0'", timeout=T)
    return page.locator("#ssu-msg").inner_text()


def at(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel (x, y) at zoom 1."""
    box = page.locator("#ssu-stage").bounding_box()
    return box["x"] + x * box["width"] / 512, box["y"] + y * box["height"] / 512


def test_http_needs_login(env):
    import httpx

    server = env["server"]
    clip = server.ctl.root.clip_path(CLIP)
    with httpx.Client(base_url=server.url, timeout=60) as anon:
        assert anon.get(f"gradio_api/file={clip}").status_code == 401
        assert anon.get(f"ssu/api/frame/{CLIP}/0.jpg").status_code == 401
        assert anon.post("ssu/api/open", json={"tab": "abcdefgh12", "clip": CLIP}).status_code == 401
        assert anon.get("ssu/editor", follow_redirects=False).status_code == 303
    with httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.post("login", data={"username": "alice", "password": PASSWORDS["alice"]}).status_code == 200
        assert c.get(f"ssu/api/frame/{CLIP}/0.jpg").headers["content-type"] == "image/jpeg"
        for secret in (server.root_path / "catalog.sqlite", server.users, Path("/etc/passwd")):
            assert c.get(f"gradio_api/file={secret}").status_code == 403, secret


def test_fast_keys_typed_frame_and_timeline(env, clip, pages):
    page = pages(None)
    url = env["server"].url
    page.goto(url)
    page.get_by_label("username").fill("alice")
    page.get_by_label("password").fill("wrong-password")
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Incorrect Credentials").wait_for(timeout=T)
    shot(env, page, "login")
    login(page, url, "alice")
    page.get_by_text("synth_0_00005").wait_for(timeout=T)
    shot(env, page, "queue")
    gradio_tmp = Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")
    pngs = len(list(gradio_tmp.rglob("*.png")))
    open_editor(page, clip)
    assert env["server"].ctl.root.catalog.lease_of(clip).owner == "alice"
    # (a) five quick presses, no waiting in between: frame 5, its picture on screen
    for _ in range(5):
        page.keyboard.press("d")
    wait_shown(page, 5)
    assert page.locator("#ssu-frame-no").input_value() == "5"
    for _ in range(20):  # a held key: the first keydown and 19 auto-repeats
        page.keyboard.down("d")
        page.wait_for_timeout(30)
    page.keyboard.up("d")
    wait_shown(page, 25)
    for _ in range(20):
        page.keyboard.press("a")
    wait_shown(page, 5)
    # (b) a typed frame number moves the view
    go(page, 120)
    page.keyboard.press("d")
    wait_shown(page, 121)  # the next step continues from the typed frame
    # (e) a click on the timeline jumps there
    box = page.locator("#ssu-cursor").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5 + 1, box["y"] + box["height"] / 2)
    wait_shown(page, 150)
    assert len(list(gradio_tmp.rglob("*.png"))) == pngs  # frames come from memory, not from temp files
    shot(env, page, "editor", full=True)
    # space plays the clip in the frame view (masks drawn per frame); space again stops on an exact frame.
    # Played from frame 10, so that a slow screenshot under load cannot outlast the clip (space on an ended
    # video plays it again, and the pause below would never come)
    go(page, 10)
    page.keyboard.press(" ")
    page.wait_for_function("() => Number(document.body.dataset.frame) > 20", timeout=T)
    shot(env, page, "playing")
    page.keyboard.press(" ")
    page.wait_for_function("() => document.body.dataset.shown === document.body.dataset.frame && "
                           "document.querySelector('#ssu-video').paused", timeout=T)


def test_one_dragged_stroke_is_one_region(env, clip, pages):
    from scipy import ndimage

    page, ctl = pages(), env["server"].ctl
    open_editor(page, clip, env["server"].url)
    f = 150
    go(page, f)
    before = ctl.root.read_annotation(clip).source(0).masks[f]
    edits = len(ctl.catalog.history(clip, action="edit"))
    page.keyboard.press("r")
    page.mouse.move(*at(page, 40, 400))
    page.mouse.down()
    for i in range(1, 21):  # a fast drag: 20 moves, far apart
        page.mouse.move(*at(page, 40 + i * 9, 400 + i * 3))
    page.mouse.up()
    assert "saved: brush stroke" in wait_saved(page)
    after = ctl.root.read_annotation(clip).source(0).masks[f]
    old = np.zeros((512, 512), bool) if before is None else rle_mod.decode(before.model_dump())
    added = rle_mod.decode(after.model_dump()) & ~old
    assert ndimage.label(added)[1] == 1 and added[400, 40] and added[460, 220]
    assert len(ctl.catalog.history(clip, action="edit")) == edits + 1
    shot(env, page, "stroke")
    # a SAM positive click on the square replaces this frame's mask with SAM's answer
    ref = rle_mod.decode(ctl.root.read_annotation(clip).source(0).masks[0].model_dump())
    page.keyboard.press("p")
    ys, xs = np.nonzero(old if old.any() else ref)
    page.mouse.click(*at(page, float(xs.mean()), float(ys.mean())))
    assert "saved: SAM 1 point" in wait_saved(page)
    assert len(ctl.catalog.history(clip, action="edit")) == edits + 2
    edits += 1
    # zoom with the wheel, outline only: the view changes, nothing is saved
    page.mouse.move(*at(page, 256, 256))
    page.mouse.wheel(0, -300)
    page.keyboard.press("o")
    assert page.locator("#ssu-zoom").inner_text() != "100%"
    shot(env, page, "zoom-outline")
    page.keyboard.press("0")
    page.keyboard.press("o")
    assert len(ctl.catalog.history(clip, action="edit")) == edits + 1


def test_restart_keeps_typed_caption(env, clip, pages):
    page, server = pages(), env["server"]
    open_editor(page, clip, server.url)
    text = "a green square hums, typed but not saved"
    area = page.locator("#ssu-spans textarea").first
    area.fill(text)
    server.restart()  # the new process knows no login token: the page must ask for a login
    page.locator("#ssu-login").wait_for(state="visible", timeout=T)
    assert "session ended" in page.locator("#ssu-login").inner_text().lower()
    assert area.input_value() == text
    shot(env, page, "session-ended")
    page.locator("#ssu-login-user").fill("alice")
    page.locator("#ssu-login-pass").fill(PASSWORDS["alice"])
    page.locator("#ssu-login-go").click()
    page.locator("#ssu-login").wait_for(state="hidden", timeout=T)
    page.wait_for_function("() => document.querySelector('#ssu-status').innerText.includes('editing')", timeout=T)
    assert page.locator("#ssu-spans textarea").first.input_value() == text  # the browser draft is back
    page.locator("#ssu-save-spans").click()
    assert "saved: edit caption spans" in wait_saved(page)
    assert server.ctl.root.read_annotation(clip).source(0).captions[0].text == text


def test_second_tab_takes_the_clip_and_the_first_is_told(env, clip, pages):
    page = pages()
    open_editor(page, clip, env["server"].url)
    other = page.context.new_page()  # same login, another tab
    open_editor(other, clip, env["server"].url)
    assert "editing" in other.locator("#ssu-status").inner_text()
    page.locator("#ssu-notice").wait_for(state="visible", timeout=T)  # told at the next heartbeat
    assert "another tab" in page.locator("#ssu-notice").inner_text()
    page.wait_for_function("() => document.body.classList.contains('readonly')", timeout=T)
    assert page.locator("#ssu-accept").is_disabled()
    other.close()
    open_editor(page, clip, env["server"].url)  # reopening here takes it back
    assert "editing" in page.locator("#ssu-status").inner_text()


def test_note_history_and_review(env, pages):
    # "a_" sorts before every other clip: whatever other tests left waiting for review, this one comes first
    clip, ctl = clone(env, "a_review"), env["server"].ctl
    page = pages()
    open_editor(page, clip, env["server"].url)
    assert page.locator("#ssu-reject").is_disabled() and page.locator("#ssu-send-back").is_disabled()
    page.locator("#ssu-note").fill("star mask checked")
    page.once("dialog", lambda d: d.accept())
    page.locator("#ssu-status").click()
    page.keyboard.press("Shift+A")
    wait_saved(page)
    assert ctl.root.catalog.get(clip).status == ClipStatus.needs_review
    rita = pages(None)
    login(rita, env["server"].url, "rita")
    rita.locator("#ssu-next-clip").click()  # a reviewer's next clip is the one waiting for review
    rita.wait_for_url(f"**/ssu/editor?clip={clip}", timeout=T)
    rita.wait_for_function("() => document.body.dataset.shown === '0'", timeout=T)
    assert "editing" in rita.locator("#ssu-status").inner_text()
    rita.locator("#ssu-note").fill("the circle drifts after frame 200")
    rita.locator("#ssu-send-back").click()
    wait_saved(rita)
    assert ctl.root.read_annotation(clip).note == "the circle drifts after frame 200"
    open_editor(page, clip, env["server"].url)  # alice again
    assert "open note: the circle drifts" in page.locator("#ssu-notes").inner_text()
    page.locator("#ssu-note").fill("fixed the drift")
    page.once("dialog", lambda d: d.accept())
    page.locator("#ssu-accept").click()
    wait_saved(page)
    open_editor(rita, clip, env["server"].url)
    rita.once("dialog", lambda d: d.accept())
    rita.locator("#ssu-accept").click()
    wait_saved(rita)
    assert ctl.root.catalog.get(clip).status == ClipStatus.accepted
    assert ctl.root.read_annotation(clip).note is None  # cleared on accept, kept in the history:
    history = rita.locator("#ssu-notes").inner_text()
    for n in ("star mask checked", "the circle drifts after frame 200", "fixed the drift"):
        assert n in history
    shot(env, rita, "notes", full=True)
    rita.goto(env["server"].url)
    rita.locator("button[role=tab]:has-text('Dashboard')").first.click()
    rita.get_by_text("clips touched").first.wait_for(timeout=T)
    shot(env, rita, "dashboard", full=True)


def test_upload_real_clip(env, pages, shared_data):
    rita, ctl = pages(None), env["server"].ctl
    video = sorted((shared_data / "media" / "vggsound").glob("*.mp4"))[0]
    login(rita, env["server"].url, "rita")
    rita.locator("button[role=tab]:has-text('Upload')").first.click()
    rita.locator("#ssu-files input[type=file]").set_input_files([str(video), str(shared_data / "media" / "edge" /
                                                                                 "no_audio_960x540_6.7s.mp4")])
    rita.locator("#ssu-up-label input").first.fill("circle")
    rita.keyboard.press("Enter")
    rita.locator("#ssu-upload").click()
    rita.get_by_text("in the queue").first.wait_for(timeout=120_000)
    log = rita.locator("#ssu-upload-log").inner_text()
    assert "REFUSED" in log and "too_short" in log  # the 6.7 s file, with collection's reason
    shot(env, rita, "upload", full=True)
    cid = f"{video.stem.replace('-', '-')}_000000"
    row = ctl.root.catalog.get(cid)
    assert row is not None and row.status == ClipStatus.auto
    assert ctl.root.clip_path(cid).is_file()
    assert Path(row.source_path).is_file() and ".uploads" in row.source_path  # the original is kept
    assert cid in {r["clip_id"] for r in ctl.queue(ctl.open_session("check", "rita").session_id)}
    rita.locator("button[role=tab]:has-text('Queue')").first.click()
    rita.get_by_text(cid).first.wait_for(state="attached", timeout=T)


# -- captions: one model, nothing typed is lost (issue 32) -------------------------------------------------
def panel(page) -> list[tuple[int, int, str]]:
    """The caption rows the page shows for the selected source."""
    rows = page.evaluate("""() => [...document.querySelectorAll('#ssu-spans .span')].map((r) => [
        +r.querySelector('.s').value, +r.querySelector('.e').value, r.querySelector('textarea').value])""")
    return [tuple(r) for r in rows]


def saved(env, clip: str, source: int = 0) -> list[tuple[int, int, str]]:
    return [(c.start, c.end, c.text) for c in env["server"].ctl.root.read_annotation(clip).source(source).captions]


def area_at(page, start: int):
    """The caption text box of the row that starts at frame `start`."""
    return page.locator("#ssu-spans .span textarea").nth([r[0] for r in panel(page)].index(start))


def test_split_regenerate_and_undo_merge_with_the_unsaved_draft(env, clip, pages):
    page = pages()
    open_editor(page, clip, env["server"].url)
    original = saved(env, clip)
    assert original[2][:2] == (120, 180)
    page.locator("#ssu-spans textarea").first.fill("a square hums, typed and not saved")
    # a split on the server with a draft open: the panel shows the split and keeps the typed text ...
    go(page, 150)
    page.locator("#ssu-split").click()
    assert "split caption at frame 150" in wait_saved(page)
    want = [(0, 30, "a square hums, typed and not saved"), original[1], (120, 150, original[2][2]),
            (150, 180, original[2][2]), *original[3:]]
    assert panel(page) == want
    # ... and Save keeps both: the split and the text
    page.locator("#ssu-save-spans").click()
    assert "saved: edit caption spans" in wait_saved(page)
    assert saved(env, clip) == want
    assert page.locator("#ssu-draft").inner_text() == ""
    # a regenerated span merges with a draft elsewhere
    area_at(page, 210).fill("typed into the span at 210")
    page.locator("#ssu-span-idx").fill("2")  # 120..150
    page.locator("#ssu-regen").click()
    assert "new caption" in wait_saved(page)
    vlm = saved(env, clip)[2][2]
    assert vlm.startswith("a square covering") and saved(env, clip)[4][2] == want[4][2]
    assert panel(page)[2] == (120, 150, vlm) and panel(page)[4] == (210, 240, "typed into the span at 210")
    # a regenerated span the draft also changed: the page asks; OK keeps the typed text
    area_at(page, 150).fill("typed into 150..180 before the VLM answered")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.locator("#ssu-span-idx").fill("3")
    page.locator("#ssu-regen").click()
    wait_saved(page)
    assert asked and "150–180" in asked[0] and "typed into 150..180" in asked[0]
    assert panel(page)[3] == (150, 180, "typed into 150..180 before the VLM answered")
    assert saved(env, clip)[3][2].startswith("a square covering")
    # undo (the last regenerate) with the draft open: the draft keeps the typed text; Cancel takes the saved text
    page.once("dialog", lambda d: d.dismiss())
    page.locator("#ssu-undo").click()
    assert "undo" in wait_saved(page)
    assert panel(page)[3] == (150, 180, original[2][2])  # Cancel: the saved (undone) text there
    assert panel(page)[4] == (210, 240, "typed into the span at 210")  # and the rest of the draft is kept
    page.locator("#ssu-save-spans").click()
    wait_saved(page)
    assert saved(env, clip)[4] == (210, 240, "typed into the span at 210") and saved(env, clip)[2][2] == vlm


def test_submit_saves_the_typed_caption_first_or_refuses(env, clip, pages):
    page, ctl = pages(), env["server"].ctl
    open_editor(page, clip, env["server"].url)
    area = page.locator("#ssu-spans textarea").first
    area.fill("   ")  # a draft the server would refuse: the decision is refused with the reason, nothing asked
    asked = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.locator("#ssu-status").click()
    page.keyboard.press("Shift+A")
    page.wait_for_function("() => document.querySelector('#ssu-msg').innerText.includes('refused')", timeout=T)
    assert "empty" in page.locator("#ssu-msg").inner_text() and not asked
    assert ctl.root.catalog.get(clip).status == ClipStatus.in_progress
    text = "a green square hums, typed and then submitted"
    area.fill(text)
    page.locator("#ssu-status").click()
    page.keyboard.press("Shift+A")
    wait_saved(page)
    assert asked and "saved first" in asked[0]
    assert ctl.root.catalog.get(clip).status == ClipStatus.needs_review
    assert saved(env, clip)[0][2] == text
    assert page.locator("#ssu-draft").inner_text() == ""


def test_span_here_inside_a_span_splits_it(env, clip, pages):
    page = pages()
    open_editor(page, clip, env["server"].url)
    old = saved(env, clip)[2]
    assert old[:2] == (120, 180)
    go(page, 130)
    page.locator("#ssu-add-span").click()
    rows = panel(page)
    assert (120, 130, old[2]) in rows and (130, 180, old[2]) in rows and len(rows) == len(saved(env, clip)) + 1
    page.keyboard.type("the square hums louder from here")  # the new part's text is selected: typing replaces it
    page.locator("#ssu-save-spans").click()
    assert "saved: edit caption spans" in wait_saved(page)
    assert saved(env, clip)[2:4] == [(120, 130, old[2]), (130, 180, "the square hums louder from here")]
    go(page, 100)  # outside every span: a new span up to the next one
    page.locator("#ssu-add-span").click()
    assert (100, 120, "") in panel(page)


def test_playback_has_sound_and_a_mute_key(env, clip, pages):
    page = pages()
    open_editor(page, clip, env["server"].url)
    muted = "() => document.querySelector('#ssu-video').muted"
    assert page.evaluate(muted) is False and page.evaluate("() => document.querySelector('#ssu-video').volume") > 0
    page.keyboard.press(" ")
    page.wait_for_function("() => !document.querySelector('#ssu-video').paused", timeout=T)
    assert page.evaluate(muted) is False
    page.keyboard.press(" ")
    page.keyboard.press("m")
    assert page.evaluate(muted) is True and "sound off" in page.locator("#ssu-mute").inner_text()
    page.keyboard.press("m")
    assert page.evaluate(muted) is False and "sound on" in page.locator("#ssu-mute").inner_text()


DRAWN = """() => { const c = document.querySelector('#ssu-draw'), d = c.getContext('2d').getImageData(0, 0, c.width,
    c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"""


def test_tools_without_a_model_are_disabled_with_the_reason(env, clip, pages):
    from annotator.refine.tool_models import ToolModels

    page, ctl = pages(), env["server"].ctl
    open_editor(page, clip, env["server"].url)  # opened while SAM is loaded: the SAM tool is there
    page.keyboard.press("p")
    ctl.models = ToolModels()  # ... then the model is gone: the click is refused and its point is not left drawn
    try:
        page.mouse.click(*at(page, 200, 200))
        assert "no SAM model is loaded" in wait_saved(page)
        assert page.evaluate(DRAWN) == 0 and page.evaluate("() => window.ssuEditor.prompts().points.length") == 0
        open_editor(page, clip, env["server"].url)  # a page opened without the models
        for sel, model in (("button[data-tool='point+']", "SAM"), ("button[data-tool='point-']", "SAM"),
                           ("button[data-tool='box']", "SAM"), ("#ssu-propagate", "SAM2"), ("#ssu-regen", "VLM")):
            button = page.locator(sel)
            assert button.is_disabled(), sel
            assert f"no {model} model is loaded; start ssu-refine with --" in button.get_attribute("title"), sel
        assert page.locator("button[data-tool='brush']").is_enabled()
        page.keyboard.press("p")
        assert "no SAM model is loaded" in page.locator("#ssu-msg").inner_text()
        assert page.evaluate("() => window.ssuEditor.tool()") == "brush"
    finally:
        ctl.hub = full_tool_models()


def test_mask_tint_keeps_the_picture_and_provenance_is_not_a_review_note(env, clip, pages):
    page = pages()
    open_editor(page, clip, env["server"].url)
    notes = page.locator("#ssu-notes")
    assert page.locator("#ssu-notes .open-note").count() == 0
    assert "draft made by: synthetic, seed 0" in notes.locator(".provenance").inner_text()
    # inside a mask, most pixels of the mask layer are left clear: the object's own colour shows through
    ref = rle_mod.decode(env["server"].ctl.root.read_annotation(clip).source(0).masks[0].model_dump())
    inner = ref & np.roll(ref, 3, 0) & np.roll(ref, -3, 0) & np.roll(ref, 3, 1) & np.roll(ref, -3, 1)
    alpha = np.array(page.evaluate("""() => { const c = document.querySelector('#ssu-masks'),
        d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return Array.from(d.filter((v, i) => i % 4 === 3)); }"""), np.uint8).reshape(512, 512)
    tinted = (alpha[inner] > 0).mean()
    assert 0.1 < tinted < 0.5, tinted
