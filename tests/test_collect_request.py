"""CollectRequest: the one set of collection defaults, read by ssu-collect's flags, the workers and the upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from collection.cli import app
from collection.fetch import FetchOptions
from collection.index import SourceKind
from collection.normalize import NormalizeOptions
from collection.request import CollectRequest, default
from schemas.errors import UserError
from schemas.models import Fit


def _flag_defaults() -> dict[str, object]:
    import typer.main

    cmd = typer.main.get_command(app)
    return {p.name: p.default for p in cmd.params if p.name}


def test_cli_flags_default_to_the_request() -> None:
    flags = _flag_defaults()
    fields = set(CollectRequest.model_fields) - {"index"}
    assert fields <= set(flags), fields - set(flags)
    for field in fields:
        assert flags[field] == default(field), field
    assert flags["fit"] == "pad" and flags["per_keyword"] == 50 and flags["retries"] == 3


def test_request_defaults_are_the_workers_defaults(tmp_path: Path) -> None:
    r = CollectRequest(index=tmp_path)
    assert r.normalize_options() == NormalizeOptions()
    assert r.fetch_options() == FetchOptions()


def test_from_flags_names_the_flag(tmp_path: Path) -> None:
    r = CollectRequest.from_flags(source="local", index=tmp_path, fit="crop", mix=["a+b"])
    assert (r.source, r.fit, r.mix) == (SourceKind.local, Fit.crop, ("a+b",))
    with pytest.raises(UserError, match=r"^--fit 'squash': use one of pad, crop, stretch$"):
        CollectRequest.from_flags(index=tmp_path, fit="squash")
    with pytest.raises(UserError, match=r"^--per-keyword 0: "):
        CollectRequest.from_flags(index=tmp_path, per_keyword=0)
    with pytest.raises(UserError, match=r"^--frobnicate "):
        CollectRequest.from_flags(index=tmp_path, frobnicate=1)


def test_check_refuses_impossible_combinations(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--keywords: give keywords"):
        CollectRequest(index=tmp_path).check()
    with pytest.raises(UserError, match="--media-dir: MUSIC-AVQA"):
        CollectRequest(index=tmp_path, source=SourceKind.music_avqa, keywords="x").check()
    with pytest.raises(UserError, match="--url-template"):
        CollectRequest(index=tmp_path, keywords="x", url_template="https://example.org/").check()
    CollectRequest(index=tmp_path, keywords="x").check()
