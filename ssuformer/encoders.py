"""Audio and video encoders of section IV.B.1: VGGish (torchvggish) and PVT-v2 (timm), or tiny random ones.

Weights are named by `weights:` (ssuformer/weights.py: pretrained, none, a file, an hf-hub id, a URL) and
loaded with a strict key check: a checkpoint that lacks a key of the network, or holds one it does not
have, is an error listing them, never a silently half-initialised encoder. Each encoder records where its
weights came from in `.weights_source` (the trainer logs it).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from schemas.errors import UserError
from ssuformer.config import AudioEncoderConfig, VisualEncoderConfig
from ssuformer.weights import audio_weights, load_strict, read_state_dict, visual_weights

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


def _source(spec: str, path: Path | None) -> str:
    return "random init (weights: none)" if path is None else f"{spec} ({path})"


def build_audio_encoder(cfg: AudioEncoderConfig) -> nn.Module:
    """VGGish (or the tiny CNN) with its weights loaded; `.weights_source` says which."""
    if cfg.tiny:
        enc: nn.Module = TinyAudioEncoder(cfg.tiny_channels)
    else:
        from torchvggish.torchvggish import VGG, make_layers

        enc = VGG(make_layers(), postprocess=False)  # never torchvggish.vggish(): that one downloads
    field = "model.audio.weights"
    path = audio_weights(cfg)
    if path is not None:
        # pproc.*: the PCA post-processing of torchvggish's VGGish class, which this network does not apply
        state = {k: v for k, v in read_state_dict(path, field).items() if not k.startswith("pproc.")}
        load_strict(enc, state, field, path, "VGGish" if not cfg.tiny else "tiny audio encoder")
    enc.weights_source = _source(cfg.weights, path)  # type: ignore[assignment]
    if cfg.freeze:
        enc.requires_grad_(False)
    return enc


class VisualEncoder(nn.Module):
    """PVT-v2 backbone returning its 4-level pyramid (strides 4, 8, 16, 32) as NCHW tensors."""

    def __init__(self, cfg: VisualEncoderConfig) -> None:
        super().__init__()
        import timm
        from timm.models._features import FeatureListNet
        from timm.models.pvt_v2 import checkpoint_filter_fn

        kwargs: dict[str, object] = {}
        if cfg.tiny_dims is not None:
            depths = cfg.tiny_depths or [1, 1, 1, 1]
            if len(cfg.tiny_dims) != 4 or len(depths) != 4:
                raise UserError("model.visual.tiny_dims / tiny_depths: need 4 values each (one per PVT stage)")
            heads = [max(1, d // 16) for d in cfg.tiny_dims]
            kwargs.update(embed_dims=tuple(cfg.tiny_dims), depths=tuple(depths), num_heads=tuple(heads))
        if not cfg.arch.startswith("pvt_v2_b"):
            raise UserError(f"model.visual.arch {cfg.arch!r}: use one of pvt_v2_b0 .. pvt_v2_b5")
        field = "model.visual.weights"
        path = visual_weights(cfg)
        # The whole classifier network first, so a checkpoint's keys (head included) are checked one to one;
        # then timm's feature wrapper, as features_only=True builds it (the head is dropped there).
        net = timm.create_model(cfg.arch, pretrained=False, **kwargs)
        if path is not None:
            state = checkpoint_filter_fn(read_state_dict(path, field), net)  # original PVT repo keys -> timm's
            load_strict(net, state, field, path, f"PVT-v2 ({cfg.arch})")
        self.body = FeatureListNet(net, out_indices=(0, 1, 2, 3), flatten_sequential=True)
        self.weights_source = _source(cfg.weights, path)
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if cfg.freeze:
            self.body.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (N, 3, H, W) in [0, 1]."""
        return list(self.body((images - self.mean) / self.std))
