"""Small state and result types of the refinement controller (no logic)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from annotator.refine.auth import User
from annotator.refine.config import RefineConfig  # noqa: F401  (re-exported: the controller takes it from here)
from annotator.refine.tools import Tool
from schemas.models import ClipStatus


@dataclass
class Session:
    sid: str
    user: User
    clip_id: str | None = None
    read_only: bool = True
    frame: int = 0
    source_id: int | None = None
    tool: Tool = Tool.positive
    brush_radius: int = 12
    points: list[tuple[float, float, int]] = field(default_factory=list)
    box: list[float] | None = None       # [x0, y0, x1, y1] once both corners are set
    corner: tuple[float, float] | None = None
    last_seen: float = field(default_factory=time.monotonic)
    last_seq: int = 0          # the editor page's last edit sequence number (edits apply once, in order)
    notice: str | None = None  # told to this tab at its next request (e.g. the clip was opened in another tab)
    render_image: bool = True  # False for the editor page, which draws masks itself (no server-side overlay)


@dataclass
class SourceInfo:
    id: int
    category: str
    name: str | None
    colour: str

    @property
    def label(self) -> str:
        return f"#{self.id} {self.name or self.category}"


@dataclass
class ClipView:
    """Everything the viewer shows after a request; `revision` goes back with the browser's next edit."""

    clip_id: str
    status: ClipStatus
    read_only: bool
    lease_owner: str | None
    frame: int
    image: np.ndarray
    captions_html: str
    sources: list[SourceInfo]
    source_id: int | None
    spans: list[list[object]]
    revision: str
    video: Path
    message: str = ""
    note: str | None = None
    can_undo: bool = False
    can_redo: bool = False
