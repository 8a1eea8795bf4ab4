"""Where pretrained weights come from: a local file, a Hugging Face hub id, or a URL in torch's hub cache.

`weights:` values in the configs:
  pretrained               the encoder's canonical checkpoint (VGGish on AudioSet: torchvggish's release;
                           PVT-v2 on ImageNet-1k: hf-hub:timm/<arch>.in1k)
  none                     random initialisation, on purpose (the run's config.yaml and log say so)
  PATH                     a local .pth / .pt / .bin / .safetensors state dict
  hf-hub:OWNER/REPO[/FILE] a file of a hub repo (default model.safetensors), from the hub cache when offline
  https://...              a file downloaded once into torch's hub cache (~/.cache/torch/hub/checkpoints)

Nothing is downloaded when HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1): a file that is not already on
disk is then a user error that names it and says how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from schemas.errors import UserError
from ssuformer.config import AudioEncoderConfig, ModelConfig, VisualEncoderConfig

NONE, PRETRAINED = "none", "pretrained"
VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
HF_PREFIX = "hf-hub:"


def offline() -> bool:
    return any(os.environ.get(k, "0").lower() not in ("0", "", "false") for k in ("HF_HUB_OFFLINE",
                                                                                  "TRANSFORMERS_OFFLINE"))


def _fallback(field: str) -> str:
    return f"or give a local file with --set {field}=PATH, or train from random weights with --set {field}=none"


def _torch_hub_file(url: str, field: str, what: str) -> Path:
    dst = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if dst.is_file():
        return dst
    if offline():
        raise UserError(f"{field}: {what} weights {dst.name} are not on this machine and downloads are off "
                        f"(HF_HUB_OFFLINE=1); download {url} to {dst}, {_fallback(field)}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dst))
    return dst


def _hf_file(spec: str, field: str, what: str) -> Path:
    from huggingface_hub import hf_hub_download

    parts = spec.removeprefix(HF_PREFIX).split("/")
    if len(parts) < 2:
        raise UserError(f"{field}: {spec} is not hf-hub:OWNER/REPO[/FILE]")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or "model.safetensors"
    try:
        return Path(hf_hub_download(repo, filename, local_files_only=offline()))
    except Exception as e:  # not cached offline, no network, unknown repo: each a reason the user must act on
        how = (f"downloads are off (HF_HUB_OFFLINE=1); fetch it on a machine with network with "
               f"`hf download {repo} {filename}` (it lands in the hub cache)" if offline()
               else f"the download failed ({type(e).__name__}: {e})")
        raise UserError(f"{field}: {what} weights {repo}/{filename} are not on this machine and {how}, "
                        f"{_fallback(field)}") from None


def resolve_weights(spec: str, field: str, what: str, pretrained: str) -> Path | None:
    """The local file `spec` names (None for `none`); `pretrained` is what `pretrained` stands for."""
    if spec == NONE:
        return None
    if spec == PRETRAINED:
        spec = pretrained
    if spec.startswith(HF_PREFIX):
        return _hf_file(spec, field, what)
    if spec.startswith(("https://", "http://")):
        return _torch_hub_file(spec, field, what)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(f"{field}: {path} not found; give a {what} state dict file, an hf-hub:OWNER/REPO id, "
                        f"`pretrained`, or `none`")
    return path


def read_state_dict(path: Path, field: str) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a torch file (unwrapping {"state_dict": ...} / {"model": ...})."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"{field}: {path} is not a readable checkpoint ({type(e).__name__}: {e})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UserError(f"{field}: {path} holds no state dict")
    return state


def _listed(keys: list[str], n: int = 12) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], field: str, path: Path, what: str) -> None:
    """Load every key or fail with the list of missing and unexpected ones (and shape mismatches)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_listed(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} keys of another shape: "
                        + _listed([f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in shapes]))
    if problems:
        raise UserError(f"{field}: {path} is not a {what} checkpoint of this architecture: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)


def audio_weights(cfg: AudioEncoderConfig) -> Path | None:
    return resolve_weights(cfg.weights, "model.audio.weights", "VGGish" if not cfg.tiny else "tiny audio encoder",
                           VGGISH_URL)


def visual_weights(cfg: VisualEncoderConfig) -> Path | None:
    return resolve_weights(cfg.weights, "model.visual.weights", f"PVT-v2 ({cfg.arch})",
                           f"{HF_PREFIX}timm/{cfg.arch}.in1k")


def without_pretrained(cfg: ModelConfig) -> ModelConfig:
    """A copy that builds the encoders without loading their pretrained files (their weights come from a
    checkpoint, or do not matter, as when counting parameters)."""
    out = cfg.model_copy(deep=True)
    out.audio.weights = out.visual.weights = NONE
    return out


def _clip_files(cfg: ModelConfig) -> None:
    if not (cfg.mcm or cfg.rcc) or cfg.clip.tiny or Path(cfg.clip.name_or_path).is_dir() or not offline():
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(cfg.clip.name_or_path, "config.json"), str):
        raise UserError(f"model.clip.name_or_path: CLIP {cfg.clip.name_or_path} is not on this machine and "
                        f"downloads are off (HF_HUB_OFFLINE=1); fetch it with `hf download {cfg.clip.name_or_path}`"
                        ", or give a local folder, or set model.clip.tiny=true (random, for tests)")


def check_pretrained(cfg: ModelConfig, resumed: bool = False) -> list[str]:
    """Where each pretrained part's weights come from, before anything is built; one error naming every
    file that is missing (so an offline run learns all it needs at once). A resumed run takes its encoders
    from the checkpoint and needs only CLIP (whose tokenizer maps our vocabulary)."""
    sources = ["model.audio.weights, model.visual.weights: from the checkpoint (resumed)"] if resumed else []
    errors = []
    parts = (("clip", lambda: _clip_files(cfg)),) if resumed else (
        ("audio", lambda: audio_weights(cfg.audio)), ("visual", lambda: visual_weights(cfg.visual)),
        ("clip", lambda: _clip_files(cfg)))
    for name, get in parts:
        try:
            path = get()
        except UserError as e:
            errors.append(str(e))
            continue
        if name != "clip":
            spec = getattr(cfg, name).weights
            sources.append(f"model.{name}.weights: " + ("none (random init, on purpose)" if path is None
                                                         else f"{spec} -> {path}"))
    if errors:
        raise UserError(" | ".join(errors))
    return sources
