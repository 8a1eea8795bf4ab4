"""Dataset card (numbers equal ssu-validate's, plots render) and Croissant read back with mlcroissant."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from annotator.export.cli import app
from annotator.export.stats import compute
from schemas import rle as rle_mod
from schemas.cli import app as validate_app


def test_card_matches_validate_and_renders(synth_root, tmp_path: Path) -> None:
    from huggingface_hub import DatasetCard

    out = tmp_path / "out"
    for cmd in ("hf", "card"):
        res = CliRunner().invoke(app, [cmd, str(synth_root.path), "--out", str(out), "--status", "auto"])
        assert res.exit_code == 0, res.output
    res = CliRunner().invoke(validate_app, [str(synth_root.path), "--no-media", "--json"])
    v = json.loads(res.output)["stats"]
    text = (out / "README.md").read_text()
    # the root table repeats ssu-validate's counts line for line
    assert f"| clips | {v['clips']} ({v['failed']} failed in collection) |" in text
    assert f"| annotations | {v['annotations']} |" in text
    assert "| categories | " + ", ".join(f"{k} {n}" for k, n in v["categories"].items()) + " |" in text
    assert "| splits | " + ", ".join(f"{k} {n}" for k, n in v["splits"].items()) + " |" in text
    stats = json.loads((out / "stats.json").read_text())
    assert stats["root"] == v
    # exported-clip statistics, recomputed here from the annotations
    anns = [synth_root.read_annotation(c) for ids in synth_root.splits().values() for c in ids]
    assert stats["clips"] == len(anns) == 6 and stats["frames"] == 1800
    for cat, n in v["categories"].items():
        assert f"| {cat} | {n} | " in text
    texts = [c.text for a in anns for s in a.sources for c in s.captions]
    assert stats["caption_spans"] == len(texts)
    assert stats["vocabulary"] == len({w for t in texts for w in t.lower().split()})
    assert stats["sources_per_clip"] == {str(k): sum(len(a.sources) == k for a in anns) for k in (2, 3)
                                         if any(len(a.sources) == k for a in anns)}
    area0 = rle_mod.area(anns[0].semantic_rle(0)) / 512**2
    assert stats["mask_area"]["min"] <= area0 <= stats["mask_area"]["max"]
    assert "| program | ra-ssu synth | 1.0 | 6 |" in text  # provenance from Annotation.agents
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "cc0-1.0" and card.data.size_categories == ["n<1K"]
    assert "image-segmentation" in card.data.task_categories
    assert card.data.configs[0]["data_files"][0] == {"split": "train", "path": "data/train-*.parquet"}
    for name in ("categories", "mask_area", "caption_length", "sources_per_clip"):
        png = out / "figures" / f"{name}.png"
        assert f"(figures/{name}.png)" in text
        img = np.asarray(Image.open(png).convert("L"))
        assert img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 10  # not blank


def test_croissant_round_trip(synth_root, tmp_path: Path) -> None:
    import mlcroissant as mlc

    res = CliRunner().invoke(app, ["croissant", str(synth_root.path), "--out", str(tmp_path), "--status", "auto"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "croissant.json"
    doc = json.loads(path.read_text())
    assert doc["conformsTo"].startswith("http://mlcommons.org/croissant/")
    assert all(f["sha256"] and f["contentUrl"] and f["encodingFormat"] for f in doc["distribution"])
    cli = subprocess.run([str(Path(sys.executable).parent / "mlcroissant"), "validate", "--jsonld", str(path)],
                         capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr[-2000:]
    ds = mlc.Dataset(jsonld=str(path))

    def s(v: object) -> str:
        return v.decode() if isinstance(v, bytes) else "" if v is None or v != v else str(v)  # NaN: empty cell

    clips = {s(r["clips/clip_id"]): r for r in ds.records("clips")}
    assert {c: s(r["clips/split"]) for c, r in clips.items()} == {
        c: k.value for k, ids in synth_root.splits().items() for c in ids}
    for c, r in clips.items():
        # the clips table points into the release (OUT/clips), where `croissant` put the same bytes
        assert (tmp_path / s(r["clips/video"])).read_bytes() == synth_root.clip_path(c).read_bytes()
        assert (tmp_path / s(r["clips/audio"])).read_bytes() == synth_root.audio_path(c).read_bytes()
    frames = list(ds.records("frames"))
    assert len(frames) == 6 * 300
    anns = {c: synth_root.read_annotation(c) for c in clips}
    caps = {c: a.frame_captions() for c, a in anns.items()}
    for r in frames[::7]:
        c, f = s(r["frames/clip_id"]), int(r["frames/frame"])
        assert s(r["frames/caption"]) == caps[c][f]
        got = rle_mod.decode({"size": [512, 512], "counts": s(r["frames/mask"])})
        assert np.array_equal(got, rle_mod.decode(anns[c].semantic_rle(f)))
        assert int(r["frames/area"]) == int(got.sum())
    # a table changed after export no longer matches its sha256: reading it fails
    csv = tmp_path / "metadata" / "sources.csv"
    csv.write_text(csv.read_text() + "x,9,y,z\n")
    with pytest.raises(mlc.GenerationError):
        list(mlc.Dataset(jsonld=str(path)).records("sources"))


def test_stats_count_what_people_changed(synth_root_copy) -> None:
    from annotator.export.common import select
    from annotator.export.stats import compute
    from schemas.models import Agent, AgentKind, ClipStatus

    root = synth_root_copy
    cid = root.splits()[next(iter(root.splits()))][0]
    ann = root.read_annotation(cid)
    ann.agents["ann"] = Agent(kind=AgentKind.person, name="ann")
    src = ann.sources[0]
    present = [f for f in range(30) if src.masks[f] is not None]
    src.set_masks(list(src.masks[:30]), by="ann", frames=range(0, 30))
    caps = src.frame_captions()
    caps[:30] = ["a person's caption"] * 30
    src.set_frame_captions(caps, by="ann")  # all spans now by "ann"
    root.write_annotation(ann, actor="ann")
    root.catalog.audit(cid, "ann", "edit", {"x": 1}, {"x": 2})
    st = compute(select(root, {ClipStatus.auto}))
    assert st.people["clips_changed_by_people"] == 1
    assert st.people["mask_frames_by_people"] == len(present)
    assert st.people["caption_spans_by_people"] == len(src.captions)
    assert st.people["edits"] == 1 and st.people["editors"] == 1
    assert {"kind": "person", "name": "ann", "version": None, "clips": 1} in st.agents


def test_card_text_follows_the_recorded_agents(synth_root) -> None:
    """A program's exact ground truth is not 'drafted by models'; models and people are named when recorded."""
    from annotator.export.card import bias_text, provenance_sections
    from annotator.export.common import select
    from schemas.models import ClipStatus

    st = compute(select(synth_root, {ClipStatus.auto}))
    assert {a["kind"] for a in st.agents} == {"program"}
    text = bias_text(st) + " ".join(provenance_sections(st).values())
    assert "drafted by models" not in text and "exact by construction" in text
    assert "procedurally generated" in text and "`ra-ssu synth 1.0`" in text
    st.agents = [{"kind": "model", "name": "facebook/sam2.1-hiera-tiny", "version": "main", "clips": 6},
                 {"kind": "person", "name": "ann", "version": None, "clips": 2}]
    text = bias_text(st)
    assert "drafted by models (`facebook/sam2.1-hiera-tiny main`)" in text and "exact by construction" not in text
    sections = provenance_sections(st)
    assert sections["annotation_process_section"].startswith(
        "Models (`facebook/sam2.1-hiera-tiny main`) drafted masks and captions automatically")
    assert "1 person refined them" in sections["annotation_process_section"]
