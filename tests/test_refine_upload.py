"""Uploads with the automatic draft (ssu-refine --draft): a real clip goes through collection's local ingest,
then through ssu-annotate's pipeline with tiny models whose outputs are forced (tests/tiny_models.py), and
enters the queue as a draft a refiner can start from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_refine_support import make_users
from tiny_models import build_forced_models

from annotator.draft.pipeline import AutoAnnotator, DraftModels, PipelineConfig
from annotator.refine import upload
from annotator.refine.model_adapters import Sam2Propagator, SamSegmenter, VlmCaptioner
from annotator.refine.tool_models import ToolModels
from schemas.models import ClipStatus
from schemas.root import DatasetRoot

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]
CLIP = "-0pJqpNjft4_000267.mp4"  # a real VGG-Sound clip (../shared/data/media/vggsound)


@pytest.mark.slow
def test_uploaded_clip_gets_the_automatic_draft(shared_data: Path, synth_root_copy, tmp_path: Path) -> None:
    settings = build_forced_models(tmp_path / "models").models_config(device="cpu", offline=True)
    cfg = PipelineConfig(gate=False, max_instances=1)  # the tiny audio tagger would gate every mask out
    loaded = DraftModels.load(settings, cfg)
    models = ToolModels(SamSegmenter(loaded.sam), Sam2Propagator(loaded.sam2), VlmCaptioner(loaded.captioner))
    draft = upload.AutoDraft(AutoAnnotator(loaded, cfg), models)  # as `ssu-refine --draft` builds it
    said: list[str] = []
    res = upload.ingest(synth_root_copy.path, [shared_data / "media" / "vggsound" / CLIP], "playing piano",
                        "rita", said.append, draft=draft)
    assert len(res) == 1 and res[0].ok, res
    assert "automatic draft" in res[0].reason
    root = DatasetRoot.open(synth_root_copy.path)
    ann = root.read_annotation(res[0].clip_id)
    assert ann.status == ClipStatus.auto and root.catalog.get(ann.clip_id).status == ClipStatus.auto
    assert ann.sources and ann.sources[0].category == "playing piano"
    src = ann.sources[0]
    assert sum(m is not None for m in src.masks) > 200  # SAM seeded, SAM2 tracked (forced tiny models)
    assert src.captions and any(a.kind == "model" for a in ann.agents.values())
    stages = [m for m in said if "automatic draft" in m]
    assert any("sam2" in m for m in stages) and any("caption" in m for m in stages)  # progress per stage
    # the same file again: a clip of that name exists, so it is refused with the reason, never dropped silently
    again = upload.ingest(synth_root_copy.path, [shared_data / "media" / "vggsound" / CLIP], "playing piano",
                          "rita", said.append, draft=draft)
    assert not again[0].ok and "already has a clip" in again[0].reason


def test_a_failing_draft_still_queues_the_clip(shared_data: Path, synth_root_copy) -> None:
    class Broken:
        def __call__(self, root, clip_id, progress):  # noqa: ANN001, ANN204 - stands in for AutoDraft
            raise RuntimeError("CUDA out of memory")

    res = upload.ingest(synth_root_copy.path, [shared_data / "media" / "vggsound" / CLIP], "playing piano",
                        "rita", draft=Broken())  # type: ignore[arg-type]
    assert res[0].ok and "automatic draft failed (RuntimeError: CUDA out of memory)" in res[0].reason
    ann = DatasetRoot.open(synth_root_copy.path).read_annotation(res[0].clip_id)
    assert ann.status == ClipStatus.auto and not ann.sources


@pytest.mark.slow
def test_draft_needs_all_five_models(synth_root, tmp_path: Path) -> None:
    users = make_users(tmp_path / "users.toml")
    out = subprocess.run([sys.executable, "-m", "annotator.refine.cli", "serve", str(synth_root.path), "--users",
                          str(users), "--draft", "--sam", str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "--draft" in out.stderr and "--detector" in out.stderr and "--audio-tagger" in out.stderr
