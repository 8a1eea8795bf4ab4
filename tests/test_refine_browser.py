"""ssu-refine in a real browser (Playwright + Debian's Chromium): one session walking the whole flow.

Screenshots go to $RA_SSU_ARTIFACTS (or the test's tmp folder); with RA_SSU_UPDATE_DOCS=1 they are also
copied to docs/img/refine-*.png for docs/refine.md.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from test_refine_support import PASSWORDS, ColourPropagator, ColourSegmenter, EchoCaptioner, make_users

from schemas import rle as rle_mod
from schemas.models import ClipStatus

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
CLIP = "synth_0_00000"
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
T = 90_000  # ms: the CI machines are slow and shared


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(synth_root_copy, tmp_path):
    from annotator.refine.app import launch
    from annotator.refine.auth import UserStore
    from annotator.refine.controller import Controller
    from annotator.refine.models_hub import ModelsHub

    ctl = Controller(synth_root_copy.path, UserStore(make_users(tmp_path / "users.toml")),
                     ModelsHub(ColourSegmenter(), ColourPropagator(), EchoCaptioner()))
    port = free_port()
    demo = launch(ctl, "127.0.0.1", port, block=False)
    yield ctl, f"http://127.0.0.1:{port}/"
    demo.close()


def login(page, url: str, user: str, password: str) -> None:
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def wait_msg(page, text: str) -> str:
    page.wait_for_function("t => (document.querySelector('#ssu-msg')?.innerText || '').includes(t)", arg=text,
                           timeout=T)
    return page.locator("#ssu-msg").inner_text()


def open_clip(page, clip: str) -> str:
    page.get_by_text("logged in as").first.wait_for(timeout=T)  # the queue has loaded
    page.locator("#ssu-clip-id textarea, #ssu-clip-id input").first.fill(clip)
    page.locator("#ssu-open").click()
    return wait_msg(page, clip)


def frame_pixels(page) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    return np.asarray(Image.open(BytesIO(page.locator("#ssu-frame img").first.screenshot())).convert("RGB"))


def check_http_security(url: str, ctl) -> None:
    """Without a login nothing is served; with one, only the root's clips/ and audio/ are."""
    import httpx

    clip = ctl.root.clip_path(CLIP)
    with httpx.Client(base_url=url, timeout=60) as anon:
        assert anon.get(f"gradio_api/file={clip}").status_code == 401
        assert anon.get("config").status_code == 401
        assert anon.post("gradio_api/call/load_queue", json={"data": ["all", "all"]}).status_code == 401
    with httpx.Client(base_url=url, timeout=60) as c:
        assert c.post("login", data={"username": "alice", "password": "wrong"}).status_code >= 400
        assert c.post("login", data={"username": "alice", "password": PASSWORDS["alice"]}).status_code == 200
        assert c.get(f"gradio_api/file={clip}").status_code == 200
        for secret in (ctl.root_path / "catalog.sqlite", ctl.root_path / "annotations" / f"{CLIP}.json",
                       ctl.users.path, Path("/etc/passwd")):
            assert c.get(f"gradio_api/file={secret}").status_code == 403, secret


def test_refine_in_browser(server, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium; see ENVIRONMENT.md)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ctl, url = server
    art = Path(os.environ.get("RA_SSU_ARTIFACTS") or tmp_path) / "refine"
    art.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    def shot(page, name: str, full: bool = False) -> None:
        shots.append(art / f"refine-{name}.png")
        page.screenshot(path=str(shots[-1]), full_page=full)

    root = ctl.root
    check_http_security(url, ctl)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            alice = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            # a wrong password is refused
            login(alice, url, "alice", "not-her-password")
            alice.get_by_text("Incorrect Credentials").wait_for(timeout=T)
            shot(alice, "login")
            login(alice, url, "alice", PASSWORDS["alice"])
            alice.get_by_text("synth_0_00005").wait_for(timeout=T)
            shot(alice, "queue")
            assert "claimed" in open_clip(alice, CLIP)
            assert root.catalog.lease_of(CLIP).owner == "alice"

            # a positive click on the square changes its mask (SAM's answer replaces the draft), on screen and
            # on disk; the click is drawn as a green dot
            before_px = frame_pixels(alice)
            before = root.read_annotation(CLIP).source(0).masks[0]
            ys, xs = np.nonzero(rle_mod.decode(before.model_dump()))
            box = alice.locator("#ssu-frame img").first.bounding_box()
            alice.locator("#ssu-frame img").first.click(position={"x": xs.mean() * box["width"] / 512,
                                                                  "y": ys.mean() * box["height"] / 512})
            wait_msg(alice, "saved: SAM")
            assert root.read_annotation(CLIP).source(0).masks[0] != before
            assert np.abs(frame_pixels(alice).astype(int) - before_px).sum() > 0
            shot(alice, "editor", full=True)

            # propagate over frames 0..30 both ways (the seed is the corrected frame 0)
            alice.locator("#ssu-p-end input").first.fill("30")
            alice.locator("#ssu-propagate").click()
            wait_msg(alice, "SAM2 propagate")
            src = root.read_annotation(CLIP).source(0)
            assert any(sp.by == "refine:sam2:alice" and sp.start == 1 for sp in src.mask_by)

            # keyboard: d steps a frame forward, a back
            alice.locator("#ssu-status").click()
            alice.keyboard.press("d")
            alice.wait_for_function("() => document.querySelector('#ssu-caps').innerText.includes('frame 1')",
                                    timeout=T)
            alice.keyboard.press("a")
            alice.wait_for_function("() => document.querySelector('#ssu-caps').innerText.includes('frame 0')",
                                    timeout=T)

            # edit the first caption span in the table, then save
            original = src.captions[0].text
            cell = alice.locator('#ssu-spans [data-testid="cell-0-2"]')
            cell.dblclick()
            cell.locator("textarea, input").first.fill("a green square hums in the corner")
            alice.keyboard.press("Enter")
            alice.locator("#ssu-save-spans").click()
            wait_msg(alice, "saved: edit caption spans")
            assert root.read_annotation(CLIP).source(0).captions[0].text == "a green square hums in the corner"
            shot(alice, "captions", full=True)

            # a second refiner is refused the leased clip (opened read-only, edits refused)
            bob = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            login(bob, url, "bob", PASSWORDS["bob"])
            msg = open_clip(bob, CLIP)
            assert "being edited by alice" in msg and "read-only" in msg
            bob.locator("#ssu-split").click()
            assert "read-only" in wait_msg(bob, "read-only for you")
            bob.evaluate("window.scrollTo(0, 0)")
            shot(bob, "leased")
            bob.context.close()

            # undo (shortcut z) and redo (button)
            alice.locator("#ssu-status").click()
            alice.keyboard.press("z")
            wait_msg(alice, "undo: edit caption spans")
            assert root.read_annotation(CLIP).source(0).captions[0].text == original
            alice.locator("#ssu-redo").click()
            wait_msg(alice, "redo: edit caption spans")
            assert root.read_annotation(CLIP).source(0).captions[0].text == "a green square hums in the corner"

            # accept (a refiner's accept sends the clip to review)
            alice.locator("#ssu-accept").click()
            wait_msg(alice, "needs_review")
            assert root.catalog.get(CLIP).status == ClipStatus.needs_review

            # reload: everything is still there
            alice.reload()
            alice.get_by_text("synth_0_00005").wait_for(timeout=T)
            open_clip(alice, CLIP)
            alice.wait_for_function("() => document.querySelector('#ssu-caps').innerText.includes('hums in the')",
                                    timeout=T)
            assert "needs_review" in alice.locator("#ssu-status").inner_text()

            # the dashboard counts the edits
            alice.locator("#ssu-tab-dash-button, button[role=tab]:has-text('Dashboard')").first.click()
            alice.get_by_text("clips touched").first.wait_for(timeout=T)
            shot(alice, "dashboard", full=True)

            # the reviewer takes the next clip under review and accepts it: final
            rita = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            login(rita, url, "rita", PASSWORDS["rita"])
            rita.get_by_text("synth_0_00005").first.wait_for(timeout=T)
            rita.locator("#ssu-next-clip").click()
            wait_msg(rita, f"claimed {CLIP}")
            rita.locator("#ssu-accept").click()
            wait_msg(rita, "is now accepted")
            assert root.catalog.get(CLIP).status == ClipStatus.accepted
        finally:
            browser.close()
    if os.environ.get("RA_SSU_UPDATE_DOCS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for s in shots:
            shutil.copy(s, DOCS_IMG / s.name)
