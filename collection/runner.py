"""The driver: lock the root, sweep leftovers of killed runs, skip what is done, hand the rest to a
distributor (inline, local processes, or Ray), write each row as its result arrives, and keep a stats
JSON for the run under <root>/runs/.

Resumability, clip by clip (finer than video2dataset's per-shard resume): a clip is done when its
catalog row says so and both media files exist. Re-running with the same arguments plans the same clip
ids, skips done ones, retries failed ones, and overwrites rows in place (no duplicates).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from collection.plan import KeywordPlan, Task, TaskKind
from collection.reasons import reason_of
from collection.worker import WORK_DIR, TaskResult, WorkerConfig, media_paths, run_task
from schemas import atomic
from schemas.errors import UserError
from schemas.models import CatalogRow, Category, ClipStatus, now_utc
from schemas.root import DatasetRoot

LOCK = ".collect.lock"


class Distributor(StrEnum):
    inline = "inline"        # --workers 1: in this process
    processes = "processes"  # --workers N: local worker processes
    ray = "ray"              # --ray: Ray tasks (local instance, or a cluster with --ray-address)


@dataclass
class RayOptions:
    address: str | None = None     # None: start a local instance
    num_cpus: int | None = None    # local instance only
    object_store_memory: int | None = None


@contextlib.contextmanager
def root_lock(root: Path) -> Iterator[None]:
    """One ssu-collect per root at a time (two would plan the same clips and race on them)."""
    fd = os.open(root / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{root}: another ssu-collect is running on this root; wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def sweep(root: DatasetRoot) -> int:
    """Remove what a killed run can leave: temp files, work folders, media without a collected row."""
    removed = 0
    shutil.rmtree(root.path / WORK_DIR, ignore_errors=True)
    rows = {r.clip_id: r.status for r in root.catalog.rows()}
    for sub, ext in (("clips", ".mp4"), ("audio", ".wav")):
        for p in (root.path / sub).glob("*"):
            if p.name.startswith(".") and ".tmp-" in p.name:
                p.unlink(missing_ok=True)  # an atomic_path temp of a killed writer
                removed += 1
            elif p.suffix == ext and rows.get(p.stem, ClipStatus.failed) == ClipStatus.failed:
                p.unlink(missing_ok=True)
                removed += 1
    return removed


def is_done(root: DatasetRoot, row: CatalogRow | None) -> bool:
    if row is None or row.status == ClipStatus.failed:
        return False
    mp4, wav = media_paths(root.path, row.clip_id)
    return mp4.is_file() and wav.is_file()


def update_manifest(root: DatasetRoot, labels: list[str], source: str, supercats: dict[str, str]) -> None:
    """Add the run's categories and source before any row is written (so the root validates at any time)."""
    m = root.manifest
    have = set(m.category_names())
    cats = list(m.categories) + [Category(name=lab, supercategory=supercats.get(lab)) for lab in
                                 dict.fromkeys(labels) if lab not in have]
    sources = list(m.sources) + ([source] if source not in m.sources else [])
    if len(cats) != len(m.categories) or sources != m.sources:
        root.write_manifest(m.model_copy(update={"categories": cats, "sources": sources}))


def _execute_processes(tasks: list[Task], cfg: WorkerConfig, workers: int) -> Iterator[TaskResult]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: the driver holds an SQLite connection and a progress-bar thread, which fork would copy
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_task, t, cfg) for t in tasks]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            for f in futures:
                f.cancel()


def _execute_ray(tasks: list[Task], cfg: WorkerConfig, opts: RayOptions) -> Iterator[TaskResult]:
    import ray

    kw: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False, "include_dashboard": False}
    if opts.address:
        kw["address"] = opts.address
    else:
        kw.update(num_cpus=opts.num_cpus, object_store_memory=opts.object_store_memory)
    ray.init(**kw)
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(run_task)  # retries cover a lost node, not a bad clip
        cfg_ref = ray.put(cfg)
        pending = [remote.remote(t, cfg_ref) for t in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        ray.shutdown()


def execute(tasks: list[Task], cfg: WorkerConfig, distributor: Distributor, workers: int,
            ray_opts: RayOptions | None = None) -> Iterator[TaskResult]:
    if not tasks:
        return iter(())
    if distributor == Distributor.ray:
        return _execute_ray(tasks, cfg, ray_opts or RayOptions())
    if distributor == Distributor.processes and workers > 1 and len(tasks) > 1:
        return _execute_processes(tasks, cfg, min(workers, len(tasks)))
    return (run_task(t, cfg) for t in tasks)


@dataclass
class RunStats:
    """What one run did; saved as <root>/runs/<run_id>.json (rewritten as the run goes)."""

    run_id: str
    args: dict[str, Any]
    started: str = field(default_factory=lambda: now_utc().isoformat())
    finished: str | None = None
    state: str = "running"
    planned: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    by_keyword: dict[str, Counter[str]] = field(default_factory=dict)
    bad_index_rows: int = 0
    bad_index_examples: list[str] = field(default_factory=list)
    swept: int = 0
    seconds: float = 0.0
    worker_seconds: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)

    def add(self, category: str, outcome: str, reason: str | None = None) -> None:
        self.by_keyword.setdefault(category, Counter())[outcome] += 1
        if outcome == "failed":
            self.failed += 1
            self.failed_by_reason[reason_of(reason)] += 1
        else:
            setattr(self, outcome, getattr(self, outcome) + 1)

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["clips_per_s"] = round(self.done / self.seconds, 4) if self.seconds else None
        d["by_keyword"] = {k: dict(v) for k, v in self.by_keyword.items()}
        return d

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in self.failed_by_reason.most_common())
        rate = f" ({self.done / self.seconds:.2f} clips/s)" if self.seconds and self.done else ""
        lines = [f"done {self.done}   skipped {self.skipped} (already collected)   failed {self.failed}"
                 + (f" ({reasons})" if reasons else "") + f"   in {self.seconds:.1f} s{rate}"]
        if self.bad_index_rows:
            lines.append(f"index: {self.bad_index_rows} malformed row(s) skipped, e.g. {self.bad_index_examples[0]}")
        return "\n".join(lines)


@dataclass
class Job:
    """Everything a run needs besides the root; built by the CLI (or a test)."""

    keyword_plans: list[KeywordPlan]
    per_keyword: int
    mixes: list[Task]
    cfg: WorkerConfig
    source: str
    distributor: Distributor = Distributor.inline
    workers: int = 1
    ray: RayOptions | None = None
    fill: bool = False          # replace failed candidates with the next ones until quotas are met
    supercategories: dict[str, str] = field(default_factory=dict)
    bad_rows: list[Any] = field(default_factory=list)  # index rows that could not be read (BadRow)


class Progress(Protocol):
    def set_total(self, total: int) -> None: ...

    def advance(self, result: TaskResult | None, n: int) -> None: ...  # None: n tasks skipped as done


def run(root: DatasetRoot, job: Job, stats: RunStats, progress: Progress | None = None) -> RunStats:
    """Collect into `root`; `progress` hears of every planned, skipped and finished task."""
    t_start = time.monotonic()
    runs_dir = root.path / "runs"
    stats_path = runs_dir / f"{stats.run_id}.json"
    last_save = 0.0

    def save(force: bool = False) -> None:
        nonlocal last_save
        if force or time.monotonic() - last_save > 2:
            stats.seconds = round(time.monotonic() - t_start, 3)
            atomic.write_json(stats_path, stats.to_json(), indent=2)
            last_save = time.monotonic()

    with root_lock(root.path):
        stats.swept = sweep(root)
        labels = [p.keyword.label for p in job.keyword_plans] + [t.label for m in job.mixes for t in m.tiles]
        update_manifest(root, labels, job.source, job.supercategories)
        seen: set[str] = set()
        wave = [t for p in job.keyword_plans for t in p.take(job.per_keyword, seen)] + list(job.mixes)
        good: Counter[str] = Counter()
        try:
            while wave:
                todo = []
                for t in wave:
                    stats.planned += 1
                    if is_done(root, root.catalog.get(t.clip_id)):
                        stats.add(t.category, "skipped")
                        good[t.category] += 1 if t.kind == TaskKind.single else 0
                    else:
                        todo.append(t)
                if progress:
                    progress.set_total(stats.planned)
                    progress.advance(None, len(wave) - len(todo))
                for res in execute(todo, job.cfg, job.distributor, job.workers, job.ray):
                    row = CatalogRow.model_validate(res.row)
                    root.catalog.upsert(row, actor="ssu-collect", action="collect")  # last write: marks done
                    stats.add(row.category, "done" if res.ok else "failed", row.reason)
                    good[row.category] += 1 if res.ok and not row.regions else 0
                    stats.worker_seconds.update({k: round(v, 3) for k, v in res.timings.items()})
                    if not res.ok:
                        stats.failures.append({"clip_id": row.clip_id, "reason": row.reason or ""})
                    if progress:
                        progress.advance(res, 1)
                    save()
                # --fill: another wave for keywords short of their quota, from the next candidates
                wave = [t for p in job.keyword_plans if job.fill
                        for t in p.take(job.per_keyword - good[p.keyword.label], seen)]
            stats.state = "finished"
        except KeyboardInterrupt:
            stats.state = "interrupted"
            raise
        except Exception:
            stats.state = "error"  # (a SIGKILLed run's file simply stays at "running")
            raise
        finally:
            stats.finished = now_utc().isoformat()
            save(force=True)
    return stats


def new_run_id() -> str:
    return f"{now_utc():%Y%m%dT%H%M%SZ}_{os.getpid()}"


def command_line() -> str:
    return " ".join(sys.argv)
