"""Train/val/test splits by clip: grouped by source video, stratified by category, balanced test set.

Paper (V.A): "we divide 75%, 10%, and 15% of the f-Music dataset and 70%, 15%, and 15% of the f-Lifescene
dataset into training, validation, and testing sets. All the categories in the testing set are balanced."

How:
1. Group clips that must stay together: same YouTube id, same source file, or a stitched clip and the clips
   its tiles came from (CatalogRow.regions[].source_clip). Union-find over those keys.
2. Totals per split over the whole root: the ratios times N clips, rounded by largest remainder (14 clips at
   70/15/15: 9.8, 2.1, 2.1 -> 10/2/2). On a tiny root, a split with a non-zero ratio that rounds to 0 takes a
   clip from the largest split, as long as there are enough clips.
3. Targets per category: the test total is dealt out one clip at a time to the category with the fewest test
   clips so far (balanced: equal counts, +-1), at most half of a category while others have room (small
   categories keep training data); val is dealt in proportion to the category sizes (largest remainder),
   keeping a clip for train where possible; train gets the rest. `balance_test=False` deals test in proportion
   to the category sizes too.
4. Groups, largest first (ties in a seeded random order), go to the split that still needs most clips of
   their categories; overshooting a target is penalised. Deterministic for a seed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from schemas.errors import UserError
from schemas.models import CatalogRow, ClipStatus, Origin, Split
from schemas.root import DatasetRoot

SPLITS: tuple[Split, Split, Split] = (Split.train, Split.val, Split.test)


def parse_ratios(text: str, flag: str = "--ratios") -> tuple[float, float, float]:
    """'75,10,15' or '0.7,0.15,0.15' (must sum to 100, or to 1) -> fractions summing to 1."""
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{flag} {text!r}: use three numbers, e.g. 75,10,15") from None
    if len(vals) != 3 or min(vals) < 0 or vals[0] <= 0:
        raise UserError(f"{flag} {text!r}: need three numbers >= 0 (train > 0), e.g. 75,10,15")
    total = sum(vals)
    if not (abs(total - 100) < 1e-6 or abs(total - 1) < 1e-9):
        raise UserError(f"{flag} {text!r}: the shares sum to {total:g}; they must sum to 100 (or 1), "
                        "e.g. 75,10,15")
    return (vals[0] / total, vals[1] / total, vals[2] / total)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def source_groups(rows: Sequence[CatalogRow]) -> list[list[CatalogRow]]:
    """Clips that share a source video (YouTube id, source file, stitched parts), as sorted groups."""
    uf = _UnionFind()
    origins = {o.value for o in Origin}
    for r in rows:
        me = f"clip:{r.clip_id}"
        uf.find(me)
        if r.youtube_id:
            uf.union(me, f"yt:{r.youtube_id}")
        if r.source_path:
            uf.union(me, f"path:{r.source_path}")
        for reg in r.regions:
            # source_clip is a clip id, or only an origin name (which says nothing about the video)
            if reg.source_clip and reg.source_clip not in origins:
                uf.union(me, f"clip:{reg.source_clip}")
    groups: dict[str, list[CatalogRow]] = defaultdict(list)
    for r in rows:
        groups[uf.find(f"clip:{r.clip_id}")].append(r)
    return sorted((sorted(g, key=lambda r: r.clip_id) for g in groups.values()), key=lambda g: g[0].clip_id)


@dataclass(frozen=True)
class SplitPlan:
    splits: dict[Split, list[str]]
    targets: dict[str, dict[Split, int]]   # category -> split -> wanted clips
    counts: dict[str, dict[Split, int]]    # category -> split -> clips placed
    groups: int


def _deal(total: int, quota: Sequence[float], sizes: Sequence[int], caps: Sequence[Sequence[int]]) -> list[int]:
    """Hand out `total` clips one at a time to the category furthest below its quota (ties: the larger
    category, then the first), within `caps[0]`, then the looser `caps[1]`, ... Without caps binding this is
    the largest-remainder method."""
    got = [0] * len(quota)
    for cap in caps:
        while sum(got) < total:
            room = [i for i in range(len(got)) if got[i] < cap[i]]
            if not room:
                break
            got[max(room, key=lambda i: (quota[i] - got[i], sizes[i], -i))] += 1
    return got


def split_totals(n: int, ratios: tuple[float, float, float]) -> list[int]:
    """Clips per split (train, val, test) over the whole root: largest remainder, then one clip for every split
    with a non-zero ratio when there are enough clips."""
    quota = [round(n * r, 9) for r in ratios]  # round: 14 * 0.7 is 9.799999..., not 9.8
    out = _deal(n, quota, [0, 0, 0], [[n] * 3])
    wanted = [i for i, r in enumerate(ratios) if r > 0]
    if n >= len(wanted):
        for i in wanted:
            if out[i] == 0:
                donor = max(range(3), key=lambda j: (out[j], -j))
                out[donor] -= 1
                out[i] += 1
    return out


def targets(per_cat: dict[str, int], ratios: tuple[float, float, float],
            balance_test: bool = True) -> dict[str, dict[Split, int]]:
    """Clips wanted per category and split (see the module doc)."""
    cats = sorted(per_cat)
    n = [per_cat[c] for c in cats]
    n_all = sum(n)
    _, n_val, n_test = split_totals(n_all, ratios)
    # equal quota (balanced) or proportional; caps: half a category, then all but one clip, then all of it
    t_quota = [n_test / len(n)] * len(n) if balance_test else [n_test * k / n_all for k in n]
    test = _deal(n_test, t_quota, n, [[k // 2 for k in n], [k - 1 for k in n], n])
    rest = [k - t for k, t in zip(n, test, strict=True)]
    val = _deal(n_val, [n_val * k / n_all for k in n], n, [[r - 1 for r in rest], rest])
    return {c: {Split.train: r - v, Split.val: v, Split.test: t}
            for c, r, v, t in zip(cats, rest, val, test, strict=True)}


def make_splits(rows: Sequence[CatalogRow], ratios: tuple[float, float, float], seed: int = 0,
                balance_test: bool = True) -> SplitPlan:
    """Assign every row's clip to train/val/test (see the module doc). Pure and deterministic."""
    if not rows:
        raise UserError("no clips to split; check --status (default: accepted clips only)")
    per_cat = Counter(r.category for r in rows)
    want = targets(dict(per_cat), ratios, balance_test)
    have: dict[str, dict[Split, int]] = {c: dict.fromkeys(SPLITS, 0) for c in want}
    groups = source_groups(rows)
    order = np.random.default_rng([int(seed), 0x5B117]).permutation(len(groups))
    # Largest groups first: they are the hardest to fit; the seeded permutation breaks ties.
    pos = np.empty(len(groups), dtype=np.int64)
    pos[order] = np.arange(len(groups))
    ranked = sorted(range(len(groups)), key=lambda i: (-len(groups[i]), int(pos[i])))
    out: dict[Split, list[str]] = {s: [] for s in SPLITS}
    for gi in ranked:
        g = groups[gi]
        cats = Counter(r.category for r in g)

        def score(s: Split, cats: Counter[str] = cats) -> tuple[float, float]:
            need = sum(min(n, want[c][s] - have[c][s]) for c, n in cats.items())
            over = sum(max(0, n - max(0, want[c][s] - have[c][s])) for c, n in cats.items())
            # relative need: a split missing 1 of 2 is hungrier than one missing 1 of 40
            rel = sum((want[c][s] - have[c][s]) / max(1, want[c][s]) for c in cats)
            return (need - 2 * over, rel)

        best = max(SPLITS, key=score)
        for r in g:
            out[best].append(r.clip_id)
            have[r.category][best] += 1
    return SplitPlan({s: sorted(ids) for s, ids in out.items()}, want, have, len(groups))


def split_report(plan: SplitPlan) -> list[str]:
    """One line per category: placed/target for each split."""
    lines = []
    for c in sorted(plan.targets):
        parts = [f"{s.value} {plan.counts[c][s]}/{plan.targets[c][s]}" for s in SPLITS]
        lines.append(f"{c}: " + ", ".join(parts))
    return lines


def split_root(root: DatasetRoot, ratios: tuple[float, float, float], seed: int, statuses: set[ClipStatus],
               balance_test: bool = True, dry_run: bool = False) -> SplitPlan:
    """Split the root's clips of `statuses` and write splits/{train,val,test}.txt (unless dry_run)."""
    rows = root.catalog.rows(status=set(statuses))
    if not rows:
        have = ", ".join(f"{k.value} {v}" for k, v in sorted(root.catalog.counts().items())) or "no clips"
        raise UserError(f"{root.path}: no clips with status {'/'.join(sorted(map(str, statuses)))} "
                        f"(catalog has {have}); choose others with --status")
    plan = make_splits(rows, ratios, seed, balance_test)
    if not dry_run:
        root.write_splits(plan.splits)
    return plan
