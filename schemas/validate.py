"""Check a whole dataset root against the contract; collect every problem instead of stopping at the first.

Checks: the manifest; every catalog row; every annotation against its schema (512x512 RLEs that decode and
are not empty -- null marks an absent source --, 300 frames per track, spans within 0..300, known agents;
a model's per-frame `scores`, when present, 300 values in [0, 1] or null, null wherever the mask is null);
clips decodable at 512x512, 30 fps, 300 frames, with audio; wavs 16 kHz mono with 160 000 samples;
annotations and media only for catalogued clips; splits disjoint, made of known clips, and together covering
every annotated clip.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from schemas import rle as rle_mod
from schemas.constants import FPS, NUM_FRAMES, NUM_SAMPLES, SAMPLE_RATE, SIZE
from schemas.errors import UserError
from schemas.media import probe_video, read_wav
from schemas.models import Annotation, ClipStatus, Split
from schemas.root import DatasetRoot, format_validation_error


@dataclass
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Report:
    root: str
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, path: Path | str, message: str) -> None:
        self.problems.append(Problem(str(path), message))


def annotation_problems(path: Path, clip_id: str, decode: bool = True) -> list[str]:
    """What is wrong with one annotation file (empty list: nothing). Shared by ssu-validate and ssu-export.

    `decode=False` (export's pre-flight check) skips decoding every mask to pixels (2-3 ms each): the counts
    are still parsed for the area, which finds empty masks and counts longer than the frame."""
    try:
        raw = json.loads(path.read_bytes())
    except OSError as e:
        return [f"cannot read ({e.strerror or e})"]
    except json.JSONDecodeError as e:
        return [f"invalid JSON ({e})"]
    out: list[str] = []
    # RLE problems first, with frame numbers, since pydantic would only say "size mismatch".
    for s in raw.get("sources", []) if isinstance(raw, dict) else []:
        masks = s.get("masks", []) if isinstance(s, dict) else []
        if len(masks) != NUM_FRAMES:
            out.append(f"source {s.get('id')}: {len(masks)} mask frames, expected {NUM_FRAMES}")
        present = [(f, m) for f, m in enumerate(masks) if m is not None]
        bad = next(((f, why) for f, m in present if (why := _rle_problem(m, decode))), None)
        if bad:
            out.append(f"source {s.get('id')} frame {bad[0]}: {bad[1]}")
            continue
        areas = rle_mod.area([m for _, m in present]) if present else []
        empty = [f for (f, _), a in zip(present, areas, strict=True) if a == 0]
        if empty:
            # The contract: null means absent (silent or hidden); a present mask has at least one pixel.
            out.append(f"source {s.get('id')}: empty mask in {len(empty)} frame(s) ({_frames(empty)}); "
                       "write null for frames where the source is absent")
        out += _score_problems(s, masks)
    try:
        ann = Annotation.model_validate(raw)
    except ValidationError as e:
        return [*out, format_validation_error(path, e).split(": ", 1)[1]]
    if ann.clip_id != clip_id:
        out.append(f"clip_id {ann.clip_id!r} does not match the file name")
    return out


def _score_problems(s: dict, masks: list) -> list[str]:
    """A model's per-frame confidence (`scores`, optional): 300 numbers in [0, 1] or null, and a number only
    where the source has a mask (a refiner's edit drops the score of the frames it replaces)."""
    scores = s.get("scores")
    if scores is None:
        return []
    sid = s.get("id")
    if not isinstance(scores, list) or len(scores) != NUM_FRAMES:
        n = len(scores) if isinstance(scores, list) else type(scores).__name__
        return [f"source {sid}: scores has {n} entries, expected {NUM_FRAMES} (one per frame, null where no mask)"]
    out = []
    bad = [f for f, v in enumerate(scores) if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)
                                                                  or not 0 <= v <= 1)]  # NaN fails 0 <= v too
    if bad:
        out.append(f"source {sid}: score outside [0, 1] in {len(bad)} frame(s) ({_frames(bad)}); "
                   "write a confidence in [0, 1] or null")
    orphan = [f for f, v in enumerate(scores) if v is not None and f < len(masks) and masks[f] is None]
    if orphan:
        out.append(f"source {sid}: score without a mask in {len(orphan)} frame(s) ({_frames(orphan)}); "
                   "write null where the source has no mask")
    return out


def _rle_problem(m: object, decode: bool) -> str | None:
    if decode:
        return rle_mod.is_valid(m, (SIZE, SIZE))
    if not isinstance(m, dict) or list(m.get("size", [])) != [SIZE, SIZE] or not isinstance(m.get("counts"), str):
        return rle_mod.is_valid(m, (SIZE, SIZE))  # the light checks failed: let is_valid say why
    try:
        return None if rle_mod.area(m) <= SIZE * SIZE else "RLE counts do not match its size"  # type: ignore[arg-type]
    except Exception as e:  # pycocotools raises various types on garbage
        return f"RLE counts do not decode ({e})"


def _frames(frames: list[int]) -> str:
    """[120, 121, 122, 140] -> '120-122, 140' (at most a few runs, then '...')."""
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    text = [f"{a}-{b}" if b > a else str(a) for a, b in runs[:4]]
    return ", ".join(text) + (", ..." if len(runs) > 4 else "")


def _check_annotation(root: DatasetRoot, clip_id: str, report: Report) -> None:
    path = root.annotation_path(clip_id)
    for message in annotation_problems(path, clip_id):
        report.add(path, message)


def _check_clip(root: DatasetRoot, clip_id: str, report: Report) -> None:
    vpath, apath = root.clip_path(clip_id), root.audio_path(clip_id)
    if not vpath.is_file():
        report.add(vpath, "missing clip")
    else:
        try:
            info = probe_video(vpath, decode=True)
            if (info.width, info.height) != (SIZE, SIZE):
                report.add(vpath, f"size {info.width}x{info.height}, expected {SIZE}x{SIZE}")
            if abs(info.fps - FPS) > 0.01:
                report.add(vpath, f"{info.fps:.3f} fps, expected {FPS}")
            if info.frames != NUM_FRAMES:
                report.add(vpath, f"{info.frames} decodable frames, expected {NUM_FRAMES} (truncated?)")
            if not info.has_audio:
                report.add(vpath, "no audio stream")
        except UserError as e:
            report.add(vpath, str(e).split(": ", 1)[-1])
    if not apath.is_file():
        report.add(apath, "missing audio")
    else:
        try:
            data, sr = read_wav(apath)
            if sr != SAMPLE_RATE:
                report.add(apath, f"{sr} Hz, expected {SAMPLE_RATE}")
            if data.ndim != 1:
                report.add(apath, f"{data.shape[1]} channels, expected mono")
            if data.shape[0] != NUM_SAMPLES:
                report.add(apath, f"{data.shape[0]} samples, expected {NUM_SAMPLES}")
        except UserError as e:
            report.add(apath, str(e).split(": ", 1)[-1])


def validate_root(path: str | Path, media: bool = True, workers: int = 2,
                  progress: Callable[[int, int], None] | None = None) -> Report:
    """Validate the root at `path`. Raises UserError only when `path` is not a dataset root at all."""
    root = DatasetRoot.open(path)
    report = Report(root=str(root.path))
    rows = root.catalog.rows()
    live = [r.clip_id for r in rows if r.status != ClipStatus.failed]
    catalogued = {r.clip_id for r in rows}
    cats = set(root.manifest.category_names())
    for r in rows:
        if cats and r.category not in cats and r.status != ClipStatus.failed:
            report.add(root.path / "catalog.sqlite", f"clip {r.clip_id}: category {r.category!r} not in ssu.json")
    annotated = root.annotated_ids()
    for cid in annotated:
        if cid not in catalogued:
            report.add(root.annotation_path(cid), "annotation of a clip that is not in the catalog")
    for sub, ext in (("clips", ".mp4"), ("audio", ".wav")):
        for p in sorted((root.path / sub).glob(f"*{ext}")):
            if not p.name.startswith(".") and p.stem not in catalogued:
                report.add(p, "file of a clip that is not in the catalog")

    done = 0
    total = len(annotated) + (len(live) if media else 0)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    for cid in annotated:
        _check_annotation(root, cid, report)
        tick()
    if media:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # PyAV decodes without the GIL
            for _ in pool.map(lambda c: _check_clip(root, c, report), live):
                tick()
    for cid in live:
        row = root.catalog.get(cid)
        if row and row.status in ClipStatus.annotated() and cid not in annotated:
            report.add(root.annotation_path(cid), f"missing: catalog status is {row.status.value}")

    seen: dict[str, str] = {}
    split_files = {s: root.split_path(s) for s in Split if root.split_path(s).is_file()}
    for split, spath in split_files.items():
        try:
            ids = root.read_split(split)
        except UserError as e:
            report.add(spath, str(e).split(": ", 1)[-1])
            continue
        for cid in ids:
            if cid in seen:
                report.add(spath, f"clip {cid} is also in {seen[cid]}")
            seen[cid] = split.value
            if cid not in catalogued:
                report.add(spath, f"unknown clip {cid}")
    if split_files:
        for cid in annotated:
            if cid not in seen and (r := root.catalog.get(cid)) and r.status != ClipStatus.rejected:
                report.add(root.path / "splits", f"annotated clip {cid} is in no split")
    report.checked = {"clips": len(live) if media else 0, "annotations": len(annotated),
                      "splits": len(split_files)}
    report.stats = root.stats()
    root.close()
    return report
