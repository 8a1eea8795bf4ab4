"""Small state and result types of the refinement controller (no logic)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from annotator.refine.auth import User
from schemas.models import Annotation, ClipStatus, SoundSource


@dataclass
class Session:
    """One browser tab (the editor page's tab id, or Gradio's session hash): who, which clip, where on it."""

    session_id: str
    user: User
    clip_id: str | None = None
    read_only: bool = True
    frame: int = 0             # where the page last acted: each edit names its frame and source
    source_id: int | None = None
    last_seen: float = field(default_factory=time.monotonic)
    last_seq: int = 0          # the editor page's last edit sequence number (edits apply once, in order)
    notice: str | None = None  # told to this tab at its next request (e.g. the clip was opened in another tab)


class Decision(StrEnum):
    """A decision on the whole clip (the page's Accept / Reject / Send back)."""

    accept = "accept"        # a refiner's accept submits for review when review is required
    reject = "reject"        # the clip is unusable (the note says why): a reviewer's, or anyone's without review
    send_back = "send_back"  # a reviewer's: back to the refiner with a note


def revision_of(ann: Annotation) -> str:
    """What the page sends back with an edit: the annotation it saw (a newer one on disk refuses the edit)."""
    return ann.updated_at.isoformat()


@dataclass
class ClipView:
    """The open clip as one request left it: the annotation that request read or wrote (each request reads
    it once) and this tab's place on it. `revision` goes back with the page's next edit."""

    annotation: Annotation
    user: User
    read_only: bool
    lease_owner: str | None
    frame: int
    source_id: int | None
    message: str = ""
    notice: str | None = None  # said once: the lease was lost, another tab took the clip over
    can_undo: bool = False
    can_redo: bool = False

    @property
    def clip_id(self) -> str:
        return self.annotation.clip_id

    @property
    def status(self) -> ClipStatus:
        return self.annotation.status

    @property
    def revision(self) -> str:
        return revision_of(self.annotation)

    @property
    def note(self) -> str | None:
        return self.annotation.note

    @property
    def sources(self) -> list[SoundSource]:
        return self.annotation.sources

    @property
    def spans(self) -> list[list[object]]:
        """The selected source's caption spans as table rows [start, end, text]."""
        src = next((x for x in self.annotation.sources if x.id == self.source_id), None)
        return [[c.start, c.end, c.text] for c in src.captions] if src else []
