"""DatasetRoot: the one way to create, open, read and write a dataset root.

<root>/ssu.json                    Manifest
<root>/catalog.sqlite              Catalog (one row per clip + audit log)
<root>/clips/<clip_id>.mp4         512x512, 30 fps, 300 frames, H.264 + AAC
<root>/audio/<clip_id>.wav         16 kHz mono PCM, 160 000 samples
<root>/annotations/<clip_id>.json  Annotation
<root>/splits/{train,val,test}.txt one clip id per line
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from schemas import atomic
from schemas import rle as rle_mod
from schemas.catalog import Catalog
from schemas.errors import UserError
from schemas.models import Annotation, ClipStatus, Manifest, Split, check_clip_id

MANIFEST = "ssu.json"
CATALOG = "catalog.sqlite"
M = TypeVar("M", bound=BaseModel)


def format_validation_error(path: Path | str, e: ValidationError) -> str:
    first = e.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{path}: {loc}: {first['msg']}{more}"


def read_model(path: Path, model: type[M]) -> M:
    """A pydantic model from a JSON file; an invalid file is a UserError naming its first problem."""
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as e:
        raise UserError(format_validation_error(path, e)) from None


class DatasetRoot:
    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest
        self._catalog: Catalog | None = None

    # -- create / open ----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, manifest: Manifest, exist_ok: bool = False) -> DatasetRoot:
        path = Path(path)
        if (path / MANIFEST).exists():
            if not exist_ok:
                raise UserError(f"{path}: already a dataset root; open it, or choose an empty folder")
            return cls.open(path)
        if path.exists() and any(p for p in path.iterdir() if not p.name.startswith(".")):
            raise UserError(f"{path}: folder is not empty and not a dataset root; choose an empty folder")
        for sub in ("clips", "audio", "annotations", "splits"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        Catalog(path / CATALOG, create=True).close()
        atomic.write_text(path / MANIFEST, manifest.model_dump_json(indent=2) + "\n")  # written last: marks done
        return cls(path, manifest)

    @classmethod
    def open(cls, path: str | Path) -> DatasetRoot:
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise UserError(f"{path}: not a dataset root (no {MANIFEST}); create one with ssu-synth or ssu-collect")
        return cls(path, read_model(mpath, Manifest))

    def write_manifest(self, manifest: Manifest) -> None:
        atomic.write_text(self.path / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
        self.manifest = manifest

    @property
    def catalog(self) -> Catalog:
        """This process's catalog connection (open a new DatasetRoot per thread/process)."""
        if self._catalog is None:
            self._catalog = Catalog(self.path / CATALOG)
        return self._catalog

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    # -- paths ------------------------------------------------------------------------------------
    def _id(self, clip_id: str) -> str:
        try:
            return check_clip_id(clip_id)
        except ValueError as e:
            raise UserError(f"{self.path}: {e}") from None

    def clip_path(self, clip_id: str) -> Path:
        return self.path / "clips" / f"{self._id(clip_id)}.mp4"

    def audio_path(self, clip_id: str) -> Path:
        return self.path / "audio" / f"{self._id(clip_id)}.wav"

    def annotation_path(self, clip_id: str) -> Path:
        return self.path / "annotations" / f"{self._id(clip_id)}.json"

    def split_path(self, split: Split) -> Path:
        return self.path / "splits" / f"{Split(split).value}.txt"

    # -- listing ----------------------------------------------------------------------------------
    def clip_ids(self, status: ClipStatus | set[ClipStatus] | None = None) -> list[str]:
        """Clips in the catalog (optionally by status), excluding failed ones unless asked for."""
        if status is None:
            status = set(ClipStatus) - {ClipStatus.failed}
        return [r.clip_id for r in self.catalog.rows(status=status)]

    def annotated_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.path / "annotations").glob("*.json") if not p.name.startswith("."))

    # -- annotations ------------------------------------------------------------------------------
    def read_annotation(self, clip_id: str) -> Annotation:
        path = self.annotation_path(clip_id)
        if not path.is_file():
            raise UserError(f"{path}: no annotation for clip {clip_id!r}")
        ann = read_model(path, Annotation)
        if ann.clip_id != clip_id:
            raise UserError(f"{path}: holds clip_id {ann.clip_id!r}, expected {clip_id!r}")
        return ann

    def write_annotation(self, ann: Annotation, actor: str = "system", sync_status: bool = True) -> Path:
        """Validate, write atomically, and (by default) set the catalog status to the annotation's."""
        ann = Annotation.model_validate(ann.model_dump())  # re-validate after in-place edits
        path = self.annotation_path(ann.clip_id)
        atomic.write_text(path, ann.model_dump_json() + "\n")
        if sync_status:
            row = self.catalog.get(ann.clip_id)
            if row is None:
                raise UserError(f"{self.path}: unknown clip id {ann.clip_id!r}; add it to the catalog first")
            if row.status != ann.status:
                self.catalog.set_status(ann.clip_id, ann.status, actor)
        return path

    def semantic_mask(self, clip_id: str, frame: int) -> np.ndarray:
        """(512, 512) bool: union of the sounding sources' masks in `frame`."""
        return rle_mod.decode(self.read_annotation(clip_id).semantic_rle(frame))

    # -- splits -----------------------------------------------------------------------------------
    def read_split(self, split: Split | str) -> list[str]:
        try:
            split = Split(split)
        except ValueError:
            raise UserError(f"unknown split {split!r}; use one of train, val, test") from None
        path = self.split_path(split)
        if not path.is_file():
            raise UserError(f"{path}: no {split.value} split; make splits with `ssu-export splits {self.path}`")
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        for i in ids:
            try:
                check_clip_id(i)
            except ValueError as e:
                raise UserError(f"{path}: {e}") from None
        return ids

    def write_splits(self, splits: dict[Split, list[str]]) -> None:
        seen: dict[str, Split] = {}
        for split, ids in splits.items():
            for i in ids:
                self._id(i)
                if i in seen:
                    raise UserError(f"clip {i!r} is in both {seen[i].value} and {Split(split).value}")
                seen[i] = Split(split)
        for split, ids in splits.items():
            atomic.write_text(self.split_path(split), "".join(f"{i}\n" for i in ids))

    def splits(self) -> dict[Split, list[str]]:
        return {s: self.read_split(s) for s in Split if self.split_path(s).is_file()}

    def stats(self) -> dict[str, object]:
        """Counts that ssu-validate prints and the dataset card repeats."""
        rows = self.catalog.rows()
        by_cat: dict[str, int] = {}
        for r in rows:
            if r.status != ClipStatus.failed:
                by_cat[r.category] = by_cat.get(r.category, 0) + 1
        return {"clips": sum(by_cat.values()), "failed": sum(r.status == ClipStatus.failed for r in rows),
                "annotations": len(self.annotated_ids()),
                "status": {k.value: v for k, v in sorted(self.catalog.counts().items())},
                "categories": dict(sorted(by_cat.items())),
                "splits": {s.value: len(ids) for s, ids in self.splits().items()}}

    def __repr__(self) -> str:
        return f"DatasetRoot({str(self.path)!r})"
