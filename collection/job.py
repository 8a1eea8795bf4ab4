"""Turn ssu-collect's flags into a Job (checking every user mistake up front) and run it with a progress bar."""

from __future__ import annotations

import csv
import os
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from collection.fetch import FetchOptions, parse_rate
from collection.index import Index, SourceKind, read_index
from collection.keywords import format_label_counts, load_synonyms, resolve, resolve_all, split_keywords
from collection.normalize import NoAudioPolicy, NormalizeOptions, ShortPolicy
from collection.plan import plan_keywords, plan_mixes
from collection.runner import Distributor, Job, RayOptions, RunStats, command_line, new_run_id, run
from collection.worker import TaskResult, WorkerConfig
from schemas.errors import UserError
from schemas.models import Fit, Manifest
from schemas.root import DatasetRoot

E = TypeVar("E", bound=StrEnum)


def enum_flag(cls: type[E], flag: str, value: str) -> E:
    try:
        return cls(value)
    except ValueError:
        raise UserError(f"{flag} {value!r}: use one of {', '.join(m.value for m in cls)}") from None


def load_index(source: str, index: Path, seed: int) -> Index:
    return read_index(enum_flag(SourceKind, "--source", source), Path(index), seed)


def list_keywords(source: str, index: Path, seed: int, split: str | None) -> str:
    ix = load_index(source, index, seed)
    text = format_label_counts(ix.labels(split))
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


def build_job(*, source: str, index: Path, keywords: str, per_keyword: int, seed: int, split: str | None,
              synonyms: Path | None, media_dir: Path | None, available_only: bool, fill: bool, mix: list[str],
              mix_count: int, fit: str, short: str, no_audio: str, allow_silent: bool, crf: int, preset: str,
              workers: int, ffmpeg_threads: int, ray: bool, ray_address: str | None, url_template: str,
              cookies: Path | None, retries: int, backoff: float, rate_limit: str | None, min_interval: float,
              root: Path, name: str | None) -> tuple[Job, str]:
    kind = enum_flag(SourceKind, "--source", source)
    norm = NormalizeOptions(fit=enum_flag(Fit, "--fit", fit), short=enum_flag(ShortPolicy, "--short", short),
                            no_audio=enum_flag(NoAudioPolicy, "--no-audio", no_audio), allow_silent=allow_silent,
                            crf=crf, preset=preset, threads=ffmpeg_threads)
    if media_dir is not None and not Path(media_dir).is_dir():
        raise UserError(f"--media-dir {media_dir}: not a folder")
    if cookies is not None and not Path(cookies).is_file():
        raise UserError(f"--cookies {cookies}: no such file; export cookies.txt from your browser")
    if "{youtube_id}" not in url_template and "{clip_id}" not in url_template:
        raise UserError(f"--url-template {url_template!r}: needs {{youtube_id}} or {{clip_id}}")
    if kind == SourceKind.music_avqa and media_dir is None:
        raise UserError("--media-dir: MUSIC-AVQA videos have no YouTube ids; give the folder of <video_id>.mp4")
    if available_only and media_dir is None and kind != SourceKind.local:
        raise UserError("--available-only needs --media-dir")
    if not keywords and not mix:
        raise UserError("--keywords: give keywords (or --mix); --list-keywords shows what the index offers")
    fetch_opts = FetchOptions(media_dir=Path(media_dir).resolve() if media_dir else None, url_template=url_template,
                              cookies=Path(cookies).resolve() if cookies else None, retries=retries, backoff=backoff,
                              rate_limit=parse_rate(rate_limit), min_interval=min_interval)
    ix = read_index(kind, Path(index), seed)
    labels = ix.labels(split)
    if not labels:
        raise UserError(f"--index {index}: no usable rows" + (f" in split {split!r}" if split else ""))
    groups = load_synonyms(synonyms)
    kws = resolve_all(split_keywords(keywords), labels, groups) if keywords else []
    plans = plan_keywords(ix, kws, split, fetch_opts.media_dir, available_only, seed)
    specs = [[resolve(k.strip(), labels, groups, "--mix") for k in m.split("+") if k.strip()] for m in mix]
    mixes = plan_mixes(ix, specs, mix_count, split, fetch_opts.media_dir, available_only, seed)
    root = Path(root)
    cfg = WorkerConfig(root=root.resolve(), fetch=fetch_opts, norm=norm)
    distributor = Distributor.ray if ray else Distributor.processes if workers > 1 else Distributor.inline
    job = Job(keyword_plans=plans, per_keyword=per_keyword, mixes=mixes, cfg=cfg, source=kind.value,
              distributor=distributor, workers=workers, fill=fill,
              ray=RayOptions(address=ray_address, num_cpus=workers) if ray else None,
              supercategories=supercategories(Path(index)) if kind == SourceKind.vggsound else {},
              bad_rows=list(ix.bad_rows))
    return job, name or root.resolve().name


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
