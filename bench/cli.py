"""ssu-bench: show that SSUFormer learns, on the synthetic source where only the audio tells who sounds.

`learning`: synthetic root -> train the audio-visual model -> the same model with its audio removed (the
audio-blind control) -> dense test predictions scored like `ssu-eval --checkpoint` -> trivial baselines
(union of all objects, most frequent caption) -> OUT/report.md, report.json, loss.png, metrics.png, strip.png.
`ladder`: the ablation ladder of Table V (baseline, +Focal, +MCM, +RCC, +MoHE) -> OUT/ladder.md, ladder.json.
`loop`: the annotation loop, the truth standing in for the refiner: SSUFormer-I drafts, per round (bench/loop.py).
`instance-sweep`: an SSUFormer-I checkpoint's instance mIoU on the val split for each mask-NMS IoU and score
threshold, to choose `ssu-eval --instance-nms` before looking at the test split.
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from bench.ladder import RUNGS
from bench.steps import AudioControl
from schemas.cli_util import file_path, folder_path, new_app, run_cli
from schemas.errors import UserError

app = new_app("Benchmarks that show SSUFormer learning on a synthetic audio-visual root.\n\n"
              "Example: ssu-bench learning --out runs/bench\n"
              "         ssu-bench ladder --out runs/ladder --data runs/bench/root")

# The options both commands take (one declaration each).
_DATA = typer.Option(None, "--data", parser=folder_path,
                     help="an existing dataset root (default: make a synthetic one in OUT/root with --clips/--seed)")
_CLIPS = typer.Option(360, "--clips", min=1, help="clips of the synthetic root (70/15/15 % train/val/test)")
_SEED = typer.Option(0, "--seed", min=0, help="seed of the synthetic root and of training")
_SET = typer.Option([], "--set", help="override a setting, e.g. --set train.epochs=20 (repeatable)")
_EPOCHS = typer.Option(None, "--epochs", min=1, help="training epochs of each run (default: the config's)")
_MAX_STEPS = typer.Option(None, "--max-steps", min=1, help="stop each training run after N steps")
_MASK_STRIDE = typer.Option(1, "--mask-stride", min=0, help="predict test masks every k-th frame (0: T frames)")
_METEOR = typer.Option(False, "--meteor/--no-meteor", help="METEOR starts a JVM (~12 s per run)")
_PROGRESS = typer.Option(True, "--progress/--no-progress")


def _setup(out: Path, data: Path | None, clips: int, seed: int, config: str, set_: list[str], epochs: int | None,
           mask_stride: int, progress: bool):
    from bench.steps import ensure_root, warm_cache
    from ssuformer.config import load_config

    out.mkdir(parents=True, exist_ok=True)
    root = data if data is not None else ensure_root(out / "root", clips, seed, progress)
    cfg = load_config(config, set_)
    if epochs is not None:
        cfg.train.epochs = epochs
    dense = ("train",) if cfg.data.jitter else ()  # predict_root streams the test split: no cache to warm
    warm_cache(root, cfg, dense, ("train", "val", "test"), progress)
    return root, cfg


def _machine() -> dict[str, Any]:
    import os

    import torch

    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "load_average": list(os.getloadavg())}


@app.command()
def learning(
    out: Path = typer.Option(..., "--out", parser=folder_path,
                             help="output folder: root/, runs/, baselines/, report.md, *.png"),
    data: Path | None = _DATA, clips: int = _CLIPS, seed: int = _SEED,
    config: str = typer.Option("bench", "--config", help="SSUFormer config name or YAML path"),
    set_: list[str] = _SET, epochs: int | None = _EPOCHS, max_steps: int | None = _MAX_STEPS,
    controls: bool = typer.Option(True, "--controls/--no-controls", help="also train the audio-blind control"),
    audio_control: AudioControl = typer.Option(AudioControl.zero, "--audio-control",
                                               help="how the control loses its audio: zero (silence) or shuffle"),
    mask_stride: int = _MASK_STRIDE, meteor: bool = _METEOR,
    strip_clips: int = typer.Option(2, "--strip-clips", min=0, help="test clips shown in strip.png"),
    compare: Path | None = typer.Option(None, "--compare", parser=file_path,
                                        help="report.json of a semantic-model run on the same root: with an "
                                             "instance config (bench_i), its union mIoU is set side by side"),
    progress: bool = _PROGRESS,
) -> None:
    """Train the audio-visual model and the controls, score them on the test split, write the report.

    Example: ssu-bench learning --out runs/bench --clips 120 --epochs 12  (quick look; default 360 clips, 26 epochs)
             ssu-bench learning --config bench_i --data runs/bench/root --out runs/bench-i \\
                 --compare runs/bench/report.json  (SSUFormer-I against the semantic run)
    """
    from bench import report as rep
    from bench.steps import (
        audio_control_root,
        evaluate_predictions,
        train_and_evaluate,
        trivial_predictions,
        warm_cache,
    )
    from bench.targets import instance_targets, semantic_targets

    semantic = _semantic_scores(compare) if compare is not None else None  # read before an hour of training
    root, cfg = _setup(out, data, clips, seed, config, set_, epochs, mask_stride, progress)
    runs = [train_and_evaluate("audio-visual", root, cfg, out / "runs" / "audio-visual", seed, max_steps,
                               mask_stride, meteor, progress)]
    if controls:
        blind_root = audio_control_root(root, out / f"root-audio-{audio_control.value}", audio_control, seed)
        warm_cache(blind_root, cfg, (), ("train",), False)
        runs.append(train_and_evaluate(f"audio-blind ({audio_control.value})", blind_root, cfg,
                                       out / "runs" / f"audio-{audio_control.value}", seed, max_steps, mask_stride,
                                       meteor, progress))
    instances = cfg.model.instances
    base_dir, caption = trivial_predictions(root, out / "baselines", "test", progress)
    baseline = evaluate_predictions(root, "test", base_dir / "annotations", meteor, instances=instances)
    rows = [rep.table_row(r.name, r.test, r.steps, r.train_seconds) for r in runs]
    rows.append(rep.table_row("union of all objects + most frequent caption", baseline))
    av, blind = runs[0].test, (runs[1].test if controls else None)
    targets = instance_targets(av, blind, semantic) if instances else semantic_targets(av, blind)
    images = rep.plot_curves({r.name: r.history for r in runs}, out)
    from schemas.root import DatasetRoot

    test_ids = DatasetRoot.open(root).read_split("test")[:strip_clips]
    images.append(rep.frame_strip(root, Path(runs[0].predictions or ""), test_ids, out))
    doc = {"created": datetime.now(UTC).isoformat(timespec="seconds"), "root": str(root), "config": cfg.name,
           "config_values": cfg.model_dump(mode="json"), "mask_stride": mask_stride, "machine": _machine(),
           "runs": [r.to_json() for r in runs],
           "baseline": {"masks": "union of all objects' visible pixels, every frame (rendered from the synth spec)",
                        "caption": caption, "test": baseline},
           "compare": None if compare is None else {"report": str(compare), "test": semantic},
           "targets": [t.to_json() for t in targets]}
    from schemas import atomic

    atomic.write_json(out / "report.json", doc, indent=2)
    md = _learning_markdown(doc, rows, images, out)
    atomic.write_text(out / "report.md", md)
    typer.echo(rep.markdown_table(rows))
    if instances:
        typer.echo(rep.instance_table(rep.instance_rows(doc)))
    typer.echo("; ".join(f"{t.what} {_fmt(t.achieved)} (target {t.required}: {'pass' if t.passed else 'MISS'})"
                         for t in targets))
    typer.echo(f"report: {out / 'report.md'}")


def _semantic_scores(path: Path) -> dict[str, Any]:
    """The test scores of the audio-visual run of an earlier `ssu-bench learning` report.json."""
    try:
        test = json.loads(path.read_text())["runs"][0]["test"]
    except OSError as e:
        raise UserError(f"--compare {path}: cannot read it ({e.strerror}); give the report.json of "
                        "`ssu-bench learning` on the same root") from None
    except (ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"--compare {path}: not the report.json of `ssu-bench learning` (no runs[0].test)") from None
    if not isinstance(test, dict) or test.get("miou") is None:
        raise UserError(f"--compare {path}: its first run has no test mIoU")
    return test


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{float(x):.3f}"


def _learning_markdown(doc: dict[str, Any], rows: list[list[str]], images: list[Path], out: Path) -> str:
    from bench import report as rep

    m = doc["machine"]
    lines = [f"# ssu-bench learning: {doc['created']}", "",
             f"Root `{doc['root']}`, config `{doc['config']}`, test split scored with ssu-eval's engine "
             f"(per-frame mIoU over all 300 frames at 512x512, BLEU-4 etc. per frame); masks predicted every "
             f"{doc['mask_stride'] or 'sampled'} frame(s). Machine: {m['cpus']} CPUs, torch threads "
             f"{m['torch_threads']}, load average {', '.join(f'{x:.1f}' for x in m['load_average'])}.", "",
             rep.markdown_table(rows), "",
             f"Baseline masks: {doc['baseline']['masks']}; caption: \"{doc['baseline']['caption']}\".", ""]
    if any("instances" in (r.get("test") or {}) for r in doc["runs"]):
        lines += ["Instances (SSUFormer-I; every ground-truth source of every frame, matched by mask IoU, "
                  "docs/metrics.md); union mIoU = the table above's mIoU:", "",
                  rep.instance_table(rep.instance_rows(doc)), ""]
    lines += ["| target | achieved | required | |", "|---|---|---|---|"]
    for t in doc["targets"]:
        lines.append(f"| {t['what']} | {_fmt(t['achieved'])} | {'<=' if t['at_most'] else '>='} {t['bound']} "
                     f"| {'pass' if t['passed'] else 'MISS'} |")
    lines += ["", "Audio probe (test clips, sampled frames at the model's size; masks with each frame's own audio "
              "vs the audio of the clip's previous sampled second):", "",
              "| run | mean abs prob change | IoU own audio | IoU other audio |", "|---|---|---|---|"]
    for r in doc["runs"]:
        pr = r.get("audio_probe") or {}
        change = pr.get("mean_abs_prob_change")
        lines.append(f"| {r['name']} | {'-' if change is None else f'{change:.2g}'} | {_fmt(pr.get('iou_own_audio'))} "
                     f"| {_fmt(pr.get('iou_other_audio'))} |")
    lines += [""] + [f"![{p.stem}]({p.relative_to(out)})" for p in images]
    return "\n".join(lines) + "\n"


@app.command()
def ladder(
    out: Path = typer.Option(..., "--out", parser=folder_path,
                             help="output folder: clip/, runs/seed<S>/<rung>/, ladder.md, ladder.json"),
    data: Path | None = _DATA, clips: int = _CLIPS, seed: int = _SEED,
    seeds: str = typer.Option("", "--seeds", help="training seeds, e.g. 0,1 (default: --seed)"),
    config: str = typer.Option("bench", "--config", help="SSUFormer config the rungs modify"),
    set_: list[str] = _SET,
    rungs: str = typer.Option(",".join(RUNGS), "--rungs", help="comma-separated subset of the rungs"),
    control: bool = typer.Option(True, "--control/--no-control",
                                 help="also train +RCC on silence (its audio-blind control), per seed"),
    clip_epochs: int = typer.Option(40, "--clip-epochs", min=0,
                                    help="pretrain the tiny CLIP for MCM/RCC first (OUT/clip; 0: random CLIP)"),
    epochs: int | None = _EPOCHS, max_steps: int | None = _MAX_STEPS, mask_stride: int = _MASK_STRIDE,
    meteor: bool = _METEOR, report_only: bool = typer.Option(False, "--report-only",
                                                             help="assemble the report from finished runs only"),
    progress: bool = _PROGRESS,
) -> None:
    """Table V: baseline, +Focal, +MCM, +RCC, +MoHE (a tiny random LLaVA expert) trained alike, per seed.

    A resumable batch: a run folder with result.json is finished (only read), one with last.pt continues,
    the rest start. The report (ladder.md, ladder.json) is rewritten after every run from what is finished,
    and lists what is missing.

    Example: ssu-bench ladder --out runs/ladder --data runs/bench/root --seeds 0,1 --epochs 12
    """
    from bench.ladder import CONTROL, RESULT, run_dir, rung_overrides
    from bench.steps import audio_control_root
    from ssuformer.config import load_config

    chosen = [r.strip() for r in rungs.split(",") if r.strip()]
    unknown = [r for r in chosen if r not in RUNGS]
    if unknown or not chosen:
        raise UserError(f"--rungs {rungs!r}: unknown {unknown}; choose from {','.join(RUNGS)}")
    seed_list = _ints(seeds, "--seeds") if seeds.strip() else [seed]
    root, base = _setup(out, data, clips, seed, config, set_, epochs, mask_stride, progress and not report_only)
    clip_sets: list[str] = []
    if clip_epochs and not report_only:
        from bench.clip_pretrain import CLIP_FILE, pretrain_clip

        rep_clip = pretrain_clip(root, out / "clip", base, clip_epochs, 64, 2e-3, 0, progress)
        typer.echo(f"tiny CLIP: {json.dumps(rep_clip['val'])} (val zero-shot), {rep_clip['train_seconds']:.0f} s")
        clip_sets = [f"model.clip.tiny_weights={(out / 'clip' / CLIP_FILE).resolve()}"]
    overrides = rung_overrides([RUNGS[r] for r in chosen])
    plan = [(s, r) for s in seed_list for r in chosen] + ([(s, CONTROL) for s in seed_list]
                                                          if control and "+RCC" in chosen else [])
    for s, rung in plan:
        run = run_dir(out, s, rung)
        if report_only or (run / RESULT).is_file():
            continue
        name = "+RCC" if rung == CONTROL else rung
        cfg = load_config(config, [*set_, *overrides[RUNGS[name]], *clip_sets])
        cfg.name = f"{base.name}{rung}"
        cfg.train.epochs = base.train.epochs
        if cfg.model.mohe:
            _tiny_expert(cfg, root, out)
        where = (audio_control_root(root, out / "root-audio-zero", AudioControl.zero, seed) if rung == CONTROL
                 else root)
        _ladder_run(rung, where, root, cfg, run, s, max_steps, mask_stride, meteor, progress)
        _ladder_report(out, root, base, seed_list, [*chosen, *([CONTROL] if control and "+RCC" in chosen else [])],
                       overrides, mask_stride)
    md = _ladder_report(out, root, base, seed_list, [*chosen, *([CONTROL] if control and "+RCC" in chosen else [])],
                        overrides, mask_stride)
    typer.echo(md)
    typer.echo(f"report: {out / 'ladder.md'}")


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} {text!r}: give comma-separated integers, e.g. 0,1") from None


def _ladder_run(rung: str, where: Path, root: Path, cfg, run: Path, seed: int, max_steps: int | None,
                mask_stride: int, meteor: bool, progress: bool) -> None:
    """Train (or continue) one run, score it, and write its result.json (with the captions' attributes)."""
    from bench.ladder import RESULT, caption_attributes
    from bench.steps import train_and_evaluate
    from schemas import atomic

    res = train_and_evaluate(rung, where, cfg, run, seed, max_steps, mask_stride, meteor, progress)
    doc = res.to_json()
    if res.predictions:
        doc["test"]["captions"] = {**(doc["test"].get("captions") or {}),
                                   **caption_attributes(root, Path(res.predictions))}
    doc["machine"], doc["root"] = _machine(), str(where)
    atomic.write_json(run / RESULT, doc, indent=2)


def _ladder_report(out: Path, root: Path, base, seeds: list[int], rungs: list[str], overrides, mask_stride: int
                   ) -> str:
    """ladder.md / ladder.json from the finished runs (result.json), naming the missing ones."""
    from bench.ladder import CONTROL, RESULT, ladder_table, run_dir
    from schemas import atomic

    results, missing = {}, []
    for s in seeds:
        for r in rungs:
            path = run_dir(out, s, r) / RESULT
            if path.is_file():
                results[(s, r)] = json.loads(path.read_text())
            else:
                state = "half-trained" if path.with_name("last.pt").is_file() else "not started"
                missing.append(f"{r} (seed {s}): {state}")
    clip = out / "clip" / "clip.json"
    doc = {"created": datetime.now(UTC).isoformat(timespec="seconds"), "root": str(root), "config": base.name,
           "mask_stride": mask_stride, "machine": _machine(), "seeds": seeds,
           "rungs": {r: overrides.get(RUNGS.get(r.split(" ")[0], ""), []) for r in rungs if r != CONTROL},
           "clip": json.loads(clip.read_text()) if clip.is_file() else None,
           "runs": [{"seed": s, "rung": r, **v} for (s, r), v in results.items()], "missing": missing}
    atomic.write_json(out / "ladder.json", doc, indent=2)
    md = [f"# ssu-bench ladder (Table V): {doc['created']}", "",
          f"Root `{root}`, config `{base.name}` with each rung's overrides (ladder.json), test split; seeds "
          f"{', '.join(map(str, seeds))}. {CONTROL}: +RCC trained and tested on silence.", "",
          ladder_table(results, seeds, rungs), ""]
    if doc["clip"]:
        md += [f"Tiny CLIP (OUT/clip): val zero-shot colour {doc['clip']['val']['colour_accuracy']:.3f}, shape "
               f"{doc['clip']['val']['shape_accuracy']:.3f} on {int(doc['clip']['val']['pairs'])} regions.", ""]
    md += ["Missing: " + ("; ".join(missing) if missing else "none"), ""]
    atomic.write_text(out / "ladder.md", "\n".join(md) + "\n")
    return "\n".join(md)


@app.command("pretrain-clip")
def pretrain_clip_cmd(
    out: Path = typer.Option(..., "--out", parser=folder_path, help="output folder: clip.pt, tokenizer.json, "
                             "clip.json (val zero-shot accuracy), last.pt (resume)"),
    data: Path = typer.Option(..., "--data", parser=folder_path, help="a synthetic root"),
    config: str = typer.Option("bench", "--config", help="SSUFormer config (its model.clip and tokenizer)"),
    set_: list[str] = _SET,
    epochs: int = typer.Option(40, "--epochs", min=1), batch: int = typer.Option(64, "--batch", min=2),
    lr: float = typer.Option(2e-3, "--lr", min=0.0), seed: int = typer.Option(0, "--seed", min=0),
    progress: bool = _PROGRESS,
) -> None:
    """Train the tiny CLIP contrastively on the train split's masked sounding regions and their captions.

    Example: ssu-bench pretrain-clip --data runs/bench/root --out runs/clip
             ssu-bench ladder ... --set model.clip.tiny_weights=runs/clip/clip.pt
    """
    from bench.clip_pretrain import pretrain_clip
    from ssuformer.config import load_config

    rep = pretrain_clip(data, out, load_config(config, set_), epochs, batch, lr, seed, progress)
    typer.echo(f"{rep['pairs_train']} train regions, {rep['train_seconds']:.0f} s; val zero-shot: "
               f"colour {rep['val']['colour_accuracy']:.3f}, shape {rep['val']['shape_accuracy']:.3f} "
               f"({int(rep['val']['pairs'])} regions); {out / 'clip.pt'}")


def _floats(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(0 < v <= 1 for v in values):
        raise UserError(f"{flag} {text!r}: give comma-separated numbers in (0, 1], e.g. {flag} 1,0.5,0.3")
    return values


@app.command("instance-sweep")
def instance_sweep(
    checkpoint: Path = typer.Option(..., "--checkpoint", parser=file_path, help="an SSUFormer-I checkpoint"),
    data: Path = typer.Option(..., "--data", parser=folder_path, help="the dataset root it was trained on"),
    split: str = typer.Option("val", "--split", help="the split to choose on: val or train (test is refused)"),
    clips: int | None = typer.Option(None, "--clips", min=1, help="the first N clips of the split [default: all]"),
    nms: str = typer.Option("1,0.7,0.5,0.3,0.2,0.1", "--nms", help="mask-NMS IoUs to try (1: off)"),
    thresholds: str = typer.Option("0.3,0.4,0.5,0.6", "--thresholds", help="sounding-score thresholds to try"),
    out: Path | None = typer.Option(None, "--out", parser=folder_path, help="also write OUT/instance_sweep.json"),
    progress: bool = _PROGRESS,
) -> None:
    """Instance mIoU per (mask-NMS IoU, score threshold) on the T sampled frames of a split, at the model's size.

    Example: ssu-bench instance-sweep --checkpoint runs/bench_i/runs/audio-visual/best.pt --data ROOT --clips 30
    """
    from dataclasses import asdict

    from bench.instance_sweep import sweep
    from schemas import atomic

    if not checkpoint.is_file():
        raise UserError(f"--checkpoint {checkpoint}: no such file")
    if split == "test":
        raise UserError("--split test: choose settings on val (or train), then score test once with ssu-eval")
    rows, union, frames, threshold = sweep(checkpoint, data, split, clips, _floats(nms, "--nms"),
                                _floats(thresholds, "--thresholds"), progress)
    lines = [f"{split} split, {frames} frames at the model's size; union mIoU {union:.4f} (every query)", "",
             "| instance_nms | threshold | instance mIoU | instances per frame |", "|---|---|---|---|"]
    lines += [f"| {r.nms:g} | {r.threshold:g} | {r.instance_miou:.4f} | {r.kept_per_frame:.2f} |" for r in rows]
    mine = [r for r in rows if r.threshold == threshold]  # ssu-eval sets the NMS; the threshold is the model's
    if mine:
        best = max(mine, key=lambda r: r.instance_miou)
        lines += ["", f"best at the checkpoint's threshold {threshold:g}: --instance-nms {best.nms:g} "
                      f"(instance mIoU {best.instance_miou:.4f})"]
    typer.echo("\n".join(lines))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_json(out / "instance_sweep.json", {
            "checkpoint": str(checkpoint), "root": str(data), "split": split, "frames": frames, "union_miou": union,
            "instance_threshold": threshold, "rows": [asdict(r) for r in rows], "machine": _machine()}, indent=2)


@app.command("loop")
def loop(
    out: Path = typer.Option(..., "--out", parser=folder_path,
                             help="output folder: truth/, work/, rounds/, loop.json, loop.md, loop.png"),
    data: Path | None = typer.Option(None, "--data", parser=folder_path,
                                     help="a synthetic root with exact truth (default: make OUT/truth)"),
    clips: int = typer.Option(200, "--clips", min=2, help="clips of the synthetic truth root"),
    seed: int = _SEED,
    config: str = typer.Option("bench_i", "--config", help="the SSUFormer-I config (name or YAML)"),
    set_: list[str] = _SET,
    initial: int = typer.Option(20, "--initial", min=1, help="clips refined before the first round"),
    batch: int = typer.Option(20, "--batch", min=1, help="clips drafted (then refined) per round"),
    rounds: int = typer.Option(5, "--rounds", min=1),
    steps: int = typer.Option(2000, "--steps", min=1, help="training steps per round (from scratch each round)"),
    mask_stride: int = typer.Option(1, "--mask-stride", min=0, help="drafts predict every k-th frame"),
    meteor: bool = _METEOR, progress: bool = _PROGRESS,
) -> None:
    """The annotation loop with the truth as the refiner: per round train SSUFormer-I on the refined clips, draft
    the next batch (ssu-annotate --drafter), score the drafts, refine them with the truth (bench/loop.py).

    Example: ssu-bench loop --out runs/loop --clips 180 --initial 20 --batch 20 --rounds 5 --steps 2000
    """
    from bench.loop import run_loop, write_report
    from bench.steps import ensure_root
    from ssuformer.config import load_config

    cfg = load_config(config, set_)
    if not cfg.model.instances:
        raise UserError(f"--config {config}: the loop drafts with SSUFormer-I; give an instance config (bench_i)")
    out.mkdir(parents=True, exist_ok=True)
    truth = data if data is not None else ensure_root(out / "truth", clips, seed, progress)
    rows = run_loop(out, truth, cfg, initial, batch, rounds, steps, seed, mask_stride, meteor, progress)
    write_report(out, rows)
    typer.echo((out / "loop.md").read_text())


def _tiny_expert(cfg, root: Path, out: Path) -> None:
    """Point MoHE at a tiny random LLaVA and cache its features once per clip (all splits)."""
    from bench.tiny_llava import build_tiny_llava
    from schemas.root import DatasetRoot
    from ssuformer.data import sample_frames
    from ssuformer.mohe import cache_dir, cache_expert

    if cfg.model.expert.name_or_path == "llava-hf/llava-1.5-7b-hf":  # the paper's expert cannot be had here
        cfg.model.expert.name_or_path = str(build_tiny_llava(out / "tiny-llava"))
        cfg.model.expert.layers = [-1, -2]  # the tiny text model has 2 layers
    frames = sample_frames(cfg.data.frames)
    if not (cache_dir(root, cfg.model.expert, frames) / "meta.json").is_file():
        cache_expert(DatasetRoot.open(root), cfg.model.expert, frames, size=32, device="cpu")


def main() -> None:
    run_cli(app)


if __name__ == "__main__":
    main()
