"""Plan a run: which clips to make, deterministically from (index, keywords, quotas, seed, split).

The same arguments always give the same tasks with the same clip ids, so a re-run can tell what is
already done. Sampling shuffles each keyword's candidates with a RNG seeded by (seed, label): adding a
keyword does not change what another keyword gets.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from collection.fetch import local_file
from collection.index import Index, IndexEntry
from collection.keywords import Keyword
from collection.reasons import CollectError
from schemas.errors import UserError
from schemas.models import Origin

MIX_ALTERNATIVES = 8  # a mix tile tries up to this many candidate clips before the mix fails


class TaskKind(StrEnum):
    single = "single"
    mix = "mix"


@dataclass(frozen=True)
class Tile:
    label: str                          # the keyword's label: the tile's category
    query: str                          # what the user typed
    candidates: tuple[IndexEntry, ...]  # a single clip has one; a mix tile tries them in order


@dataclass(frozen=True)
class Task:
    clip_id: str
    kind: TaskKind
    origin: Origin
    category: str
    tiles: tuple[Tile, ...]

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(t.label for t in self.tiles))


def candidates(index: Index, label: str, split: str | None, media_dir: Path | None, available_only: bool,
               seed: int) -> list[IndexEntry]:
    """The label's entries (in `split`), in the seeded order that sampling takes them."""
    pool = sorted((e for e in index.entries if label in e.labels and (split is None or e.split in (None, split))),
                  key=lambda e: e.clip_id)
    if available_only:
        keep = []
        for e in pool:
            try:
                local_file(e, media_dir)
                keep.append(e)
            except CollectError:
                pass
        pool = keep
    random.Random(f"{seed}:{label}").shuffle(pool)
    return pool


def single_task(kw: Keyword, e: IndexEntry) -> Task:
    return Task(clip_id=e.clip_id, kind=TaskKind.single, origin=e.origin, category=kw.label,
                tiles=(Tile(kw.label, kw.text, (e,)),))


@dataclass
class KeywordPlan:
    keyword: Keyword
    pool: list[IndexEntry]
    taken: int = 0  # how far into the pool sampling has gone

    def take(self, n: int, seen: set[str]) -> list[Task]:
        out = []
        while len(out) < n and self.taken < len(self.pool):
            e = self.pool[self.taken]
            self.taken += 1
            if e.clip_id not in seen:  # an entry matching two keywords goes to the first
                seen.add(e.clip_id)
                out.append(single_task(self.keyword, e))
        return out


def plan_keywords(index: Index, keywords: list[Keyword], split: str | None, media_dir: Path | None,
                  available_only: bool, seed: int) -> list[KeywordPlan]:
    plans = []
    for kw in keywords:
        pool = candidates(index, kw.label, split, media_dir, available_only, seed)
        if not pool:
            where = f" in split {split!r}" if split else ""
            extra = " with a file in --media-dir" if available_only else ""
            raise UserError(f"--keywords: {kw.text!r} ({kw.label}) has no entries{where}{extra} in {index.path}")
        plans.append(KeywordPlan(kw, pool))
    return plans


def mix_id(labels: list[str], seed: int, i: int) -> str:
    h = hashlib.sha1(f"{'+'.join(labels)}|{seed}".encode()).hexdigest()[:10]
    return f"mix_{h}_{i:03d}"


def plan_mixes(index: Index, specs: list[list[Keyword]], count: int, split: str | None, media_dir: Path | None,
               available_only: bool, seed: int) -> list[Task]:
    """`count` clips per spec; tile j of clip i takes candidates i, i+count, i+2*count, ... of its keyword,
    so clips of one spec do not share sources while the pool lasts."""
    tasks = []
    for spec in specs:
        if not 2 <= len(spec) <= 4:
            raise UserError(f"--mix: {'+'.join(k.text for k in spec)!r} has {len(spec)} keywords; give 2 to 4")
        labels = [k.label for k in spec]
        if len(set(labels)) != len(labels):
            raise UserError(f"--mix: {'+'.join(k.text for k in spec)!r} names the same label twice")
        pools = [candidates(index, k.label, split, media_dir, available_only, seed + 7919) for k in spec]
        for k, pool in zip(spec, pools, strict=True):
            if not pool:
                raise UserError(f"--mix: {k.text!r} has no usable entries in {index.path}")
        for i in range(count):
            tiles = []
            used: set[str] = set()
            for k, pool in zip(spec, pools, strict=True):
                order = [pool[(i + j * count) % len(pool)] for j in range(min(len(pool), MIX_ALTERNATIVES))]
                cands = tuple(dict.fromkeys(e for e in order if e.clip_id not in used))
                used.update(e.clip_id for e in cands[:1])
                tiles.append(Tile(k.label, k.text, cands))
            tasks.append(Task(clip_id=mix_id(labels, seed, i), kind=TaskKind.mix, origin=Origin.mix,
                              category=labels[0], tiles=tuple(tiles)))
    return tasks
