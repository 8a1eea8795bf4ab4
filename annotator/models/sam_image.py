"""SAM on single images (point/box prompts): a segment-anything checkpoint or a transformers SamModel.

Load through annotator.models.load_sam. `build_segment_anything` builds a Sam of any size from the
architecture numbers in a folder's sam.json (segment-anything's registry only knows vit_b/l/h).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from annotator.models.settings import (
    ModelInfo,
    ModelKind,
    ModelSpec,
    Runtime,
    is_local,
    local_path,
    missing_weights,
    version_of,
)
from schemas.errors import UserError

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


@dataclass
class MaskResult:
    mask: np.ndarray   # (H, W) bool
    score: float       # the model's predicted IoU


def build_segment_anything(arch: dict[str, Any]) -> Sam:
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
                                                             version_of(spec.source, "segment-anything"),
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
                                                             version_of(spec.source, "transformers"),
                                                             "transformers:SamModel"))


def load_sam(spec: ModelSpec, rt: Runtime) -> SamPredictorWrapper:
    """segment-anything checkpoint (sam_vit_*.pth, or a folder with sam.json + sam.pth), or a transformers
    SamModel (hub id or folder with config.json)."""
    if is_local(spec.source):
        p = local_path(ModelKind.sam, spec.source)
        if not (p.is_dir() and (p / "config.json").is_file()):
            return _sam_segment_anything(p, spec, rt)
    return _sam_transformers(spec, rt)
