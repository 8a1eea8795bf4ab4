"""One task, start to finish, in whichever process runs it (inline, a local worker process, a Ray task).

The worker writes the clip's media atomically (temp file + rename) and returns the catalog row; the
driver writes the row. The row is therefore the last thing written for a clip and marks it done: media
without a collected row (a run killed in between) is removed by the next run's sweep and redone.
"""

from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collection.compose import TileSource, compose_clip, prepare_tile
from collection.fetch import Fetched, FetchOptions, fetch
from collection.normalize import NormalizeOptions, normalize_clip
from collection.plan import Task, TaskKind
from collection.reasons import CollectError, FailReason
from schemas.atomic import atomic_path
from schemas.models import CatalogRow, ClipStatus

WORK_DIR = ".collect-work"  # hidden: validators and listings skip it; swept at the start of each run


@dataclass(frozen=True)
class WorkerConfig:
    root: Path
    fetch: FetchOptions
    norm: NormalizeOptions


@dataclass
class TaskResult:
    clip_id: str
    row: dict[str, Any]              # CatalogRow as JSON (plain data crosses process/Ray boundaries)
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.row["status"] != ClipStatus.failed.value


def media_paths(root: Path, clip_id: str) -> tuple[Path, Path]:
    return root / "clips" / f"{clip_id}.mp4", root / "audio" / f"{clip_id}.wav"


def _base_row(task: Task) -> dict[str, Any]:
    first = task.tiles[0].candidates[0]
    row: dict[str, Any] = {"clip_id": task.clip_id, "origin": task.origin, "category": task.category,
                           "keywords": task.labels, "meta": {"query": [t.query for t in task.tiles]}}
    if task.kind == TaskKind.single:
        row.update(youtube_id=first.youtube_id, start_seconds=first.start,
                   keywords=list(dict.fromkeys([task.category, *first.labels])))
        if first.split:
            row["meta"]["index_split"] = first.split
        row["meta"].update(first.meta)
    return row


def _single(task: Task, cfg: WorkerConfig, work: Path, row: dict[str, Any], timings: dict[str, float]) -> None:
    entry = task.tiles[0].candidates[0]
    t0 = time.monotonic()
    got = fetch(entry, cfg.fetch, work)
    timings["fetch"] = time.monotonic() - t0
    mp4, wav = media_paths(cfg.root, task.clip_id)
    t0 = time.monotonic()
    with atomic_path(mp4) as tmp_mp4, atomic_path(wav) as tmp_wav:
        res = normalize_clip(got.path, got.start, tmp_mp4, tmp_wav, cfg.norm)
    timings["normalize"] = time.monotonic() - t0
    row.update(transform=res.transform.model_dump(mode="json"),
               source_path=str(got.path) if not got.downloaded else
               cfg.fetch.url_template.format(youtube_id=entry.youtube_id, start=int(entry.start),
                                             clip_id=entry.clip_id))
    row["meta"].update(res.meta, fetched="yt-dlp" if got.downloaded else "local")


def _mix(task: Task, cfg: WorkerConfig, work: Path, row: dict[str, Any], timings: dict[str, float]) -> None:
    tiles: list[TileSource] = []
    passed_over: list[str] = []
    t0 = time.monotonic()
    for tile in task.tiles:
        last: CollectError | None = None
        for entry in tile.candidates:
            if any(t.source_clip == entry.clip_id for t in tiles):
                continue
            try:
                got: Fetched = fetch(entry, cfg.fetch, work / entry.clip_id)
                tiles.append(prepare_tile(TileSource(got.path, got.start, tile.label, entry.clip_id), cfg.norm))
                break
            except CollectError as e:
                last = e
                passed_over.append(f"{entry.clip_id}: {e.text[:120]}")
        else:
            detail = last.text if last else "no candidates"
            raise CollectError(FailReason.mix_incomplete, f"no usable clip for {tile.label!r} "
                                                          f"({len(tile.candidates)} tried; last: {detail})")
    timings["fetch"] = time.monotonic() - t0
    mp4, wav = media_paths(cfg.root, task.clip_id)
    t0 = time.monotonic()
    with atomic_path(mp4) as tmp_mp4, atomic_path(wav) as tmp_wav:
        regions, meta = compose_clip(tiles, tmp_mp4, tmp_wav, cfg.norm)
    timings["normalize"] = time.monotonic() - t0
    row["regions"] = [r.model_dump(mode="json") for r in regions]
    row["meta"].update(meta, passed_over=passed_over)


def run_task(task: Task, cfg: WorkerConfig) -> TaskResult:
    """Never raises for a clip's own problems: they come back as a failed row with the reason."""
    start = time.monotonic()
    work = cfg.root / WORK_DIR / task.clip_id
    row = _base_row(task)
    timings: dict[str, float] = {}
    try:
        (_single if task.kind == TaskKind.single else _mix)(task, cfg, work, row, timings)
        row["status"] = ClipStatus.collected
    except CollectError as e:
        row.update(status=ClipStatus.failed, reason=e.text, transform=None, regions=[])
    except Exception as e:  # a bug must not stop the run; the traceback's tail goes into the reason
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        row.update(status=ClipStatus.failed, reason=f"{FailReason.internal.value}: {tb[:300]}", transform=None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    validated = CatalogRow.model_validate(row).model_dump(mode="json", exclude={"created_at", "updated_at"})
    return TaskResult(task.clip_id, validated, time.monotonic() - start, timings)
