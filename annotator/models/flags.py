"""The model flags shared by `ssu-annotate` and `ssu-refine`: one name, one help text, one default each.

Both commands describe their models with the same flags (`--sam`, `--sam2`, `--sam2-config`,
`--captioner`, `--detector`, `--audio-tagger`, `--device`, `--dtype`, `--offline/--online`) and turn them
into the same annotator.models.settings.ModelsConfig. A source flag either defaults to the strongest model of
its kind (ssu-annotate runs every model) or is off until given (ssu-refine: a tool whose model is off says so).
"""

from __future__ import annotations

from typing import Any

import typer

from annotator.models.settings import DEFAULTS, Device, DType, ModelKind, ModelsConfig, ModelSpec, Runtime

_SOURCE_HELP = {
    ModelKind.sam: "SAM: segment-anything .pth / folder (sam.json + sam.pth), or transformers SamModel",
    ModelKind.sam2: "SAM2: facebook/sam2.1-hiera-* id, .pt, or folder (.pt + .yaml)",
    ModelKind.captioner: "VLM region captioner: image-text-to-text model (LLaVA family), hub id or folder",
    ModelKind.detector: "zero-shot detector (OWLv2, Grounding DINO), hub id or folder",
    ModelKind.audio_tagger: "CLAP model or AudioSet classifier, hub id or folder",
}


def source(kind: ModelKind, off_by_default: bool = False) -> Any:
    """The `--sam`-style option of one model kind (default: DEFAULTS[kind], or None = off)."""
    if off_by_default:
        return typer.Option(None, kind.flag, help=f"{_SOURCE_HELP[kind]} (off when not given)")
    return typer.Option(DEFAULTS[kind], kind.flag, help=_SOURCE_HELP[kind])


SAM2_CONFIG = typer.Option(None, "--sam2-config", help="SAM2 config: packaged name (configs/sam2.1/...) or a yaml")
DEVICE = typer.Option(Device.auto, "--device", help="auto = cuda when available (CUDA_VISIBLE_DEVICES picks the GPU)")
DTYPE = typer.Option(DType.auto, "--dtype", help="auto = bfloat16 on cuda, float32 on cpu")


def offline(default: bool) -> Any:
    return typer.Option(default, "--offline/--online", help="never touch the network (also HF_HUB_OFFLINE=1)")


def models_config(sources: dict[ModelKind, str | None], sam2_config: str | None, device: Device, dtype: DType,
                  offline: bool) -> ModelsConfig:
    """The settings of all five kinds; a kind not in `sources` (or None) keeps its default source."""
    specs = {k.value: ModelSpec(source=sources.get(k) or DEFAULTS[k]) for k in ModelKind}
    specs["sam2"] = ModelSpec(source=specs["sam2"].source, config=sam2_config)
    return ModelsConfig(**specs, runtime=Runtime(device=device, dtype=dtype, offline=offline))
