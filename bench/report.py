"""The report of `ssu-bench`: Markdown + JSON tables, loss/metric curves and a strip of test frames (PNG)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from schemas import atomic
from schemas import rle as rle_mod
from schemas.media import read_frames
from schemas.models import Annotation
from schemas.root import DatasetRoot

SOURCE_COLOURS = ((200, 0, 50), (0, 90, 200), (220, 110, 0), (130, 20, 170), (0, 140, 70), (190, 0, 160))
COLUMNS = ("run", "mIoU", "F-score", "BLEU-4", "ROUGE-L", "METEOR", "CIDEr", "steps", "train min", "steps/s")


def _f(x: Any, digits: int = 4) -> str:
    return "-" if x is None else f"{float(x):.{digits}f}"


def table_row(name: str, test: dict[str, Any], steps: int | None = None, seconds: float | None = None) -> list[str]:
    cap = test.get("captions") or {}
    rate = (steps / seconds) if steps and seconds else None
    return [name, _f(test.get("miou")), _f(test.get("fscore")), _f(cap.get("bleu4")), _f(cap.get("rouge_l")),
            _f(cap.get("meteor")), _f(cap.get("cider")), "-" if steps is None else str(steps),
            "-" if seconds is None else f"{seconds / 60:.1f}", _f(rate, 3)]


INSTANCE_COLUMNS = ("run", "union mIoU", "instance mIoU", "mask AP", "AP50", "per-source BLEU-4",
                    "per-source ROUGE-L", "per-source CIDEr", "matched", "missed", "unmatched")


def instance_row(name: str, test: dict[str, Any]) -> list[str]:
    """One run's (or the semantic model's, `instances` absent) union and per-instance test scores."""
    inst = test.get("instances") or {}
    cap = inst.get("captions") or {}

    def n(k: str) -> str:
        return "-" if inst.get(k) is None else str(inst[k])

    return [name, _f(test.get("miou")), _f(inst.get("miou")), _f(inst.get("ap")), _f(inst.get("ap50")),
            _f(cap.get("bleu4")), _f(cap.get("rouge_l")), _f(cap.get("cider"), 3), n("matched"), n("missed"),
            n("unmatched")]


def instance_rows(doc: dict[str, Any]) -> list[list[str]]:
    """The instance table of a learning report: its runs, the trivial baseline and (--compare) the semantic model."""
    rows = [instance_row(r["name"], r["test"]) for r in doc["runs"]]
    rows.append(instance_row("union of all objects (one instance per frame)", doc["baseline"]["test"]))
    if doc.get("compare"):
        rows.append(instance_row(f"semantic model ({doc['compare']['report']})", doc["compare"]["test"] or {}))
    return rows


def instance_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(INSTANCE_COLUMNS) + " |", "|" + "---|" * len(INSTANCE_COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def plot_curves(runs: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    """loss.png (training loss per epoch) and metrics.png (validation mIoU and BLEU-4 per epoch) of each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, hist in runs.items():
        tr = [h for h in hist if h["phase"] == "train"]
        ax.plot([h["step"] for h in tr], [h["loss"] for h in tr], marker="o", ms=3, label=name)
    ax.set(xlabel="optimizer step", ylabel="training loss (epoch mean)", title="training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, out / "loss.png"))
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in zip(("miou", "bleu4"), axes, strict=True):
        for name, hist in runs.items():
            va = [h for h in hist if h["phase"] == "val" and h.get(key) is not None]
            if va:
                ax.plot([h["step"] for h in va], [h[key] for h in va], marker="o", ms=3, label=name)
        ax.set(xlabel="optimizer step", ylabel=f"validation {key}", title=f"val {key} (sampled frames)", ylim=(0, 1))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no validation rows (train.run_val false): no legend
            ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, out / "metrics.png"))
    plt.close(fig)
    return written


def _save(fig, path: Path) -> Path:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def frame_strip(root_path: Path, predictions: Path, clip_ids: list[str], out: Path,
                seconds: tuple[int, ...] = (1, 3, 5, 7, 9), size: int = 224) -> Path:
    """One row per clip, one tile per chosen second (its middle frame): the predicted mask in red, the true
    mask's outline in green, and under each tile the predicted (P) and true (T) caption. A prediction with
    per-source scores (SSUFormer-I) is drawn source by source instead: each predicted source in its own
    colour, with its own caption under the tile ("P1: ..." in that colour), then the true sources' captions."""
    from PIL import Image, ImageDraw, ImageFont


    root = DatasetRoot.open(root_path)
    frames = [s * 30 + 15 for s in seconds]
    text_h = 112
    sheet = Image.new("RGB", (size * len(frames), (size + text_h) * len(clip_ids)), "white")
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for r, clip_id in enumerate(clip_ids):
        imgs = read_frames(root.clip_path(clip_id), frames, size=size)
        gt = root.read_annotation(clip_id)
        pred = Annotation.model_validate_json((predictions / f"{clip_id}.json").read_bytes())
        gt_caps, pred_caps = gt.frame_captions(), pred.frame_captions()
        per_source = any(s.scores is not None for s in pred.sources)
        src_caps = [s.frame_captions() for s in pred.sources]
        for c, f in enumerate(frames):
            tile = imgs[c].astype(np.float32)
            gm = _small(rle_mod.decode(gt.semantic_rle(f)), size)
            if per_source:
                lines = []
                for k, src in enumerate(pred.sources):
                    if src.masks[f] is None:
                        continue
                    colour = SOURCE_COLOURS[k % len(SOURCE_COLOURS)]
                    pm = _small(rle_mod.decode(src.masks[f].model_dump()), size)
                    tile[pm] = 0.45 * tile[pm] + 0.55 * np.array(colour, np.float32)
                    lines += [(t, colour) for t in textwrap.wrap(f"P{k + 1}: " + (src_caps[k][f] or "-"), 38)[:2]]
                lines = lines[:4] or [("P: -", (139, 0, 0))]
            else:
                pm = _small(rle_mod.decode(pred.semantic_rle(f)), size)
                tile[pm] = 0.45 * tile[pm] + 0.55 * np.array([255, 0, 0], np.float32)
                lines = [(t, "darkred") for t in textwrap.wrap("P: " + (pred_caps[f] or "-"), 38)[:3]]
            edge = gm & ~_erode(gm)
            tile[edge] = (0, 255, 0)
            x, y = c * size, r * (size + text_h)
            sheet.paste(Image.fromarray(tile.clip(0, 255).astype(np.uint8)), (x, y))
            draw.text((x + 3, y + 3), f"{clip_id} f{f}", fill="yellow", font=font)
            lines += [(t, "black") for t in textwrap.wrap("T: " + (gt_caps[f] or "-"), 38)[:3]]
            for k, (line, colour) in enumerate(lines):
                draw.text((x + 3, y + size + 2 + 13 * k), line, fill=colour, font=font)
    path = out / "strip.png"
    with atomic.atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def _small(mask: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.NEAREST)) > 127


def _erode(m: np.ndarray) -> np.ndarray:
    e = m.copy()
    e[1:] &= m[:-1]
    e[:-1] &= m[1:]
    e[:, 1:] &= m[:, :-1]
    e[:, :-1] &= m[:, 1:]
    return e
