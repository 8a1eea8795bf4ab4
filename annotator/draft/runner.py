"""Batch runner of the auto pipeline (or of a checkpoint drafter): resumable, one progress bar, local or over
a Ray cluster.

Input: clips whose catalog status is `collected`. A clip that already has an annotation is skipped unless
`force`; force redoes automatic drafts (status auto) but never touches work people have started
(in_progress, needs_review, accepted, rejected). Each clip's annotation is written by the driver (one
catalog writer); a clip that fails is recorded with its reason and the run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from annotator.draft.pipeline import AutoAnnotator, DraftModels, PipelineConfig
from annotator.models.settings import ModelsConfig
from schemas.errors import UserError
from schemas.models import Annotation, ClipStatus
from schemas.root import DatasetRoot

ACTOR = "ssu-annotate"


class Drafts(Protocol):
    """What the runner drives: `annotate(root, clip_id)` -> a result with `.annotation` and `.seconds` (per
    stage). The SAM pipeline (AutoAnnotator) and the checkpoint drafter (drafter.Drafter) both are."""

    def annotate(self, root: DatasetRoot, clip_id: str) -> Any: ...


@dataclass
class _SamPipeline:
    """Builds the SAM pipeline in the process that runs it (picklable: a Ray actor builds its own)."""

    models: ModelsConfig
    cfg: PipelineConfig

    def __call__(self) -> Drafts:
        return AutoAnnotator(DraftModels.load(self.models, self.cfg), self.cfg, _runtime_params(self.models))


@dataclass
class RunSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)   # refined by people: never redone
    failed: dict[str, str] = field(default_factory=dict)  # clip id -> reason
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"annotated {len(self.done)}, skipped {len(self.skipped)} (already annotated; --force redoes), "
               f"failed {len(self.failed)} in {self.seconds:.1f} s"]
        if self.protected:
            out.append(f"left alone {len(self.protected)} clip(s) that people are refining or have refined")
        if self.stage_seconds:
            out.append("time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.stage_seconds.items()))
        out += [f"  failed {cid}: {why}" for cid, why in sorted(self.failed.items())]
        return out


def select(root: DatasetRoot, force: bool, clips: list[str] | None = None,
           limit: int | None = None) -> tuple[list[str], RunSummary]:
    """(clip ids to annotate, summary holding the skipped ones)."""
    summary = RunSummary()
    rows = {r.clip_id: r for r in root.catalog.rows()}
    if clips:
        unknown = [c for c in clips if c not in rows]
        if unknown:
            raise UserError(f"--clip {unknown[0]}: not in {root.path / 'catalog.sqlite'}; list clips with "
                            "ssu-validate or drop the flag")
        ids = list(clips)
    else:
        ids = sorted(rows)
    todo = []
    for cid in ids:
        st = rows[cid].status
        if st in (ClipStatus.failed,):
            continue
        if st in ClipStatus.annotated() - {ClipStatus.auto}:
            summary.protected.append(cid)
        elif (st is ClipStatus.auto or root.annotation_path(cid).is_file()) and not force:
            summary.skipped.append(cid)
        else:
            todo.append(cid)
    return (todo[:limit] if limit is not None else todo), summary


def _runtime_params(models: ModelsConfig) -> dict[str, str]:
    rt = models.runtime
    return {"device": rt.torch_device(), "dtype": str(rt.torch_dtype()).replace("torch.", ""),
            "offline": str(rt.is_offline())}


def _annotate_one(annot: Drafts, root: DatasetRoot, cid: str) -> tuple[str, dict[str, float]]:
    res = annot.annotate(root, cid)
    return res.annotation.model_dump_json(), res.seconds


def _reason(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:300]


def run(root_path: str | Path, models: ModelsConfig, cfg: PipelineConfig, force: bool = False,
        clips: list[str] | None = None, limit: int | None = None, progress: bool = True,
        ray_address: str | None = None, ray_workers: int | None = None,
        ray_init: dict[str, Any] | None = None, loaded: DraftModels | None = None) -> RunSummary:
    """Annotate the selected clips of the root; returns what happened (never raises for one clip)."""
    make = _SamPipeline(models, cfg)
    local = (lambda: AutoAnnotator(loaded, cfg, _runtime_params(models))) if loaded is not None else make
    return run_drafts(root_path, make, models.runtime.device.value, force=force, clips=clips, limit=limit,
                      progress=progress, ray_address=ray_address, ray_workers=ray_workers, ray_init=ray_init,
                      local=local)


def run_drafts(root_path: str | Path, make: Callable[[], Drafts], device: str = "auto", force: bool = False,
               clips: list[str] | None = None, limit: int | None = None, progress: bool = True,
               ray_address: str | None = None, ray_workers: int | None = None,
               ray_init: dict[str, Any] | None = None, local: Callable[[], Drafts] | None = None) -> RunSummary:
    """Draft the selected clips with what `make()` builds (once per process: here, or in each Ray actor);
    `device` ('auto', 'cpu', 'cuda', 'cuda:N') decides whether an actor takes a GPU. `local` builds it here
    instead of `make` (e.g. from models already loaded)."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    root = DatasetRoot.open(root_path)
    todo, summary = select(root, force, clips, limit)
    bar = tqdm(total=len(todo), unit="clip", desc="ssu-annotate", disable=not progress or not todo)
    try:
        if todo and ray_address is not None:
            results = _run_ray(root, todo, make, device, ray_address, ray_workers, ray_init or {})
        elif todo:
            annot = (local or make)()
            results = ((cid, _try(annot, root, cid)) for cid in todo)
        else:
            results = iter(())
        for cid, (ann_json, secs, err) in results:
            if err is None:
                try:
                    root.write_annotation(Annotation.model_validate_json(ann_json), actor=ACTOR)
                    summary.done.append(cid)
                    for k, v in secs.items():
                        summary.stage_seconds[k] = summary.stage_seconds.get(k, 0.0) + v
                except Exception as e:  # an invalid draft is a bug to report, not a reason to stop
                    summary.failed[cid] = _reason(e)
            else:
                summary.failed[cid] = err
            bar.update()
            bar.set_postfix(failed=len(summary.failed))
    finally:
        bar.close()
        root.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _try(annot: Drafts, root: DatasetRoot, cid: str) -> tuple[str, dict[str, float], str | None]:
    try:
        ann_json, secs = _annotate_one(annot, root, cid)
        return ann_json, secs, None
    except Exception as e:
        return "", {}, _reason(e)


def _run_ray(root: DatasetRoot, todo: list[str], make: Callable[[], Drafts], device: str, address: str,
             workers: int | None, init: dict[str, Any]) -> Any:
    """Spread clips over Ray actors (one model set each; one GPU each when --device cuda). The root must be
    on storage that every node sees. Yields (clip id, (annotation json, stage seconds, error))."""
    import os

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address=None if address == "local" else address, ignore_reinit_error=True,
             log_to_driver=False, **init)
    try:
        gpu = device.startswith("cuda") if device != "auto" else bool(ray.cluster_resources().get("GPU", 0))
        n = workers or max(1, int(ray.cluster_resources().get("GPU", 0)) if gpu else 1)

        @ray.remote(num_gpus=1 if gpu else 0, num_cpus=1)
        class Worker:
            def __init__(self, root_path: str, make: Callable[[], Drafts]) -> None:
                self.root = DatasetRoot.open(root_path)
                self.annot = make()

            def annotate(self, cid: str) -> tuple[str, tuple[str, dict[str, float], str | None]]:
                return cid, _try(self.annot, self.root, cid)

        from ray.util import ActorPool

        pool = ActorPool([Worker.remote(str(root.path), make)
                          for _ in range(min(n, len(todo)))])
        yield from pool.map_unordered(lambda a, cid: a.annotate.remote(cid), todo)
    finally:
        ray.shutdown()
