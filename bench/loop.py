"""The annotation loop, measured (`ssu-bench loop`): on the synthetic source, with the truth standing in for
the refiner, how good are the drafts of an SSUFormer-I checkpoint trained on the clips refined so far?

    truth root   OUT/truth: `ssu-synth` clips with exact annotations (what a perfect refiner would accept)
    work root    OUT/work:  the same media (hard links), every clip back to `collected`; the first `initial`
                 clips "refined" (the truth copied in, status accepted) and listed in splits/train.txt
    round k      train SSUFormer-I from scratch on the refined clips with a budget of `steps` steps
                 (ssuformer.trainer.train) -> draft the next `batch` clips with that checkpoint through
                 ssu-annotate's own code (annotator.draft.runner.run_drafts + drafter; status auto) -> score
                 the drafts against the truth -> "refine" them: the truth replaces each draft (accepted) and
                 the clips join the train split

Per round (OUT/loop.json, loop.md, loop.png against the number of refined clips the drafter trained on):
    miou       instance mIoU of the drafts (ssuformer.metrics.instances.InstanceMeter, ssu-eval --instances)
    bleu4      per-source BLEU-4 of the drafts' captions (the same meter: matched pairs)
    touch      share of source-frames a refiner would have to touch: per frame, truth and draft instances are
               paired one to one by the Hungarian assignment of their mask IoUs (the meter's rule); each of
               the max(#truth, #draft) slots is a source-frame, and it needs a touch when its IoU < 0.9
               (a missed truth source or a draft with no truth counts IoU 0)
    auroc      how well the draft's confidence (SoundSource.scores) finds its bad source-frames: over the draft
               instances, label = IoU with its paired truth < 0.5 (0 when unpaired), ranked by 1 - score;
               AUROC by the Mann-Whitney rank statistic (ties: average ranks); None without both labels.
               Missed truth sources have no confidence and are not in it (`touch` counts them)
Each round's drafts are kept under OUT/rounds/<k>/drafts/ (they are replaced by the truth in the work root).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from schemas import atomic
from schemas.constants import NUM_FRAMES
from schemas.models import Annotation, ClipStatus, Split
from schemas.root import DatasetRoot

TOUCH_IOU = 0.9
BAD_IOU = 0.5
ACTOR = "ssu-bench-loop"


@dataclass
class LoopRound:
    round: int
    refined: int                 # clips the drafter was trained on
    drafted: list[str]
    steps: int
    train_seconds: float
    draft_seconds: float
    miou: float | None = None
    bleu4: float | None = None
    touch: float | None = None
    auroc: float | None = None
    source_frames: int = 0       # slots scored by `touch`
    draft_instances: int = 0     # instances scored by `auroc`
    bad_instances: int = 0
    checkpoint: str = ""
    meter: dict[str, Any] = field(default_factory=dict)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """AUROC of `scores` for the positive `labels` (Mann-Whitney U / (n_pos n_neg), ties at average ranks)."""
    from scipy.stats import rankdata

    labels = np.asarray(labels, bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        return None
    ranks = rankdata(np.asarray(scores, np.float64))
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def source_frame_ious(truth: Annotation, draft: Annotation) -> tuple[list[float], list[tuple[float, float]]]:
    """(IoU of every source-frame slot, (confidence, IoU) of every draft instance) of one clip: per frame, truth
    and draft masks paired by the Hungarian assignment maximizing summed IoU (pycocotools IoU on the RLEs)."""
    from pycocotools import mask as mask_util
    from scipy.optimize import linear_sum_assignment

    slots: list[float] = []
    drafts: list[tuple[float, float]] = []
    for f in range(NUM_FRAMES):
        gts = [m.model_dump() for s in truth.sources if (m := s.masks[f]) is not None]
        dts = [(m.model_dump(), s.scores[f] if s.scores is not None and s.scores[f] is not None else 1.0)
               for s in draft.sources if (m := s.masks[f]) is not None]
        if not gts and not dts:
            continue
        iou = np.zeros((len(dts), len(gts)))
        if gts and dts:
            iou = np.asarray(mask_util.iou([d for d, _ in dts], gts, [0] * len(gts)), np.float64).reshape(iou.shape)
        paired = np.zeros(len(dts))
        got = np.zeros(len(gts))
        if gts and dts:
            rows, cols = linear_sum_assignment(iou, maximize=True)
            paired[rows] = iou[rows, cols]
            got[cols] = iou[rows, cols]
        # max(#truth, #draft) slots: the assigned pairs, then the unassigned side (IoU 0)
        slots += list(got) + [0.0] * max(0, len(dts) - len(gts))
        drafts += [(float(score), float(p)) for (_, score), p in zip(dts, paired, strict=True)]
    return slots, drafts


def make_work_root(truth: Path, work: Path, initial: list[str]) -> DatasetRoot:
    """The work root: the truth root's media hard-linked (copied across filesystems), every clip collected, the
    `initial` clips refined (truth, accepted) and in the train split."""
    if work.exists():
        shutil.rmtree(work)

    def link(src: str, dst: str) -> None:
        if not src.endswith((".mp4", ".wav")):  # the catalog and manifest change here: a copy of their own
            shutil.copy2(src, dst)
            return
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(truth, work, copy_function=link, ignore=shutil.ignore_patterns(".cache", "annotations", "splits"))
    (work / "annotations").mkdir()
    root = DatasetRoot.open(work)
    for cid in root.clip_ids():
        root.catalog.set_status(cid, ClipStatus.collected, ACTOR)
    return root


def refine_with_truth(root: DatasetRoot, truth: DatasetRoot, clips: list[str]) -> None:
    for cid in clips:
        ann = truth.read_annotation(cid).model_copy(deep=True)
        ann.status = ClipStatus.accepted
        root.write_annotation(ann, actor=ACTOR)


def _train_config(cfg, refined: int, steps: int):
    cfg = cfg.model_copy(deep=True)
    cfg.train.run_val = False  # the loop has no held-out split: each round trains its budget and drafts
    per_epoch = math.ceil(math.ceil(refined / cfg.train.batch_size) / cfg.train.grad_accum)
    cfg.train.epochs = math.ceil(steps / per_epoch)  # the schedule spans the budget (cosine ends at its end)
    return cfg


def score_round(truth: DatasetRoot, drafts: dict[str, Annotation], meteor: bool = False) -> dict[str, Any]:
    """The round's figures (see the module doc) of the drafted annotations against the truth."""
    from ssuformer.metrics.instances import InstanceMeter

    meter = InstanceMeter(captions=True)
    slots: list[float] = []
    inst: list[tuple[float, float]] = []
    for cid, draft in drafts.items():
        t = truth.read_annotation(cid)
        meter.update(t, draft)
        s, d = source_frame_ious(t, draft)
        slots += s
        inst += d
    res = meter.scores(meteor=meteor)
    caps = res.get("captions") or {}
    conf = np.array([c for c, _ in inst])
    bad = np.array([iou < BAD_IOU for _, iou in inst], bool)
    return {"miou": res.get("miou"), "bleu4": caps.get("bleu4"),
            "touch": float(np.mean(np.array(slots) < TOUCH_IOU)) if slots else None,
            "auroc": auroc(1.0 - conf, bad) if len(inst) else None,
            "source_frames": len(slots), "draft_instances": len(inst), "bad_instances": int(bad.sum()),
            "meter": {k: v for k, v in res.items() if k != "captions"} | {"captions": caps}}


def run_loop(out: Path, truth_path: Path, cfg, initial: int, batch: int, rounds: int, steps: int, seed: int,
             mask_stride: int, meteor: bool = False, progress: bool = True) -> list[LoopRound]:
    """Run the loop; writes OUT/loop.json after every round (a round is the unit of work)."""
    from annotator.draft.drafter import DrafterSettings
    from annotator.draft.runner import run_drafts
    from ssuformer.trainer import train

    truth = DatasetRoot.open(truth_path)
    order = sorted(c for c in truth.clip_ids() if truth.annotation_path(c).is_file())
    need = initial + batch * rounds
    if len(order) < need:
        from schemas.errors import UserError

        raise UserError(f"--clips: the loop needs {need} clips (initial {initial} + {rounds} rounds x {batch}); "
                        f"the truth root has {len(order)}")
    work = make_work_root(truth_path, out / "work", order[:initial])
    refined = order[:initial]
    refine_with_truth(work, truth, refined)
    rows: list[LoopRound] = []
    for k in range(rounds):
        work.write_splits({Split.train: refined, Split.val: [], Split.test: []})
        run_dir = out / "rounds" / str(k)
        t0 = time.perf_counter()
        res = train(work.path, _train_config(cfg, len(refined), steps), run_dir / "run", resume=None, seed=seed,
                    max_steps=steps, progress=progress)
        ckpt = res.best or res.last
        t1 = time.perf_counter()
        todo = order[initial + k * batch: initial + (k + 1) * batch]
        summary = run_drafts(work.path, DrafterSettings(checkpoint=Path(ckpt), mask_stride=mask_stride),
                             clips=todo, progress=progress)
        if summary.failed:
            raise RuntimeError(f"round {k}: drafting failed: {summary.failed}")
        t2 = time.perf_counter()
        drafts = {cid: work.read_annotation(cid) for cid in todo}
        (run_dir / "drafts").mkdir(parents=True, exist_ok=True)
        for cid, ann in drafts.items():
            atomic.write_text(run_dir / "drafts" / f"{cid}.json", ann.model_dump_json() + "\n")
        row = LoopRound(round=k, refined=len(refined), drafted=todo, steps=steps, train_seconds=t1 - t0,
                        draft_seconds=t2 - t1, checkpoint=str(ckpt), **score_round(truth, drafts, meteor))
        rows.append(row)
        refine_with_truth(work, truth, todo)
        refined = refined + todo
        atomic.write_json(out / "loop.json", {"rounds": [asdict(r) for r in rows], "settings": {
            "initial": initial, "batch": batch, "rounds": rounds, "steps": steps, "seed": seed,
            "mask_stride": mask_stride, "config": cfg.name, "touch_iou": TOUCH_IOU, "bad_iou": BAD_IOU}}, indent=2)
    work.write_splits({Split.train: refined, Split.val: [], Split.test: []})  # every refined clip in a split
    work.close()
    truth.close()
    return rows


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def write_report(out: Path, rows: list[LoopRound]) -> None:
    """OUT/loop.md (one line per round) and OUT/loop.png (the four figures against refined clips)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["| round | refined clips | drafted | inst. mIoU | BLEU-4 | touch (IoU < 0.9) | AUROC (IoU < 0.5) | "
             "train s | draft s |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.round} | {r.refined} | {len(r.drafted)} | {_fmt(r.miou)} | {_fmt(r.bleu4)} | {_fmt(r.touch)} | "
              f"{_fmt(r.auroc)} | {r.train_seconds:.0f} | {r.draft_seconds:.0f} |" for r in rows]
    atomic.write_text(out / "loop.md", "\n".join(lines) + "\n")
    x = [r.refined for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("miou", "draft instance mIoU"), ("bleu4", "per-source BLEU-4"),
                       ("touch", "source-frames to touch (IoU < 0.9)"), ("auroc", "AUROC of confidence (IoU < 0.5)")):
        ys = [getattr(r, key) for r in rows]
        ax.plot(x, [np.nan if y is None else y for y in ys], marker="o", label=label)
    ax.set_xlabel("refined clips the drafter was trained on")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("The annotation loop on the synthetic source")
    fig.tight_layout()
    with atomic.atomic_path(out / "loop.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    print(json.dumps([{k: getattr(r, k) for k in ("round", "refined", "miou", "bleu4", "touch", "auroc")}
                      for r in rows]))
