"""ssu-annotate --ray on a local Ray: actors load the tiny models, a broken clip comes back as a failure with
its reason, an annotated clip is skipped, and Ray is shut down. Kept short: the full pipeline per clip is
covered in test_annotate_pipeline.py (the actors run the same code)."""

from __future__ import annotations

import os

import pytest
from tiny_models import session_tiny_models

from annotator.draft.pipeline import PipelineConfig
from annotator.draft.runner import run
from schemas.models import ClipStatus
from schemas.root import DatasetRoot


@pytest.mark.slow
def test_ray_reports_failures_and_skips(synth_root_copy: DatasetRoot) -> None:
    pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    root = synth_root_copy
    broken, done = root.clip_ids()[:2]
    root.annotation_path(broken).unlink()
    root.catalog.set_status(broken, ClipStatus.collected, "test")
    root.audio_path(broken).unlink()  # the pipeline must fail on it with a reason, not crash the run
    cfg = session_tiny_models().models_config(device="cpu", offline=True)
    summary = run(root.path, cfg, PipelineConfig(), clips=[broken, done], progress=False, ray_address="local",
                  ray_workers=1, ray_init={"num_cpus": 2, "object_store_memory": 80 * 2**20,
                                           "include_dashboard": False})
    assert summary.skipped == [done] and summary.done == []
    assert list(summary.failed) == [broken]
    assert "UserError" in summary.failed[broken] and f"{broken}.wav" in summary.failed[broken]
    assert any("failed" in line and broken in line for line in summary.lines())
    import ray

    assert not ray.is_initialized()
