"""Latency of ssu-refine's editor as a refiner feels it: Playwright drives Debian's Chromium against a server
on localhost (a 2-clip synthetic root, a tiny random-weight SAM so a click runs a real SAM forward pass).

    .venv/bin/python bench/refine_steps.py [--steps 60] [--strokes 20] [--clicks 10] [--saves 10] [--compare]

Figures are measured inside the page (performance.now()): frame step = key press -> picture and masks of
that frame on screen; stroke / SAM click / save = the edit sent -> the saved state applied on the page.
Frame steps walk forward from frame 0 (`d`), then, after a typed jump to the last frame, backward (`a`), each
time through frames never seen before (the server decodes a new second of video every 30 frames; the
synthetic clips have a keyframe every 250 frames, so a second decoded going backward costs a decode from
frame 0): the p95 shows whether the page's look-ahead hides those decodes. The backward figures are given
as a ratio against the forward ones of the same run.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the tiny random-weight model builders the tests use

import numpy as np  # noqa: E402
from test_refine_support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (the tests' browser, launched alike)

CLIP = "synth_0_00000"
LAST = 299


def walk(page, url: str, clip: str, steps: int, lookahead: bool = True) -> dict[str, list[float] | float]:
    """Open `clip`; step forward from frame 0, jump to the last frame by typing it, step backward; each step
    waits until its frame is on screen. Returns the page's own timings (ms) and the wall time per forward step."""
    page.goto(f"{url}ssu/editor?clip={clip}" + ("" if lookahead else "&lookahead=0"))
    page.wait_for_function("() => document.body.dataset.shown === '0'", timeout=60_000)

    def shown(f: int) -> None:
        page.wait_for_function("f => document.body.dataset.shown === String(f)", arg=f, timeout=60_000)

    def taken() -> list[float]:
        return page.evaluate("() => window.ssuEditor.timings.frame.splice(0)")

    taken()
    t0 = time.monotonic()
    for f in range(1, steps + 1):  # one key, wait until shown, next key
        page.keyboard.press("d")
        shown(f)
    forward, wall = taken(), (time.monotonic() - t0) / steps
    page.locator("#ssu-frame-no").fill(str(LAST))
    page.keyboard.press("Enter")  # a typed jump to a second nobody has decoded yet
    shown(LAST)
    jump = taken()[-1]
    for f in range(LAST - 1, LAST - 1 - steps, -1):
        page.keyboard.press("a")
        shown(f)
    back = taken()
    slow = sorted(range(len(back)), key=lambda i: -back[i])[:3]  # the slowest backward steps: which frames
    print(f"  {clip} look-ahead {'on' if lookahead else 'off'}: slowest steps back "
          + ", ".join(f"to {LAST - 1 - i}: {back[i]:.0f} ms" for i in slow), flush=True)
    return {"forward": forward, "back": back, "jump": jump, "wall": wall}


def pct(xs: list[float]) -> str:
    a = np.asarray(xs, float)
    return f"p50 {np.percentile(a, 50):6.1f} ms   p95 {np.percentile(a, 95):6.1f} ms   (n={len(a)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--strokes", type=int, default=20)
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--saves", type=int, default=10)
    ap.add_argument("--compare", action="store_true",
                    help="also walk two more clips with the page's look-ahead off (today's main: 3 frames forward)")
    a = ap.parse_args()

    from playwright.sync_api import sync_playwright
    from test_refine_support import PASSWORDS, make_users
    from tiny_models import build_tiny_sam

    from annotator.models.settings import Device, ModelKind, ModelsConfig, ModelSpec, Runtime
    from annotator.refine.app import launch
    from annotator.refine.auth import UserStore
    from annotator.refine.controller import Controller
    from annotator.refine.tool_models import ToolModels
    from collection.synth import make_synthetic_root

    tmp = Path(tempfile.mkdtemp(prefix="bench-refine-"))
    try:
        make_synthetic_root(tmp / "root", clips=4 if a.compare else 2, seed=0)
        settings = ModelsConfig(sam=ModelSpec(source=str(build_tiny_sam(tmp / "sam"))),
                                runtime=Runtime(device=Device.cpu, offline=True))
        models = ToolModels.load(settings, [ModelKind.sam])
        ctl = Controller(tmp / "root", UserStore(make_users(tmp / "users.toml")), models)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo = launch(ctl, "127.0.0.1", port, block=False)
        url = f"http://127.0.0.1:{port}/"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_label("username").fill("alice")
            page.get_by_label("password").fill(PASSWORDS["alice"])
            page.get_by_role("button", name="Login").click()
            page.get_by_text("logged in as").first.wait_for(timeout=60_000)
            # each walk on a clip nobody has opened yet; with --compare, the same walk with the page's look-ahead
            # off, in the order on / off / off / on so that warming up and drifting load weigh on both alike
            order = [True, False, False, True] if a.compare else [True]
            walks: dict[str, dict[str, list[float]]] = {}
            for i, on in enumerate(order):
                w = walk(page, url, f"synth_0_{i:05d}", a.steps, lookahead=on)
                into = walks.setdefault("look-ahead" if on else "no look-ahead (today's 3 frames forward)", {})
                for k, v in w.items():
                    into.setdefault(k, []).extend(v if isinstance(v, list) else [v])
            page.goto(f"{url}ssu/editor?clip={CLIP}")
            page.wait_for_function("() => document.body.dataset.shown === '0'", timeout=60_000)

            def saved() -> None:
                page.wait_for_function("() => window.ssuEditor.queue() === 0", timeout=60_000)

            box = page.locator("#ssu-stage").bounding_box()

            def at(x: float, y: float) -> tuple[float, float]:
                return box["x"] + x * box["width"] / 512, box["y"] + y * box["height"] / 512

            page.keyboard.press("r")
            for i in range(a.strokes):
                page.mouse.move(*at(30 + i * 10, 60))
                page.mouse.down()
                for k in range(1, 9):
                    page.mouse.move(*at(30 + i * 10 + k * 6, 60 + k * 12))
                page.mouse.up()
                saved()
            page.keyboard.press("p")
            for i in range(a.clicks):
                page.keyboard.press("c")  # one prompt per SAM call
                page.mouse.click(*at(200 + 7 * i, 300))
                saved()
            area = page.locator("#ssu-spans textarea").first
            for i in range(a.saves):
                area.fill(f"a green square hums, take {i}")
                page.locator("#ssu-save-spans").click()
                saved()
            edits = page.evaluate("() => window.ssuEditor.timings.edit")
            browser.close()
        demo.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ssu-refine editor on localhost, {CLIP} (512x512, 300 frames); tiny SAM (random weights, CPU)")
    for name, w in walks.items():
        fwd95, back95 = np.percentile(w["forward"], 95), np.percentile(w["back"], 95)
        print(f"-- frames, {name}: {len(w['jump'])} clip(s)")
        print(f"frame step  {pct(w['forward'])}   max {max(w['forward']):6.1f} ms   "
              f"wall per step incl. Playwright {np.mean(w['wall']) * 1000:.0f} ms")
        print(f"step back   {pct(w['back'])}   max {max(w['back']):6.1f} ms   "
              f"p95 = {back95 / fwd95:.2f} x the forward p95")
        print(f"typed jump  to frame {LAST} (not decoded yet): " + ", ".join(f"{j:.1f}" for j in w["jump"]) + " ms")
    print("-- edits")
    print(f"stroke      {pct(edits.get('stroke', []))}")
    print(f"SAM click   {pct(edits.get('sam', []))}")
    print(f"save        {pct(edits.get('spans', []))}")


if __name__ == "__main__":
    main()
