"""The one place annotation models load: SAM, SAM2 (video), VLM captioner, text-grounded detector, audio tagger.

This module is the front door: callers import the loaders from here, and the settings types from
annotator.models.settings (re-exported here too). Each model comes from a hub id or a local path
(`ModelSpec.source`); offline mode (`--offline` or HF_HUB_OFFLINE=1) never touches the network, and
missing weights raise a UserError that names them and says how to get them. Wrappers keep no per-video
state: `VideoPropagator.propagate` builds a fresh SAM2 inference state per call (as sam2's video predictor
does), so the refinement app can call it concurrently with its own seeds. Heavy libraries are imported
inside the functions of the loader modules (sam_image, sam2_video, models_hf).

    cfg = ModelsConfig(sam2=ModelSpec(source="/models/sam2"), runtime=Runtime(device=Device.cuda))
    prop = load_sam2_video(cfg)
    masks = prop.propagate(frames, seeds={45: {0: mask}}, direction=Direction.both)
"""

from __future__ import annotations

from pathlib import Path

from annotator.models import hf, sam2_video, sam_image
from annotator.models.hf import AudioTagger, Detector, RegionCaptioner
from annotator.models.sam2_video import VideoPropagator
from annotator.models.sam_image import MaskResult, SamPredictorWrapper, build_segment_anything
from annotator.models.settings import (
    DEFAULTS,
    MAX_NEW_TOKENS,
    SAM2_WINDOW,
    Device,
    Direction,
    DType,
    ModelInfo,
    ModelKind,
    ModelsConfig,
    ModelSpec,
    Runtime,
    is_local,
    missing_weights,
)

__all__ = [
    "DEFAULTS", "MAX_NEW_TOKENS", "SAM2_WINDOW", "AudioTagger", "DType", "Detector", "Device", "Direction",
    "MaskResult", "ModelInfo", "ModelKind", "ModelSpec", "ModelsConfig", "RegionCaptioner", "Runtime",
    "SamPredictorWrapper", "VideoPropagator", "build_segment_anything", "is_local", "load_audio_tagger",
    "load_captioner", "load_detector", "load_sam", "load_sam2_video", "missing_weights", "present",
]


def present(kind: ModelKind, spec: ModelSpec) -> bool:
    """Whether the weights are on this machine (local path exists, or the hub id is in the cache)."""
    if is_local(spec.source):
        return Path(spec.source).expanduser().exists()
    from huggingface_hub import try_to_load_from_cache

    files = sam2_video.hub_files(spec.source) if kind is ModelKind.sam2 else None
    fname = files[1] if files else "config.json"
    return isinstance(try_to_load_from_cache(spec.source, fname, revision=spec.revision), str)


def load_sam(cfg: ModelsConfig) -> SamPredictorWrapper:
    return sam_image.load_sam(cfg.sam, cfg.runtime)


def load_sam2_video(cfg: ModelsConfig, window: int = SAM2_WINDOW, offload: bool = True) -> VideoPropagator:
    return sam2_video.load_sam2_video(cfg.sam2, cfg.runtime, window=window, offload=offload)


def load_captioner(cfg: ModelsConfig, max_new_tokens: int = MAX_NEW_TOKENS) -> RegionCaptioner:
    return hf.load_captioner(cfg.captioner, cfg.runtime, max_new_tokens=max_new_tokens)


def load_detector(cfg: ModelsConfig) -> Detector:
    return hf.load_detector(cfg.detector, cfg.runtime)


def load_audio_tagger(cfg: ModelsConfig) -> AudioTagger:
    return hf.load_audio_tagger(cfg.audio_tagger, cfg.runtime)
