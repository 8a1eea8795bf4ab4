"""ssu-eval: score predictions of a split (mIoU, F-score, BLEU, ROUGE-L, METEOR, CIDEr) like Tables II/III,
and with --instances each predicted source on its own (instance mIoU, mask AP, per-source captions).

Heavy work is imported inside the command so that `ssu-eval --help` is instant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from schemas.cli_util import any_path, file_path, folder_path, new_app, run_cli
from schemas.errors import UserError
from ssuformer.metrics.captions import CaptionGrouping
from ssuformer.metrics.evaluate import MaskInput
from ssuformer.metrics.protocols import Protocol

app = new_app("Score predictions of a split against a dataset root's ground truth.")

EXAMPLE = """
Example:

  ssu-eval --data data/f-music --split test --predictions runs/ssu/pred_test --protocol avsegformer --per-category

  ssu-eval --data data/f-music --checkpoint runs/ssu/best.pt      # predict the test split, score its probabilities

  ssu-eval --data data/synth --predictions runs/ssu_i/pred_test --instances   # per-source metrics too
"""


@app.command(epilog=EXAMPLE)
def main_cmd(
    data: Path = typer.Option(..., "--data", parser=folder_path, help="dataset root (holds ssu.json and splits/)"),
    split: str = typer.Option("test", help="train, val or test"),
    predictions: Path | None = typer.Option(
        None, parser=any_path,
        help="folder of <clip_id>.json annotations, <clip_id>.npy probabilities (frames, H, W; float or uint8 q/255) "
             "or <clip_id>/ PNG folders (and its annotations/, probs/ subfolders); or one file"),
    checkpoint: Path | None = typer.Option(None, parser=file_path,
                                           help="an SSUFormer checkpoint: predict the split first, then score"),
    protocol: Protocol = typer.Option(Protocol.per_frame, help="how frames are batched for mIoU/F-score "
                                      "(avsegformer: 10 frames, avsbench: 20, per-frame: batch-independent)"),
    masks: MaskInput = typer.Option(MaskInput.auto, help="what to score: a clip's probabilities when it has them "
                                    "(auto), only probabilities, or the annotations' binary masks"),
    per_category: bool = typer.Option(False, "--per-category", help="also a row per clip category"),
    captions: bool = typer.Option(True, "--captions/--no-captions", help="score captions of .json predictions"),
    meteor: bool = typer.Option(True, "--meteor/--no-meteor", help="METEOR starts a JVM (~12 s, ~1 GB)"),
    caption_grouping: CaptionGrouping = typer.Option(
        CaptionGrouping.frame, help="coco-caption 'images': one per frame, or one per run of identical captions"),
    out: Path | None = typer.Option(None, parser=folder_path, help="where metrics.json and metrics.md go "
                                    "[default: <predictions>_eval_<split> beside the predictions]"),
    name: str | None = typer.Option(None, help="row label in the table [default: the predictions' name]"),
    instances: bool | None = typer.Option(
        None, "--instances/--no-instances",
        help="also score each predicted source on its own: instance mIoU, mask AP (COCO), per-source captions "
             "[default: on for a --checkpoint whose config has model.instances, else off]"),
    instance_nms: float | None = typer.Option(
        None, min=0.01, max=1.0, help="with --checkpoint of an instance model: mask-NMS IoU for this prediction (an "
                   "inference setting, e.g. chosen on val) [default: the checkpoint's model.instance_nms]"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Score predictions (or a checkpoint's predictions) of one split; print the table, write JSON and Markdown."""
    from schemas import atomic
    from schemas.root import DatasetRoot
    from ssuformer.metrics.evaluate import evaluate
    from ssuformer.metrics.report import markdown_table, metadata, print_table

    root = DatasetRoot.open(data)
    if (predictions is None) == (checkpoint is None):
        raise UserError("give exactly one of --predictions DIR_OR_FILE or --checkpoint PATH")
    if instance_nms is not None and checkpoint is None:
        raise UserError("--instance-nms sets how a checkpoint predicts: give it with --checkpoint PATH")
    if checkpoint is not None:
        if not checkpoint.exists():
            raise UserError(f"--checkpoint {checkpoint}: does not exist")
        from ssuformer.predict import predict_root

        if instances is None:
            instances = _instance_model(checkpoint)
        out = out or checkpoint.parent / f"{checkpoint.stem}_eval_{split}"
        predictions = predict_root(checkpoint, root.path, split, out / "predictions", progress=progress,
                                   instance_nms=instance_nms)
    assert predictions is not None
    out = out or predictions.parent / f"{predictions.stem}_eval_{split}"
    name = name or (checkpoint.stem if checkpoint is not None else predictions.stem)

    bar = None
    if progress:
        from tqdm import tqdm

        def bar(it, total):  # noqa: ANN001, ANN202 - tqdm-wrapped iterator
            return tqdm(it, total=total, desc="clips", unit="clip")

    result = evaluate(root, split, predictions, protocol=protocol, per_category=per_category, captions=captions,
                      meteor=meteor, grouping=caption_grouping, progress=bar, masks=masks,
                      instances=bool(instances))
    meta = metadata(root, split, predictions, protocol, caption_grouping, result,
                    created=datetime.now(UTC).isoformat(timespec="seconds"))
    print_table(name, result, meta)
    for what, n in result.scored.items():
        typer.echo(f"scored {what} of {n} clip{'s' if n != 1 else ''}")
    doc = {"meta": meta, "overall": result.overall, "protocols": result.protocols,
           "per_category": result.per_category, "instances": result.instances or None}
    atomic.write_json(out / "metrics.json", doc, indent=2)
    atomic.write_text(out / "metrics.md", markdown_table(name, result, meta))
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'metrics.md'}")


def _instance_model(checkpoint: Path) -> bool:
    """Whether the checkpoint's model predicts one source per instance (config model.instances)."""
    from ssuformer.checkpoint import read_checkpoint

    model = read_checkpoint(checkpoint).get("config", {}).get("model", {})
    return bool(model.get("instances", False))


def main() -> None:
    run_cli(app)


if __name__ == "__main__":
    main()
