"""Turn a CollectRequest (ssu-collect's flags, an upload) into a Job, checking every user mistake up front, and
run it with a progress bar."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from collection.index import SourceKind, read_index
from collection.keywords import format_label_counts, load_synonyms, resolve, resolve_all, split_keywords
from collection.plan import plan_keywords, plan_mixes
from collection.request import CollectRequest
from collection.runner import Distributor, Job, RayOptions, RunStats, command_line, new_run_id, run
from collection.worker import TaskResult, WorkerConfig
from schemas.errors import UserError
from schemas.models import Manifest
from schemas.root import DatasetRoot


def list_keywords(request: CollectRequest) -> str:
    """The index's labels with their counts (in --split when given): what --keywords can ask for."""
    ix = read_index(request.source, request.index, request.seed)
    text = format_label_counts(ix.labels(request.split))
    if ix.bad_rows:
        text += f"\n{len(ix.bad_rows)} malformed row(s) skipped, e.g. {ix.bad_rows[0]}"
    return text


def supercategories(index: Path) -> dict[str, str]:
    """VGG-Sound's stat.csv (label,count,category) beside the index gives each label its supercategory."""
    stat = Path(index).parent / "stat.csv"
    if not stat.is_file():
        return {}
    try:
        return {r[0].strip(): r[2].strip() for r in csv.reader(stat.read_text(encoding="utf-8").splitlines())
                if len(r) >= 3}
    except (OSError, UnicodeDecodeError):
        return {}


def build_job(root: Path, request: CollectRequest) -> tuple[Job, str]:
    """The Job that collects `request` into `root`, and the name a new root gets; every user mistake is a
    UserError raised here, before any clip is made."""
    r = request
    r.check()
    fetch_opts = r.fetch_options()
    ix = read_index(r.source, r.index, r.seed)
    labels = ix.labels(r.split)
    if not labels:
        raise UserError(f"--index {r.index}: no usable rows" + (f" in split {r.split!r}" if r.split else ""))
    groups = load_synonyms(r.synonyms)
    kws = resolve_all(split_keywords(r.keywords), labels, groups) if r.keywords else []
    plans = plan_keywords(ix, kws, r.split, fetch_opts.media_dir, r.available_only, r.seed)
    specs = [[resolve(k.strip(), labels, groups, "--mix") for k in m.split("+") if k.strip()] for m in r.mix]
    mixes = plan_mixes(ix, specs, r.mix_count, r.split, fetch_opts.media_dir, r.available_only, r.seed)
    root = Path(root)
    cfg = WorkerConfig(root=root.resolve(), fetch=fetch_opts, norm=r.normalize_options())
    distributor = Distributor.ray if r.ray else Distributor.processes if r.workers > 1 else Distributor.inline
    job = Job(keyword_plans=plans, per_keyword=r.per_keyword, mixes=mixes, cfg=cfg, source=r.source.value,
              distributor=distributor, workers=r.workers, fill=r.fill,
              ray=RayOptions(address=r.ray_address, num_cpus=r.workers) if r.ray else None,
              supercategories=supercategories(r.index) if r.source == SourceKind.vggsound else {},
              bad_rows=list(ix.bad_rows))
    return job, r.name or root.resolve().name


SKELETON = {"clips", "audio", "annotations", "splits", "catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"}


def _half_created(root: Path) -> bool:
    """A root whose creation was killed before ssu.json (written last) landed: empty skeleton only."""
    import sqlite3

    names = {p.name for p in root.iterdir() if not p.name.startswith(".")}
    if not names or not names <= SKELETON:
        return False
    if any(any((root / d).iterdir()) for d in names if (root / d).is_dir()):
        return False
    db = root / "catalog.sqlite"
    if db.is_file():
        try:
            with sqlite3.connect(db) as con:
                if con.execute("SELECT name FROM sqlite_master WHERE name='clips'").fetchone() and \
                        con.execute("SELECT COUNT(*) FROM clips").fetchone()[0]:
                    return False
        except sqlite3.Error:
            return False
    return True


def open_or_create(root: Path, name: str) -> DatasetRoot:
    if (root / "ssu.json").is_file():
        return DatasetRoot.open(root)
    if root.is_dir() and _half_created(root):
        for n in SKELETON:
            p = root / n
            if p.is_dir():
                p.rmdir()
            elif p.exists():
                p.unlink()
    return DatasetRoot.create(root, Manifest(name=name, description="collected with ssu-collect"))


class Bar:
    """tqdm with a running done/failed tally."""

    def __init__(self, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, desc="collect", unit="clip", disable=quiet, dynamic_ncols=True)
        self.ok = self.failed = self.skipped = 0

    def set_total(self, total: int) -> None:
        self.bar.total = total
        self.bar.refresh()

    def advance(self, result: TaskResult | None, n: int) -> None:
        if result is None:
            self.skipped += n
        elif result.ok:
            self.ok += 1
        else:
            self.failed += 1
        self.bar.set_postfix(done=self.ok, skipped=self.skipped, failed=self.failed, refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def run_job(root: Path, job: Job, name: str, quiet: bool = False, args: dict[str, Any] | None = None) -> RunStats:
    droot = open_or_create(Path(root), name)
    bad = job.bad_rows
    stats = RunStats(run_id=new_run_id(), args=args or {"argv": command_line(), "cwd": os.getcwd(),
                                                         "distributor": job.distributor.value,
                                                         "workers": job.workers})
    stats.bad_index_rows = len(bad)
    stats.bad_index_examples = [str(b) for b in bad[:20]]
    bar = Bar(quiet)
    try:
        run(droot, job, stats, bar)
    finally:
        bar.close()
        droot.close()
        # --quiet hides the progress bar, never the summary (the CLI contract, tests/test_cli_contract.py)
        print(stats.summary())
        print(f"stats: {Path(root) / 'runs' / (stats.run_id + '.json')}")
    return stats
