"""Latency of ssu-refine's editor as a refiner feels it: Playwright drives Debian's Chromium against a server
on localhost (a 2-clip synthetic root, a tiny random-weight SAM so a click runs a real SAM forward pass).

    .venv/bin/python bench/refine.py [--steps 60] [--strokes 20] [--clicks 10] [--saves 10] [--logins 20]

Figures are measured inside the page (performance.now()): frame step = key press -> picture and masks of
that frame on screen; stroke / SAM click / save = the edit sent -> the saved state applied on the page.
Frame steps walk forward through frames never seen before (the first of each second decodes a chunk), so
they include cold decodes; the p95 shows them.

Two servers run at once on copies of the same root, one without the request gate (annotator/refine/gate.py)
and one with it; the same session runs in two pages, each action on both in turn, so the ratio on/off is
what the gate costs (issue 28: within 10 %) and the machine's load drifts the same for both. Logins, the
editor's state call and a static file under 4 failing login clients are also timed over plain HTTP.
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


def pct(xs: list[float]) -> str:
    a = np.asarray(xs, float)
    return f"p50 {np.percentile(a, 50):6.1f} ms   p95 {np.percentile(a, 95):6.1f} ms   (n={len(a)})"


class Editor:
    """One refiner's editor page on one server (logged in, the clip open), driven one action at a time."""

    def __init__(self, url: str, browser) -> None:  # noqa: ANN001
        from test_refine_support import PASSWORDS

        self.page = page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(url)
        page.get_by_label("username").fill("alice")
        page.get_by_label("password").fill(PASSWORDS["alice"])
        page.get_by_role("button", name="Login").click()
        page.get_by_text("logged in as").first.wait_for(timeout=60_000)
        page.goto(f"{url}ssu/editor?clip={CLIP}")
        page.wait_for_function("() => document.body.dataset.shown === '0'", timeout=60_000)
        page.evaluate("() => { window.ssuEditor.timings.frame.length = 0; }")
        self.box = page.locator("#ssu-stage").bounding_box()

    def at(self, x: float, y: float) -> tuple[float, float]:
        return self.box["x"] + x * self.box["width"] / 512, self.box["y"] + y * self.box["height"] / 512

    def saved(self) -> None:
        self.page.wait_for_function("() => window.ssuEditor.queue() === 0", timeout=60_000)

    def step(self, f: int) -> None:  # one key, wait until frame f is shown
        self.page.keyboard.press("d")
        self.page.wait_for_function("f => document.body.dataset.shown === String(f)", arg=f, timeout=60_000)

    def stroke(self, i: int) -> None:
        self.page.keyboard.press("r")
        self.page.mouse.move(*self.at(30 + i * 10, 60))
        self.page.mouse.down()
        for k in range(1, 9):
            self.page.mouse.move(*self.at(30 + i * 10 + k * 6, 60 + k * 12))
        self.page.mouse.up()
        self.saved()

    def click(self, i: int) -> None:
        self.page.keyboard.press("p")
        self.page.keyboard.press("c")  # one prompt per SAM call
        self.page.mouse.click(*self.at(200 + 7 * i, 300))
        self.saved()

    def save(self, i: int) -> None:
        area = self.page.locator("#ssu-spans textarea").first
        area.fill(f"a green square hums, take {i}")
        area.press("Control+s")  # the page's save shortcut (a click can land on the row laid over the button)
        self.saved()

    def figures(self, steps: int) -> dict[str, list[float]]:
        edits = self.page.evaluate("() => window.ssuEditor.timings.edit")
        # the first `steps` shown frames are the key presses (edits redraw the frame too)
        return {"frame step": self.page.evaluate("n => window.ssuEditor.timings.frame.slice(0, n)", steps),
                "stroke": edits.get("stroke", []), "SAM click": edits.get("sam", []), "save": edits.get("spans", [])}


def sessions(urls: dict[bool, str], a: argparse.Namespace, browser) -> dict[bool, dict[str, list[float]]]:  # noqa: ANN001
    """The same session in two pages, one per server, action by action in turn (the order flips each time), so
    that the machine's load drifts the same for both."""
    eds = {g: Editor(u, browser) for g, u in urls.items()}
    plan = ([(Editor.step, f) for f in range(1, a.steps + 1)] + [(Editor.stroke, i) for i in range(a.strokes)]
            + [(Editor.click, i) for i in range(a.clicks)] + [(Editor.save, i) for i in range(a.saves)])
    for n, (action, arg) in enumerate(plan):
        for g in (False, True) if n % 2 == 0 else (True, False):
            action(eds[g], arg)
    out = {g: ed.figures(a.steps) for g, ed in eds.items()}
    for ed in eds.values():
        ed.page.context.close()
    return out


def http_calls(urls: dict[bool, str], logins: int, calls: int) -> dict[bool, dict[str, list[float]]]:
    """Login and the editor's state call over plain HTTP against two servers at once, one without the gate and
    one with it, interleaved call by call so that the machine's load drifts the same for both."""
    import httpx
    from test_refine_support import PASSWORDS

    out: dict[bool, dict[str, list[float]]] = {g: {"login (HTTP)": [], "state (HTTP)": []} for g in urls}
    clients = {g: httpx.Client(base_url=u, timeout=60) for g, u in urls.items()}
    heads = {g: {"Content-Type": "application/json", "X-SSU-Request": "1", "Origin": u.rstrip("/")}
             for g, u in urls.items()}
    try:
        for _ in range(logins):
            for g, c in clients.items():
                c.cookies.clear()
                t = time.perf_counter()
                assert c.post("login", data={"username": "bob", "password": PASSWORDS["bob"]}).status_code == 200
                out[g]["login (HTTP)"].append((time.perf_counter() - t) * 1000)
        for g, c in clients.items():  # the other clip: a lease of bob's on CLIP would make alice read-only
            c.post("ssu/api/open", content='{"tab": "benchtab0001", "clip": "synth_0_00001"}', headers=heads[g])
        for _ in range(calls):
            for g, c in clients.items():
                t = time.perf_counter()
                assert c.post("ssu/api/state", content='{"tab": "benchtab0001"}', headers=heads[g]).status_code == 200
                out[g]["state (HTTP)"].append((time.perf_counter() - t) * 1000)
    finally:
        for c in clients.values():
            c.close()
    return out


def static_under_logins(urls: dict[bool, str], n: int) -> dict[bool, dict[str, list[float]]]:
    """A static file's latency while 4 anonymous clients keep failing logins (issue 28: scrypt on the event
    loop made every user's static files 100x slower)."""
    import threading

    import httpx

    out: dict[bool, dict[str, list[float]]] = {g: {"static, 4 logins": []} for g in urls}
    for g, url in urls.items():
        stop = threading.Event()

        def hammer(url: str = url, stop: threading.Event = stop) -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                while not stop.is_set():
                    c.post("login", data={"username": "nobody", "password": "wrong-password"})

        threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        with httpx.Client(base_url=url, timeout=60) as c:
            for _ in range(n):
                t0 = time.perf_counter()
                c.get("ssu/static/editor.css")
                out[g]["static, 4 logins"].append((time.perf_counter() - t0) * 1000)
        stop.set()
        for t in threads:
            t.join()
    return out


def serve(root: Path, users: Path, models, config, gate: bool):  # noqa: ANN001, ANN201
    from annotator.refine.app import launch
    from annotator.refine.auth import UserStore
    from annotator.refine.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = launch(Controller(root, UserStore(users), models, config), "127.0.0.1", port, block=False, with_gate=gate)
    return served, f"http://127.0.0.1:{port}/"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--strokes", type=int, default=20)
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--saves", type=int, default=10)
    ap.add_argument("--logins", type=int, default=20, help="HTTP logins per server")
    ap.add_argument("--calls", type=int, default=300, help="HTTP state calls per server")
    a = ap.parse_args()

    from playwright.sync_api import sync_playwright
    from test_refine_support import make_users
    from tiny_models import build_tiny_sam

    from annotator.models.settings import Device, ModelKind, ModelsConfig, ModelSpec, Runtime
    from annotator.refine.config import RefineConfig
    from annotator.refine.tool_models import ToolModels
    from collection.synth import make_synthetic_root

    tmp = Path(tempfile.mkdtemp(prefix="bench-refine-"))
    figures: dict[bool, dict[str, list[float]]] = {False: {}, True: {}}
    try:
        make_synthetic_root(tmp / "root", clips=2, seed=0)
        settings = ModelsConfig(sam=ModelSpec(source=str(build_tiny_sam(tmp / "sam"))),
                                runtime=Runtime(device=Device.cpu, offline=True))
        models = ToolModels.load(settings, [ModelKind.sam])
        users = make_users(tmp / "users.toml")
        # the bench logs in many times from one address: the login budget is not what it measures
        config = RefineConfig(login_limit_user="100000/minute", login_limit_address="100000/minute")
        shutil.copytree(tmp / "root", tmp / "root-gate")  # the same clips, one root per server
        pair = {g: serve(tmp / ("root-gate" if g else "root"), users, models, config, g) for g in (False, True)}
        urls = {g: u for g, (_, u) in pair.items()}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for g, figs in sessions(urls, a, browser).items():
                    figures[g].update(figs)
                browser.close()
            for g, figs in http_calls(urls, a.logins, a.calls).items():
                figures[g].update(figs)
            for g, figs in static_under_logins(urls, a.calls // 10).items():
                figures[g].update(figs)
        finally:
            for served, _ in pair.values():
                served.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ssu-refine editor on localhost, {CLIP} (512x512, 300 frames); tiny SAM (random weights, CPU); "
          "two servers, without and with the request gate, each action on both in turn")
    for k in figures[True]:
        off, on = figures[False][k], figures[True][k]
        if not off or not on:
            print(f"{k:16s} no figures (gate off: {len(off)}, on: {len(on)})")
            continue
        ratio = np.percentile(on, 50) / max(np.percentile(off, 50), 1e-9)
        print(f"{k:16s} gate off {pct(off)}\n{'':16s} gate on  {pct(on)}   p50 on/off {ratio:.2f}")


if __name__ == "__main__":
    main()
