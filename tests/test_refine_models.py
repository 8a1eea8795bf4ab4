"""ssu-refine tools through the real model loaders (annotator.models.loaders) with tiny random SAM / SAM2 / VLM.

Random weights say nothing about quality; these tests check the plumbing: the right model is called with
the right frame and prompts, its answer lands in the annotation with provenance, and the shared models
are reused (SAM embeds a frame once for several clicks).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_refine_support import make_users

from annotator.models.flags import models_config
from annotator.models.settings import Device, DType, ModelKind
from annotator.refine.auth import UserStore
from annotator.refine.controller import Controller, RefineConfig
from annotator.refine.frames import FrameStore
from annotator.refine.tool_models import ToolModels
from schemas import rle as rle_mod

CLIP = "synth_0_00000"


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    tiny = pytest.importorskip("tiny_models")
    root = tmp_path_factory.mktemp("tiny")
    sam = tiny.build_tiny_sam(root / "sam")
    sam2 = tiny.build_tiny_sam2(root / "sam2")
    vlm = tiny.build_tiny_captioner(root / "captioner")
    sources = {ModelKind.sam: str(sam), ModelKind.sam2: str(sam2), ModelKind.captioner: str(vlm)}
    return ToolModels.load(models_config(sources, None, Device.cpu, DType.auto, True), list(sources))


@pytest.fixture()
def ctl(synth_root_copy, tmp_path, tiny_models):
    c = Controller(synth_root_copy.path, UserStore(make_users(tmp_path / "users.toml")), tiny_models,
                   RefineConfig(), FrameStore(cap_mb=128))
    c.open_session("s", "alice")
    return c


@pytest.mark.slow
def test_tiny_sam_points_and_box(ctl):
    v = ctl.open_clip("s", CLIP)
    seg = ctl.models.segmenter
    calls = []
    orig = seg.predictor.set_image
    seg.predictor.set_image = lambda img: (calls.append(img.shape), orig(img))[1]
    before = ctl.root.read_annotation(CLIP).source(0).masks[0]
    v = ctl.sam_prompt("s", v.revision, 0, 0, [(300.0, 350.0, 1)])
    ann = ctl.root.read_annotation(CLIP)
    after = ann.source(0).masks[0]
    assert after != before  # SAM's answer replaced the exact synthetic mask
    assert ann.source(0).mask_by[0].by == "person:alice" and ann.source(0).mask_by[0].end == 1
    # the page sends all of the frame's prompts with each SAM call: a negative point, then a box
    prompts = [(300.0, 350.0, 1), (10.0, 10.0, 0)]
    v = ctl.sam_prompt("s", v.revision, 0, 0, prompts)
    ctl.sam_prompt("s", v.revision, 0, 0, prompts, [100.0, 100.0, 400.0, 420.0])
    assert calls == [(512, 512, 3)]  # one embedding for every prompt on this frame
    v = ctl.view("s")
    ctl.sam_prompt("s", v.revision, 1, 0, [(300.0, 350.0, 1)])
    assert len(calls) == 2


@pytest.mark.slow
def test_tiny_sam2_propagation_and_vlm(ctl):
    v = ctl.open_clip("s", CLIP)
    v = ctl.stroke("s", v.revision, 2, 0, [[256.0, 256.0]], 40)  # a seed mask drawn by hand
    v = ctl.propagate("s", v.revision, 2, 0, "both", 0, 5)
    ann = ctl.root.read_annotation(CLIP)
    src = ann.source(0)
    key = "refine:sam2:alice"
    assert ann.agents[key].name.endswith("sam2") and ann.agents[key].version
    owners = [next(sp.by for sp in src.mask_by if sp.start <= f < sp.end) for f in range(5)]
    assert owners[2] == "person:alice" and all(o == key for i, o in enumerate(owners) if i != 2)
    seed = rle_mod.decode(src.masks[2].model_dump())
    yy, xx = np.ogrid[:512, :512]
    assert np.array_equal(seed, seed | ((xx - 256) ** 2 + (yy - 256) ** 2 <= 40 ** 2))
    assert next(sp.by for sp in src.mask_by if sp.start <= 5 < sp.end) == "synth"  # outside the range
    v = ctl.regenerate_span("s", v.revision, 0, 0)
    ann = ctl.root.read_annotation(CLIP)
    span = ann.source(0).captions[0]
    assert span.by == "refine:vlm:alice" and span.text and ann.agents["refine:vlm:alice"].kind == "model"
