"""The shared vocabulary of model settings (a leaf: imports nothing of annotator).

`ssu-annotate` and `ssu-refine` describe their models with these types and flags: one `ModelSpec` per
`ModelKind` (hub id or local path), one `Runtime` (device, dtype, offline), gathered in `ModelsConfig`.
The loaders (annotator.models.loaders, models_hf, sam2_video, sam_image) and the refinement app all import from
here, so the defaults below exist once. `ModelInfo` is what provenance records about a loaded model;
`is_local` / `missing_weights` / `version_of` resolve a source the same way for every model kind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import UserError

if TYPE_CHECKING:
    import torch

# Defaults shared by the loaders, the pipeline config and both CLIs.
SAM2_WINDOW = 64        # frames per SAM2 inference state (bounds memory; see sam2_video)
MAX_NEW_TOKENS = 32     # caption length limit of the VLM


class Direction(StrEnum):
    """Which way SAM2 propagates from its seeds."""

    forward = "forward"
    backward = "backward"
    both = "both"


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class DType(StrEnum):
    auto = "auto"          # bf16 on cuda, fp32 on cpu
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class ModelKind(StrEnum):
    sam = "sam"
    sam2 = "sam2"
    captioner = "captioner"
    detector = "detector"
    audio_tagger = "audio_tagger"

    @property
    def flag(self) -> str:
        return "--" + self.value.replace("_", "-")


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Runtime(_Cfg):
    device: Device = Device.auto
    dtype: DType = DType.auto
    offline: bool = False

    def torch_device(self) -> str:
        if self.device is Device.auto:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device.value

    def torch_dtype(self) -> torch.dtype:
        import torch

        if self.dtype is DType.auto:
            return torch.bfloat16 if self.torch_device().startswith("cuda") else torch.float32
        return getattr(torch, self.dtype.value)

    def is_offline(self) -> bool:
        return self.offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


class ModelSpec(_Cfg):
    source: str = Field(min_length=1, description="hub id (owner/name) or local file/folder")
    config: str | None = Field(None, description="SAM2 only: packaged config name or a local yaml")
    revision: str | None = None


# Defaults: the strongest openly downloadable models of each kind (GPU recommended).
DEFAULTS: dict[ModelKind, str] = {
    ModelKind.sam: "facebook/sam-vit-huge",
    ModelKind.sam2: "facebook/sam2.1-hiera-large",
    ModelKind.captioner: "llava-hf/llava-onevision-qwen2-7b-ov-hf",
    ModelKind.detector: "google/owlv2-large-patch14-ensemble",
    ModelKind.audio_tagger: "laion/clap-htsat-unfused",
}


class ModelsConfig(_Cfg):
    sam: ModelSpec = ModelSpec(source=DEFAULTS[ModelKind.sam])
    sam2: ModelSpec = ModelSpec(source=DEFAULTS[ModelKind.sam2])
    captioner: ModelSpec = ModelSpec(source=DEFAULTS[ModelKind.captioner])
    detector: ModelSpec = ModelSpec(source=DEFAULTS[ModelKind.detector])
    audio_tagger: ModelSpec = ModelSpec(source=DEFAULTS[ModelKind.audio_tagger])
    runtime: Runtime = Runtime()

    def spec(self, kind: ModelKind) -> ModelSpec:
        return getattr(self, kind.value)


@dataclass(frozen=True)
class ModelInfo:
    """What provenance records about a loaded model."""

    kind: ModelKind
    name: str        # hub id or local path
    version: str     # hub revision / local file size and library version
    backend: str     # e.g. "segment-anything", "transformers:LlavaForConditionalGeneration"


# -- resolving sources ------------------------------------------------------------------------------
def is_local(source: str) -> bool:
    """A path (exists, or looks like one) rather than a hub id `owner/name`."""
    p = Path(source).expanduser()
    return p.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1


def missing_weights(kind: ModelKind, source: str, why: str = "") -> UserError:
    if is_local(source):
        return UserError(f"{kind.flag} {source}: no such model file or folder{why}; download the weights on a "
                         f"machine with network and pass {kind.flag} /path/to/them")
    return UserError(f"{kind.flag} {source}: weights are not in the local Hugging Face cache{why}; on a machine "
                     f"with network run `huggingface-cli download {source} --local-dir <dir>`, copy <dir> "
                     f"here and pass {kind.flag} <dir>")


def local_path(kind: ModelKind, source: str) -> Path:
    p = Path(source).expanduser()
    if not p.exists():
        raise missing_weights(kind, source)
    return p


def version_of(source: str, lib: str) -> str:
    """Hub: the cached snapshot's commit; local: the weights' total size (cheap, changes with the weights)."""
    from importlib.metadata import version

    libv = f"{lib} {version(lib)}"
    if is_local(source):
        p = Path(source).expanduser()
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        return f"local {sum(f.stat().st_size for f in files)} bytes; {libv}"
    try:
        from huggingface_hub import snapshot_download

        snap = snapshot_download(source, local_files_only=True)
        return f"{Path(snap).name}; {libv}"
    except Exception:  # revision unknown offline: still record the library
        return libv
