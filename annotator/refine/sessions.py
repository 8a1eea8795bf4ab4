"""Logins of ssu-refine: who a login cookie names, for how long, and how often one may guess a password.

`Logins` replaces Gradio's `App.tokens` (a plain dict token -> user name that every Gradio route reads,
and that never forgets), so that Gradio's routes and ours resolve a cookie the same way, against the users
file as it is now: a login ends when it is idle too long, when it is too old, and at once when its user is
removed or gets another role or password. `on_end(name)` then ends that user's editor sessions and leases.

`LoginThrottle` counts failed logins per user name and per address (`limits`, a moving window) and says
how long to wait (429 + Retry-After) once either is spent.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass

from annotator.refine.auth import UserStore


@dataclass
class Login:
    user: str
    fingerprint: str  # the user's role and password hash when they logged in
    started: float
    seen: float


class Logins(MutableMapping[str, str]):
    """token -> user name, for logins that are still valid now."""

    def __init__(self, users: UserStore, idle_s: float, max_s: float,
                 on_end: Callable[[str], None] = lambda _name: None, clock: Callable[[], float] = time.monotonic):
        self.users, self.idle_s, self.max_s, self.on_end, self.clock = users, idle_s, max_s, on_end, clock
        self._logins: dict[str, Login] = {}
        self._lock = threading.Lock()
        self._generation = users.generation
        self._fingerprints = {n: u.fingerprint for n, u in users.users.items()}

    def create(self, name: str) -> str:
        user = self.users.get(name)
        if user is None:
            raise KeyError(name)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._logins[token] = Login(name, user.fingerprint, now, now)
        return token

    def user_of(self, token: str | None, touch: bool = True) -> str | None:
        """The user a token names, or None (unknown, expired, or the user changed since: then it is gone)."""
        if not token:
            return None
        self.check_users()
        with self._lock:
            login = self._logins.get(token)
            if login is None:
                return None
            now = self.clock()
            if now - login.seen > self.idle_s or now - login.started > self.max_s:
                del self._logins[token]
                return None
            if touch:
                login.seen = now
            return login.user

    def check_users(self) -> None:
        """When the users file changed: end every login (and editor session) of a user removed or changed."""
        self.users.users  # noqa: B018  (re-reads the file if it changed on disk)
        if self.users.generation == self._generation:
            return
        now = {n: u.fingerprint for n, u in self.users.users.items()}
        with self._lock:
            if self.users.generation == self._generation:
                return
            self._generation = self.users.generation
            gone = {n for n, fp in self._fingerprints.items() if now.get(n) != fp}
            gone |= {lg.user for lg in self._logins.values() if now.get(lg.user) != lg.fingerprint}
            self._fingerprints = now
            for token in [t for t, lg in self._logins.items() if lg.user in gone]:
                del self._logins[token]
        for name in sorted(gone):
            self.on_end(name)

    def end(self, token: str | None) -> str | None:
        """Log out one login; returns its user."""
        with self._lock:
            login = self._logins.pop(token or "", None)
        return login.user if login else None

    # -- the mapping Gradio reads (App.tokens.get(token)) ----------------------------------------------
    def get(self, token: object, default: object = None) -> str | None:  # type: ignore[override]
        user = self.user_of(token if isinstance(token, str) else None)
        return user if user is not None else default  # type: ignore[return-value]

    def __getitem__(self, token: str) -> str:
        user = self.user_of(token)
        if user is None:
            raise KeyError(token)
        return user

    def __setitem__(self, token: str, name: str) -> None:
        user = self.users.get(name)  # Gradio's own login route, should it run: the same rules apply
        if user is not None:
            now = self.clock()
            with self._lock:
                self._logins[token] = Login(name, user.fingerprint, now, now)

    def __delitem__(self, token: str) -> None:
        with self._lock:
            del self._logins[token]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._logins))

    def __len__(self) -> int:
        return len(self._logins)


class LoginThrottle:
    """Failed logins per user name and per address; `wait()` is the seconds to wait (0: go ahead)."""

    def __init__(self, per_user: str, per_address: str) -> None:
        from limits import parse_many, storage, strategies

        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._user, self._address = parse_many(per_user), parse_many(per_address)

    def _keys(self, name: str, address: str) -> list[tuple[object, str]]:
        return [(lim, f"user:{name.lower()}") for lim in self._user] + \
               [(lim, f"addr:{address}") for lim in self._address]

    def wait(self, name: str, address: str) -> int:
        waits = [0.0]
        for lim, key in self._keys(name, address):
            if not self._limiter.test(lim, key):  # type: ignore[arg-type]
                reset = self._limiter.get_window_stats(lim, key).reset_time  # type: ignore[arg-type]
                waits.append(reset - time.time())
        return int(max(waits) + 0.999)

    def failed(self, name: str, address: str) -> None:
        for lim, key in self._keys(name, address):
            self._limiter.hit(lim, key)  # type: ignore[arg-type]
