"""ssu-refine on a hostile web (issue 28): each probe an attacker tried, against a running server, refused,
with nothing written to the root, the catalog or the audit log.

One server for the module (a 6-clip synthetic root, small limits so the probes stay small); Chromium from a
second loopback port for the cross-origin form and fetch. Every test logs in its own client, so the tests do
not depend on their order.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_refine_support import CHROMIUM, CHROMIUM_ARGS, PASSWORDS, make_users

from annotator.refine import auth
from annotator.refine.auth import Role, add_user, write_users
from annotator.refine.config import RefineConfig, check_category
from annotator.refine.sessions import Logins, LoginThrottle
from schemas.errors import UserError
from schemas.root import DatasetRoot

CLIP = "synth_0_00000"
EXTRA = {"dora": Role.reviewer, "eve": Role.refiner, "fred": Role.reviewer, "gina": Role.refiner}
CONFIG = dict(login_limit_user="5/minute", login_limit_address="12/minute", max_body_kb=64, max_upload_mb=1,
              max_upload_files=2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Site:
    def __init__(self, root: Path, users: Path) -> None:
        from annotator.refine.app import launch
        from annotator.refine.auth import UserStore
        from annotator.refine.controller import Controller

        self.root, self.users, self.port = root, users, free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.ctl = Controller(root, UserStore(users), config=RefineConfig(**CONFIG))
        self.served = launch(self.ctl, "127.0.0.1", self.port, block=False)
        self.cookie = self.served.app.user_middleware[0].kwargs["cookie_name"]

    @contextlib.contextmanager
    def client(self, user: str | None = None) -> Iterator[httpx.Client]:
        """An HTTP client, logged in as `user` when given."""
        with httpx.Client(base_url=self.url, timeout=30) as c:
            if user:
                r = c.post("login", data={"username": user, "password": PASSWORDS.get(user, f"{user}-pw-99")})
                assert r.status_code == 200, r.text
            yield c

    def state(self) -> tuple:
        """Everything a probe must not change: annotations, catalog rows and leases, the audit log, uploads."""
        root = DatasetRoot.open(self.root)
        try:
            files = sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest())
                           for p in (self.root / "annotations").glob("*.json"))
            rows = [r.model_dump_json() for r in root.catalog.rows()]
            leases = [root.catalog.lease_of(r.clip_id) for r in root.catalog.rows()]
            audit = [(e.id, e.actor, e.action) for e in root.catalog.history()]
        finally:
            root.close()
        uploads = sorted(str(p) for p in (self.root / ".uploads").rglob("*")) if (self.root / ".uploads").exists() \
            else []
        return files, rows, leases, audit, uploads


@pytest.fixture(scope="module")
def site(tmp_path_factory, _synth_root_master):
    tmp = tmp_path_factory.mktemp("refine-sec")
    shutil.copytree(_synth_root_master, tmp / "root")
    users = make_users(tmp / "users.toml")
    for name, role in EXTRA.items():
        add_user(users, name, f"{name}-pw-99", role)
    s = Site(tmp / "root", users)
    try:
        yield s
    finally:
        s.served.close()


def api(c: httpx.Client, path: str, body: dict, **headers: str) -> httpx.Response:
    return c.post(f"ssu/api/{path}", content=json.dumps(body),
                  headers={"Content-Type": "application/json", "X-SSU-Request": "1", **headers})


def open_clip(c: httpx.Client, tab: str, clip: str = CLIP) -> dict:
    r = api(c, "open", {"tab": tab, "clip": clip})
    assert r.status_code == 200, r.text
    return r.json()


# -- cross-site writes and reads, in a real browser -------------------------------------------------------------
ATTACK = """<!doctype html><html><body>
<form id="f" method="POST" enctype="text/plain" action="{url}ssu/api/edit">
<input name='{{"tab":"attacker0001","kind":"decide","decision":"accept","seq":99,"x":"' value='"}}'></form>
<script>
async function probe() {{
  const out = {{}};
  for (const [k, path, init] of [
      ["token", "gradio_api/token", {{credentials: "include"}}],
      ["user", "gradio_api/user", {{credentials: "include"}}],
      ["state", "ssu/api/state", {{method: "POST", credentials: "include",
                                  headers: {{"Content-Type": "application/json", "X-SSU-Request": "1"}},
                                  body: JSON.stringify({{tab: "attacker0002"}})}}]]) {{
    try {{ const r = await fetch("{url}" + path, init); out[k] = "read " + r.status + " " + await r.text(); }}
    catch (e) {{ out[k] = "blocked"; }}
  }}
  // a blind write: no-cors needs no preflight, the attacker cannot read the answer but hopes it acted
  try {{ await fetch("{url}ssu/api/open", {{method: "POST", mode: "no-cors", credentials: "include",
                     body: JSON.stringify({{tab: "attacker0003", clip: "{clip}"}})}}); }} catch (e) {{}}
  try {{ await fetch("{url}logout", {{method: "POST", mode: "no-cors", credentials: "include"}}); }} catch (e) {{}}
  return out;
}}
function frame() {{  // clickjacking: the editor inside this page, under a decoy
  return new Promise(done => {{
    const f = document.createElement("iframe");
    f.onload = () => done(true);
    f.src = "{url}ssu/editor?clip={clip}";
    document.body.append(f);
  }});
}}
</script></body></html>"""


@pytest.fixture(scope="module")
def attacker(site):
    """A page on another loopback port (another origin, the same site as far as cookies go)."""
    page = ATTACK.format(url=site.url, clip=CLIP).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


@pytest.mark.browser
def test_cross_origin_form_and_fetch_in_chromium(site, attacker):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium; see ENVIRONMENT.md)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with site.client("rita") as rita:  # a logged-in reviewer: the victim whose cookie the browser holds
        token = rita.cookies[site.cookie]
        open_clip(rita, "ritatab00001")  # her own tab holds the clip: an accept would be hers to make
    before = site.state()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context()
            ctx.add_cookies([{"name": site.cookie, "value": token, "url": site.url, "httpOnly": True,
                              "sameSite": "Strict"}])
            page = ctx.new_page()
            page.goto(attacker)
            out = page.evaluate("probe()")
            page.evaluate("frame()")
            page.wait_for_timeout(500)
            framed = page.frame_locator("iframe").locator("#ssu-stage").count()
            with page.expect_navigation():
                page.evaluate("document.getElementById('f').submit()")
            form_answer = page.content()
            # the victim's own tab, same browser: still logged in (the attacker's logout did nothing)
            check = ctx.request.get(site.url + "gradio_api/user")
            assert check.json() == "rita"
        finally:
            browser.close()
    assert all(v == "blocked" or v.startswith("read 403") for v in out.values()), out
    assert token not in json.dumps(out)
    assert "cross-origin request refused" in form_answer
    assert framed == 0  # frame-ancestors 'none': the editor never renders inside another page
    assert site.state() == before


def test_cors_is_never_reflected(site):
    with site.client("alice") as c:
        for origin in ("http://127.0.0.1:1", "http://localhost:9", "null", "https://evil.example"):
            for r in (c.get("gradio_api/token", headers={"Origin": origin}),
                      c.get("config", headers={"Origin": origin}),
                      c.options("ssu/api/state", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})):
                assert "access-control-allow-origin" not in r.headers, (origin, r.request.url, r.headers)
                assert "access-control-allow-credentials" not in r.headers
            assert c.get("gradio_api/token", headers={"Origin": origin}).status_code == 403
            assert c.get("gradio_api/token", headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
        # behind a reverse proxy the Host is the public name: only the configured one is this app
        r = c.get("gradio_api/token", headers={"Host": "refine.example.com", "Origin": "https://refine.example.com"})
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        assert c.get("gradio_api/token").json()["user"] == "alice"  # same origin: the page itself may


def test_api_wants_json_and_the_custom_header(site):
    before = site.state()
    body = json.dumps({"tab": "alicetab0001", "clip": CLIP})
    with site.client("alice") as c:
        for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/json"},
                        {"Content-Type": "text/plain", "X-SSU-Request": "1"},
                        {"Content-Type": "application/x-www-form-urlencoded", "X-SSU-Request": "1"},
                        {"Content-Type": "application/json", "X-SSU-Request": "1", "Origin": "http://127.0.0.1:1"},
                        {"Content-Type": "application/json", "X-SSU-Request": "1", "Sec-Fetch-Site": "cross-site"}):
            r = c.post("ssu/api/open", content=body, headers=headers)
            assert r.status_code == 403, (headers, r.text)
        # Gradio's routes: a cross-origin queue join or upload is refused before Gradio sees it
        assert c.post("gradio_api/queue/join", json={}, headers={"Origin": "http://127.0.0.1:1"}).status_code == 403
    assert site.state() == before


# -- revocation --------------------------------------------------------------------------------------------------
def test_demoted_reviewer_is_logged_out_everywhere(site):
    with site.client("dora") as dora:
        v = open_clip(dora, "doratab00001", "synth_0_00001")
        assert site.ctl.root.catalog.lease_of("synth_0_00001").owner == "dora"
        before = site.state()
        users = auth.UserStore(site.users).users
        users["dora"] = auth.User("dora", Role.refiner, users["dora"].password_hash)  # `add-user dora --role refiner`
        write_users(site.users, users)
        r = api(dora, "edit", {"tab": "doratab00001", "kind": "decide", "decision": "accept", "seq": 1,
                               "rev": v["revision"]})
        assert r.status_code == 401  # the tab already open cannot accept as a reviewer
        assert dora.get("config").status_code == 401 and dora.get("gradio_api/user").json() is None
        assert dora.get("ssu/api/frame/synth_0_00001/0.jpg").status_code == 401
        assert dora.get("ssu/editor", follow_redirects=False).status_code == 303
        assert site.ctl.root.catalog.lease_of("synth_0_00001") is None  # her lease ended with her login
        files, rows, _leases, audit, uploads = site.state()
        assert (files, uploads) == (before[0], before[4])
        assert [r.split('"lease')[0] for r in rows] == [r.split('"lease')[0] for r in before[1]]  # no status moved
        assert [a[1:] for a in audit[len(before[3]):]] == [("dora", "release")]
    with site.client("dora") as dora:  # she logs in again, now as a refiner: accept only submits for review
        assert dora.get("gradio_api/user").json() == "dora"


def test_removed_user_is_gone_and_stays_gone_when_readded(site):
    with site.client("eve") as eve:
        open_clip(eve, "evetab000001", "synth_0_00002")
        site.ctl.catalog.claim("synth_0_00005", "eve")  # a lease with no tab open (claimed before a restart)
        users = auth.UserStore(site.users).users
        removed = users.pop("eve")
        write_users(site.users, users)
        for path in ("config", f"gradio_api/file={site.root / 'clips' / 'synth_0_00002.mp4'}",
                     "ssu/api/video/synth_0_00002.mp4"):
            assert eve.get(path).status_code == 401, path
        assert eve.get("ssu/editor", follow_redirects=False).status_code == 303
        assert eve.post("gradio_api/upload", files={"files": ("a.mp4", b"x")}).status_code == 401
        assert site.ctl.root.catalog.lease_of("synth_0_00002") is None
        assert site.ctl.root.catalog.lease_of("synth_0_00005") is None
        users[removed.name] = removed  # re-added with the very same hash: the old cookie stays dead
        write_users(site.users, users)
        assert eve.get("config").status_code == 401
        assert eve.get("gradio_api/user").json() is None


def test_logins_expire_idle_and_absolute(tmp_path):
    users = auth.UserStore(add_user(tmp_path / "u.toml", "zoe", "zoe-pw-99", Role.refiner) and tmp_path / "u.toml")
    now = [0.0]
    ended: list[str] = []
    logins = Logins(users, idle_s=60, max_s=300, on_end=ended.append, clock=lambda: now[0])
    t = logins.create("zoe")
    now[0] = 59
    assert logins.get(t) == "zoe"
    now[0] = 59 + 61
    assert logins.get(t) is None and t not in list(logins)  # idle too long
    t = logins.create("zoe")
    for step in range(1, 7):
        now[0] = 120 + step * 50
        assert logins.get(t) == ("zoe" if step * 50 <= 300 else None)  # used every 50 s, still ends at 300 s
    t = logins.create("zoe")
    add_user(tmp_path / "u.toml", "zoe", "a-new-password", Role.refiner)
    assert logins.get(t) is None and ended == ["zoe"]  # a new password ends the login and the editor sessions
    t = logins.create("zoe")
    (tmp_path / "u.toml").unlink()  # the users file deleted while serving: nobody is logged in any more
    assert logins.get(t) is None and ended == ["zoe", "zoe"]


# -- login ---------------------------------------------------------------------------------------------------
def test_password_guessing_is_throttled(site):
    with site.client() as c:
        codes = [c.post("login", data={"username": "gina", "password": f"guess-{i}"}) for i in range(8)]
        assert [r.status_code for r in codes[:5]] == [400] * 5
        assert codes[5].status_code == 429 and 0 < int(codes[5].headers["Retry-After"]) <= 60
        # the right password does not get through a spent user budget either
        assert c.post("login", data={"username": "gina", "password": "gina-pw-99"}).status_code == 429
        # per address: many names from one address (X-Forwarded-For: uvicorn trusts it from loopback, as from a proxy)
        spray = [c.post("login", data={"username": f"nobody{i}", "password": "x"},
                        headers={"X-Forwarded-For": "10.9.8.7"}).status_code for i in range(14)]
        assert spray[:12] == [400] * 12 and spray[12:] == [429, 429]
        # another address and user are not affected
        assert c.post("login", data={"username": "fred", "password": "fred-pw-99"}).status_code == 200


def test_login_spends_the_same_work_for_unknown_names_off_the_event_loop(site, monkeypatch):
    calls: list[str] = []
    real = hashlib.scrypt

    def counting(*a, **kw):
        calls.append(threading.current_thread().name)
        return real(*a, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    with site.client() as c:
        for name in ("bob", "no-such-user"):
            calls.clear()
            addr = {"X-Forwarded-For": f"10.1.1.{len(name)}"}
            assert c.post("login", data={"username": name, "password": "wrong!"}, headers=addr).status_code == 400
            assert len(calls) == 1, (name, calls)  # one scrypt run whether the name exists or not
            assert "ssu-refine-web" not in calls  # not on the server's event-loop thread
    THROTTLE = LoginThrottle("2/minute", "100/minute")
    THROTTLE.failed("a", "1.2.3.4")
    assert THROTTLE.wait("a", "1.2.3.4") == 0
    THROTTLE.failed("A", "5.6.7.8")  # names are case-insensitive in the budget
    assert THROTTLE.wait("a", "9.9.9.9") > 0


def test_logout_is_a_same_origin_post(site):
    with site.client("bob") as c:
        assert c.get("logout").status_code == 405 and c.get("config").status_code == 200
        assert c.post("logout", headers={"Origin": "http://127.0.0.1:1"}).status_code == 403
        assert c.get("config").status_code == 200
        r = c.post("logout")
        assert r.status_code == 200 and "samesite=strict" in r.headers["set-cookie"].lower()
        assert c.get("config").status_code == 401


def test_login_cookie_is_strict_and_expires(site):
    with site.client() as c:
        r = c.post("login", data={"username": "alice", "password": PASSWORDS["alice"]})
        cookie = r.headers["set-cookie"].lower()
        assert "samesite=strict" in cookie and "httponly" in cookie and "max-age=" in cookie
        assert "secure" not in cookie  # plain http on loopback; an https --public-url adds it
    assert RefineConfig(public_url="https://refine.example.com/").secure_cookies


# -- sizes --------------------------------------------------------------------------------------------------------
def raw_post(site, path: str, length: int, cookie: str | None = None) -> str:
    """Headers only, announcing a big body that never comes: the answer must come before it."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as s:
        s.sendall((f"POST /{path} HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\nContent-Type: application/json\r\n"
                   f"X-SSU-Request: 1\r\nContent-Length: {length}\r\n"
                   + (f"Cookie: {site.cookie}={cookie}\r\n" if cookie else "") + "\r\n").encode())
        return s.recv(4096).decode("latin-1").split("\r\n")[0]


def test_big_bodies_are_refused_before_reading(site):
    before = site.state()
    assert " 401 " in raw_post(site, "ssu/api/open", 150_000_000)  # anonymous: no body is read at all
    with site.client("alice") as c:
        token = c.cookies[site.cookie]
        assert " 413 " in raw_post(site, "ssu/api/open", 150_000_000, token)
        assert " 413 " in raw_post(site, "gradio_api/queue/join", 150_000_000, token)

        def chunks():  # no Content-Length: counted while it arrives
            for _ in range(100):
                yield b" " * 4096

        r = c.post("ssu/api/open", content=chunks(), headers={"Content-Type": "application/json",
                                                              "X-SSU-Request": "1"})
        assert r.status_code == 413
    assert site.state() == before


def test_uploads_are_a_reviewers_and_limited(site):
    gradio_dir = Path(site.served.app.routes[-1].app.uploaded_file_dir)
    stored = set(gradio_dir.rglob("*")) if gradio_dir.exists() else set()
    video = site.root / "clips" / f"{CLIP}.mp4"
    with site.client("alice") as c:  # a refiner
        assert c.post("gradio_api/upload", files={"files": ("a.mp4", video.read_bytes())}).status_code == 403
    with site.client("fred") as c:  # a reviewer, over the size and the count
        for size in (3 * 2**20, 2**20 + 200_000):  # over the request's limit (Content-Length), over one file's
            r = c.post("gradio_api/upload", files={"files": ("big.mp4", b"\0" * size)})
            assert r.status_code == 413, (size, r.text)
        small = [("files", (f"{i}.mp4", b"\0" * 1000)) for i in range(3)]
        r = c.post("gradio_api/upload", files=small)
        assert r.status_code == 413 and "files" in r.text
    # Gradio parses a multipart body into a temp folder of its own and removes it once the request is over, which
    # can be a moment after the answer: wait for that, then nothing of the refused files may be left
    deadline = time.monotonic() + 10
    while (left := (set(gradio_dir.rglob("*")) if gradio_dir.exists() else set())) != stored:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == stored
    with site.client("fred") as c:  # within the limits it works
        r = c.post("gradio_api/upload", files={"files": ("ok.mp4", video.read_bytes())})
        assert r.status_code == 200 and len(r.json()) == 1


def test_upload_probes_before_decoding_and_deletes_refused_originals(site, tmp_path):
    import subprocess

    import imageio_ffmpeg

    from annotator.refine import upload

    big = tmp_path / "huge.mp4"  # 1024x1024 at 240 fps: over both test limits below, never decoded
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "color=c=red:s=1024x1024:r=240:d=0.05", "-c:v", "mpeg4", str(big)], check=True)
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video at all")
    before = site.state()
    limits = RefineConfig(max_pixels=512 * 512, max_fps=60)
    res = upload.ingest(site.root, [big, fake], "circle", "fred", limits=limits)
    assert [r.ok for r in res] == [False, False]
    assert "over 262144 pixels" in res[0].reason and "readable" in res[1].reason
    assert not any(str(tmp_path) in r.reason or "/" in r.reason.split(" (")[0] for r in res)  # no server paths
    assert site.state() == before  # nothing stored under .uploads, nothing in the catalog
    res = upload.ingest(site.root, [big], "circle", "fred", limits=RefineConfig(max_pixels=2**21, max_fps=60))
    assert "frame rate 240" in res[0].reason
    assert upload.no_paths(f"{tmp_path}/x.mp4: broken") == "x.mp4: broken"


def test_categories_come_from_the_root_or_a_checked_pattern():
    known = ["circle", "square"]
    assert check_category(" circle ", known, allow_new=False) == "circle"
    with pytest.raises(UserError, match="new-categories"):
        check_category("playing piano", known, allow_new=False)
    assert check_category("playing  piano", known, allow_new=True) == "playing piano"
    for bad in ("<img src=x onerror=alert(1)>", "A" * 60, "piano,violin", "x" * 49):
        with pytest.raises(UserError):
            check_category(bad, known, allow_new=True)


# -- headers, errors and files ------------------------------------------------------------------------------------
def test_security_headers_on_every_page(site):
    with site.client("alice") as c:
        for path in ("", "config", f"ssu/editor?clip={CLIP}", "ssu/static/editor.js", "gradio_api/user"):
            h = c.get(path).headers
            assert "frame-ancestors 'none'" in h["content-security-policy"], path
            assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
            assert h["referrer-policy"] == "same-origin"
        assert "'unsafe-inline'" not in c.get("ssu/editor").headers["content-security-policy"].split("script-src")[1]


def test_malformed_edits_are_400_naming_the_field(site):
    with site.client("bob") as c:
        v = open_clip(c, "bobtab000001", "synth_0_00003")
        before = site.state()
        bad = [('"frame": 1e400', "frame"), ('"frame": 0, "source_id": 0, "points": [5]', "points"),
               ('"frame": 0, "source_id": 0, "points": [[1, "x"]]', "points"),
               ('"frame": 0, "source_id": 0, "points": [[1, 2]], "radius": NaN', "radius"),
               ('"frame": 0, "source_id": 0, "points": [[1, 2]], "box": [1, 2]', "box"),
               ('"frame": 0, "source_id": 0, "points": {"a": 1}', "points")]
        for seq, (fields, name) in enumerate(bad, start=1):
            body = f'{{"tab": "bobtab000001", "kind": "sam", "seq": {seq}, "rev": "{v["revision"]}", {fields}}}'
            r = c.post("ssu/api/edit", content=body, headers={"Content-Type": "application/json",
                                                                "X-SSU-Request": "1"})
            assert r.status_code == 400 and r.json()["error"].startswith(name), (fields, r.text)
        assert site.state() == before


def test_media_only_regular_files_inside_clips(site):
    link = site.root / "clips" / "synth_0_00004.mp4"
    saved = link.with_suffix(".keep")
    link.rename(saved)
    link.symlink_to(site.users)  # clips/X.mp4 -> users.toml
    try:
        with site.client("alice") as c:
            r = c.get("ssu/api/video/synth_0_00004.mp4")
            assert r.status_code == 400 and "scrypt$" not in r.text and str(site.root) not in r.text
            assert c.get(f"gradio_api/file={link}").status_code == 403
    finally:
        link.unlink()
        saved.rename(link)


def test_config_flags_are_checked(synth_root, tmp_path):
    from typer.testing import CliRunner

    from annotator.refine.cli import app

    users = make_users(tmp_path / "users.toml")
    for args, flag in ((["--host", "0.0.0.0"], "--public-url"), (["--max-fps", "0"], "--max-fps"),
                       (["--public-url", "ftp://x"], "--public-url")):
        r = CliRunner().invoke(app, ["serve", str(synth_root.path), "--users", str(users), *args])
        assert r.exit_code != 0 and flag in str(r.exception), (args, r.exception)
    with pytest.raises(UserError, match="--public-url"):
        RefineConfig.from_flags(public_url="https://refine.example.com/some/path")
    with pytest.raises(UserError, match="--login-limit-user"):
        RefineConfig.from_flags(login_limit_user="lots")
    with pytest.raises(UserError, match="--max-upload-mb"):
        RefineConfig.from_flags(max_upload_mb=0)
    assert RefineConfig(public_url="HTTPS://Refine.Example.com").public_url == "https://refine.example.com"
