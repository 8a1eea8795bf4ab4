"""Audio and video encoders of section IV.B.1: VGGish (torchvggish) and PVT-v2 (timm), or tiny random ones.

Nothing here downloads by itself: VGGish weights come from a local state-dict path; PVT-v2 weights from a
local file or a hub id (`hf-hub:timm/pvt_v2_b5.in1k`), which huggingface_hub resolves offline from its
cache when HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from schemas.errors import UserError
from ssuformer.config import AudioEncoderConfig, VisualEncoderConfig

VGGISH_DIM = 128
# VGGish log-mel example: 0.96 s = 96 frames of 64 mel bands.
VGGISH_FRAMES, VGGISH_BANDS = 96, 64
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TinyAudioEncoder(nn.Module):
    """A VGGish-shaped CNN ((N, 1, 96, 64) log-mel -> (N, 128)) with a few channels, for tests and CPU runs.

    The head averages over time but keeps 16 frequency bins: pooling frequency to a few bins (as a 4x4 grid
    did) merges the bands that tell sounds apart, and the model then learned to ignore the audio.
    """

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.AdaptiveAvgPool2d((1, 16)), nn.Flatten(),
                                        nn.Linear(c_in * 16, VGGISH_DIM), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embeddings(self.features(x))


def build_audio_encoder(cfg: AudioEncoderConfig) -> nn.Module:
    if cfg.tiny:
        enc: nn.Module = TinyAudioEncoder(cfg.tiny_channels)
    else:
        from torchvggish.torchvggish import VGG, make_layers

        enc = VGG(make_layers(), postprocess=False)  # never torchvggish.vggish(): that one downloads
        if cfg.weights:
            path = Path(cfg.weights)
            if not path.is_file():
                raise UserError(f"model.audio.weights: {path} not found; give a VGGish state dict (.pth)")
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("pproc")}  # PCA params: unused
            missing, unexpected = enc.load_state_dict(state, strict=False)
            if missing:
                raise UserError(f"model.audio.weights: {path} lacks {missing[:3]}...; is it a VGGish state dict?")
    if cfg.freeze:
        enc.requires_grad_(False)
    return enc


class VisualEncoder(nn.Module):
    """PVT-v2 backbone returning its 4-level pyramid (strides 4, 8, 16, 32) as NCHW tensors."""

    def __init__(self, cfg: VisualEncoderConfig) -> None:
        super().__init__()
        import timm

        kwargs: dict[str, object] = {"features_only": True}
        if cfg.tiny_dims is not None:
            depths = cfg.tiny_depths or [1, 1, 1, 1]
            if len(cfg.tiny_dims) != 4 or len(depths) != 4:
                raise UserError("model.visual.tiny_dims / tiny_depths: need 4 values each (one per PVT stage)")
            heads = [max(1, d // 16) for d in cfg.tiny_dims]
            kwargs.update(embed_dims=tuple(cfg.tiny_dims), depths=tuple(depths), num_heads=tuple(heads))
        if not cfg.arch.startswith("pvt_v2_b"):
            raise UserError(f"model.visual.arch {cfg.arch!r}: use one of pvt_v2_b0 .. pvt_v2_b5")
        pretrained = cfg.weights is not None
        if pretrained:
            w = str(cfg.weights)
            if Path(w).exists():
                kwargs["pretrained_cfg_overlay"] = {"file": str(Path(w).resolve())}
            elif w.startswith("hf-hub:"):
                kwargs["pretrained_cfg_overlay"] = {"hf_hub_id": w.removeprefix("hf-hub:")}
            else:
                raise UserError(f"model.visual.weights: {w} is neither a file nor an hf-hub:<id>")
        try:
            self.body = timm.create_model(cfg.arch, pretrained=pretrained, **kwargs)
        except (OSError, RuntimeError) as e:
            raise UserError(f"model.visual.weights: cannot load {cfg.weights} ({type(e).__name__}: {e})") from None
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if cfg.freeze:
            self.body.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (N, 3, H, W) in [0, 1]."""
        return list(self.body((images - self.mean) / self.std))
