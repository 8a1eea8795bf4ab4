"""Typed configuration of SSUFormer and its trainer.

YAML files in ssuformer/configs/ supply values; `extends: <name>` deep-merges a file over another one;
unknown keys are errors; `--set a.b=value` overrides (value parsed as YAML) apply last.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.errors import UserError

CONFIG_DIR = Path(__file__).parent / "configs"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TextLoss(StrEnum):
    focal = "focal"
    ce = "ce"


class ScoreTarget(StrEnum):
    """What an instance query's sounding score is trained towards (loss.score_target)."""

    matched = "matched"  # 1 for the query Hungarian matching picked, 0 for the rest (MaskFormer)
    iou = "iou"          # the IoU of the query's mask with the sounding source it covers best (duplicates too)


class Optimizer(StrEnum):
    adam = "adam"
    adamw = "adamw"


class Schedule(StrEnum):
    constant = "constant"
    cosine = "cosine"


class Precision(StrEnum):
    auto = "auto"  # on a GPU: bf16 where it is native (compute capability >= 8.0), else fp16 + GradScaler
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


WEIGHTS_HELP = ("pretrained (the paper's checkpoint), none (random init, on purpose), a local file, "
                "hf-hub:OWNER/REPO[/FILE] or an https URL (see ssuformer/weights.py)")


def _weights_none(v: object) -> object:
    return "none" if v is None else v  # YAML null reads as the explicit opt-out, and is saved as `none`


class AudioEncoderConfig(_Strict):
    """VGGish (torchvggish network, pretrained on AudioSet) or a tiny random CNN with the same shapes."""

    tiny: bool = False
    weights: str = Field("pretrained", description=WEIGHTS_HELP)
    freeze: bool = False
    tiny_channels: list[int] = Field(default_factory=lambda: [8, 16])

    _none = field_validator("weights", mode="before")(_weights_none)

    @model_validator(mode="after")
    def _tiny_random(self) -> AudioEncoderConfig:
        if self.tiny and self.weights == "pretrained":
            raise ValueError("model.audio.tiny builds a small random CNN: set model.audio.weights=none")
        return self


class VisualEncoderConfig(_Strict):
    """PVT-v2 from timm (pvt_v2_b0..b5), multi-scale features (strides 4, 8, 16, 32)."""

    arch: str = "pvt_v2_b5"
    weights: str = Field("pretrained", description=WEIGHTS_HELP + "; pretrained = hf-hub:timm/<arch>.in1k")
    freeze: bool = False
    # A tiny PVT-v2 with these stage widths/depths instead of `arch` (random weights, for tests and CPU runs).
    tiny_dims: list[int] | None = None
    tiny_depths: list[int] | None = None

    _none = field_validator("weights", mode="before")(_weights_none)

    @model_validator(mode="after")
    def _tiny_random(self) -> VisualEncoderConfig:
        if self.tiny_dims is not None and self.weights == "pretrained":
            raise ValueError("model.visual.tiny_dims builds a small PVT-v2 no checkpoint fits: "
                             "set model.visual.weights=none (or a file of that shape)")
        return self


class RegionFeatures(StrEnum):
    maskclip = "maskclip"  # MaskCLIP: dense patch features (value path of the last block) pooled over the mask
    pooled = "pooled"      # plain CLIP: the pooled image embedding of the frame multiplied by the soft mask


class ClipConfig(_Strict):
    """The frozen CLIP used by MCM (visual tokens of the masked frame) and RCC (eq. 5)."""

    name_or_path: str = "openai/clip-vit-base-patch16"
    tiny: bool = False  # build a random tiny CLIP in-process (vocab mapped 1:1 to ours)
    tiny_hidden: int = 32
    tiny_image_size: int = 32
    tiny_patch: int = 8
    tiny_weights: str | None = Field(None, description="the tiny CLIP's weights from `ssu-bench pretrain-clip` "
                                     "(clip.pt); none: random")
    region: RegionFeatures = Field(RegionFeatures.maskclip, description="RCC's image side (eq. 5)")


class ExpertConfig(_Strict):
    """The frozen LLaVA-family expert of MoHE; its features are cached by `ssu-train cache-expert`."""

    name_or_path: str = "llava-hf/llava-1.5-7b-hf"
    prompt: str = "USER: <image>\nDescribe the object that makes the sound in this frame. ASSISTANT:"
    layers: list[int] = Field(default_factory=lambda: [-1, -8], description="hidden layers = prompt levels")
    tokens: int = Field(16, ge=1, description="expert tokens kept per frame and level (adaptive pooling)")
    dim: int | None = Field(None, description="expert hidden size; read from the cache when null")
    cache: str | None = Field(None, description="cache folder; default <root>/.cache/expert-<hash>")


class ModelConfig(_Strict):
    hidden: int = 256
    heads: int = 8
    dropout: float = 0.1
    audio: AudioEncoderConfig = Field(default_factory=AudioEncoderConfig)
    visual: VisualEncoderConfig = Field(default_factory=VisualEncoderConfig)
    fusion_blocks: int = Field(3, ge=0, description="N of the MMI attention blocks (paper: 3)")
    audio_queries: int = Field(8, ge=1, description="queries derived from the audio feature")
    segmentation: bool = True
    mask_layers: int = 6
    mask_refine: int = Field(0, ge=0, description="instance mode: mask-pooled query refinement stages after the mask "
                             "decoder (K-Net): each query re-reads the pixel features under its own mask")
    caption: bool = True
    caption_layers: int = 6
    max_caption_tokens: int | Literal["auto"] = Field(
        "auto", description="caption length limit (EOS included); auto: the longest train caption target")
    vocab_size: int = Field(2000, description="tokenizer vocabulary size (trained on the train captions)")
    mcm: bool = True
    rcc: bool = True
    mohe: bool = True
    instances: bool = Field(False, description="SSUFormer-I: each query predicts one sounding source's mask, a "
                            "sounding score and (conditioning the caption decoder) that source's caption")
    instance_threshold: float = Field(0.5, ge=0, le=1, description="instance mode: a query whose sounding score "
                                      "is at least this is a predicted source")
    instance_nms: float = Field(0.5, gt=0, le=1, description="instance prediction: a query whose mask overlaps "
                                "a higher-scoring query's mask at IoU >= this is a duplicate (score 0); 1: off")
    clip: ClipConfig = Field(default_factory=ClipConfig)
    expert: ExpertConfig = Field(default_factory=ExpertConfig)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if not (self.segmentation or self.caption):
            raise ValueError("at least one of model.segmentation and model.caption must be true")
        if (self.mcm or self.rcc) and not (self.segmentation and self.caption):
            raise ValueError("model.mcm / model.rcc need both model.segmentation and model.caption")
        if self.mohe and not self.caption:
            raise ValueError("model.mohe needs model.caption")
        if self.instances and not self.segmentation:
            raise ValueError("model.instances needs model.segmentation (each instance is a query's mask)")
        if self.mask_refine and not self.instances:
            raise ValueError("model.mask_refine is for instance mode: set model.instances: true, or mask_refine: 0")
        if self.hidden % self.heads:
            raise ValueError(f"model.hidden {self.hidden} must be divisible by model.heads {self.heads}")
        return self


class LossConfig(_Strict):
    alpha: float = Field(0.25, ge=0, le=1, description="a of eq. 4: L_ada = a L_seg + (1-a) L_tex")
    text: TextLoss = TextLoss.focal
    focal_gamma: float = 2.0
    seg_bce: float = Field(0.0, ge=0, description="extra BCE weight on masks (0 = Dice only, as the paper)")
    clip_weight: float = Field(1.0, ge=0, description="weight of L_clip (eq. 6 uses 1)")
    label_smoothing: float = 0.0
    # instance mode (model.instances): MaskFormer's set prediction. Queries are matched to the frame's sources by
    # Hungarian matching on  cost_class * -p(sounding) + cost_dice * Dice + cost_mask * mean BCE  (Mask2Former's
    # 2 / 5 / 5); matched pairs get the mask and caption losses, every query the sounding-score loss.
    cls_weight: float = Field(2.0, ge=0, description="instance mode: weight of the sounding-score BCE")
    cost_class: float = Field(2.0, ge=0, description="instance matching: weight of -p(sounding)")
    cost_dice: float = Field(5.0, ge=0, description="instance matching: weight of the Dice cost")
    cost_mask: float = Field(5.0, ge=0, description="instance matching: weight of the per-pixel BCE cost")
    # Deep supervision trains the masks of the earlier layers / stages only: with their sounding scores trained
    # too (one score head shared by every stage, as Mask2Former shares its class head) the score stopped
    # learning which source sounds (train BCE stuck at the base rate, docs/benchmarks.md).
    score_target: ScoreTarget = Field(ScoreTarget.iou, description="instance mode: 'matched' (1 for the "
                                      "matched query, 0 for the rest) or 'iou' (its mask's best IoU with a "
                                      "sounding source: duplicates are not told apart, prediction removes them)")
    deep_supervision: float = Field(1.0, ge=0, description="instance mode: weight of the matched mask losses of "
                                    "every earlier mask-decoder layer and refinement stage")


class DataConfig(_Strict):
    frames: int = Field(10, ge=1, le=300, description="T frames sampled per clip (10 = 1 per second)")
    image_size: int = Field(224, ge=32)
    cache: str | None = Field(None, description="decoded frames and log-mel cache; default <root>/.cache")
    workers: int = Field(2, ge=0, description="DataLoader worker processes (training and validation)")
    # off by default: the reduced comparison in docs/benchmarks.md gave a lower dense test mIoU with jitter
    jitter: bool = Field(False, description="training frames drawn at random within each of the T slots")


class TrainConfig(_Strict):
    optimizer: Optimizer = Optimizer.adam
    lr: float = 2e-5
    weight_decay: float = 0.0
    batch_size: int = Field(4, ge=1, description="global batch (clips), split over DDP processes")
    grad_accum: int = Field(1, ge=1)
    epochs: int = Field(60, ge=1)
    schedule: Schedule = Schedule.constant
    warmup_steps: int = 0
    grad_clip: float | None = 1.0
    precision: Precision = Precision.auto
    run_val: bool = Field(True, description="validate on the val split (when the root has one)")
    val_every: int = Field(1, ge=1, description="validate every N epochs")
    max_val_clips: int | None = None
    beam: int = Field(1, ge=1, description="beam width for validation captions (1 = greedy)")
    dist_timeout_s: int = Field(1800, ge=1, description="DDP process-group timeout (seconds)")


class SSUConfig(_Strict):
    name: str = "custom"
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


def available_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(name_or_path: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    import yaml

    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UserError(f"--config {name_or_path}: no such config; use a file or one of {available_configs()}")
    if str(path) in seen:
        raise UserError(f"{path}: `extends` loops back to itself")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: must be a mapping of settings")
    parent = data.pop("extends", None)
    name = data.pop("name", None) or path.stem  # a config's name is its own, not its parent's
    if parent:
        data = deep_merge(_read_yaml(str(parent), (*seen, str(path))), data)
    data["name"] = name
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    import yaml

    if "=" not in text:
        raise UserError(f"--set {text!r}: expected KEY=VALUE, e.g. --set model.fusion_blocks=2")
    key, value = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value)


def load_config(name_or_path: str, overrides: list[str] | None = None) -> SSUConfig:
    """A named config (ssuformer/configs/<name>.yaml) or a YAML path, with `--set` overrides applied."""
    data = _read_yaml(name_or_path)
    for text in overrides or []:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {text!r}: {k} is not a section")
        node[keys[-1]] = value
    return config_from_dict(data, source=name_or_path)


# Instance loss settings added after instance checkpoints existed, and what those checkpoints were trained
# with: resuming one keeps its losses rather than taking the new defaults. (model.instance_nms needs no entry:
# its default, 0.5, is the same-frame dedup IoU their predictions already went through in the tracker.)
_LEGACY_INSTANCE = {"loss": {"score_target": "matched", "deep_supervision": 0.0}}


def config_from_checkpoint(data: dict[str, Any], source: str = "checkpoint") -> SSUConfig:
    """The config saved in a checkpoint; an instance checkpoint from before loss.score_target and
    loss.deep_supervision keeps the losses it was trained with."""
    if data.get("model", {}).get("instances"):
        data = dict(data)
        for part, legacy in _LEGACY_INSTANCE.items():
            data[part] = {**legacy, **data.get(part, {})}  # what the checkpoint saved wins
    return config_from_dict(data, source)


def config_from_dict(data: dict[str, Any], source: str = "config") -> SSUConfig:
    try:
        return SSUConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"{source}: {loc}: {first['msg']}") from None
