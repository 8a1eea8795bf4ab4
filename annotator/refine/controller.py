"""The refinement app's logic, with no Gradio in it: sessions, leases, edits, undo/redo, review decisions.

- One `Session` per browser tab (Gradio's session hash), holding only small things: the user, the open
  clip, the frame, the selected source, pending clicks. Closed on logout/unload or after being idle.
- Every edit goes through `_edit`: check the lease, check the revision the browser saw (the annotation's
  `updated_at`), apply the tool, log before/after patches to the audit log, write the annotation
  atomically. A stale revision is refused with a message: two tabs never overwrite each other.
- The catalog's SQLite connection is per thread (Gradio runs handlers on a thread pool).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np

from annotator.refine import history, render, tools
from annotator.refine.auth import User, UserStore
from annotator.refine.frames import FrameStore
from annotator.refine.models_hub import Direction, ModelsHub
from annotator.refine.state import ClipView, RefineConfig, Session, SourceInfo
from annotator.refine.tools import Tool, Who
from annotator.refine.upload import AutoDraft
from annotator.search.engine import Searcher
from schemas.catalog import Catalog, LeaseHeld
from schemas.constants import NUM_FRAMES
from schemas.errors import UserError
from schemas.models import Annotation, ClipStatus, check_clip_id, now_utc
from schemas.root import DatasetRoot

REFINER_STATUSES = {ClipStatus.auto, ClipStatus.in_progress}
REVIEWER_STATUSES = ClipStatus.annotated()
FINAL_STATUSES = {ClipStatus.accepted, ClipStatus.rejected}


class StaleEdit(UserError):
    """The browser's view of the clip is older than the saved annotation."""


def revision_of(ann: Annotation) -> str:
    return ann.updated_at.isoformat()


class Controller:
    def __init__(self, root_path: str | Path, users: UserStore, hub: ModelsHub | None = None,
                 config: RefineConfig | None = None, frames: FrameStore | None = None,
                 draft: AutoDraft | None = None) -> None:
        self.root_path = Path(root_path)
        self.draft = draft  # the automatic draft of uploaded clips (ssu-refine --draft), or None
        self.users = users
        self.hub = hub or ModelsHub()
        self.config = config or RefineConfig()
        self.frames = frames or FrameStore()
        self.sessions: dict[str, Session] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clip_locks: dict[str, threading.Lock] = {}
        # undo/redo stacks per clip, continued from the last audit id seen: a view then reads only new rows
        self._stacks: dict[str, tuple[int, list[int], list[int]]] = {}
        self.categories = DatasetRoot.open(self.root_path).manifest.category_names()

    def reload_categories(self) -> None:
        """ssu.json may have gained categories (an upload of a new label)."""
        self.categories = DatasetRoot.open(self.root_path).manifest.category_names()

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def root(self) -> DatasetRoot:
        """This thread's DatasetRoot (own SQLite connection)."""
        if getattr(self._local, "root", None) is None:
            self._local.root = DatasetRoot.open(self.root_path)
        return self._local.root

    @property
    def catalog(self) -> Catalog:
        return self.root.catalog

    def _clip_lock(self, clip_id: str) -> threading.Lock:
        with self._lock:
            return self._clip_locks.setdefault(clip_id, threading.Lock())

    def stacks(self, clip_id: str) -> tuple[list[int], list[int]]:
        with self._lock:
            last, done, undone = self._stacks.get(clip_id, (0, [], []))
        new = self.catalog.history(clip_id, since_id=last)
        done, undone = history.stacks(new, done, undone)
        with self._lock:
            if new and new[-1].id > self._stacks.get(clip_id, (0,))[0]:
                self._stacks[clip_id] = (new[-1].id, done, undone)
        return done, undone

    # -- sessions ---------------------------------------------------------------------------------
    def open_session(self, sid: str, username: str | None) -> Session:
        """Start (or return) the session of a logged-in user; unknown users are refused."""
        self.sweep()
        user = self.users.get(username or "")
        if user is None:
            raise UserError("not logged in: log in again")
        with self._lock:
            s = self.sessions.get(sid)
            if s is None or s.user.name != user.name:
                s = self.sessions[sid] = Session(sid, user)
        return s

    def session(self, sid: str) -> Session:
        s = self.sessions.get(sid)
        if s is None:
            raise UserError("your session ended (logged out or idle): reload the page")
        s.last_seen = time.monotonic()
        return s

    def close_session(self, sid: str) -> None:
        """Logout / tab closed: release the lease this session held, forget its state."""
        with self._lock:
            s = self.sessions.pop(sid, None)
        if s is not None and s.clip_id and not s.read_only and not self._user_has_other_tab(s):
            self.catalog.release(s.clip_id, s.user.name)

    def _user_has_other_tab(self, s: Session) -> bool:
        return any(o.user.name == s.user.name and o.clip_id == s.clip_id and not o.read_only
                   for o in self.sessions.values())

    def sweep(self) -> None:
        limit = time.monotonic() - self.config.idle_minutes * 60
        for sid in [sid for sid, s in list(self.sessions.items()) if s.last_seen < limit]:
            self.close_session(sid)

    # -- queue ------------------------------------------------------------------------------------
    def queue(self, sid: str, status: ClipStatus | None = None, category: str | None = None,
              query: str | None = None) -> list[dict]:
        """The clips a user may pick; with a query, only clips whose captions match it, best match first."""
        self.session(sid)
        now = now_utc()
        out = []
        rows = self.catalog.rows(status=status or ClipStatus.annotated(), category=category or None)
        if query and query.strip():
            rank = {cid: i for i, cid in enumerate(Searcher(self.root).clip_ids(query))}
            rows = sorted((r for r in rows if r.clip_id in rank), key=lambda r: rank[r.clip_id])
        for r in rows:
            live = r.lease_owner if (r.lease_expires and r.lease_expires > now) else None
            out.append({"clip_id": r.clip_id, "category": r.category, "status": r.status.value,
                        "leased_by": live or "", "updated": r.updated_at.strftime("%Y-%m-%d %H:%M")})
        return out

    def _editable_statuses(self, user: User) -> set[ClipStatus]:
        return REVIEWER_STATUSES if user.can_review else REFINER_STATUSES

    def open_clip(self, sid: str, clip_id: str) -> ClipView:
        """Claim the clip for this user (read-only when someone else holds it or the role may not edit it)."""
        s = self.session(sid)
        try:
            clip_id = check_clip_id((clip_id or "").strip())
        except ValueError as e:
            raise UserError(str(e)) from None
        row = self.catalog.get(clip_id)
        if row is None or row.status not in ClipStatus.annotated():
            raise UserError(f"clip {clip_id!r} is not in this root's queue; pick one from the list")
        self._leave_clip(s, clip_id)
        message = ""
        read_only = True
        if row.status not in self._editable_statuses(s.user):
            message = (f"clip {clip_id} is {row.status.value}: read-only for a {s.user.role.value}"
                       + ("; a reviewer can send it back" if not s.user.can_review else ""))
        else:
            try:
                self.catalog.claim(clip_id, s.user.name, timedelta(minutes=self.config.lease_minutes))
                read_only = False
            except LeaseHeld as e:
                message = f"{e} (opened read-only)"
        s.clip_id, s.read_only, s.frame, s.points, s.box, s.corner = clip_id, read_only, 0, [], None, None
        s.notice = None
        if not read_only:
            self._take_over(s)
        ann = self.root.read_annotation(clip_id)
        if not read_only and ann.status == ClipStatus.auto:
            ann.status = ClipStatus.in_progress  # a status change, not an edit: no patch, but logged by the catalog
            self.root.write_annotation(ann, actor=s.user.name)
        s.source_id = ann.sources[0].id if ann.sources else None
        return self.view(sid, message=message or f"claimed {clip_id}: your edits are saved as you make them")

    def _take_over(self, s: Session) -> None:
        """One lease per user per clip: the user's other tabs on this clip become read-only and are told."""
        with self._lock:
            others = [o for o in self.sessions.values()
                      if o is not s and o.user.name == s.user.name and o.clip_id == s.clip_id and not o.read_only]
        for o in others:
            o.read_only = True
            o.notice = (f"you opened {s.clip_id} in another tab, which now holds the lease: this tab is read-only "
                        "(reopen the clip here to edit in this tab)")

    def next_clip_id(self, sid: str, category: str | None = None) -> str:
        """Lease the next clip the queue offers this user, without opening it in this session (the editor
        page opens it in its own)."""
        s = self.session(sid)
        statuses = {ClipStatus.needs_review} if s.user.can_review else REFINER_STATUSES
        lease = self.catalog.claim_next(s.user.name, statuses, category or None,
                                        timedelta(minutes=self.config.lease_minutes))
        if lease is None:
            raise UserError("no free clip in the queue" + (f" for category {category!r}" if category else ""))
        return lease.clip_id

    def heartbeat(self, sid: str) -> dict[str, object]:
        """The open editor page says it is still there: renew the lease, or tell it the lease is gone."""
        s = self.session(sid)
        clip_id = self._open(s)
        self._check_lease(s, clip_id)
        if not s.read_only:
            self.catalog.claim(clip_id, s.user.name, timedelta(minutes=self.config.lease_minutes))
        notice, s.notice = s.notice, None
        lease = self.catalog.lease_of(clip_id)
        return {"clip_id": clip_id, "read_only": s.read_only, "notice": notice,
                "lease_owner": lease.owner if lease else None,
                "lease_expires": lease.expires.isoformat() if lease else None}

    def _check_lease(self, s: Session, clip_id: str) -> str:
        lease = self.catalog.lease_of(clip_id)
        if not s.read_only and (lease is None or lease.owner != s.user.name):
            s.read_only = True
            s.notice = s.notice or "your lease on this clip expired or was taken: reopen it from the queue"
            return s.notice
        return ""

    def claim_next(self, sid: str, category: str | None = None) -> ClipView:
        """Lease the next clip the queue offers this user and open it in this session."""
        return self.open_clip(sid, self.next_clip_id(sid, category))

    def _leave_clip(self, s: Session, next_clip: str) -> None:
        if s.clip_id and s.clip_id != next_clip and not s.read_only:
            self.catalog.release(s.clip_id, s.user.name)
        s.clip_id = None

    # -- viewing ----------------------------------------------------------------------------------
    def _open(self, s: Session) -> str:
        if not s.clip_id:
            raise UserError("no clip open: pick one in the Queue tab")
        return s.clip_id

    def frame_image(self, clip_id: str, frame: int) -> np.ndarray:
        return self.frames.frame(self.root.clip_path(clip_id), frame)

    def view(self, sid: str, frame: int | None = None, source_id: int | None = None, message: str = "") -> ClipView:
        s = self.session(sid)
        clip_id = self._open(s)
        if frame is not None:
            frame = int(min(max(int(frame), 0), NUM_FRAMES - 1))
            if frame != s.frame:
                s.points, s.box, s.corner = [], None, None  # prompts belong to one frame
            s.frame = frame
        ann = self.root.read_annotation(clip_id)
        ids = [x.id for x in ann.sources]
        if source_id is not None and source_id in ids and source_id != s.source_id:
            s.source_id, s.points, s.box, s.corner = source_id, [], None, None
        if s.source_id not in ids:
            s.source_id = ids[0] if ids else None
        message = message or self._check_lease(s, clip_id)
        lease = self.catalog.lease_of(clip_id)
        done, undone = self.stacks(clip_id)
        box = s.box or ([*s.corner, *s.corner] if s.corner else None)
        img = render.overlay(self.frame_image(clip_id, s.frame), ann, s.frame, s.source_id, s.points, box) \
            if s.render_image else np.zeros((0, 0, 3), np.uint8)
        src = next((x for x in ann.sources if x.id == s.source_id), None)
        return ClipView(
            clip_id=clip_id, status=ann.status, read_only=s.read_only, lease_owner=lease.owner if lease else None,
            frame=s.frame, image=img, captions_html=render.captions_html(ann, s.frame, s.source_id),
            sources=[SourceInfo(x.id, x.category, x.name, render.hex_colour(i)) for i, x in enumerate(ann.sources)],
            source_id=s.source_id, spans=tools.spans_table(src) if src else [], revision=revision_of(ann),
            video=self.root.clip_path(clip_id), message=message, note=ann.note,
            can_undo=bool(done) and not s.read_only, can_redo=bool(undone) and not s.read_only)

    def set_tool(self, sid: str, tool: Tool | str, brush_radius: int | None = None) -> None:
        s = self.session(sid)
        s.tool = Tool(tool)
        if brush_radius is not None:
            s.brush_radius = int(brush_radius)

    def clear_prompts(self, sid: str) -> ClipView:
        s = self.session(sid)
        s.points, s.box, s.corner = [], None, None
        return self.view(sid, message="prompts cleared")

    # -- the edit pipeline ------------------------------------------------------------------------
    def _require_edit(self, s: Session) -> str:
        clip_id = self._open(s)
        if s.read_only:
            lease = self.catalog.lease_of(clip_id)
            who = f" (leased by {lease.owner})" if lease and lease.owner != s.user.name else ""
            raise UserError(f"clip {clip_id} is read-only for you{who}; reopen it from the queue to edit")
        lease = self.catalog.lease_of(clip_id)
        if lease is None or lease.owner != s.user.name:
            s.read_only = True
            raise UserError(f"your lease on {clip_id} expired or was taken; reopen it from the queue")
        self.catalog.claim(clip_id, s.user.name, timedelta(minutes=self.config.lease_minutes))  # renew
        return clip_id

    def _check_revision(self, clip_id: str, ann: Annotation, rev: str | None) -> None:
        if rev != revision_of(ann):
            last = next((e for e in reversed(self.catalog.history(clip_id)) if e.action in history.Action.all), None)
            by = f" by {last.actor} ({last.note or last.action}, {last.ts:%H:%M:%S} UTC)" if last else ""
            raise StaleEdit(f"clip {clip_id} was changed{by} after your page showed it; your change was NOT "
                            "saved. The view now shows the saved version: redo your change on it.")

    def _edit(self, sid: str, rev: str | None, label: str, fn: Callable[[Annotation, Session], str | None],
              action: str = history.Action.edit, note: str | None = None) -> ClipView:
        s = self.session(sid)
        clip_id = self._require_edit(s)
        with self._clip_lock(clip_id):
            ann = self.root.read_annotation(clip_id)
            self._check_revision(clip_id, ann, rev)
            new = ann.model_copy(deep=True)
            try:
                msg = fn(new, s)
            except KeyError as e:
                raise UserError(str(e).strip("'\"")) from None
            before, after = history.diff(ann, new)
            if not before:
                return self.view(sid, message=f"{label}: nothing changed")
            if ann.status in FINAL_STATUSES:  # a changed final clip is no longer what was accepted
                new.status = ClipStatus.needs_review
                msg = (msg or f"saved: {label}") + f" (the clip was {ann.status.value}: it goes back to review)"
            new.updated_at = now_utc()
            # audit first: if we die before the write, undo of that row re-applies values already current
            self.catalog.audit(clip_id, s.user.name, action, before, after, note or label)
            self.root.write_annotation(new, actor=s.user.name)
        return self.view(sid, message=msg or f"saved: {label}")

    # -- mask tools -------------------------------------------------------------------------------
    def _source(self, s: Session) -> int:
        if s.source_id is None:
            raise UserError("no source selected: add one in Sources first")
        return s.source_id

    def click(self, sid: str, x: float, y: float, rev: str | None) -> ClipView:
        """A click on the frame in the current tool: SAM point/box, brush or eraser."""
        s = self.session(sid)
        self._require_edit(s)
        tools._xy(x, y)
        if s.tool == Tool.box and s.corner is None:
            s.corner, s.box = (float(x), float(y)), None
            return self.view(sid, message="box: now click the opposite corner")
        if s.tool in (Tool.brush, Tool.eraser):
            erase = s.tool == Tool.eraser
            return self._edit(sid, rev, f"{s.tool.value} r={s.brush_radius} at ({x:.0f}, {y:.0f}) frame {s.frame}",
                              lambda a, s: tools.brush(a, self._source(s), s.frame, x, y, s.brush_radius, erase,
                                                       Who(s.user.name)))
        points, box, corner = list(s.points), s.box, s.corner
        if s.tool == Tool.box:
            box, corner = [*s.corner, float(x), float(y)], None  # type: ignore[misc]
        else:
            points.append((float(x), float(y), int(s.tool == Tool.positive)))
        image = self.frame_image(s.clip_id, s.frame)  # type: ignore[arg-type]
        view = self._edit(sid, rev, f"SAM {s.tool.value} ({x:.0f}, {y:.0f}) frame {s.frame}",
                          lambda a, s: tools.sam_mask(a, self._source(s), s.frame, image, self.hub,
                                                      Who(s.user.name), points, box))
        s.points, s.box, s.corner = points, box, corner  # keep prompts only once the edit was accepted
        return self.view(sid, message=view.message)

    def propagate(self, sid: str, rev: str | None, direction: Direction | str, start: int, end: int) -> ClipView:
        s = self.session(sid)
        clip_id = self._require_edit(s)
        direction = Direction(direction)
        a, b = tools.propagation_range(s.frame, start, end, direction)
        frames = self.frames.frames(self.root.clip_path(clip_id), a, b)
        return self._edit(sid, rev, f"SAM2 propagate {direction.value} from frame {s.frame} over {a}..{b}",
                          lambda ann, s: tools.propagate(ann, self._source(s), s.frame, frames, a, self.hub,
                                                         Who(s.user.name), direction) and None)

    # -- sources ----------------------------------------------------------------------------------
    def add_source(self, sid: str, rev: str | None, category: str, name: str | None = None) -> ClipView:
        def fn(ann: Annotation, s: Session) -> str:
            s.source_id = tools.add_source(ann, category, name, self.categories)
            s.points, s.box, s.corner = [], None, None
            return f"added source #{s.source_id} ({category}); click on the frame to draw its mask"
        return self._edit(sid, rev, f"add source {category}", fn)

    def remove_source(self, sid: str, rev: str | None) -> ClipView:
        s = self.session(sid)
        sid_ = self._source(s)
        return self._edit(sid, rev, f"remove source #{sid_}", lambda a, s: tools.remove_source(a, sid_))

    def set_category(self, sid: str, rev: str | None, category: str, name: str | None = None) -> ClipView:
        return self._edit(sid, rev, f"set category {category}",
                          lambda a, s: tools.set_category(a, self._source(s), category, name, self.categories))

    # -- captions ---------------------------------------------------------------------------------
    def set_spans(self, sid: str, rev: str | None, rows: list[list[object]]) -> ClipView:
        return self._edit(sid, rev, "edit caption spans",
                          lambda a, s: tools.set_spans(a, self._source(s), rows, Who(s.user.name)))

    def edit_span(self, sid: str, rev: str | None, index: int, text: str) -> ClipView:
        return self._edit(sid, rev, f"edit caption span {index}",
                          lambda a, s: tools.edit_span(a, self._source(s), int(index), text, Who(s.user.name)))

    def split_span(self, sid: str, rev: str | None) -> ClipView:
        s = self.session(sid)
        return self._edit(sid, rev, f"split caption at frame {s.frame}",
                          lambda a, s: tools.split_span(a, self._source(s), s.frame))

    def regenerate_span(self, sid: str, rev: str | None, index: int, prompt: str | None = None) -> ClipView:
        s = self.session(sid)
        clip_id = self._require_edit(s)
        src = self.root.read_annotation(clip_id).source(self._source(s))
        span = tools._span_at(src, int(index))
        frames = self.frames.frames(self.root.clip_path(clip_id), span.start, span.end)
        return self._edit(sid, rev, f"VLM caption for span {index}",
                          lambda a, s: "new caption: " + tools.regenerate_span(
                              a, self._source(s), int(index), frames, span.start, self.hub, Who(s.user.name), prompt))

    # -- undo / redo ------------------------------------------------------------------------------
    def undo(self, sid: str, rev: str | None) -> ClipView:
        return self._undo_redo(sid, rev, redo=False)

    def redo(self, sid: str, rev: str | None) -> ClipView:
        return self._undo_redo(sid, rev, redo=True)

    def _undo_redo(self, sid: str, rev: str | None, redo: bool) -> ClipView:
        s = self.session(sid)
        clip_id = self._require_edit(s)
        done, undone = self.stacks(clip_id)
        stack = undone if redo else done
        if not stack:
            raise UserError("nothing to redo" if redo else "nothing to undo")
        target = self.catalog.history(clip_id, since_id=stack[-1] - 1)[0]
        patch = target.after if redo else target.before
        word = "redo" if redo else "undo"

        def fn(ann: Annotation, s: Session) -> str:
            new = history.apply(ann, patch)
            ann.sources, ann.agents = new.sources, new.agents
            return f"{word}: {target.note}"
        return self._edit(sid, rev, f"{word} {target.note}", fn, action=word, note=str(target.id))

    # -- review decisions -------------------------------------------------------------------------
    def decide(self, sid: str, rev: str | None, decision: str, note: str | None = None) -> ClipView:
        """accept / reject / send_back. A refiner's accept submits for review when review is required."""
        s = self.session(sid)
        clip_id = self._require_edit(s)
        note = (note or "").strip() or None
        reviewer = s.user.can_review or not self.config.require_review
        if decision == "accept":
            status = ClipStatus.accepted if reviewer else ClipStatus.needs_review
        elif decision == "reject":
            if not reviewer:
                raise UserError("only a reviewer can reject a clip; write a note and accept to send it to review")
            if not note:
                raise UserError("say why in the note before rejecting")
            status = ClipStatus.rejected
        elif decision == "send_back":
            if not s.user.can_review:
                raise UserError("only a reviewer can send a clip back")
            if not note:
                raise UserError("write a note for the refiner before sending the clip back")
            status = ClipStatus.in_progress
        else:
            raise UserError(f"unknown decision {decision!r}; use accept, reject or send_back")
        with self._clip_lock(clip_id):
            ann = self.root.read_annotation(clip_id)
            self._check_revision(clip_id, ann, rev)
            # the clip carries the open note for whoever works on it next; every note stays in the audit log
            # (notes() lists them), so accepting clears it rather than leaving an old request on a final clip
            ann.status, ann.note, ann.updated_at = status, (None if status == ClipStatus.accepted else note), now_utc()
            self.catalog.set_status(clip_id, status, s.user.name, reason=note if status == ClipStatus.rejected
                                    else None, note=note)
            self.root.write_annotation(ann, actor=s.user.name)
            self.catalog.release(clip_id, s.user.name)
        s.read_only = True
        return self.view(sid, message=f"{clip_id} is now {status.value}" +
                         (" (waiting for a reviewer)" if status == ClipStatus.needs_review else ""))

    # -- the editor page's explicit edits (frame and source travel with each edit) ------------------
    def _at(self, sid: str, frame: int, source_id: int | None) -> Session:
        s = self.session(sid)
        self._open(s)
        if not 0 <= int(frame) < NUM_FRAMES:
            raise UserError(f"frame {frame} is outside 0..{NUM_FRAMES - 1}")
        if int(frame) != s.frame or source_id != s.source_id:
            s.points, s.box, s.corner = [], None, None
        s.frame, s.source_id = int(frame), (None if source_id is None else int(source_id))
        return s

    def stroke(self, sid: str, rev: str | None, frame: int, source_id: int, points: list[list[float]],
               radius: int, erase: bool = False) -> ClipView:
        """One dragged brush (or eraser) stroke on one frame: one edit, one undo step."""
        s = self._at(sid, frame, source_id)
        word = "eraser" if erase else "brush"
        return self._edit(sid, rev, f"{word} stroke r={radius} ({len(points)} points) frame {s.frame}",
                          lambda a, s: tools.stroke(a, self._source(s), s.frame, points, int(radius), erase,
                                                    Who(s.user.name)) and None)

    def polygon(self, sid: str, rev: str | None, frame: int, source_id: int, points: list[list[float]],
                erase: bool = False) -> ClipView:
        s = self._at(sid, frame, source_id)
        return self._edit(sid, rev, f"polygon{' cut' if erase else ''} ({len(points)} corners) frame {s.frame}",
                          lambda a, s: tools.polygon(a, self._source(s), s.frame, points, erase,
                                                     Who(s.user.name)) and None)

    def sam_prompt(self, sid: str, rev: str | None, frame: int, source_id: int,
                   points: list[tuple[float, float, int]], box: list[float] | None = None) -> ClipView:
        """SAM with all of this frame's prompts (kept by the page) at once; the answer replaces the mask."""
        s = self._at(sid, frame, source_id)
        clip_id = self._require_edit(s)
        pts = [(float(x), float(y), int(lab)) for x, y, lab in points]
        image = self.frame_image(clip_id, s.frame)
        view = self._edit(sid, rev, f"SAM {len(pts)} point(s){' + box' if box else ''} frame {s.frame}",
                          lambda a, s: tools.sam_mask(a, self._source(s), s.frame, image, self.hub,
                                                      Who(s.user.name), pts, box))
        s.points, s.box = pts, box
        return view

    def notes(self, clip_id: str) -> list[dict[str, str]]:
        """Every note left on the clip with a decision, oldest first (the audit log keeps them all)."""
        out = []
        for e in self.catalog.history(clip_id, action="status"):
            if e.note:
                status = str((e.after or {}).get("status", "")) if isinstance(e.after, dict) else ""
                out.append({"ts": e.ts.strftime("%Y-%m-%d %H:%M"), "actor": e.actor, "status": status,
                            "note": e.note})
        return out
