"""ssu-annotate end to end with tiny random models on a real normalized clip and on the synthetic source.

Random models make random masks and captions: the tests check structure, provenance, resumability and the
audio gate (whose truth the synthetic source knows), never the content of a mask or caption.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import session_tiny_models

from annotator.draft.cli import main
from annotator.draft.pipeline import DraftModels, PipelineConfig, plan_sources
from annotator.draft.runner import run
from annotator.models.loaders import ModelInfo, ModelKind
from schemas.constants import FPS, NUM_FRAMES, SECONDS, SIZE
from schemas.models import CatalogRow, Category, ClipStatus, Manifest, Origin, Region
from schemas.root import DatasetRoot
from schemas.validate import validate_root

PIANO = "M1pPtg6a_g8_000230"
AGENTS = {"detector", "sam", "sam2", "audio_tagger", "captioner", "ssu-annotate"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _flags() -> list[str]:
    p = session_tiny_models()
    return ["--sam", str(p.sam), "--sam2", str(p.sam2), "--captioner", str(p.captioner), "--detector",
            str(p.detector), "--audio-tagger", str(p.audio_tagger), "--device", "cpu", "--offline"]


@pytest.fixture(scope="module")
def real_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from collection.normalize import NormalizeOptions, normalize_clip

    path = tmp_path_factory.mktemp("annot") / "root"
    root = DatasetRoot.create(path, Manifest(name="piano", categories=[Category(name="playing piano")]))
    src = shared_data / "media" / "vggsound" / f"{PIANO}.mp4"
    res = normalize_clip(src, 0.0, root.clip_path(PIANO), root.audio_path(PIANO), NormalizeOptions())
    root.catalog.upsert(CatalogRow(clip_id=PIANO, origin=Origin.vggsound, category="playing piano",
                                   keywords=["playing piano", "piano"], youtube_id=PIANO[:11],
                                   transform=res.transform))
    root.close()
    return path


def _exit_code(args: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        main(args)
    return int(e.value.code or 0)


@pytest.mark.slow
def test_end_to_end_real_clip_rerun_skips_force_redoes(real_root: Path, capsys: pytest.CaptureFixture) -> None:
    assert _exit_code(["run", str(real_root), *_flags(), "--caption-every", "60", "--max-instances", "1"]) == 0
    out = capsys.readouterr().out
    assert "annotated 1," in out and "failed 0" in out
    report = validate_root(real_root, media=True)
    assert report.ok, report.problems
    root = DatasetRoot.open(real_root)
    ann = root.read_annotation(PIANO)
    assert ann.status is ClipStatus.auto and root.catalog.get(PIANO).status is ClipStatus.auto
    assert ann.sources and set(ann.agents) == AGENTS
    for a in ann.agents.values():
        assert a.name and a.version
    assert ann.agents["captioner"].prompt and "{category}" in ann.agents["captioner"].prompt
    for s in ann.sources:
        assert s.category == "playing piano" and len(s.masks) == NUM_FRAMES
        caps = s.frame_captions()
        assert len(caps) == NUM_FRAMES
        # captions exactly where a mask is (gated frames have neither), mask producers cover all frames
        assert all((c is not None) == (m is not None) for c, m in zip(caps, s.masks, strict=True) if c or m) or \
            all(c is None for c in caps)
        assert sum(sp.end - sp.start for sp in s.mask_by) == NUM_FRAMES
        params = ann.agents["audio_tagger"].params
        scores = [float(x) for x in str(params[f"src{s.id}.scores"]).split(",")]
        assert len(scores) == SECONDS
        heard = params[f"src{s.id}.sounding"]
        for sec, flag in enumerate(str(heard)):
            if flag == "0":
                assert all(m is None for m in s.masks[sec * FPS:(sec + 1) * FPS])
        assert f"src{s.id}.box" in ann.agents["detector"].params
    first = ann.updated_at
    root.close()

    assert _exit_code(["run", str(real_root), *_flags()]) == 0
    assert "annotated 0, skipped 1" in capsys.readouterr().out
    assert DatasetRoot.open(real_root).read_annotation(PIANO).updated_at == first

    assert _exit_code([str(real_root), *_flags(), "--force", "--no-gate", "--caption-every", "150",
                       "--max-instances", "1"]) == 0
    assert "annotated 1," in capsys.readouterr().out
    redone = DatasetRoot.open(real_root).read_annotation(PIANO)
    assert redone.updated_at > first and redone.agents["audio_tagger"].params["gate"] is False
    for s in redone.sources:  # ungated: every frame's mask comes from SAM (seed) or SAM2, none from the gate
        owners = {sp.by for sp in s.mask_by}
        assert owners <= {"sam", "sam2"} and "sam2" in owners
        caps = s.frame_captions()
        # a caption on exactly the masked frames of each captioned 150-frame stretch
        for a in (0, 150):
            masked = [f for f in range(a, a + 150) if s.masks[f] is not None]
            if masked and caps[masked[0]] is not None:
                assert all((caps[f] is not None) == (s.masks[f] is not None) for f in range(a, a + 150))


class BandTagger:
    """Test double of the tagger interface: energy in each synthetic shape's frequency band per second
    (the synthetic source gives every shape its own band). Never shipped: real runs use CLAP or AST."""

    info = ModelInfo(ModelKind.audio_tagger, "test-band-energy", "0", "test")

    def scores(self, wav: np.ndarray, sr: int, labels: list[str]) -> np.ndarray:
        from collection.synth import SHAPES, Shape

        out = np.zeros((SECONDS, len(labels)), np.float32)
        for s in range(SECONDS):
            spec = np.abs(np.fft.rfft(wav[s * sr:(s + 1) * sr])) ** 2
            freqs = np.fft.rfftfreq(sr, 1 / sr)
            for j, lab in enumerate(labels):
                lo, hi = SHAPES[Shape(lab)].band
                band = spec[(freqs >= lo) & (freqs <= hi)].sum() / (spec.sum() + 1e-9)
                out[s, j] = min(1.0, 10 * band)
        return out

    def params(self) -> dict[str, str]:
        return {"kind": "band energy test double"}


@pytest.mark.slow
def test_audio_gate_on_synthetic_truth(synth_root_copy: DatasetRoot) -> None:
    root = synth_root_copy
    cid = root.clip_ids()[0]
    truth = root.read_annotation(cid)
    root.annotation_path(cid).unlink()
    root.catalog.set_status(cid, ClipStatus.collected, "test")
    cfg = session_tiny_models().models_config(device="cpu", offline=True)
    pcfg = PipelineConfig(audio_threshold=0.5, caption_every=150, sam2_window=150)
    base = DraftModels.load(cfg, pcfg)
    loaded = DraftModels(base.sam, base.sam2, base.captioner, base.detector, BandTagger())
    summary = run(root.path, cfg, pcfg, clips=[cid], progress=False, loaded=loaded)
    assert summary.done == [cid], summary.failed
    ann = DatasetRoot.open(root.path).read_annotation(cid)
    want = {s.category: "".join("1" if s.masks[sec * FPS] is not None else "0" for sec in range(SECONDS))
            for s in truth.sources}
    assert {s.category for s in ann.sources} == set(want)  # one track per keyword (shape) of the clip
    params = ann.agents["audio_tagger"].params
    for s in ann.sources:
        assert params[f"src{s.id}.sounding"] == want[s.category]
        for sec in range(SECONDS):
            if want[s.category][sec] == "0":
                assert all(m is None for m in s.masks[sec * FPS:(sec + 1) * FPS])


def test_plan_sources_regions_and_keywords() -> None:
    mix = CatalogRow(clip_id="m", origin=Origin.mix, category="piano", keywords=["piano", "dog"],
                     regions=[Region(x=0, y=0, w=256, h=512, keyword="piano", source_clip="a"),
                              Region(x=256, y=0, w=256, h=512, keyword="dog", source_clip="b")])
    plans = plan_sources(mix, ["piano", "dog"])
    assert [(p.category, p.region) for p in plans] == [("piano", (0, 0, 256, 512)), ("dog", (256, 0, 256, 512))]
    single = CatalogRow(clip_id="s", origin=Origin.vggsound, category="playing piano", keywords=["piano"])
    (p,) = plan_sources(single, ["playing piano"])
    assert p.category == "playing piano" and p.queries == ["piano", "playing piano"] and p.region is None


def test_gate_stage_alone_keeps_masks_in_heard_seconds() -> None:
    """A stage runs on its own inputs (no models): masks stay in the seconds whose score passes, the seed frame
    is SAM's, tracked frames SAM2's, silent seconds the tagger's; provenance records the scores."""
    from annotator.draft.pipeline import AutoAnnotator, FoundSources, SourcePlan
    from schemas.models import SoundSource

    src = SoundSource(id=0, category="dog", name="dog", masks=[None] * NUM_FRAMES)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[20:50, 20:50] = True
    found = FoundSources(sources=[src], plans={0: SourcePlan("dog", ["dog"])}, seeds={45: {0: mask}})
    tracked = {f: {0: mask} for f in range(NUM_FRAMES)}
    scores = np.zeros((SECONDS, 1), np.float32)
    scores[1:3, 0] = 0.9  # heard in seconds 1 and 2 only
    params = AutoAnnotator(None, PipelineConfig(audio_threshold=0.5), {}).gate(found, tracked, scores, ["dog"])
    assert params["src0.sounding"] == "0110000000"
    kept = [f for f, m in enumerate(src.masks) if m is not None]
    assert kept == list(range(FPS, 3 * FPS))
    owners = {(sp.start, sp.end): sp.by for sp in src.mask_by}
    assert owners[(45, 46)] == "sam" and owners[(30, 45)] == "sam2" and owners[(0, 30)] == "audio_tagger"
