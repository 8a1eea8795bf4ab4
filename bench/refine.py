"""Latency of ssu-refine's editor as a refiner feels it: Playwright drives Debian's Chromium against a server
on localhost (a 2-clip synthetic root, a tiny random-weight SAM so a click runs a real SAM forward pass).

    .venv/bin/python bench/refine.py [--steps 60] [--strokes 20] [--clicks 10] [--saves 10]

Figures are measured inside the page (performance.now()): frame step = key press -> picture and masks of
that frame on screen; stroke / SAM click / save = the edit sent -> the saved state applied on the page.
Frame steps walk forward through frames never seen before (the first of each second decodes a chunk), so
they include cold decodes; the p95 shows them.

Each round runs the same session twice, on a server without the request gate (annotator/refine/gate.py) and
with it, so the ratio on/off is what the gate costs (issue 28: within 10 %). Logins and the editor's state
call are also timed over plain HTTP, against both servers at once, call by call in turn.
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

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
CLIP = "synth_0_00000"


def pct(xs: list[float]) -> str:
    a = np.asarray(xs, float)
    return f"p50 {np.percentile(a, 50):6.1f} ms   p95 {np.percentile(a, 95):6.1f} ms   (n={len(a)})"


def session(url: str, a: argparse.Namespace, browser) -> dict[str, list[float]]:  # noqa: ANN001
    """One refiner's session in the page: log in, frame steps, strokes, SAM clicks, caption saves."""
    from test_refine_support import PASSWORDS

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(url)
    page.get_by_label("username").fill("alice")
    page.get_by_label("password").fill(PASSWORDS["alice"])
    page.get_by_role("button", name="Login").click()
    page.get_by_text("logged in as").first.wait_for(timeout=60_000)
    page.goto(f"{url}ssu/editor?clip={CLIP}")
    page.wait_for_function("() => document.body.dataset.shown === '0'", timeout=60_000)
    page.evaluate("() => { window.ssuEditor.timings.frame.length = 0; }")
    for f in range(1, a.steps + 1):  # one key, wait until shown, next key
        page.keyboard.press("d")
        page.wait_for_function("f => document.body.dataset.shown === String(f)", arg=f, timeout=60_000)
    steps = page.evaluate("() => window.ssuEditor.timings.frame.slice()")

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
        area.press("Control+s")  # the page's save shortcut (a click can land on the row laid over the button)
        saved()
    edits = page.evaluate("() => window.ssuEditor.timings.edit")
    page.context.close()
    return {"frame step": steps, "stroke": edits.get("stroke", []), "SAM click": edits.get("sam", []),
            "save": edits.get("spans", [])}


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


def serve(root: Path, users: Path, hub, config, gate: bool):  # noqa: ANN001, ANN201
    from annotator.refine.app import launch
    from annotator.refine.auth import UserStore
    from annotator.refine.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = launch(Controller(root, UserStore(users), hub, config), "127.0.0.1", port, block=False, with_gate=gate)
    return served, f"http://127.0.0.1:{port}/"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--strokes", type=int, default=20)
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--saves", type=int, default=10)
    ap.add_argument("--logins", type=int, default=20, help="HTTP logins per server")
    ap.add_argument("--calls", type=int, default=300, help="HTTP state calls per server")
    ap.add_argument("--rounds", type=int, default=2, help="gate off / on rounds, alternating")
    a = ap.parse_args()

    from playwright.sync_api import sync_playwright
    from test_refine_support import make_users
    from tiny_models import build_tiny_sam

    from annotator.models.settings import Device, ModelKind, ModelsConfig, ModelSpec, Runtime
    from annotator.refine.config import RefineConfig
    from annotator.refine.models_hub import ModelsHub
    from collection.synth import make_synthetic_root

    tmp = Path(tempfile.mkdtemp(prefix="bench-refine-"))
    figures: dict[bool, dict[str, list[float]]] = {False: {}, True: {}}
    try:
        make_synthetic_root(tmp / "root", clips=2, seed=0)
        settings = ModelsConfig(sam=ModelSpec(source=str(build_tiny_sam(tmp / "sam"))),
                                runtime=Runtime(device=Device.cpu, offline=True))
        hub = ModelsHub.load(settings, [ModelKind.sam])
        users = make_users(tmp / "users.toml")
        # the bench logs in many times from one address: the login budget is not what it measures
        config = RefineConfig(login_limit_user="1000/minute", login_limit_address="1000/minute")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for r in range(a.rounds * 2):
                gate = r % 2 == 1
                served, url = serve(tmp / "root", users, hub, config, gate)
                try:
                    for k, v in session(url, a, browser).items():
                        figures[gate].setdefault(k, []).extend(v)
                finally:
                    served.close()
            browser.close()
        pair = {g: serve(tmp / "root", users, hub, config, g) for g in (False, True)}
        try:
            for g, figs in http_calls({g: u for g, (_, u) in pair.items()}, a.logins, a.calls).items():
                figures[g].update(figs)
        finally:
            for served, _ in pair.values():
                served.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ssu-refine editor on localhost, {CLIP} (512x512, 300 frames); tiny SAM (random weights, CPU); "
          f"{a.rounds} rounds of gate off / on, alternating")
    for k in figures[True]:
        off, on = figures[False][k], figures[True][k]
        if not off or not on:
            print(f"{k:13s} no figures (gate off: {len(off)}, on: {len(on)})")
            continue
        ratio = np.percentile(on, 50) / max(np.percentile(off, 50), 1e-9)
        print(f"{k:13s} gate off {pct(off)}\n{'':13s} gate on  {pct(on)}   p50 on/off {ratio:.2f}")


if __name__ == "__main__":
    main()
