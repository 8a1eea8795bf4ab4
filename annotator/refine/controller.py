"""The refinement app's controller: the editor page's editing API (masks, sources, captions, undo/redo,
review decisions) over ClipSessions (clip_sessions.py: leases, viewing, and the edit pipeline that saves each edit).

Every edit names the frame and source it acts on (the page keeps the selection), takes the revision the page
showed, and answers with the `ClipView` of the annotation it wrote.
"""

from __future__ import annotations

from annotator.models.settings import Direction
from annotator.refine import history, tools
from annotator.refine.auth import User
from annotator.refine.clip_sessions import ClipSessions, StaleEdit
from annotator.refine.config import RefineConfig
from annotator.refine.state import ClipView, Decision
from annotator.refine.tools import Who
from schemas.errors import UserError
from schemas.models import Annotation, ClipStatus, now_utc

__all__ = ["Controller", "RefineConfig", "StaleEdit"]


class Controller(ClipSessions):
    """The one editing API: what editor.js sends through api.py, and what the tests call."""

    # -- masks ------------------------------------------------------------------------------------
    def stroke(self, session_id: str, rev: str | None, frame: int, source_id: int, points: list[list[float]],
               radius: int, erase: bool = False) -> ClipView:
        """One dragged brush (or eraser) stroke on one frame: one edit, one undo step."""
        s = self._move_to(session_id, frame, source_id)

        def change(ann: Annotation, who: Who) -> None:
            tools.stroke(ann, source_id, s.frame, points, int(radius), erase, who)
        word = "eraser" if erase else "brush"
        return self._edit(s, rev, f"{word} stroke r={radius} ({len(points)} points) frame {s.frame}", change)

    def polygon(self, session_id: str, rev: str | None, frame: int, source_id: int, points: list[list[float]],
                erase: bool = False) -> ClipView:
        """Fill (or cut out) a closed polygon on one frame."""
        s = self._move_to(session_id, frame, source_id)

        def change(ann: Annotation, who: Who) -> None:
            tools.polygon(ann, source_id, s.frame, points, erase, who)
        return self._edit(s, rev, f"polygon{' cut' if erase else ''} ({len(points)} corners) frame {s.frame}", change)

    def sam_prompt(self, session_id: str, rev: str | None, frame: int, source_id: int,
                   points: list[tuple[float, float, int]], box: list[float] | None = None) -> ClipView:
        """SAM with all of this frame's prompts (kept by the page) at once; the answer replaces the mask."""
        s = self._move_to(session_id, frame, source_id)
        pts = [(float(x), float(y), int(lab)) for x, y, lab in points]

        def change(ann: Annotation, who: Who) -> None:
            image = self.frame_image(ann.clip_id, s.frame)
            tools.sam_mask(ann, source_id, s.frame, image, self.models, who, pts, box)
        return self._edit(s, rev, f"SAM {len(pts)} point(s){' + box' if box else ''} frame {s.frame}", change)

    def propagate(self, session_id: str, rev: str | None, frame: int, source_id: int, direction: Direction | str,
                  start: int, end: int) -> ClipView:
        """SAM2 from the source's mask on `frame` over [start, end), forward, backward or both ways."""
        s = self._move_to(session_id, frame, source_id)
        direction = Direction(direction)
        a, b = tools.propagation_range(s.frame, start, end, direction)

        def change(ann: Annotation, who: Who) -> None:
            frames = self.frames.frames(self.root.clip_path(ann.clip_id), a, b)
            tools.propagate(ann, source_id, s.frame, frames, a, self.models, who, direction)
        return self._edit(s, rev, f"SAM2 propagate {direction.value} from frame {s.frame} over {a}..{b}", change)

    # -- sources ----------------------------------------------------------------------------------
    def add_source(self, session_id: str, rev: str | None, category: str, name: str | None = None) -> ClipView:
        """A new source, selected: the page draws its masks next."""
        s = self.session(session_id)

        def change(ann: Annotation, who: Who) -> str:
            s.source_id = tools.add_source(ann, category, name, self.categories)
            return f"added source #{s.source_id} ({category}); draw its mask on the frame"
        return self._edit(s, rev, f"add source {category}", change)

    def remove_source(self, session_id: str, rev: str | None, source_id: int) -> ClipView:
        s = self._move_to(session_id, None, source_id)
        return self._edit(s, rev, f"remove source #{source_id}", lambda ann, who: tools.remove_source(ann, source_id))

    def set_category(self, session_id: str, rev: str | None, source_id: int, category: str,
                     name: str | None = None) -> ClipView:
        s = self._move_to(session_id, None, source_id)
        return self._edit(s, rev, f"set category {category}",
                          lambda ann, who: tools.set_category(ann, source_id, category, name, self.categories))

    # -- captions ---------------------------------------------------------------------------------
    def set_spans(self, session_id: str, rev: str | None, source_id: int, rows: list[list[object]]) -> ClipView:
        """The source's caption spans as the page's table shows them (start, end, text)."""
        s = self._move_to(session_id, None, source_id)
        return self._edit(s, rev, "edit caption spans", lambda ann, who: tools.set_spans(ann, source_id, rows, who))

    def split_span(self, session_id: str, rev: str | None, frame: int, source_id: int) -> ClipView:
        s = self._move_to(session_id, frame, source_id)
        return self._edit(s, rev, f"split caption at frame {s.frame}",
                          lambda ann, who: tools.split_span(ann, source_id, s.frame))

    def regenerate_span(self, session_id: str, rev: str | None, source_id: int, index: int,
                        prompt: str | None = None) -> ClipView:
        s = self._move_to(session_id, None, source_id)

        def change(ann: Annotation, who: Who) -> str:
            text = tools.regenerate_span(ann, source_id, int(index), lambda f: self.frame_image(ann.clip_id, f),
                                         self.models, who, prompt)
            return "new caption: " + text
        return self._edit(s, rev, f"VLM caption for span {index}", change)

    # -- undo / redo ------------------------------------------------------------------------------
    def undo(self, session_id: str, rev: str | None) -> ClipView:
        return self._undo_redo(session_id, rev, redo=False)

    def redo(self, session_id: str, rev: str | None) -> ClipView:
        return self._undo_redo(session_id, rev, redo=True)

    def _undo_redo(self, session_id: str, rev: str | None, redo: bool) -> ClipView:
        s = self.session(session_id)
        clip_id = self._clip_of(s)
        done, undone = self.stacks(clip_id)
        stack = undone if redo else done
        if not stack:
            raise UserError("nothing to redo" if redo else "nothing to undo")
        target = self.catalog.history(clip_id, since_id=stack[-1] - 1)[0]
        patch = target.after if redo else target.before
        word = "redo" if redo else "undo"

        def change(ann: Annotation, who: Who) -> str:
            new = history.apply(ann, patch)
            ann.sources, ann.agents = new.sources, new.agents
            return f"{word}: {target.note}"
        return self._edit(s, rev, f"{word} {target.note}", change, action=word, note=str(target.id))

    # -- review decisions -------------------------------------------------------------------------
    def decide(self, session_id: str, rev: str | None, decision: Decision | str, note: str | None = None) -> ClipView:
        """accept / reject / send_back. A refiner's accept submits for review when review is required."""
        s = self.session(session_id)
        try:
            decision = Decision(decision)
        except ValueError:
            raise UserError(f"unknown decision {decision!r}; use {', '.join(Decision)}") from None
        clip_id = self._editable(s)
        note = (note or "").strip() or None
        status = self._decided_status(s.user, decision, note)
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
        return self._view(s, ann, f"{clip_id} is now {status.value}" +
                          (" (waiting for a reviewer)" if status == ClipStatus.needs_review else ""))

    def _decided_status(self, user: User, decision: Decision, note: str | None) -> ClipStatus:
        reviewer = user.can_review or not self.config.require_review
        if decision == Decision.accept:
            return ClipStatus.accepted if reviewer else ClipStatus.needs_review
        if decision == Decision.reject:
            if not reviewer:
                raise UserError("only a reviewer can reject a clip; write a note and accept to send it to review")
            if not note:
                raise UserError("say why in the note before rejecting")
            return ClipStatus.rejected
        if not user.can_review:
            raise UserError("only a reviewer can send a clip back")
        if not note:
            raise UserError("write a note for the refiner before sending the clip back")
        return ClipStatus.in_progress
