"""The one place annotation models load: SAM, SAM2 (video), VLM captioner, text-grounded detector, audio tagger.

Each model comes from a hub id or a local path (`ModelSpec.source`); offline mode (`--offline` or
HF_HUB_OFFLINE=1) never touches the network, and missing weights raise a UserError that names them and
says how to get them. Wrappers keep no per-video state: `VideoPropagator.propagate` builds a fresh SAM2
inference state per call (as sam2's video predictor does), so the refinement app can call it concurrently
with its own seeds. Heavy libraries are imported inside the functions.

    cfg = ModelsConfig(sam2=ModelSpec(source="/models/sam2"), runtime=Runtime(device=Device.cuda))
    prop = load_sam2_video(cfg)
    masks = prop.propagate(frames, seeds={45: {0: mask}}, direction=Direction.both)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import UserError

if TYPE_CHECKING:
    import torch

    from annotator.models_hf import AudioTagger, Detector, RegionCaptioner  # noqa: F401
    from annotator.sam2_video import VideoPropagator  # noqa: F401


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


def version_of(kind: ModelKind, source: str, lib: str) -> str:
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


def present(kind: ModelKind, spec: ModelSpec) -> bool:
    """Whether the weights are on this machine (local path exists, or the hub id is in the cache)."""
    if is_local(spec.source):
        return Path(spec.source).expanduser().exists()
    from huggingface_hub import try_to_load_from_cache

    fname = "config.json"
    if kind is ModelKind.sam2:
        from annotator.sam2_video import hub_files

        fname = hub_files(spec.source)[1] if hub_files(spec.source) else "config.json"
    return isinstance(try_to_load_from_cache(spec.source, fname, revision=spec.revision), str)


# -- SAM (image) ------------------------------------------------------------------------------------
@dataclass
class MaskResult:
    mask: np.ndarray   # (H, W) bool
    score: float       # the model's predicted IoU


def build_segment_anything(arch: dict[str, Any]):  # -> segment_anything.modeling.Sam
    """A segment-anything Sam of any size (sam.json describes it; the registry only knows vit_b/l/h)."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    size, patch, dim = int(arch["image_size"]), int(arch["vit_patch_size"]), int(arch["prompt_embed_dim"])
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=arch["encoder_depth"], embed_dim=arch["encoder_embed_dim"], img_size=size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=arch["encoder_num_heads"],
            patch_size=patch, qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=arch["encoder_global_attn_indexes"], window_size=14, out_chans=dim),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(size // patch, size // patch),
                                     input_image_size=(size, size), mask_in_chans=16),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(
            depth=2, embedding_dim=dim, mlp_dim=arch.get("decoder_mlp_dim", 2048), num_heads=8),
            transformer_dim=dim, iou_head_depth=3, iou_head_hidden_dim=256),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375]).eval()


class SamPredictorWrapper:
    """Point/box prompts on one image at a time. `set_image` then any number of `predict` calls."""

    def __init__(self, predict_fn: Callable[..., MaskResult], set_fn: Callable[[np.ndarray], None],
                 info: ModelInfo) -> None:
        self._predict, self._set, self.info = predict_fn, set_fn, info

    def set_image(self, frame: np.ndarray) -> None:
        """frame: (H, W, 3) uint8 RGB."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"set_image wants (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        self._set(frame)

    def predict(self, points: np.ndarray | None = None, labels: np.ndarray | None = None,
                box: np.ndarray | None = None, multimask: bool = True) -> MaskResult:
        """points (N, 2) xy pixels with labels (N,) 1 = object / 0 = background; box (4,) x0 y0 x1 y1.
        With multimask the best of SAM's three masks (by predicted IoU) is returned."""
        if points is None and box is None:
            raise ValueError("predict needs points or a box")
        return self._predict(points, labels, box, multimask)


def _sam_segment_anything(path: Path, spec: ModelSpec, rt: Runtime) -> SamPredictorWrapper:
    import torch
    from segment_anything import SamPredictor, sam_model_registry

    if path.is_dir():
        arch_file, weights = path / "sam.json", path / "sam.pth"
        if not (arch_file.is_file() and weights.is_file()):
            raise missing_weights(ModelKind.sam, spec.source, " (a folder needs sam.json + sam.pth, or "
                                                              "a transformers config.json)")
        sam = build_segment_anything(json.loads(arch_file.read_text()))
    else:
        kind = next((k for k in ("vit_h", "vit_l", "vit_b") if k in path.name), None)
        if kind is None:
            raise UserError(f"--sam {path}: cannot tell the model size from the file name; keep the official "
                            "name (sam_vit_h_4b8939.pth, ...) or use a folder with sam.json + sam.pth")
        sam, weights = sam_model_registry[kind](), path
    sam.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    dev = rt.torch_device()
    pred = SamPredictor(sam.to(dev).eval())
    autocast = dev.startswith("cuda") and rt.torch_dtype() != torch.float32

    def set_fn(frame: np.ndarray) -> None:
        with torch.inference_mode(), torch.autocast("cuda", dtype=rt.torch_dtype(), enabled=autocast):
            pred.set_image(frame)

    def predict_fn(points: Any, labels: Any, box: Any, multimask: bool) -> MaskResult:
        with torch.inference_mode(), torch.autocast("cuda", dtype=rt.torch_dtype(), enabled=autocast):
            masks, scores, _ = pred.predict(point_coords=points, point_labels=labels,
                                            box=None if box is None else np.asarray(box, float),
                                            multimask_output=multimask)
        i = int(np.argmax(scores))
        return MaskResult(mask=masks[i].astype(bool), score=float(scores[i]))

    return SamPredictorWrapper(predict_fn, set_fn, ModelInfo(ModelKind.sam, spec.source,
                                                             version_of(ModelKind.sam, spec.source,
                                                                        "segment-anything"),
                                                             "segment-anything"))


def _sam_transformers(spec: ModelSpec, rt: Runtime) -> SamPredictorWrapper:
    import torch
    from transformers import SamModel, SamProcessor

    kw = {"local_files_only": rt.is_offline() or is_local(spec.source), "revision": spec.revision}
    try:
        model = SamModel.from_pretrained(spec.source, **kw).to(rt.torch_device()).eval()
        proc = SamProcessor.from_pretrained(spec.source, **kw)
    except OSError as e:
        raise missing_weights(ModelKind.sam, spec.source, f" ({str(e).splitlines()[0][:120]})") from None
    state: dict[str, Any] = {}

    def set_fn(frame: np.ndarray) -> None:
        inputs = proc(images=frame, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            state["emb"] = model.get_image_embeddings(inputs["pixel_values"])
        state["frame"], state["inputs"] = frame, inputs

    def predict_fn(points: Any, labels: Any, box: Any, multimask: bool) -> MaskResult:
        if "emb" not in state:
            raise ValueError("call set_image before predict")
        kw2: dict[str, Any] = {}
        if points is not None:
            kw2["input_points"] = [[np.asarray(points, float).tolist()]]
            kw2["input_labels"] = [[np.asarray(labels, int).tolist()]]
        if box is not None:
            kw2["input_boxes"] = [[np.asarray(box, float).tolist()]]
        inputs = proc(images=state["frame"], return_tensors="pt", **kw2).to(model.device)
        inputs.pop("pixel_values", None)
        with torch.inference_mode():
            out = model(image_embeddings=state["emb"], multimask_output=multimask, **inputs)
        masks = proc.image_processor.post_process_masks(out.pred_masks.cpu(), inputs["original_sizes"].cpu(),
                                                        inputs["reshaped_input_sizes"].cpu())[0][0]
        scores = out.iou_scores[0, 0].float().cpu().numpy()
        i = int(np.argmax(scores))
        return MaskResult(mask=masks[i].numpy().astype(bool), score=float(scores[i]))

    return SamPredictorWrapper(predict_fn, set_fn, ModelInfo(ModelKind.sam, spec.source,
                                                             version_of(ModelKind.sam, spec.source,
                                                                        "transformers"),
                                                             "transformers:SamModel"))


def load_sam(cfg: ModelsConfig) -> SamPredictorWrapper:
    """segment-anything checkpoint (sam_vit_*.pth, or a folder with sam.json + sam.pth), or a transformers
    SamModel (hub id or folder with config.json)."""
    spec = cfg.sam
    if is_local(spec.source):
        p = local_path(ModelKind.sam, spec.source)
        if not (p.is_dir() and (p / "config.json").is_file()):
            return _sam_segment_anything(p, spec, cfg.runtime)
    return _sam_transformers(spec, cfg.runtime)


# -- the rest live in their own modules; re-exported so callers import from here only ----------------
def load_sam2_video(cfg: ModelsConfig, window: int = 64, offload: bool = True) -> VideoPropagator:
    from annotator.sam2_video import load_sam2_video as _load

    return _load(cfg.sam2, cfg.runtime, window=window, offload=offload)


def load_captioner(cfg: ModelsConfig, max_new_tokens: int = 32) -> RegionCaptioner:
    from annotator.models_hf import load_captioner as _load

    return _load(cfg.captioner, cfg.runtime, max_new_tokens=max_new_tokens)


def load_detector(cfg: ModelsConfig) -> Detector:
    from annotator.models_hf import load_detector as _load

    return _load(cfg.detector, cfg.runtime)


def load_audio_tagger(cfg: ModelsConfig) -> AudioTagger:
    from annotator.models_hf import load_audio_tagger as _load

    return _load(cfg.audio_tagger, cfg.runtime)
