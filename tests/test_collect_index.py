"""Index readers and keyword matching on the real index files (no media, fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collection.index import (
    SourceKind,
    read_local,
    read_music21,
    read_music_avqa,
    read_vggsound,
    window_start,
)
from collection.keywords import load_synonyms, resolve, resolve_all, split_keywords
from collection.plan import candidates, plan_keywords, plan_mixes
from schemas.errors import UserError
from schemas.models import Origin


def test_vggsound_test_list_layout(shared_data: Path) -> None:
    ix = read_vggsound(shared_data / "index/vggsound/test.csv")
    assert len(ix.entries) == 15446 and not ix.bad_rows
    labels = ix.labels()
    assert len(labels) == 309 and labels["playing piano"] == 50
    e = next(e for e in ix.entries if e.clip_id == "M1pPtg6a_g8_000230")
    assert (e.youtube_id, e.start, e.labels, e.split) == ("M1pPtg6a_g8", 230.0, ("playing piano",), "test")
    assert e.local_name == "M1pPtg6a_g8_000230.mp4"


def test_vggsound_full_layout_with_quoted_commas(shared_data: Path) -> None:
    rows = read_vggsound(shared_data / "index/vggsound/vggsound_test_rows.csv")
    assert len(rows.entries) == 15446 and not rows.bad_rows
    assert "playing violin, fiddle" in rows.labels()  # quoted label with a comma stays one label
    excerpt = read_vggsound(shared_data / "index/vggsound/vggsound_excerpt.csv")
    splits = {e.split for e in excerpt.entries}
    assert splits == {"train", "test"}
    assert sum(excerpt.labels("test").values()) < sum(excerpt.labels().values())


def test_vggsound_malformed_rows_are_reported_not_fatal(tmp_path: Path) -> None:
    p = tmp_path / "v.csv"
    p.write_text('abcdefghijk,10,"dog, barking",train\n'
                 'short,10,dog barking,train\n'           # bad id
                 'abcdefghijk,ten,dog barking,train\n'     # bad start
                 'abcdefghijk,20\n'                        # wrong column count
                 'abcdefghijk,30,,train\n'                 # empty label
                 'zyxwvutsrqp_000040.mp4,cow lowing\r\n')
    ix = read_vggsound(p)
    assert [e.clip_id for e in ix.entries] == ["abcdefghijk_000010", "zyxwvutsrqp_000040"]
    assert [b.line for b in ix.bad_rows] == [2, 3, 4, 5]
    assert "bad YouTube id" in ix.bad_rows[0].reason and "columns" in ix.bad_rows[2].reason


def test_music_avqa_instruments_and_window(shared_data: Path) -> None:
    ix = read_music_avqa(shared_data / "index/music_avqa/avqa-test.json", seed=0)
    labels = ix.labels()
    assert "violin" in labels and "left" not in labels and "first" not in labels
    assert set(labels) <= set("accordion acoustic_guitar bagpipe banjo bassoon cello clarinet congas drum "
                              "electric_bass erhu flute guzheng piano pipa saxophone suona trumpet tuba ukulele "
                              "violin xylophone".split())
    e = ix.entries[0]
    assert e.origin == Origin.music_avqa and e.local_name == f"{e.meta['video_id']}.mp4"
    assert 0 <= e.start <= 50 and e.media_start == e.start
    assert e.clip_id == f"avqa_{e.meta['video_id']}_{int(e.start):06d}"
    # the window depends on (seed, video) only: same seed -> same, another seed -> (mostly) different
    again = read_music_avqa(shared_data / "index/music_avqa/avqa-test.json", seed=0)
    other = read_music_avqa(shared_data / "index/music_avqa/avqa-test.json", seed=1)
    assert [x.start for x in again.entries] == [x.start for x in ix.entries]
    assert sum(a.start != b.start for a, b in zip(ix.entries, other.entries, strict=True)) > len(ix.entries) // 2
    assert {window_start(str(i), 3) for i in range(500)} == set(range(51))


def test_music21_solo_and_duet(shared_data: Path) -> None:
    solo = read_music21(shared_data / "index/music21/MUSIC_solo_videos.json", seed=0)
    duet = read_music21(shared_data / "index/music21/MUSIC_duet_videos.json", seed=0)
    assert "flute" in solo.labels() and all(len(e.labels) == 1 for e in solo.entries)
    assert any(len(e.labels) == 2 for e in duet.entries)
    e = solo.entries[0]
    assert e.youtube_id and e.clip_id == f"{e.youtube_id}_{int(e.start):06d}"


def test_local_folder_csv(tmp_path: Path) -> None:
    (tmp_path / "index.csv").write_text("file,label,start,split\na.mp4,dog,0,train\nb c.mp4,cat,2.5,test\n"
                                        ",dog,0,train\nd.mp4,dog,-1,train\na.mp4,dog,0,train\n")
    ix = read_local(tmp_path)
    assert [e.clip_id for e in ix.entries] == ["a_000000", "b_c_000002"]
    assert ix.entries[1].local_name == str(tmp_path / "b c.mp4") and ix.entries[1].media_start == 2.5
    assert len(ix.bad_rows) == 3 and "duplicate" in ix.bad_rows[2].reason
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "index.csv").write_text("path,label\nx.mp4,dog\n")
    with pytest.raises(UserError, match="header lacks"):
        read_local(tmp_path / "bad")


def test_keywords_exact_case_synonym_and_suggestion(shared_data: Path) -> None:
    labels = read_vggsound(shared_data / "index/vggsound/test.csv").labels()
    groups = load_synonyms()
    assert resolve("playing piano", labels, groups).how == "exact"
    k = resolve("Playing_Piano", labels, groups)
    assert (k.label, k.how) == ("playing piano", "case")
    k = resolve("violin", labels, groups)
    assert (k.label, k.how) == ("playing violin, fiddle", "synonym")
    with pytest.raises(UserError, match="closest labels: 'playing piano'"):
        resolve("playing pianos", labels, groups)
    assert split_keywords("playing violin, fiddle;cello") == ["playing violin, fiddle", "cello"]
    # the same synonym group resolves to MUSIC-AVQA's own label
    avqa = read_music_avqa(shared_data / "index/music_avqa/avqa-test.json", 0).labels()
    assert resolve("playing piano", avqa, groups).label == "piano"
    assert [k.label for k in resolve_all(["piano", "Playing piano"], labels, groups)] == ["playing piano"]


def test_custom_synonyms_file(tmp_path: Path) -> None:
    p = tmp_path / "syn.toml"
    p.write_text('groups = [["moo", "cow lowing"]]\n')
    assert resolve("moo", {"cow lowing": 3}, load_synonyms(p)).label == "cow lowing"
    p.write_text("groups = [1, 2]\n")
    with pytest.raises(UserError, match="list of lists"):
        load_synonyms(p)


def test_sampling_is_deterministic_and_split_aware(shared_data: Path) -> None:
    ix = read_vggsound(shared_data / "index/vggsound/vggsound_test_rows.csv")
    groups = load_synonyms()
    kws = resolve_all(["cow lowing", "orchestra"], ix.labels(), groups)
    a = [t.clip_id for p in plan_keywords(ix, kws, "test", None, False, seed=0) for t in p.take(5, set())]
    b = [t.clip_id for p in plan_keywords(ix, kws, "test", None, False, seed=0) for t in p.take(5, set())]
    c = [t.clip_id for p in plan_keywords(ix, kws, "test", None, False, seed=1) for t in p.take(5, set())]
    assert a == b and a != c and len(set(a)) == 10
    # adding a keyword does not change what another one gets
    solo = [t.clip_id for p in plan_keywords(ix, kws[1:], "test", None, False, seed=0) for t in p.take(5, set())]
    assert solo == a[5:]
    with pytest.raises(UserError, match="no entries in split 'train'"):
        plan_keywords(ix, kws, "train", None, False, seed=0)
    avail = candidates(ix, "orchestra", None, shared_data / "media/vggsound", True, 0)
    assert [e.clip_id for e in avail] == ["nLKEdmVu3FY_000040"]
    mixes = plan_mixes(ix, [kws], 3, None, None, False, seed=0)
    assert len({m.clip_id for m in mixes}) == 3 and all(len(m.tiles) == 2 for m in mixes)
    firsts = [m.tiles[0].candidates[0].clip_id for m in mixes]
    assert len(set(firsts)) == 3  # clips of one spec do not share sources


def test_list_keywords_cli(shared_data: Path) -> None:
    from collection.cli import app

    r = CliRunner().invoke(app, ["/tmp/unused", "--source", "vggsound", "--index",
                                 str(shared_data / "index/vggsound/vggsound_excerpt.csv"), "--list-keywords"])
    assert r.exit_code == 0, r.output
    assert "labels," in r.output and "people marching" in r.output
    r = CliRunner().invoke(app, ["/tmp/unused", "--source", "nope", "--index", "x", "--list-keywords"])
    assert isinstance(r.exception, UserError) and "--source 'nope'" in str(r.exception)


def test_unknown_keyword_is_a_user_error(shared_data: Path, tmp_path: Path) -> None:
    from collection.cli import app

    r = CliRunner().invoke(app, [str(tmp_path / "root"), "--index", str(shared_data / "index/vggsound/test.csv"),
                                 "--keywords", "cow lowin"])
    assert isinstance(r.exception, UserError)
    assert "closest labels: 'cow lowing'" in str(r.exception)
    assert not (tmp_path / "root").exists()  # nothing created for a bad command


def test_avqa_index_json_error(tmp_path: Path) -> None:
    p = tmp_path / "q.json"
    p.write_text(json.dumps([{"video_id": "1", "templ_values": "[\"violin\"]"}, {"templ_values": "[]"}]))
    ix = read_music_avqa(p, seed=0)
    assert ix.kind == SourceKind.music_avqa and len(ix.entries) == 1 and len(ix.bad_rows) == 1
    p.write_text("{not json")
    with pytest.raises(UserError, match="invalid JSON"):
        read_music_avqa(p, seed=0)


@pytest.mark.parametrize("source", ["vggsound", "music_avqa", "music21", "local"])
def test_folder_as_index_says_so(tmp_path: Path, source: str) -> None:
    """A folder where an index file is expected says 'is a folder', not 'no such file'."""
    from collection.cli import app

    folder = tmp_path / "indexes"
    folder.mkdir()
    r = CliRunner().invoke(app, ["/tmp/unused", "--source", source, "--index", str(folder), "--list-keywords"])
    assert isinstance(r.exception, UserError), r.output
    assert f"--index {folder}: is a folder" in str(r.exception)
