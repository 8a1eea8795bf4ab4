"""Why a clip was not collected. The catalog's `reason` is "<FailReason>: <detail>"; summaries group by
the FailReason part, so keep these values stable."""

from __future__ import annotations

from enum import StrEnum


class FailReason(StrEnum):
    bad_index_row = "bad_index_row"        # recorded in the run's stats (no clip id to put in the catalog)
    missing_media = "missing_media"        # --media-dir has no file for the clip
    not_video = "not_video"                # the file is not a video container at all
    corrupt_video = "corrupt_video"        # a video container that cannot be decoded (truncated, damaged)
    too_short = "too_short"                # fewer than 10 s from the clip's start
    no_audio = "no_audio"                  # no audio stream
    silent = "silent"                      # an audio stream of (near) silence
    unavailable = "unavailable"            # the video is gone (private, removed, 404): not retried within a run
    network = "network"                    # download failed after all retries
    bad_download = "bad_download"          # the downloader said yes but the file is broken or of the wrong length
    transcode_failed = "transcode_failed"  # ffmpeg failed or produced the wrong shape
    mix_incomplete = "mix_incomplete"      # a mix lacked a usable clip for one of its keywords
    internal = "internal"                  # a bug: the traceback's last line is in the detail


class CollectError(Exception):
    """A clip cannot be collected, for `reason`. Caught per clip by the runner; the run goes on."""

    def __init__(self, reason: FailReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    @property
    def text(self) -> str:
        return f"{self.reason.value}: {self.detail}"


def reason_of(text: str | None) -> str:
    """The FailReason part of a catalog reason string."""
    return (text or FailReason.internal.value).split(":", 1)[0]
