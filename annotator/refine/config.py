"""RefineConfig: every setting of a running ssu-refine, typed and validated (pydantic), with the defaults the
CLI's flags read (`RefineConfig.default("lease_minutes")`), so each default is written once, here.

The web limits (body sizes, uploads, login backoff, login lifetimes, the public origin) are enforced by
annotator/refine/gate.py, sessions.py and upload.py; docs/refine.md ("Security") describes them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.errors import UserError

# a category typed at upload (only with new_categories): lower-case words, as the manifests' categories are
CATEGORY_RE = re.compile(r"^[a-z][a-z0-9]*(?:[ \-][a-z0-9]+){0,5}$")
CATEGORY_MAX = 48


class RefineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # -- workflow -------------------------------------------------------------------------------------
    require_review: bool = True  # a refiner's accept sends the clip to review; only reviewers finalise
    lease_minutes: float = Field(30.0, ge=1, description="how long a claim lasts without activity")
    idle_minutes: float = Field(120.0, ge=0, description="an editor tab with no request this long is closed")
    heartbeat_seconds: float = Field(20.0, gt=0, description="the editor renews its lease this often")

    # -- the web: who may call, and how much --------------------------------------------------------------
    public_url: str | None = Field(None, description="the origin browsers use, e.g. https://refine.example.com "
                                   "behind a reverse proxy; default: http://HOST:PORT (and localhost)")
    login_idle_minutes: float = Field(120.0, gt=0, description="a login unused this long ends")
    login_hours: float = Field(12.0, gt=0, description="a login ends this long after it began, used or not")
    login_limit_user: str = Field("5/minute;20/hour", description="failed logins allowed per user name")
    login_limit_address: str = Field("20/minute;100/hour", description="failed logins allowed per address")
    max_body_kb: int = Field(1024, ge=16, description="largest request body other than uploads")
    max_upload_mb: int = Field(100, ge=1, description="largest uploaded video")
    max_upload_files: int = Field(20, ge=1, le=1000, description="most videos in one upload")
    max_pixels: int = Field(3840 * 2160, ge=64 * 64, description="largest width x height of an uploaded video")
    max_fps: float = Field(120.0, gt=0, description="highest frame rate of an uploaded video")
    new_categories: bool = Field(False, description="let reviewers type a new category at upload")

    @field_validator("public_url")
    @classmethod
    def _origin(cls, v: str | None) -> str | None:
        if v is None:
            return None
        u = urlsplit(v.strip())
        if u.scheme not in ("http", "https") or not u.hostname or u.path not in ("", "/") or u.query:
            raise ValueError(f"{v!r} is not an origin like https://refine.example.com (no path)")
        return f"{u.scheme}://{u.netloc}".lower()

    @field_validator("login_limit_user", "login_limit_address")
    @classmethod
    def _limits(cls, v: str) -> str:
        from limits import parse_many

        try:
            parse_many(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a rate like '5/minute;20/hour'") from None
        return v

    @property
    def secure_cookies(self) -> bool:
        """Cookies get `Secure` when browsers reach the app over TLS (a reverse proxy's https origin)."""
        return bool(self.public_url and self.public_url.startswith("https://"))

    @classmethod
    def default(cls, name: str) -> Any:
        return cls.model_fields[name].default

    @classmethod
    def help(cls, name: str) -> str:
        return cls.model_fields[name].description or ""

    @classmethod
    def from_flags(cls, **values: Any) -> RefineConfig:
        """Build from CLI values; a bad value is a UserError naming its flag."""
        try:
            return cls(**values)
        except ValidationError as e:
            err = e.errors()[0]
            flag = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "config"
            raise UserError(f"{flag}: {err['msg']}") from None


def check_category(label: str, known: list[str], allow_new: bool) -> str:
    """The category of an upload: one of the root's, or (allow_new) a new one of the checked pattern."""
    label = " ".join((label or "").split())
    if label in known:
        return label
    if not allow_new:
        raise UserError(f"category {label[:60]!r}: choose one of the root's categories "
                        f"({', '.join(known[:12]) or 'none yet'}); new ones need `ssu-refine --new-categories`")
    if len(label) > CATEGORY_MAX or not CATEGORY_RE.match(label):
        raise UserError(f"category {label[:60]!r}: use lower-case words (letters, digits, ' ' or '-'), at most "
                        f"{CATEGORY_MAX} characters, e.g. 'playing piano'")
    return label
