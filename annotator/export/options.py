"""Choices of ssu-export flags, in a module without dependencies so that `--help` stays instant."""

from __future__ import annotations

from enum import StrEnum


class MediaMode(StrEnum):
    """How a release gets the clips and wavs its files refer to (see annotator.export.media)."""

    hardlink = "hardlink"
    copy = "copy"
    symlink = "symlink"
