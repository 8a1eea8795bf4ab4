"""ssu-export as a command: `all` end to end on one clip, user errors, instant --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotator.export.cli import app
from schemas.models import ClipStatus


def test_all_writes_every_format(synth_root_copy, tmp_path: Path) -> None:
    root = synth_root_copy
    ids = sorted(c for ids in root.splits().values() for c in ids)
    for c in ids[1:]:  # export a single clip: every format end to end, cheaply
        root.catalog.set_status(c, ClipStatus.rejected, "test")
    out = tmp_path / "release"
    res = CliRunner().invoke(app, ["all", str(root.path), "--out", str(out), "--status", "auto"])
    assert res.exit_code == 0, res.output
    for rel in ("README.md", "stats.json", "croissant.json", "figures/categories.png", "wds/index.json",
                "metadata/frames.csv"):
        assert (out / rel).is_file(), rel
    assert list((out / "yvis").glob("*.json")) and list((out / "coco").glob("*.json"))
    assert list((out / "data").glob("*.parquet")) and list((out / "wds").glob("*.tar"))
    assert json.loads((out / "stats.json").read_text())["clips"] == 1
    assert (out / "README.md").stat().st_mode & 0o044  # readable by others, unlike mkstemp's default


def test_user_errors_exit_2(synth_root, tmp_path: Path, monkeypatch, capsys) -> None:
    from annotator.export.cli import main

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for args, needle in [(["yvis", str(synth_root.path), "--status", "bogus"], "--status"),
                         (["splits", str(synth_root.path), "--ratios", "1,2"], "--ratios"),
                         (["card", str(tmp_path)], "not a dataset root"),
                         (["coco", str(synth_root.path), "--out", str(tmp_path)], "--status"),
                         (["splits", str(synth_root.path), "--ratios", "80,10,15", "--dry-run"], "sum to 105"),
                         # a file as --out is refused while parsing (the CLI contract): usage + one error line
                         (["all", str(synth_root.path), "--out", str(afile), "--status", "auto"], "is a file, not a"),
                         (["hf", str(synth_root.path), "--out", str(synth_root.path / "clips"), "--status", "auto"],
                          "--out")]:
        monkeypatch.setattr(sys, "argv", ["ssu-export", *args])
        with pytest.raises(SystemExit) as e:
            main()
        err = capsys.readouterr().err
        assert e.value.code == 2, (args, err)
        lines = err.strip().splitlines()
        assert needle in err and "Traceback" not in err, err
        assert len(lines) == 1 or (lines[0].startswith("Usage:") and len(lines) <= 4), err


def test_help_is_light() -> None:
    code = ("import sys; from annotator.export.cli import app; "
            "heavy = [m for m in ('pyarrow', 'datasets', 'webdataset', 'mlcroissant', 'matplotlib', 'pandas', 'av')"
            " if m in sys.modules]; print(heavy)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[]"
    res = CliRunner().invoke(app, ["splits", "--help"])
    assert res.exit_code == 0 and "Example: ssu-export splits" in res.output
