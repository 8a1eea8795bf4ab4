"""Review that starts where the drafter is unsure, in a real browser (Playwright + Debian's Chromium): the queue
lists the least confident clip first, the editor's timeline shows each source's confidence, and `u` /
Shift+U jump to the unsure frames.

The drafted clip is ssu-synth's truth rewritten as a checkpoint drafter's draft (tests/test_refine_confidence.py:
`draft_with_scores`): its masks stand in for SSUFormer-I's, the written scores for its confidence.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_refine_browser import ARGS, CHROMIUM, DOCS_IMG, VIEW, Server, T, login, shot, wait_shown
from test_refine_confidence import SURE, draft_with_scores, masked
from test_refine_support import make_users

from schemas.models import ClipStatus
from schemas.root import DatasetRoot

pytestmark = pytest.mark.browser
CLIP = "synth_0_00001"


@pytest.fixture(scope="module")
def env(tmp_path_factory, _synth_root_master):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium; see ENVIRONMENT.md)")
    sync_api = pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("refine-confidence")
    shutil.copytree(_synth_root_master, tmp / "root")
    root = DatasetRoot.open(tmp / "root")
    truth = root.read_annotation(CLIP)
    s0 = masked(truth, 0)
    # two unsure stretches: source 1 on frames 20..29, then source 0 on five of its frames after frame 100
    low = {1: (range(20, 30), 0.2), 0: (range(s0[50], s0[55]), 0.3)}
    draft_with_scores(root, CLIP, low)
    server = Server(tmp / "root", make_users(tmp / "users.toml"))
    art = Path(os.environ.get("RA_SSU_ARTIFACTS") or tmp) / "refine"
    art.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield {"server": server, "browser": browser, "art": art, "shots": shots, "low": low}
        finally:
            browser.close()
            server.demo.close()
    if os.environ.get("RA_SSU_UPDATE_DOCS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for s in shots:
            shutil.copy(s, DOCS_IMG / s.name)


def strip_rgb(page, source_index: int, frame: int) -> list[int]:
    """The timeline canvas's colour in the middle of the source's confidence strip at the frame."""
    return page.evaluate("""([i, f]) => {
        const cv = document.getElementById('ssu-timeline'), g = window.ssuEditor.confidenceStrip(i);
        const x = Math.floor(((f + 0.5) / window.ssuEditor.state().num_frames) * cv.width);
        return Array.from(cv.getContext('2d').getImageData(x, g.y + Math.floor(g.h / 2), 1, 1).data).slice(0, 3);
    }""", [source_index, frame])


def test_queue_puts_the_unsure_clip_first_and_the_editor_jumps_to_unsure_frames(env):
    page = env["browser"].new_context(viewport=VIEW).new_page()
    url, low = env["server"].url, env["low"]
    login(page, url, "alice")
    page.locator("#ssu-f-order input").first.click()
    page.get_by_role("option", name="least confident first").click()
    page.get_by_text("least sure").first.wait_for(timeout=T)
    # the drafted clip first, with its least confident second (source 1: 10 frames at 0.2, 20 at 0.9); the
    # others (truth, no scores) after, without a figure
    cells = [c.strip() for c in page.locator("#ssu-queue").inner_text().splitlines() if c.strip()]
    clips = [c for c in cells if c.startswith("synth_0_")]
    assert clips[0] == CLIP and len(clips) == 6, cells
    assert cells[cells.index(CLIP) + 4] == f"{(10 * 0.2 + 20 * SURE) / 30:.2f}" == "0.67", cells
    shot(env, page, "confidence-queue")

    page.goto(f"{url}ssu/editor?clip={CLIP}")
    wait_shown(page, 0)
    page.wait_for_function("() => document.body.classList.contains('scored')", timeout=T)
    # the timeline shows the confidence: red where a source scores under the threshold, green where it is sure
    (a, b), (c, _) = (low[1][0][0], low[1][0][-1]), (low[0][0][0], low[0][0][-1])
    r, g, _ = strip_rgb(page, 1, a)
    assert r > 200 and g < 100, (r, g)
    r, g, _ = strip_rgb(page, 1, b + 1)
    assert g > 100 and g > r, (r, g)
    r, g, _ = strip_rgb(page, 0, c)
    assert r > 200 and g < 100, (r, g)
    # u: the first unsure frame, its least sure source selected, its score beside the frame number
    page.keyboard.press("u")
    wait_shown(page, a)
    assert page.evaluate("() => document.body.dataset.confidence") == "0.2"
    assert "unsure" in page.locator("#ssu-conf").get_attribute("class")
    assert "#1" in page.locator("#ssu-sources .src.selected").inner_text()
    assert f"frame {a}: source #1 scores 0.20, under 0.5" in page.locator("#ssu-msg").inner_text()
    shot(env, page, "confidence", full=True)
    # u again skips the rest of that stretch to the next one (source 0's); Shift+U comes back
    page.keyboard.press("u")
    wait_shown(page, c)
    assert page.evaluate("() => document.body.dataset.confidence") == "0.3"
    assert "#0" in page.locator("#ssu-sources .src.selected").inner_text()
    page.keyboard.press("Shift+U")
    wait_shown(page, a)
    # a sure frame reads as sure
    page.keyboard.press("Shift+D")
    wait_shown(page, a + 10)
    assert page.evaluate("() => document.body.dataset.confidence") == str(SURE)
    assert "unsure" not in (page.locator("#ssu-conf").get_attribute("class") or "")
    # a lower threshold: nothing is under 0.1, the page says so and stays
    page.locator("#ssu-unsure").fill("0.1")
    page.locator("#ssu-status").click()
    page.keyboard.press("u")
    page.get_by_text(f"no frame under 0.1 after frame {a + 10}").wait_for(timeout=T)
    assert page.evaluate("() => document.body.dataset.frame") == str(a + 10)
    page.locator("#ssu-unsure").fill("")
    # accepted (submitted for review): the dashboard's drafter table counts it under the checkpoint that drafted it
    page.once("dialog", lambda d: d.accept())
    page.locator("#ssu-status").click()
    page.keyboard.press("Shift+A")
    page.wait_for_function("() => document.querySelector('#ssu-pending').dataset.n === '0'", timeout=T)
    assert env["server"].ctl.root.catalog.get(CLIP).status == ClipStatus.needs_review
    page.goto(url)
    page.locator("button[role=tab]:has-text('Dashboard')").first.click()
    page.get_by_text("ssuformer best.pt @" + "ab" * 6).first.wait_for(state="attached", timeout=T)
    assert "changed where unsure" in page.locator("#ssu-d-drafters").inner_text()
    shot(env, page, "confidence-dashboard", full=True)
