"""Result tables of ssu-eval: the terminal (rich) and Markdown, laid out like the paper's Tables II/III."""

from __future__ import annotations

from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from schemas.constants import NUM_FRAMES
from schemas.root import DatasetRoot
from ssuformer.metrics.captions import CaptionGrouping
from ssuformer.metrics.evaluate import EvalResult
from ssuformer.metrics.protocols import CAPTION_VERSION, SEGMENTATION_VERSION, Protocol

COLUMNS = ("Methods", "mIoU", "F-score", "BLEU", "ROUGE-L", "METEOR", "CIDEr")
INSTANCE_COLUMNS = ("Methods", "inst. mIoU", "AP", "AP50", "AP75", "matched", "missed", "unmatched", "BLEU",
                    "ROUGE-L", "CIDEr")


def _version(pkg: str) -> str | None:
    try:
        return importlib_metadata.version(pkg)
    except importlib_metadata.PackageNotFoundError:
        return None


def metadata(root: DatasetRoot, split: str, predictions: Path, protocol: Protocol, grouping: CaptionGrouping,
             result: EvalResult, created: str) -> dict[str, Any]:
    return {
        "dataset": root.manifest.name, "dataset_version": root.manifest.version, "data": str(root.path),
        "split": split, "clips": result.clips, "predictions": str(predictions), "created": created,
        "protocol": protocol.value, "protocol_description": protocol.describe(),
        "batch_frames": protocol.batch_frames, "segmentation_version": SEGMENTATION_VERSION,
        "caption_version": CAPTION_VERSION, "caption_grouping": grouping.value,
        "caption_frames_without_reference": result.caption_frames_skipped,
        "masks": result.masks_meta(),
        "bleu_in_table": "bleu4", "cider": "CIDEr-D (coco-caption)",
        "ra_ssu": _version("ra-ssu"), "pycocoevalcap": _version("pycocoevalcap"),
        **({"pycocotools": _version("pycocotools")} if result.instances else {}),
    }


def _fmt(x: object) -> str:
    return "-" if x is None else f"{float(x):.4f}"  # type: ignore[arg-type]


def _row(label: str, scores: dict[str, Any]) -> list[str]:
    cap = scores.get("captions") or {}
    return [label, _fmt(scores.get("miou")), _fmt(scores.get("fscore")), _fmt(cap.get("bleu4")),
            _fmt(cap.get("rouge_l")), _fmt(cap.get("meteor")), _fmt(cap.get("cider"))]


def rows(name: str, result: EvalResult) -> list[list[str]]:
    out = [_row(name, result.overall)]
    for cat, sc in result.per_category.items():
        clips = int(sc.get("frames", 0)) // NUM_FRAMES  # type: ignore[call-overload]
        out.append(_row(f"  {cat} ({clips} clip{'s' if clips != 1 else ''})", sc))
    return out


def instance_row(name: str, result: EvalResult) -> list[str]:
    inst = result.instances
    cap = inst.get("captions") or {}
    return [name, _fmt(inst.get("miou")), _fmt(inst.get("ap")), _fmt(inst.get("ap50")), _fmt(inst.get("ap75")),
            str(inst.get("matched")), str(inst.get("missed")), str(inst.get("unmatched")),
            _fmt(cap.get("bleu4")), _fmt(cap.get("rouge_l")), _fmt(cap.get("cider"))]  # type: ignore[union-attr]


def instance_notes(result: EvalResult) -> list[str]:
    inst = result.instances
    cap: dict[str, Any] = inst.get("captions") or {}  # type: ignore[assignment]
    notes = [f"{inst['gt_instances']} true and {inst['pred_instances']} predicted instances (a source in a frame) "
             f"in {inst['images']} frames; one-to-one Hungarian matching per frame, matched = IoU >= "
             f"{inst['iou_match']}: precision {_fmt(inst['precision'])}, recall {_fmt(inst['recall'])}",
             "inst. mIoU = the assigned IoUs / sum over frames of max(#true, #predicted): a missed source and a "
             f"predicted source without a true one both count 0 (over the true ones only: "
             f"{_fmt(inst.get('miou_truth'))}); AP = COCO mask AP@[.5:.95] (pycocotools COCOeval segm, one "
             "image per clip frame, class-agnostic)"]
    if cap:
        notes.append(f"BLEU = BLEU-4 of the matched sources' captions: {cap.get('pairs', 0)} pairs, "
                     f"{cap.get('empty_candidates', 0)} with no predicted caption")
    return notes


def _notes(meta: dict[str, Any]) -> list[str]:
    scored = "; ".join(f"{k}: {v} clip{'s' if v != 1 else ''}" for k, v in meta["masks"]["inputs"].items())
    return [
        f"protocol {meta['protocol_description']}",
        f"masks scored at {meta['masks']['compared_at']}: {scored}",
        f"BLEU = BLEU-4 (BLEU-1..3 in metrics.json); captions grouped per {meta['caption_grouping']}; "
        f"coco-caption via pycocoevalcap {meta['pycocoevalcap']}",
        f"{meta['dataset']} {meta['dataset_version']}, split {meta['split']} ({meta['clips']} clips); "
        f"metrics {meta['segmentation_version']}/{meta['caption_version']}",
    ]


def print_table(name: str, result: EvalResult, meta: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{meta['dataset']} / {meta['split']}", caption="\n".join(_notes(meta)),
                  caption_justify="left")
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="left" if i == 0 else "right")
    for r in rows(name, result):
        table.add_row(*r)
    Console().print(table)
    if result.instances:
        inst = Table(title="instances: one mask and caption per sounding source",
                     caption="\n".join(instance_notes(result)), caption_justify="left")
        for i, col in enumerate(INSTANCE_COLUMNS):
            inst.add_column(col, justify="left" if i == 0 else "right")
        inst.add_row(*instance_row(name, result))
        Console().print(inst)


def markdown_table(name: str, result: EvalResult, meta: dict[str, Any]) -> str:
    lines = [f"# {meta['dataset']} / {meta['split']}", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows(name, result)]
    lines += [""] + [f"- {n}" for n in _notes(meta)] + [f"- predictions: {meta['predictions']}",
                                                        f"- created: {meta['created']}", ""]
    if result.instances:
        lines += ["## Instances", "", "| " + " | ".join(INSTANCE_COLUMNS) + " |",
                  "|" + "|".join(["---"] + ["---:"] * (len(INSTANCE_COLUMNS) - 1)) + "|",
                  "| " + " | ".join(instance_row(name, result)) + " |", ""]
        lines += [f"- {n}" for n in instance_notes(result)] + [""]
    return "\n".join(lines)
