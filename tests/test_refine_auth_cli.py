"""ssu-refine users (hashed passwords, roles), its CLI, the edit-patch history and the dashboard figures."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from annotator.refine import dashboard, history
from annotator.refine.auth import Role, UserStore, add_user, hash_password, verify_password
from annotator.refine.cli import app
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES
from schemas.errors import UserError
from schemas.models import RLE, Annotation, CaptionSpan, SoundSource


def test_passwords_are_salted_hashes(tmp_path):
    h1, h2 = hash_password("secret-1"), hash_password("secret-1")
    assert h1 != h2 and h1.startswith("scrypt$")  # salted
    assert verify_password("secret-1", h1) and not verify_password("secret-2", h1)
    assert not verify_password("x", "garbage")
    path = tmp_path / "users.toml"
    assert add_user(path, "alice", "secret-1", Role.refiner)
    assert not add_user(path, "alice", "secret-22", Role.reviewer)  # update
    text = path.read_text()
    assert "secret" not in text and 'role = "reviewer"' in text
    store = UserStore(path)
    assert store.authenticate("alice", "secret-22").role == Role.reviewer
    assert store.authenticate("alice", "secret-1") is None and store.authenticate("nobody", "secret-22") is None
    with pytest.raises(UserError, match="too short"):
        add_user(path, "bob", "abc", Role.refiner)
    with pytest.raises(UserError, match="user name"):
        add_user(path, "../bob", "abcdefg", Role.refiner)
    path.write_text('[users.x]\nrole = "boss"\npassword = "p"\n')
    with pytest.raises(UserError, match="role"):
        UserStore(path)


def test_cli_add_user_and_errors(tmp_path):
    runner = CliRunner()
    users = tmp_path / "u.toml"
    r = runner.invoke(app, ["add-user", str(users), "rita", "--role", "reviewer", "--password-stdin"],
                      input="rita-password\n")
    assert r.exit_code == 0, r.output
    assert UserStore(users).authenticate("rita", "rita-password").role == Role.reviewer
    r = runner.invoke(app, ["add-user", str(users), "x", "--role", "boss", "--password-stdin"], input="pw-pw-pw\n")
    assert r.exit_code != 0
    r = runner.invoke(app, ["serve", "--help"])
    assert r.exit_code == 0 and "Example" in r.output and "--users" in r.output
    r = runner.invoke(app, ["serve", str(tmp_path / "nope"), "--users", str(users)])
    assert r.exit_code != 0 and "not a dataset root" in str(r.exception)


def _ann(masks: list, captions: list[CaptionSpan]) -> Annotation:
    src = SoundSource(id=0, category="circle", masks=masks, captions=captions)
    return Annotation(clip_id="c1", sources=[src])


def test_history_patches_round_trip():
    m = np.zeros((512, 512), bool)
    m[10:50, 10:50] = True
    r1 = RLE(**rle_mod.encode(m))
    old = _ann([r1] * NUM_FRAMES, [CaptionSpan(start=0, end=300, text="a circle")])
    new = old.model_copy(deep=True)
    new.sources[0].masks = [None] + [r1] * (NUM_FRAMES - 1)
    new.sources[0].captions = [CaptionSpan(start=0, end=100, text="a red circle")]
    new.sources = [*new.sources, SoundSource(id=1, category="star", masks=[None] * NUM_FRAMES)]
    before, after = history.diff(old, new)
    assert list(before["sources"]["0"]["masks"]) == ["0"]  # only the changed frame is stored
    assert history.apply(old, after) == new.model_copy(update={"updated_at": old.updated_at})
    assert history.apply(new, before) == old.model_copy(update={"updated_at": new.updated_at})
    assert history.diff(old, old) == ({}, {})
    iou, rate = dashboard.compare(old, new)
    assert iou == pytest.approx((NUM_FRAMES - 1) / NUM_FRAMES)
    assert rate == 1.0  # frames 0..99 reworded, 100..299 lost their caption
    part = old.model_copy(deep=True)
    part.sources[0].captions = [CaptionSpan(start=0, end=100, text="a red circle"),
                                CaptionSpan(start=100, end=300, text="a circle")]
    assert dashboard.compare(old, part) == (1.0, pytest.approx(1 / 3))


@pytest.mark.slow
def test_cli_serves_with_login(synth_root, tmp_path):
    """`ssu-refine ROOT --users F` starts a server that answers 401 until one logs in."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    users = tmp_path / "u.toml"
    add_user(users, "alice", "alice-pw-1", Role.refiner)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "import sys; from annotator.refine.cli import main; sys.argv[0] = 'ssu-refine'; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, str(synth_root.path), "--users", str(users),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                r = httpx.get(url + "config", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start in 120 s"
                time.sleep(1)
        assert r.status_code == 401
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.post("login", data={"username": "alice", "password": "alice-pw-1"}).status_code == 200
            assert c.get("config").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
