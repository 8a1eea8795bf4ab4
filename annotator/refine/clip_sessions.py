"""Who may touch which clip, and how an edit is saved: the base of the refinement app's controller (no web
framework in it).

- One `Session` per browser tab, holding only small things: the user, the open clip, where the page last
  acted (frame, source). Closed on logout/unload or after being idle.
- A tab edits its clip while it holds the clip's lease (one lease per user per clip; the page renews it).
- Every edit goes through `_edit`: check the lease, read the annotation once, check the revision the page
  saw (its `updated_at`), apply the change, log before/after patches to the audit log, write the annotation
  atomically, and answer with a `ClipView` of the annotation in hand. A stale revision is refused: two tabs
  never overwrite each other. The edits themselves are the controller's (controller.py).
- The catalog's SQLite connection is per thread (requests run on a thread pool).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np

from annotator.refine import confidence, history, tools
from annotator.refine.auth import User, UserStore
from annotator.refine.confidence import QueueOrder
from annotator.refine.config import RefineConfig
from annotator.refine.frames import FrameStore
from annotator.refine.state import ClipView, Session, revision_of
from annotator.refine.tool_models import ToolModels
from annotator.refine.tools import Who
from annotator.refine.upload import AutoDraft
from annotator.search.engine import Searcher
from schemas.catalog import Catalog, LeaseHeld
from schemas.errors import UserError
from schemas.models import Annotation, ClipStatus, check_clip_id, now_utc
from schemas.root import DatasetRoot

REFINER_STATUSES = {ClipStatus.auto, ClipStatus.in_progress}
REVIEWER_STATUSES = ClipStatus.annotated()
FINAL_STATUSES = {ClipStatus.accepted, ClipStatus.rejected}
LEASE_LOST = "your lease on this clip expired or was taken: reopen it from the queue"

# An edit's change to a copy of the annotation: returns the message to show, or None for "saved: <label>".
Change = Callable[[Annotation, Who], str | None]


class StaleEdit(UserError):
    """The browser's view of the clip is older than the saved annotation."""


class ClipSessions:
    """Sessions, leases, the queue, opening and viewing clips, and the one pipeline every edit goes through."""

    def __init__(self, root_path: str | Path, users: UserStore, models: ToolModels | None = None,
                 config: RefineConfig | None = None, frames: FrameStore | None = None,
                 draft: AutoDraft | None = None) -> None:
        self.root_path = Path(root_path)
        self.draft = draft  # the automatic draft of uploaded clips (ssu-refine --draft), or None
        self.users = users
        self.models = models or ToolModels()
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

    def frame_image(self, clip_id: str, frame: int) -> np.ndarray:
        return self.frames.frame(self.root.clip_path(clip_id), frame)

    # -- sessions ---------------------------------------------------------------------------------
    def open_session(self, session_id: str, username: str | None) -> Session:
        """Start (or return) the session of a logged-in user; unknown users are refused."""
        self.sweep()
        user = self.users.get(username or "")
        if user is None:
            raise UserError("not logged in: log in again")
        with self._lock:
            s = self.sessions.get(session_id)
            if s is None or s.user.name != user.name:
                s = self.sessions[session_id] = Session(session_id, user)
        return s

    def session(self, session_id: str) -> Session:
        s = self.sessions.get(session_id)
        if s is None:
            raise UserError("your session ended (logged out or idle): reload the page")
        s.last_seen = time.monotonic()
        return s

    def close_session(self, session_id: str) -> None:
        """Logout / tab closed: release the lease this session held, forget its state."""
        with self._lock:
            s = self.sessions.pop(session_id, None)
        if s is not None and s.clip_id and not s.read_only and not self._user_has_other_tab(s):
            self.catalog.release(s.clip_id, s.user.name)

    def _user_has_other_tab(self, s: Session) -> bool:
        return any(o.user.name == s.user.name and o.clip_id == s.clip_id and not o.read_only
                   for o in self.sessions.values())

    def sweep(self) -> None:
        limit = time.monotonic() - self.config.idle_minutes * 60
        for session_id in [k for k, s in list(self.sessions.items()) if s.last_seen < limit]:
            self.close_session(session_id)

    # -- leases -----------------------------------------------------------------------------------
    def _still_leased(self, s: Session, clip_id: str) -> bool:
        """Whether this tab may edit its clip. A tab whose lease expired or was taken turns read-only here,
        and its next answer says so (once)."""
        if s.read_only:
            return False
        lease = self.catalog.lease_of(clip_id)
        if lease is not None and lease.owner == s.user.name:
            return True
        s.read_only = True
        s.notice = s.notice or LEASE_LOST
        return False

    def _editable(self, s: Session) -> str:
        """The tab's clip id, its lease renewed; refused when the tab may not edit it."""
        clip_id = self._clip_of(s)
        if not self._still_leased(s, clip_id):
            lease = self.catalog.lease_of(clip_id)
            who = f" (leased by {lease.owner})" if lease and lease.owner != s.user.name else ""
            raise UserError(f"clip {clip_id} is read-only for you{who}; reopen it from the queue to edit")
        self.catalog.claim(clip_id, s.user.name, timedelta(minutes=self.config.lease_minutes))
        return clip_id

    def heartbeat(self, session_id: str) -> dict[str, object]:
        """The open editor page says it is still there: renew the lease, or tell it the lease is gone."""
        s = self.session(session_id)
        clip_id = self._clip_of(s)
        if self._still_leased(s, clip_id):
            self.catalog.claim(clip_id, s.user.name, timedelta(minutes=self.config.lease_minutes))
        notice, s.notice = s.notice, None
        lease = self.catalog.lease_of(clip_id)
        return {"clip_id": clip_id, "read_only": s.read_only, "notice": notice,
                "lease_owner": lease.owner if lease else None,
                "lease_expires": lease.expires.isoformat() if lease else None}

    # -- queue ------------------------------------------------------------------------------------
    def queue(self, session_id: str, status: ClipStatus | None = None, category: str | None = None,
              query: str | None = None, order: QueueOrder = QueueOrder.clip) -> list[dict]:
        """The clips a user may pick; with a query, only clips whose captions match it, best match first.
        order=unsure lists the clips whose drafter was least sure first (confidence.py), each with that figure."""
        self.session(session_id)
        now = now_utc()
        out = []
        rows = self.catalog.rows(status=status or ClipStatus.annotated(), category=category or None)
        if query and query.strip():
            rank = {cid: i for i, cid in enumerate(Searcher(self.root).clip_ids(query))}
            rows = sorted((r for r in rows if r.clip_id in rank), key=lambda r: rank[r.clip_id])
        unsure: dict[str, float | None] = {}
        if order == QueueOrder.unsure:
            unsure = dict(confidence.order_unsure(self.root, [r.clip_id for r in rows]))
            place = {cid: i for i, cid in enumerate(unsure)}
            rows = sorted(rows, key=lambda r: place[r.clip_id])
        for r in rows:
            live = r.lease_owner if (r.lease_expires and r.lease_expires > now) else None
            out.append({"clip_id": r.clip_id, "category": r.category, "status": r.status.value,
                        "leased_by": live or "", "updated": r.updated_at.strftime("%Y-%m-%d %H:%M")})
            if order == QueueOrder.unsure:
                low = unsure[r.clip_id]
                out[-1]["least sure"] = "" if low is None else f"{low:.2f}"
        return out

    def next_clip_id(self, session_id: str, category: str | None = None,
                     order: QueueOrder = QueueOrder.clip) -> str:
        """Lease the next clip the queue offers this user, without opening it in this session (the editor
        page opens it in its own); order=unsure takes the free clip whose drafter was least sure."""
        s = self.session(session_id)
        statuses = {ClipStatus.needs_review} if s.user.can_review else REFINER_STATUSES
        ttl = timedelta(minutes=self.config.lease_minutes)
        lease = None
        if order == QueueOrder.unsure:
            rows = self.catalog.rows(status=statuses, category=category or None)
            for clip_id, _ in confidence.order_unsure(self.root, [r.clip_id for r in rows]):
                try:
                    lease = self.catalog.claim(clip_id, s.user.name, ttl)
                    break
                except LeaseHeld:
                    continue  # someone else is on it
        else:
            lease = self.catalog.claim_next(s.user.name, statuses, category or None, ttl)
        if lease is None:
            raise UserError("no free clip in the queue" + (f" for category {category!r}" if category else ""))
        return lease.clip_id

    def notes(self, clip_id: str) -> list[dict[str, str]]:
        """Every note left on the clip with a decision, oldest first (the audit log keeps them all)."""
        out = []
        for e in self.catalog.history(clip_id, action="status"):
            if e.note:
                status = str((e.after or {}).get("status", "")) if isinstance(e.after, dict) else ""
                out.append({"ts": e.ts.strftime("%Y-%m-%d %H:%M"), "actor": e.actor, "status": status,
                            "note": e.note})
        return out

    # -- opening and viewing ----------------------------------------------------------------------
    def _editable_statuses(self, user: User) -> set[ClipStatus]:
        return REVIEWER_STATUSES if user.can_review else REFINER_STATUSES

    def open_clip(self, session_id: str, clip_id: str) -> ClipView:
        """Claim the clip for this user (read-only when someone else holds it or the role may not edit it)."""
        s = self.session(session_id)
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
        s.clip_id, s.read_only, s.frame, s.notice = clip_id, read_only, 0, None
        if not read_only:
            self._take_over(s)
        ann = self.root.read_annotation(clip_id)
        if not read_only and ann.status == ClipStatus.auto:
            ann.status = ClipStatus.in_progress  # a status change, not an edit: no patch, but logged by the catalog
            self.root.write_annotation(ann, actor=s.user.name)
        s.source_id = ann.sources[0].id if ann.sources else None
        return self._view(s, ann, message or f"claimed {clip_id}: your edits are saved as you make them")

    def _take_over(self, s: Session) -> None:
        """One lease per user per clip: the user's other tabs on this clip become read-only and are told."""
        with self._lock:
            others = [o for o in self.sessions.values()
                      if o is not s and o.user.name == s.user.name and o.clip_id == s.clip_id and not o.read_only]
        for o in others:
            o.read_only = True
            o.notice = (f"you opened {s.clip_id} in another tab, which now holds the lease: this tab is read-only "
                        "(reopen the clip here to edit in this tab)")

    def _leave_clip(self, s: Session, next_clip: str) -> None:
        if s.clip_id and s.clip_id != next_clip and not s.read_only:
            self.catalog.release(s.clip_id, s.user.name)
        s.clip_id = None

    def _clip_of(self, s: Session) -> str:
        if not s.clip_id:
            raise UserError("no clip open: pick one in the Queue tab")
        return s.clip_id

    def view(self, session_id: str) -> ClipView:
        """The session's open clip as saved."""
        s = self.session(session_id)
        return self._view(s, self.root.read_annotation(self._clip_of(s)))

    def _view(self, s: Session, ann: Annotation, message: str = "") -> ClipView:
        """The answer to a request, built from the annotation that request read or wrote (never read again)."""
        self._still_leased(s, ann.clip_id)
        ids = [x.id for x in ann.sources]
        if s.source_id not in ids:
            s.source_id = ids[0] if ids else None
        notice, s.notice = s.notice, None
        lease = self.catalog.lease_of(ann.clip_id)
        done, undone = self.stacks(ann.clip_id)
        return ClipView(annotation=ann, user=s.user, read_only=s.read_only, lease_owner=lease.owner if lease else None,
                        frame=s.frame, source_id=s.source_id, message=message, notice=notice,
                        can_undo=bool(done) and not s.read_only, can_redo=bool(undone) and not s.read_only)

    # -- the edit pipeline ------------------------------------------------------------------------
    def _move_to(self, session_id: str, frame: int | None, source_id: int | None) -> Session:
        """The session, placed where the page acts: its frame (when the edit has one) and selected source."""
        s = self.session(session_id)
        self._clip_of(s)
        if frame is not None:
            s.frame = tools.check_frame(int(frame))
        s.source_id = None if source_id is None else int(source_id)
        return s

    def _check_revision(self, clip_id: str, ann: Annotation, rev: str | None) -> None:
        if rev != revision_of(ann):
            last = next((e for e in reversed(self.catalog.history(clip_id)) if e.action in history.Action.all), None)
            by = f" by {last.actor} ({last.note or last.action}, {last.ts:%H:%M:%S} UTC)" if last else ""
            raise StaleEdit(f"clip {clip_id} was changed{by} after your page showed it; your change was NOT "
                            "saved. The view now shows the saved version: redo your change on it.")

    def _edit(self, s: Session, rev: str | None, label: str, change: Change, action: str = history.Action.edit,
              note: str | None = None) -> ClipView:
        clip_id = self._editable(s)
        with self._clip_lock(clip_id):
            ann = self.root.read_annotation(clip_id)
            self._check_revision(clip_id, ann, rev)
            new = ann.model_copy(deep=True)
            try:
                msg = change(new, Who(s.user.name))
            except KeyError as e:
                raise UserError(str(e).strip("'\"")) from None
            before, after = history.diff(ann, new)
            if not before:
                return self._view(s, ann, f"{label}: nothing changed")
            if ann.status in FINAL_STATUSES:  # a changed final clip is no longer what was accepted
                new.status = ClipStatus.needs_review
                msg = (msg or f"saved: {label}") + f" (the clip was {ann.status.value}: it goes back to review)"
            new.updated_at = now_utc()
            # audit first: if we die before the write, undo of that row re-applies values already current
            self.catalog.audit(clip_id, s.user.name, action, before, after, note or label)
            self.root.write_annotation(new, actor=s.user.name)
        return self._view(s, new, msg or f"saved: {label}")
