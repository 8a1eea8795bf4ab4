"""ssu-annotate: automatic drafts (SAM -> SAM2 -> VLM captions, audio-gated) for collected clips.

    ssu-annotate ROOT [flags]          same as `ssu-annotate run ROOT`
    ssu-annotate ROOT --drafter RUN/best.pt   drafts from a trained SSUFormer-I checkpoint instead of the models
    ssu-annotate models [flags]        which models are configured and whether their weights are here
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from annotator.models import flags as model_flags
from annotator.models.settings import Device, DType, ModelKind, ModelsConfig
from schemas.cli_util import file_path, folder_path, new_app, run_cli
from schemas.errors import UserError

app = new_app("Automatic annotation drafts: detector -> SAM -> SAM2 -> audio gating -> VLM region captions.\n\n"
              "Example: ssu-annotate data/root --device cuda --sam2 /models/sam2.1-hiera-large "
              "--captioner llava-hf/llava-onevision-qwen2-7b-ov-hf --offline")
COMMANDS = ("run", "models")

SAM_SOURCE = model_flags.source(ModelKind.sam)
SAM2_SOURCE = model_flags.source(ModelKind.sam2)
CAPTIONER_SOURCE = model_flags.source(ModelKind.captioner)
DETECTOR_SOURCE = model_flags.source(ModelKind.detector)
AUDIO_TAGGER_SOURCE = model_flags.source(ModelKind.audio_tagger)
OFFLINE = model_flags.offline(False)  # online by default here (ssu-refine: offline by default)


def _models(sam: str, sam2: str, sam2_config: str | None, captioner: str, detector: str, audio_tagger: str,
            device: Device, dtype: DType, offline: bool) -> ModelsConfig:
    sources = {ModelKind.sam: sam, ModelKind.sam2: sam2, ModelKind.captioner: captioner,
               ModelKind.detector: detector, ModelKind.audio_tagger: audio_tagger}
    return model_flags.models_config(sources, sam2_config, device, dtype, offline)


def _load_yaml(path: Path | None) -> dict:
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise UserError(f"--config {path}: no such file")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise UserError(f"--config {path}: expected a mapping of pipeline settings")
    return data


@app.command("run")
def run_cmd(
    root: Path = typer.Argument(..., help="dataset root (ssu.json)", parser=folder_path),
    force: bool = typer.Option(False, "--force", help="redo clips that already have an automatic draft"),
    clip: list[str] = typer.Option(None, "--clip", help="only these clip ids (repeatable)"),
    limit: int = typer.Option(None, "--limit", min=1, help="at most this many clips"),
    config: Path = typer.Option(None, "--config", parser=file_path,
                                help="YAML of pipeline settings (see docs/annotate.md)"),
    audio_threshold: float = typer.Option(None, "--audio-threshold", min=0, max=1,
                                          help="tagger score that counts as heard (default 0.5)"),
    no_gate: bool = typer.Option(False, "--no-gate", help="keep masks in silent seconds too"),
    box_threshold: float = typer.Option(None, "--box-threshold", min=0, max=1),
    max_instances: int = typer.Option(None, "--max-instances", min=1, help="tracks per category"),
    caption_every: int = typer.Option(None, "--caption-every", min=1, help="frames per caption (30 = 1 Hz)"),
    caption_prompt: str = typer.Option(None, "--caption-prompt", help="VLM prompt; {category} is filled in"),
    sam2_window: int = typer.Option(None, "--sam2-window", min=2, help="frames per SAM2 window (memory)"),
    ray: str = typer.Option(None, "--ray", help="spread clips over Ray: 'local' or a cluster address"),
    ray_workers: int = typer.Option(None, "--ray-workers", min=1, help="actors (default: one per GPU)"),
    drafter: Path = typer.Option(None, "--drafter", parser=file_path,
                                 help="draft with this SSUFormer-I checkpoint (ssu-train's best.pt) instead of the "
                                      "detector/SAM/SAM2/VLM models"),
    instance_nms: float = typer.Option(None, "--instance-nms", min=0, max=1, help="--drafter: mask NMS IoU in (0, 1] "
                                       "(default: the checkpoint's model.instance_nms)"),
    instance_threshold: float = typer.Option(None, "--instance-threshold", min=0, max=1,
                                             help="--drafter: score a query needs to be a source (default: the "
                                                  "checkpoint's model.instance_threshold)"),
    mask_stride: int = typer.Option(1, "--mask-stride", min=0, help="--drafter: predict every k-th frame (1: all)"),
    sam: str = SAM_SOURCE, sam2: str = SAM2_SOURCE, sam2_config: str = model_flags.SAM2_CONFIG,
    captioner: str = CAPTIONER_SOURCE, detector: str = DETECTOR_SOURCE, audio_tagger: str = AUDIO_TAGGER_SOURCE,
    device: Device = model_flags.DEVICE, dtype: DType = model_flags.DTYPE, offline: bool = OFFLINE,
) -> None:
    """Annotate the root's collected clips (resumable; --force redoes automatic drafts).

    Example: ssu-annotate run data/root --device cuda --audio-threshold 0.4 --ray auto

    Example: ssu-annotate data/root --drafter runs/ssu_i/best.pt --device cuda
    """
    from pydantic import ValidationError

    if drafter is not None:
        _draft_with_checkpoint(root, drafter, force, clip, limit, ray, ray_workers, device, instance_nms,
                               instance_threshold, mask_stride)
        return

    from annotator.draft.pipeline import PipelineConfig
    from annotator.draft.runner import run

    settings = _load_yaml(config)
    flags = {"audio_threshold": audio_threshold, "box_threshold": box_threshold, "max_instances": max_instances,
             "caption_every": caption_every, "caption_prompt": caption_prompt, "sam2_window": sam2_window}
    settings.update({k: v for k, v in flags.items() if v is not None})
    if no_gate:
        settings["gate"] = False
    try:
        cfg = PipelineConfig(**settings)
    except ValidationError as e:
        first = e.errors()[0]
        raise UserError(f"--config {config}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    models = _models(sam, sam2, sam2_config, captioner, detector, audio_tagger, device, dtype, offline)
    summary = run(root, models, cfg, force=force, clips=clip or None, limit=limit, ray_address=ray,
                  ray_workers=ray_workers)
    for line in summary.lines():
        print(line)
    if summary.failed:
        raise typer.Exit(1)


def _draft_with_checkpoint(root: Path, checkpoint: Path, force: bool, clips: list[str] | None, limit: int | None,
                           ray: str | None, ray_workers: int | None, device: Device, instance_nms: float | None,
                           instance_threshold: float | None, mask_stride: int) -> None:
    from annotator.draft.drafter import DrafterSettings
    from annotator.draft.runner import run_drafts

    if not checkpoint.is_file():
        raise UserError(f"--drafter {checkpoint}: no such file; give RUN/best.pt written by ssu-train")
    if instance_nms is not None and not 0 < instance_nms <= 1:
        raise UserError(f"--instance-nms {instance_nms}: give an IoU in (0, 1] (1: no NMS)")
    settings = DrafterSettings(checkpoint=checkpoint.resolve(), device=None if device is Device.auto else device.value,
                               instance_nms=instance_nms, instance_threshold=instance_threshold,
                               mask_stride=mask_stride)
    # load it here first: a semantic-only or unreadable checkpoint stops the run with one line (exit 2)
    from dataclasses import replace

    loaded = (replace(settings, device="cpu") if ray else settings)()  # Ray: the actors hold the GPUs
    summary = run_drafts(root, settings, device.value, force=force, clips=clips or None, limit=limit,
                         ray_address=ray, ray_workers=ray_workers, local=lambda: loaded)
    for line in summary.lines():
        print(line)
    if summary.failed:
        raise typer.Exit(1)


@app.command("models")
def models_cmd(
    sam: str = SAM_SOURCE, sam2: str = SAM2_SOURCE, sam2_config: str = model_flags.SAM2_CONFIG,
    captioner: str = CAPTIONER_SOURCE, detector: str = DETECTOR_SOURCE, audio_tagger: str = AUDIO_TAGGER_SOURCE,
    device: Device = model_flags.DEVICE, dtype: DType = model_flags.DTYPE, offline: bool = OFFLINE,
) -> None:
    """List the configured models and whether their weights are on this machine.

    Example: ssu-annotate models --sam2 /models/sam2.1-hiera-large
    """
    from annotator.models.loaders import missing_weights, present

    cfg = _models(sam, sam2, sam2_config, captioner, detector, audio_tagger, device, dtype, offline)
    rows = [(k, cfg.spec(k), present(k, cfg.spec(k))) for k in ModelKind]
    for k, spec, ok in rows:
        print(f"{k.value:13} {'present' if ok else 'MISSING':8} {spec.source}")
    print(f"runtime: device {cfg.runtime.device.value}, dtype {cfg.runtime.dtype.value}, "
          f"offline {cfg.runtime.is_offline()}")
    for k, spec, ok in rows:
        if not ok:
            print(f"  {missing_weights(k, spec.source)}")
    if not all(ok for _, _, ok in rows):
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    # `run` is the default command: `ssu-annotate ROOT ...` means `ssu-annotate run ROOT ...`.
    if args and args[0] not in COMMANDS and args[0] not in ("--help", "-h"):
        args.insert(0, "run")
    sys.argv = [sys.argv[0], *args]
    run_cli(app)


if __name__ == "__main__":
    main()
