"""What a collection run is asked to do, as one typed request: ssu-collect's flags, the refine app's upload and
the benchmarks all build a `CollectRequest`, and its defaults are the only ones (the CLI's flags read them).

The encoding and fetching defaults come from `NormalizeOptions` / `FetchOptions`, which the workers use, so a
default is written once. `from_flags` takes values as typed on a command line (enums as text) and turns each
mistake into a UserError naming its flag; `check` refuses combinations that cannot work, before any work.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collection.fetch import FetchOptions, parse_rate
from collection.index import SourceKind
from collection.normalize import NoAudioPolicy, NormalizeOptions
from collection.timeline import ShortPolicy
from schemas.errors import UserError
from schemas.models import Fit

_NORM = NormalizeOptions()
_FETCH = FetchOptions()
E = TypeVar("E", bound=StrEnum)


class CollectRequest(BaseModel):
    """One field per ssu-collect flag (`--per-keyword` is `per_keyword`), with that flag's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # what to collect
    source: SourceKind = SourceKind.vggsound
    index: Path  # the source's index file (or a folder with index.csv for local sources)
    keywords: str = ""  # comma-separated (';' when labels contain commas)
    per_keyword: int = Field(50, ge=1)
    seed: int = Field(0, ge=0)
    split: str | None = None
    synonyms: Path | None = None  # None: the shipped synonym groups
    media_dir: Path | None = None  # local copies; None: yt-dlp downloads
    available_only: bool = False
    fill: bool = False
    mix: tuple[str, ...] = ()  # multi-source specs, e.g. "violin+piano"
    mix_count: int = Field(1, ge=1)
    # how each clip is made
    fit: Fit = _NORM.fit
    short: ShortPolicy = _NORM.short
    no_audio: NoAudioPolicy = _NORM.no_audio
    allow_silent: bool = _NORM.allow_silent
    crf: int = Field(_NORM.crf, ge=0, le=51)
    preset: str = _NORM.preset
    ffmpeg_threads: int = Field(_NORM.threads, ge=0)  # 0: ffmpeg chooses
    # where it runs
    workers: int = Field(1, ge=1)
    ray: bool = False
    ray_address: str | None = None  # None: a local Ray instance with `workers` CPUs
    # downloads
    url_template: str = _FETCH.url_template
    cookies: Path | None = _FETCH.cookies
    retries: int = Field(_FETCH.retries, ge=0)
    backoff: float = Field(_FETCH.backoff, ge=0)
    rate_limit: str | None = None  # bytes/s per worker as typed, e.g. "2M" (parsed by fetch_options)
    min_interval: float = Field(_FETCH.min_interval, ge=0)
    # the dataset
    name: str | None = None  # a new root's name; None: the root folder's name

    @classmethod
    def from_flags(cls, **flags: Any) -> CollectRequest:
        """Values as a command line gives them (enums as text); a bad one is a UserError naming its flag."""
        for field, kind in (("source", SourceKind), ("fit", Fit), ("short", ShortPolicy),
                            ("no_audio", NoAudioPolicy)):
            if isinstance(flags.get(field), str):
                flags[field] = enum_flag(kind, flag_of(field), flags[field])
        try:
            return cls(**flags)
        except ValidationError as e:
            err = e.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            raise UserError(f"{flag_of(field)} {err.get('input')!r}: {err['msg']}") from None

    def check(self) -> None:
        """Refuse what cannot work (each message names the flag and the fix), before the index is read."""
        if self.media_dir is not None and not self.media_dir.is_dir():
            raise UserError(f"--media-dir {self.media_dir}: not a folder")
        if self.cookies is not None and not self.cookies.is_file():
            raise UserError(f"--cookies {self.cookies}: no such file; export cookies.txt from your browser")
        if "{youtube_id}" not in self.url_template and "{clip_id}" not in self.url_template:
            raise UserError(f"--url-template {self.url_template!r}: needs {{youtube_id}} or {{clip_id}}")
        if self.source == SourceKind.music_avqa and self.media_dir is None:
            raise UserError("--media-dir: MUSIC-AVQA videos have no YouTube ids; give the folder of <video_id>.mp4")
        if self.available_only and self.media_dir is None and self.source != SourceKind.local:
            raise UserError("--available-only needs --media-dir")
        if not self.keywords and not self.mix:
            raise UserError("--keywords: give keywords (or --mix); --list-keywords shows what the index offers")

    def normalize_options(self) -> NormalizeOptions:
        return NormalizeOptions(fit=self.fit, short=self.short, no_audio=self.no_audio,
                                allow_silent=self.allow_silent, crf=self.crf, preset=self.preset,
                                threads=self.ffmpeg_threads)

    def fetch_options(self) -> FetchOptions:
        return FetchOptions(media_dir=self.media_dir.resolve() if self.media_dir else None,
                            url_template=self.url_template,
                            cookies=self.cookies.resolve() if self.cookies else None, retries=self.retries,
                            backoff=self.backoff, rate_limit=parse_rate(self.rate_limit),
                            min_interval=self.min_interval)


def default(field: str) -> Any:
    """The request's default for `field` as a flag's default (enums as their text): what ssu-collect shows in
    --help and uses when the flag is not given."""
    value = CollectRequest.model_fields[field].default
    return value.value if isinstance(value, StrEnum) else list(value) if isinstance(value, tuple) else value


def flag_of(field: str) -> str:
    return "--" + field.replace("_", "-")


def enum_flag(cls: type[E], flag: str, value: str) -> E:
    try:
        return cls(value)
    except ValueError:
        raise UserError(f"{flag} {value!r}: use one of {', '.join(m.value for m in cls)}") from None
