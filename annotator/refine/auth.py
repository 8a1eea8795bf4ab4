"""Users of the refinement app: users.toml with salted scrypt password hashes and a role per user.

    [users.alice]
    role = "refiner"
    password = "scrypt$16384$8$1$<salt base64>$<hash base64>"

Only hashes are stored; verification is constant-time. The file is written atomically.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from schemas import atomic
from schemas.errors import UserError

USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
# scrypt cost: ~40 ms per check on these machines, enough to make offline guessing slow
_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 6


class Role(StrEnum):
    refiner = "refiner"    # fixes masks and captions, submits clips for review
    reviewer = "reviewer"  # everything a refiner does, plus accept (final) / reject / send back


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str

    @property
    def can_review(self) -> bool:
        return self.role == Role.reviewer

    @property
    def fingerprint(self) -> str:
        """Changes when the role or the password changes: a login made before then is no longer valid."""
        return hashlib.sha256(f"{self.role.value}\0{self.password_hash}".encode()).hexdigest()[:32]


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if algo != "scrypt":
            return False
        salt, want = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        got = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(want))
    except (ValueError, TypeError):  # malformed hash: refuse rather than crash the login form
        return False
    return hmac.compare_digest(got, want)


def check_user_name(name: str) -> str:
    if not USER_RE.match(name or ""):
        raise UserError(f"user name {name!r}: use letters, digits, '_', '.', '-' (at most 64 characters)")
    return name


_DUMMY_HASH: list[str] = []  # one hash made once: an unknown name costs one scrypt run, as a known one does


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(os.urandom(12).hex()))
    return _DUMMY_HASH[0]


class UserStore:
    """users.toml, read at start and re-read when it changes on disk (add-user while the server runs).
    `generation` counts the reloads: the login sessions re-check their users when it moves."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._mtime: tuple[int, int, int] | None = None
        self._users: dict[str, User] = {}
        self.generation = 0
        self._load()
        _dummy_hash()

    def _load(self) -> None:
        if not self.path.is_file():
            if self.generation:  # deleted while serving: nobody may log in or stay logged in
                if self._users:
                    self._users, self._mtime, self.generation = {}, None, self.generation + 1
                return
            raise UserError(f"{self.path}: no users file; create one with `ssu-refine add-user {self.path} NAME`")
        st = self.path.stat()
        # add-user replaces the file (a new inode): two writes within the clock's resolution still differ
        mtime = (st.st_mtime_ns, st.st_ino, st.st_size)
        if mtime == self._mtime:
            return
        try:
            data = tomllib.loads(self.path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{self.path}: not valid TOML ({e}); fix it or recreate it with add-user") from None
        users: dict[str, User] = {}
        for name, entry in (data.get("users") or {}).items():
            try:
                role = Role(entry.get("role", ""))
            except ValueError:
                raise UserError(f"{self.path}: user {name!r} has role {entry.get('role')!r}; "
                                f"use one of {', '.join(Role)}") from None
            if not isinstance(entry.get("password"), str):
                raise UserError(f"{self.path}: user {name!r} has no password hash; reset it with add-user")
            users[check_user_name(name)] = User(name, role, entry["password"])
        self._users, self._mtime, self.generation = users, mtime, self.generation + 1

    @property
    def users(self) -> dict[str, User]:
        self._load()
        return dict(self._users)

    def get(self, name: str) -> User | None:
        return self.users.get(name)

    def authenticate(self, name: str, password: str) -> User | None:
        user = self.get(name)
        if user is None:
            verify_password(password, _dummy_hash())  # the same work: do not reveal which names exist
            return None
        return user if verify_password(password, user.password_hash) else None


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_users(path: str | Path, users: dict[str, User]) -> None:
    lines = ["# ssu-refine users: edit with `ssu-refine add-user`; passwords are salted scrypt hashes", ""]
    for u in sorted(users.values(), key=lambda u: u.name):
        lines += [f"[users.{_toml_str(u.name)}]", f"role = {_toml_str(u.role.value)}",
                  f"password = {_toml_str(u.password_hash)}", ""]
    atomic.write_text(path, "\n".join(lines))
    os.chmod(path, 0o600)  # hashes only, but nobody else needs to read them


def add_user(path: str | Path, name: str, password: str, role: Role) -> bool:
    """Add or update a user; returns True when the user is new."""
    check_user_name(name)
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password for {name!r} is too short; use at least {MIN_PASSWORD} characters")
    path = Path(path)
    users = UserStore(path).users if path.is_file() else {}
    new = name not in users
    users[name] = User(name, Role(role), hash_password(password))
    write_users(path, users)
    return new
