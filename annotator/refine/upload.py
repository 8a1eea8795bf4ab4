"""Videos uploaded in the app enter the root exactly as `ssu-collect --source local` would bring them in.

The upload is written as a local-source index (a folder with index.csv: file,label) and run through
collection's public job functions (collection.job.build_job / run_job) with ssu-collect's default options,
so normalization and refusal reasons are the same as on the command line. A collected clip then gets its
first annotation: the automatic draft when the server runs with `--draft` (ssu-annotate's pipeline, the five
models loaded once, one clip at a time, each stage reported as progress), else an empty one (no sources yet)
that a refiner starts from by hand. Either way it appears in the queue.
"""

from __future__ import annotations

import csv
import re
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from annotator.refine.config import RefineConfig
from collection.index import SourceKind, read_local
from collection.job import build_job, run_job
from collection.request import CollectRequest
from schemas.errors import UserError
from schemas.media import probe_video
from schemas.models import Annotation, ClipStatus, now_utc
from schemas.root import DatasetRoot

if TYPE_CHECKING:
    from annotator.draft.pipeline import AutoAnnotator
    from annotator.refine.tool_models import ToolModels

_COLLECTING = threading.Lock()  # one collection run on the root at a time (uploads by several reviewers)
UPLOADS = ".uploads"
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}


@dataclass
class UploadResult:
    file: str
    clip_id: str | None
    ok: bool
    reason: str  # why it was refused (collection's reason text), or what happened


class AutoDraft:
    """The automatic pipeline for uploaded clips, shared by every user of the server: one clip at a time. Its
    SAM, SAM2 and VLM are the objects the refine tools use (loaded once), so a draft holds all of their
    locks: the tools wait for it, and it waits for them (the models keep per-call state)."""

    def __init__(self, annotator: AutoAnnotator, models: ToolModels) -> None:
        self._annotator = annotator
        self._models = models

    def __call__(self, root: DatasetRoot, clip_id: str, progress: Callable[[str], None]) -> Annotation:
        with self._models.exclusive():
            return self._annotator.annotate(root, clip_id, on_stage=progress).annotation


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(name).stem).strip("._") or "upload"
    return stem[:80] + Path(name).suffix.lower()


def _too_big(f: Path, limits: RefineConfig) -> str | None:
    """Why a file is refused before anything decodes it (size, then the container's claims), or None."""
    if f.stat().st_size > limits.max_upload_mb * 2**20:
        return f"larger than {limits.max_upload_mb} MB (ssu-refine --max-upload-mb)"
    try:
        info = probe_video(f)  # the container's header: no frame is decoded
    except UserError:
        return "not a readable video"
    if info.width * info.height > limits.max_pixels:
        return f"{info.width}x{info.height} is over {limits.max_pixels} pixels (ssu-refine --max-pixels)"
    if not 0 < info.fps <= limits.max_fps:
        return f"frame rate {info.fps:g} is not in (0, {limits.max_fps:g}] (ssu-refine --max-fps)"
    return None


_ABS_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\"/:]+/)+([^\s'\"/:]+)")


def no_paths(text: str) -> str:
    """A reason shown in the browser names files, never the server's folders."""
    return _ABS_PATH.sub(r"\1", text)


def ingest(root_path: Path, files: list[Path], label: str, actor: str,
           progress: Callable[[str], None] = lambda _m: None, draft: AutoDraft | None = None,
           limits: RefineConfig | None = None) -> list[UploadResult]:
    """Collect `files` (all labelled `label`) into the root, drafting each new clip when `draft` is given;
    returns one result per file. Files over `limits` are refused before they are copied or decoded, and
    the originals of refused files are deleted."""
    limits = limits or RefineConfig()
    label = " ".join((label or "").split())
    if not label or "," in label or ";" in label:
        raise UserError("label: give one category for the uploaded videos (no commas), e.g. 'playing piano'")
    if not files:
        raise UserError("no files: drop one or more videos on the upload box")
    if len(files) > limits.max_upload_files:
        raise UserError(f"{len(files)} files: upload at most {limits.max_upload_files} at a time")
    results = [_without_paths(r) for r in _ingest(root_path, files, label, actor, progress, draft, limits)]
    return results


def _without_paths(r: UploadResult) -> UploadResult:
    return UploadResult(r.file, r.clip_id, r.ok, no_paths(r.reason))


def _ingest(root_path: Path, files: list[Path], label: str, actor: str, progress: Callable[[str], None],
            draft: AutoDraft | None, limits: RefineConfig) -> list[UploadResult]:
    results: list[UploadResult] = []
    # the originals are kept under the root (hidden: validators and listings skip it) so that each clip's
    # source_path names a file that exists, as it does for ssu-collect --source local
    folder = Path(tempfile.mkdtemp(prefix=now_utc().strftime("%Y%m%dT%H%M%S-"), dir=_uploads(root_path)))
    names: dict[str, str] = {}
    for f in files:
        f = Path(f)
        if f.suffix.lower() not in VIDEO_SUFFIXES:
            results.append(UploadResult(f.name, None, False, f"not a video file ({f.suffix or 'no suffix'}); "
                                        f"upload one of {', '.join(sorted(VIDEO_SUFFIXES))}"))
            continue
        if why := _too_big(f, limits):
            results.append(UploadResult(f.name, None, False, why))
            continue
        name = _safe_name(f.name)
        while name in names:
            name = f"{Path(name).stem}_{len(names)}{Path(name).suffix}"
        shutil.copy(f, folder / name)
        names[name] = f.name
    if not names:
        shutil.rmtree(folder, ignore_errors=True)
        return results
    with open(folder / "index.csv", "w", newline="", encoding="utf-8") as fh:  # csv quotes what needs it
        w = csv.writer(fh)
        w.writerow(["file", "label"])
        w.writerows([name, label] for name in names)
    if not _COLLECTING.acquire(blocking=False):  # ssu-collect refuses a second run on a root at once
        progress("waiting for another upload to finish…")
        _COLLECTING.acquire()
    try:
        progress(f"normalizing {len(names)} video(s) as ssu-collect --source local does…")
        request = CollectRequest(source=SourceKind.local, index=folder, keywords=label, per_keyword=len(names))
        job, manifest_name = build_job(root_path, request)
        run_job(root_path, job, manifest_name, quiet=True,
                args={"argv": ["ssu-refine upload", label], "by": actor, "files": list(names.values())})
    finally:
        _COLLECTING.release()
    root = DatasetRoot.open(root_path)
    try:
        for name, original in names.items():
            cid = _clip_id(root, folder / name)
            row = root.catalog.get(cid) if cid else None
            if row is None:
                results.append(UploadResult(original, cid, False, "not collected (see the run's stats in runs/)"))
            elif row.source_path and Path(row.source_path).resolve() != (folder / name).resolve():
                (folder / name).unlink(missing_ok=True)
                results.append(UploadResult(original, cid, False, f"the root already has a clip {cid} (from "
                                            f"{Path(row.source_path).name}); rename the file and upload it again"))
            elif row.status == ClipStatus.failed:
                results.append(UploadResult(original, cid, False, row.reason or "failed"))
            elif row.status == ClipStatus.collected and draft is not None:
                results.append(_drafted(root, cid, original, actor, draft, progress))
            elif row.status == ClipStatus.collected:
                root.write_annotation(Annotation(clip_id=cid, status=ClipStatus.auto), actor=actor)
                results.append(UploadResult(original, cid, True, "normalized; in the queue with no sources yet "
                                            "(add sources and draw them)"))
            else:
                results.append(UploadResult(original, cid, True, f"already in the root ({row.status.value})"))
            if not results[-1].ok:  # a refused original is not kept (only collected clips name their source)
                (folder / name).unlink(missing_ok=True)
            progress(f"{original}: {no_paths(results[-1].reason)}")
    finally:
        root.close()
    return results


def _drafted(root: DatasetRoot, cid: str, original: str, actor: str, draft: AutoDraft,
             progress: Callable[[str], None]) -> UploadResult:
    """The automatic draft of one collected upload; if the pipeline fails, the clip still enters the queue
    (with no sources) and the result says why, so one bad clip does not stop the others."""
    try:
        ann = draft(root, cid, lambda stage: progress(f"{original}: automatic draft, {stage}"))
    except Exception as e:  # a model error on one clip: report it, keep the upload
        traceback.print_exc(file=sys.stderr)
        root.write_annotation(Annotation(clip_id=cid, status=ClipStatus.auto), actor=actor)
        return UploadResult(original, cid, True, f"normalized; the automatic draft failed ({type(e).__name__}: "
                            f"{e}); in the queue with no sources")
    root.write_annotation(ann, actor=actor)
    return UploadResult(original, cid, True, f"normalized; in the queue with an automatic draft "
                        f"({ann.note or f'{len(ann.sources)} source(s)'})")


def _uploads(root_path: Path) -> Path:
    path = Path(root_path) / UPLOADS
    path.mkdir(parents=True, exist_ok=True)
    return path


def _clip_id(root: DatasetRoot, path: Path) -> str | None:
    """The clip id collection gave this file (local sources: <stem>_<start:06d>, start 0 here)."""
    for e in read_local(path.parent).entries:
        if Path(e.local_name or "").name == path.name:
            return e.clip_id
    return None
