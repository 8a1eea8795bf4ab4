"""The request gate of ssu-refine: one ASGI middleware in front of every route, Gradio's and ours.

For each request, before any route runs:
- the Host must be the app's own (no DNS rebinding); a state-changing request (any method but GET/HEAD/
  OPTIONS), `/gradio_api/token` and `/gradio_api/user` must come from the app's own origin (`Origin`,
  `Sec-Fetch-Site`): a page on another origin, another port included, cannot act as a logged-in user;
- the body must fit its limit, checked on Content-Length before reading and counted while reading; an
  anonymous caller may post only to /login; uploads are a reviewer's, at most `max_upload_files` files;
- `/ssu/api/*` posts must be `Content-Type: application/json` with the `X-SSU-Request` header (which no
  form can send and no other origin may send without a preflight, which is refused);
- the login cookie resolves through `Logins` (sessions.py): the users file as it is now decides.
It answers POST /login (scrypt in the thread pool, backoff per user and per address: 429 + Retry-After)
and POST /logout itself, and adds the security headers (CSP, frame-ancestors 'none', nosniff, Referrer-Policy)
to every answer.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from python_multipart.exceptions import MultipartParseError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response

from annotator.refine.auth import UserStore
from annotator.refine.config import RefineConfig
from annotator.refine.sessions import Logins, LoginThrottle

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SAME_ORIGIN_READS = {"/gradio_api/token", "/gradio_api/token/", "/gradio_api/user", "/gradio_api/user/"}
UPLOAD_PATHS = {"/gradio_api/upload", "/gradio_api/upload/"}
API_PREFIX = "/ssu/api/"
CUSTOM_HEADER = "x-ssu-request"  # editor.js sends it on every API call
LOOPBACK = ("127.0.0.1", "localhost")

# The editor page has no inline script or style attribute; Gradio's page needs inline scripts and `new Function`
# (its `js=` handlers), so its policy is looser; both forbid framing, plugins, other origins and <base>.
_COMMON = ("default-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
           "frame-ancestors 'none'; img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self' data:")
CSP_EDITOR = _COMMON + "; script-src 'self'; style-src 'self'"
CSP_GRADIO = _COMMON + "; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; " \
                       "worker-src 'self' blob:"


def security_headers(csp: str) -> list[tuple[bytes, bytes]]:
    import secure

    h = secure.Secure(xfo=secure.XFrameOptions().deny(), xcto=secure.XContentTypeOptions().nosniff(),
                      referrer=secure.ReferrerPolicy().same_origin(),
                      coop=secure.CrossOriginOpenerPolicy().same_origin(),
                      corp=secure.CrossOriginResourcePolicy().same_origin()).headers
    h = {**h, "Content-Security-Policy": csp}
    return [(k.lower().encode(), v.encode()) for k, v in h.items()]


@dataclass
class Origins:
    """Who the app is: the origins browsers may call it from and the Host names it answers to."""

    origins: set[str]
    hosts: set[str]

    @classmethod
    def of(cls, host: str, port: int, public_url: str | None) -> Origins:
        names = {*LOOPBACK} | ({host} if host not in ("0.0.0.0", "::", "") else set())
        origins = {f"http://{n}:{port}" for n in names}
        hosts = {f"{n}:{port}" for n in names}
        if public_url:
            u = urlsplit(public_url)
            origins.add(public_url)
            hosts |= {u.netloc, u.hostname or ""}
        return cls(origins, hosts)

    def same_origin(self, headers: Headers) -> bool:
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = headers.get("origin")
        return origin is None or origin.lower() in self.origins


def _cookie(headers: Headers, name: str) -> str | None:
    return cookie_parser(headers.get("cookie") or "").get(name)


class _TooLarge(MultipartParseError):
    """Raised from the body stream: a multipart parser (Gradio's upload route) takes it for a broken upload
    and deletes the partial files it wrote; any other route just stops reading."""


class RequestGate:
    def __init__(self, app: ASGIApp, *, config: RefineConfig, origins: Origins, users: UserStore, logins: Logins,
                 cookie_name: str) -> None:
        self.app, self.config, self.origins, self.users, self.logins = app, config, origins, users, logins
        self.cookie_name = cookie_name
        self.throttle = LoginThrottle(config.login_limit_user, config.login_limit_address)
        self.body_limit = config.max_body_kb * 1024
        self.upload_limit = config.max_upload_files * (config.max_upload_mb * 2**20 + 64 * 1024)
        self.editor_headers = security_headers(CSP_EDITOR)
        self.gradio_headers = security_headers(CSP_GRADIO)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if (headers.get("host") or "").lower() not in self.origins.hosts:
            return await self._deny(scope, receive, send, 400, "Host: not this app's address; use its public URL "
                                    "(ssu-refine --public-url)")
        if scope["type"] == "websocket" or method not in SAFE_METHODS or path in SAME_ORIGIN_READS:
            if not self.origins.same_origin(headers):
                return await self._deny(scope, receive, send, 403, "cross-origin request refused: use the app's "
                                        "own pages (ssu-refine --public-url names the origin behind a proxy)")
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        send = self._with_headers(send, path)
        if path in ("/login", "/login/") and method == "POST":
            return await self._login(scope, receive, send)
        if path in ("/logout", "/logout/"):
            return await self._logout(scope, receive, send, method)
        user = self.logins.user_of(_cookie(headers, self.cookie_name))
        if method in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        if user is None:
            return await self._deny(scope, receive, send, 401, "log in first")
        limit = self.body_limit
        if path in UPLOAD_PATHS:
            u = self.users.get(user)
            if u is None or not u.can_review:
                return await self._deny(scope, receive, send, 403, "only a reviewer can upload videos")
            limit = self.upload_limit
        if path.startswith(API_PREFIX):
            ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
            if ctype != "application/json" or headers.get(CUSTOM_HEADER) is None:
                return await self._deny(scope, receive, send, 403, "the API takes JSON (Content-Type: "
                                        "application/json) with the X-SSU-Request header, from the editor page")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await self._deny(scope, receive, send, 413, f"request body over {limit // 1024} KiB")
        boundary = _boundary(headers) if path in UPLOAD_PATHS else None
        await self._limited(scope, receive, send, limit, boundary)

    # -- bodies ---------------------------------------------------------------------------------------------
    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int, boundary: bytes | None) -> None:
        """Run the app with the body counted as it arrives: past the limit (or past max_upload_files parts) the
        caller gets 413 and the app sees the client disconnect, so nothing more is read or stored."""
        seen, parts, part, tail = 0, 0, 0, b""
        state = {"started": False, "refused": False}
        most_parts = self.config.max_upload_files + 1  # n files: n part boundaries and the closing one
        # one file's bytes, with room for its part headers and one network chunk of the next part
        part_limit = self.config.max_upload_mb * 2**20 + 64 * 1024

        async def counted() -> dict[str, Any]:
            nonlocal seen, parts, part, tail
            if state["refused"]:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                chunk = msg.get("body", b"")
                seen += len(chunk)
                if boundary is not None:  # count the parts and the size of the current one as they arrive
                    data = tail + chunk
                    found, last = data.count(boundary), data.rfind(boundary)
                    parts += found
                    part = len(data) - last - len(boundary) if found else part + len(chunk)
                    tail = data[-(len(boundary) - 1):]
                why = ""
                if parts > most_parts:
                    why = f"more than {self.config.max_upload_files} files in one upload"
                elif boundary is not None and part > part_limit:
                    why = f"a file over {self.config.max_upload_mb} MB"
                elif seen > limit:
                    why = f"request body over {limit // 1024} KiB"
                if why:
                    if not state["started"]:  # answer now: an error page of the app's own must not come first
                        state["refused"] = True
                        await JSONResponse({"error": why, "detail": why}, 413)(scope, receive, send)
                    raise _TooLarge(why)
            return msg

        async def guarded(msg: dict[str, Any]) -> None:
            if state["refused"]:
                return
            state["started"] = True
            await send(msg)

        try:
            await self.app(scope, counted, guarded)
        except Exception:  # _TooLarge, or what the app made of it
            if not state["refused"]:
                raise

    # -- login / logout --------------------------------------------------------------------------------------
    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > 16 * 1024:
            return await self._deny(scope, receive, send, 413, "login form: give a name and a password")
        request = Request(scope, receive)
        try:
            form = await request.form(max_files=0, max_fields=8)
            name, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
        except Exception:
            return await self._deny(scope, receive, send, 400, "login form: give a name and a password")
        address = request.client.host if request.client else "?"
        wait = self.throttle.wait(name, address)
        if wait > 0:
            await JSONResponse({"error": f"too many failed logins: wait {wait} s"}, 429,
                               headers={"Retry-After": str(wait)})(scope, receive, send)
            return
        user = await run_in_threadpool(self.users.authenticate, name, password)  # scrypt: not on the event loop
        if user is None:
            self.throttle.failed(name, address)
            await JSONResponse({"detail": "Incorrect credentials."}, 400)(scope, receive, send)
            return
        response = JSONResponse({"success": True})
        response.set_cookie(self.cookie_name, self.logins.create(user.name), max_age=int(self.config.login_hours
                            * 3600), path="/", httponly=True, samesite="strict", secure=self.config.secure_cookies)
        await response(scope, receive, send)

    async def _logout(self, scope: Scope, receive: Receive, send: Send, method: str) -> None:
        if method != "POST":
            return await self._deny(scope, receive, send, 405, "log out with the Log out button (a POST)",
                                    {"Allow": "POST"})
        name = self.logins.end(_cookie(Headers(scope=scope), self.cookie_name))
        if name is not None and not any(self.logins.user_of(t, touch=False) == name for t in list(self.logins)):
            self.logins.on_end(name)  # the user's last login: their editor sessions and leases end too
        response = JSONResponse({"logged_out": name is not None})
        response.delete_cookie(self.cookie_name, path="/", httponly=True, samesite="strict",
                               secure=self.config.secure_cookies)
        await response(scope, receive, send)

    # -- answers ---------------------------------------------------------------------------------------------
    def _with_headers(self, send: Send, path: str) -> Send:
        extra = self.editor_headers if path.startswith("/ssu/") else self.gradio_headers

        async def wrapped(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                h = MutableHeaders(scope=msg)
                for k, v in extra:
                    h[k.decode()] = v.decode()
            await send(msg)
        return wrapped

    async def _deny(self, scope: Scope, receive: Receive, send: Send, code: int, why: str,
                    headers: dict[str, str] | None = None) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response: Response = JSONResponse({"error": why, "detail": why}, code, headers=headers)
        await response(scope, receive, self._with_headers(send, scope.get("path", "")))


_BOUNDARY = re.compile(r'boundary="?([^";,]+)"?', re.I)


def _boundary(headers: Headers) -> bytes | None:
    m = _BOUNDARY.search(headers.get("content-type") or "")
    return b"--" + m.group(1).encode("latin-1") if m else None
