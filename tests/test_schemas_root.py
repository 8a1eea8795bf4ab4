import os
import subprocess
import sys

import numpy as np
import pytest

from schemas import atomic, rle
from schemas.errors import UserError
from schemas.models import RLE, Annotation, CatalogRow, ClipStatus, Manifest, Origin, SoundSource, Split
from schemas.root import DatasetRoot


@pytest.fixture()
def root(tmp_path):
    r = DatasetRoot.create(tmp_path / "root", Manifest(name="t"))
    r.catalog.upsert(CatalogRow(clip_id="a1", origin=Origin.local, category="violin"))
    return r


def ann(clip_id: str = "a1") -> Annotation:
    m = np.zeros((512, 512), bool)
    m[100:200, 50:60] = True
    r = RLE(**rle.encode(m))
    src = SoundSource(id=0, category="violin", masks=[r] * 150 + [None] * 150)
    src.set_frame_captions(["a violin on the left"] * 300)
    return Annotation(clip_id=clip_id, sources=[src])


def test_create_open_and_layout(root):
    for sub in ("clips", "audio", "annotations", "splits", "ssu.json", "catalog.sqlite"):
        assert (root.path / sub).exists()
    again = DatasetRoot.open(root.path)
    assert again.manifest == root.manifest


def test_not_a_root_and_non_empty(tmp_path):
    with pytest.raises(UserError, match="not a dataset root"):
        DatasetRoot.open(tmp_path)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        DatasetRoot.create(tmp_path, Manifest(name="t"))


def test_invalid_manifest_names_file(tmp_path, root):
    (root.path / "ssu.json").write_text('{"name": "x", "fps": 25}')
    with pytest.raises(UserError, match=r"ssu.json: .*fps"):
        DatasetRoot.open(root.path)


def test_annotation_round_trip_and_status_sync(root):
    a = ann()
    root.write_annotation(a)
    back = root.read_annotation("a1")
    assert back == a
    assert root.catalog.get("a1").status == ClipStatus.auto
    for m in back.sources[0].masks:
        if m is not None:
            assert rle.decode(m.model_dump()).shape == (512, 512)
    assert root.semantic_mask("a1", 0).sum() == 1000 and root.semantic_mask("a1", 200).sum() == 0


def test_bad_ids_and_unknown_clip(root):
    for bad in ("../etc", "a/b", ".."):
        with pytest.raises(UserError, match="invalid clip id"):
            root.annotation_path(bad)
    with pytest.raises(UserError, match="no annotation"):
        root.read_annotation("zz")
    with pytest.raises(UserError, match="unknown clip id"):
        root.write_annotation(ann("zz"))


def test_invalid_json_annotation_names_file(root):
    root.annotation_path("a1").write_text("{not json")
    with pytest.raises(UserError, match=r"a1.json"):
        root.read_annotation("a1")


def test_splits_disjoint(root):
    root.write_splits({Split.train: ["a1"], Split.test: []})
    assert root.read_split("train") == ["a1"]
    with pytest.raises(UserError, match="both"):
        root.write_splits({Split.train: ["a1"], Split.test: ["a1"]})
    with pytest.raises(UserError, match="unknown split"):
        root.read_split("dev")


def test_failed_write_leaves_old_file(root, monkeypatch):
    root.write_annotation(ann())
    before = root.annotation_path("a1").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    a = ann()
    a.note = "changed"
    with pytest.raises(OSError):
        root.write_annotation(a)
    assert root.annotation_path("a1").read_bytes() == before
    assert not [p for p in (root.path / "annotations").iterdir() if p.name.startswith(".")]


def test_killed_writer_leaves_old_file_intact(tmp_path):
    dest = tmp_path / "f.json"
    atomic.write_text(dest, "old\n")
    # a child that starts writing 50 MB and is SIGKILLed half way
    code = (
        "import os, signal, sys\n"
        "from schemas.atomic import atomic_path\n"
        f"with atomic_path({str(dest)!r}) as tmp:\n"
        "    f = open(tmp, 'wb')\n"
        "    f.write(b'x' * 25_000_000); f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd())
    assert p.returncode == -9
    assert dest.read_text() == "old\n"


def test_atomic_write_has_normal_permissions(tmp_path):
    dest = tmp_path / "x.txt"
    atomic.write_text(dest, "a")
    mask = os.umask(0)
    os.umask(mask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~mask
    dest.chmod(0o640)
    atomic.write_text(dest, "b")
    assert dest.stat().st_mode & 0o777 == 0o640
