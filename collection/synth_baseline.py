"""The "union of all objects" baseline of a synthetic root, written as predictions in the annotation format.

A model that finds the objects but ignores the sound can do no better than predicting every object in
every frame. Only the synthetic source knows every object's visible pixels (its annotations hold masks
only where an object sounds), so the baseline is rendered here from each clip's spec and handed to
others as files (`ssu-synth ROOT --union-baseline OUT`), which `ssu-eval --predictions OUT` scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collection.synth import background, clip_spec, render_second
from schemas import atomic
from schemas import rle as rle_mod
from schemas.constants import NUM_FRAMES, SECONDS
from schemas.errors import UserError
from schemas.models import Agent, AgentKind, Annotation, ClipStatus, SoundSource
from schemas.root import DatasetRoot


def visible_masks(seed: int, index: int) -> np.ndarray:
    """(300, 512, 512) bool: every object's visible pixels in every frame, sounding or not."""

    spec = clip_spec(seed, index)
    tex, speed = background(spec)
    centres = [o.centres() for o in spec.objects]
    return np.concatenate([np.asarray(render_second(spec, s, tex, speed, centres)[1] >= 0) for s in range(SECONDS)])


def write_union_baseline(root_path: Path, out: Path, split: str, caption: str | None = None,
                         progress: bool = True) -> list[Path]:
    """One annotation per clip of `split` in out/annotations/: one source = all objects, `caption` on every frame."""
    from tqdm import tqdm

    root = DatasetRoot.open(root_path)
    written = []
    agent = Agent(kind=AgentKind.program, name="ra-ssu synth union baseline", version="1",
                  params={"masks": "union of all objects", "caption": caption})
    for clip_id in tqdm(root.read_split(split), desc="union baseline", unit="clip", disable=not progress):
        path = out / "annotations" / f"{clip_id}.json"
        written.append(path)
        if path.is_file():
            continue  # resumable
        agents = root.read_annotation(clip_id).agents
        params = next(iter(agents.values())).params if agents else {}
        if "seed" not in params or "index" not in params:
            raise UserError(f"{root.annotation_path(clip_id)}: no synth seed/index; the union baseline needs a root "
                            "made by ssu-synth")
        masks = visible_masks(int(params["seed"]), int(params["index"]))  # type: ignore[arg-type]
        src = SoundSource(id=0, category="sounding", name="all objects", masks=[None] * NUM_FRAMES)
        src.set_masks(rle_mod.encode_many(masks), by="baseline")  # type: ignore[arg-type]
        if caption:
            src.set_frame_captions([caption] * NUM_FRAMES, by="baseline")
        ann = Annotation(clip_id=clip_id, status=ClipStatus.auto, sources=[src], agents={"baseline": agent})
        atomic.write_text(path, ann.model_dump_json() + "\n")
    root.close()
    return written
