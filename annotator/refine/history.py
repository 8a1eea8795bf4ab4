"""Edit patches: what one edit changed in an Annotation, small enough to keep every edit in the audit log.

A patch is JSON:
    {"sources": {"<id>": null                       # the source does not exist (on this side)
                        | {"full": true, ...fields}  # the whole source (masks as {"<frame>": rle})
                        | {field: value, "masks": {"<frame>": rle | null}}},   # changed fields/frames only
     "order": [ids],                                # source order, when the set of sources changed
     "agents": {"<key>": agent | null}}
An edit's audit row holds before/after patches; undo applies `before`, redo `after`. Because every app
edit is logged this way, applying the `before` patches newest-first to the current annotation gives back
the automatic draft (the dashboard measures how much refiners changed it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.constants import NUM_FRAMES
from schemas.models import Agent, Annotation, AuditEntry, SoundSource

Patch = dict[str, Any]
FIELDS = ("category", "name", "captions", "mask_by", "region", "scores")  # every SoundSource field but id, masks


class Action:
    edit = "edit"
    undo = "undo"
    redo = "redo"
    all = {"edit", "undo", "redo"}


def _full(s: SoundSource) -> dict[str, Any]:
    d = s.model_dump(mode="json", include=set(FIELDS))
    d["full"] = True
    d["masks"] = {str(f): m.model_dump() for f, m in enumerate(s.masks) if m is not None}
    return d


def diff(old: Annotation, new: Annotation) -> tuple[Patch, Patch]:
    """(before, after) patches; both empty ({}) when nothing changed."""
    before: Patch = {"sources": {}}
    after: Patch = {"sources": {}}
    ob, nb = {s.id: s for s in old.sources}, {s.id: s for s in new.sources}
    for source_id in sorted(ob.keys() | nb.keys()):
        o, n = ob.get(source_id), nb.get(source_id)
        key = str(source_id)
        if o is None or n is None:
            before["sources"][key] = None if o is None else _full(o)
            after["sources"][key] = None if n is None else _full(n)
            continue
        bo: dict[str, Any] = {}
        an: dict[str, Any] = {}
        for f in FIELDS:
            if getattr(o, f) != getattr(n, f):
                bo[f] = o.model_dump(mode="json", include={f})[f]
                an[f] = n.model_dump(mode="json", include={f})[f]
        frames = [f for f in range(NUM_FRAMES) if o.masks[f] != n.masks[f]]
        if frames:
            bo["masks"] = {str(f): None if o.masks[f] is None else o.masks[f].model_dump() for f in frames}
            an["masks"] = {str(f): None if n.masks[f] is None else n.masks[f].model_dump() for f in frames}
        if bo:
            before["sources"][key], after["sources"][key] = bo, an
    if [s.id for s in old.sources] != [s.id for s in new.sources]:
        before["order"], after["order"] = [s.id for s in old.sources], [s.id for s in new.sources]
    added = {k: v for k, v in new.agents.items() if old.agents.get(k) != v}
    if added:
        before["agents"] = {k: (old.agents[k].model_dump(mode="json") if k in old.agents else None) for k in added}
        after["agents"] = {k: v.model_dump(mode="json") for k, v in added.items()}
    if not before["sources"] and "order" not in before and "agents" not in before:
        return {}, {}
    return before, after


def apply(ann: Annotation, patch: Patch) -> Annotation:
    """A new Annotation with `patch` applied (validated)."""
    data = ann.model_dump(mode="json")
    agents = data["agents"]
    for k, v in (patch.get("agents") or {}).items():
        if v is not None:
            agents[k] = v
        else:
            agents.pop(k, None)  # dropped again below if a span still refers to it
    sources = {s["id"]: s for s in data["sources"]}
    order = [s["id"] for s in data["sources"]]
    for key, change in (patch.get("sources") or {}).items():
        source_id = int(key)
        if change is None:
            sources.pop(source_id, None)
            continue
        if change.get("full"):
            masks: list[Any] = [None] * NUM_FRAMES
            src = {"id": source_id, "masks": masks, **{f: change.get(f) for f in FIELDS}}
            src["captions"] = src["captions"] or []
            src["mask_by"] = src["mask_by"] or []
            sources[source_id] = src
            if source_id not in order:
                order.append(source_id)
        else:
            src = sources[source_id]
            masks = src["masks"]
            for f in FIELDS:
                if f in change:
                    src[f] = change[f]
        for f, m in (change.get("masks") or {}).items():
            masks[int(f)] = m
    if "order" in patch:
        order = list(patch["order"])
    data["sources"] = [sources[i] for i in order if i in sources]
    used = {sp.get("by") for s in data["sources"] for sp in [*s["captions"], *s["mask_by"]]}
    for k in used:
        if k and k not in agents:  # an undo removed an agent that older spans still name: keep provenance
            agents[k] = ann.agents[k].model_dump(mode="json") if k in ann.agents else \
                Agent(kind="program", name=k).model_dump(mode="json")
    return Annotation.model_validate(data)


def stacks(entries: Iterable[AuditEntry], done: list[int] | None = None,
           undone: list[int] | None = None) -> tuple[list[int], list[int]]:
    """(done, undone): audit ids of the edits that undo / redo would revert / re-apply, newest last.
    Pass the stacks of earlier entries to continue from them (the controller caches them per clip)."""
    done = list(done or [])
    undone = list(undone or [])
    for e in entries:
        if e.action == Action.edit:
            done.append(e.id)
            undone.clear()
        elif e.action == Action.undo and done and e.note == str(done[-1]):
            undone.append(done.pop())
        elif e.action == Action.redo and undone and e.note == str(undone[-1]):
            done.append(undone.pop())
    return done, undone


def draft_of(current: Annotation, entries: list[AuditEntry]) -> Annotation:
    """The annotation before the first app edit: apply every logged change's `before`, newest first."""
    ann = current
    for e in reversed([e for e in entries if e.action in Action.all]):
        if e.before:
            ann = apply(ann, e.before)
    return ann
