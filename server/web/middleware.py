"""Middlewares: error mapping, sessions, CSRF, security headers.

Order (outermost first): errors -> security headers -> session -> csrf -> handler.

- Errors: ``CourtError`` becomes its status and ``{"type":"error","code",...}``; aiohttp's own
  HTTP errors keep their status with a code; anything else is logged with a traceback and
  answered as an opaque ``INTERNAL``.
- Session: the HttpOnly cookie is resolved to a principal (or none) on every request.
- CSRF: every state-changing request must come from our own origin (``Origin`` checked when the
  browser sends it) and, when it rides on a session, carry the session's CSRF token in
  ``X-CSRF-Token`` (double submit, compared by digest). JSON-only bodies add a third wall: a
  cross-site form cannot send ``application/json`` without a CORS preflight, which we never grant.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.auth import tokens
from server.errors import CourtError, ErrorCode
from server.web.appkeys import AUTH, CONFIG, CSRF_HASH, PRINCIPAL
from server.web.http import CSRF_HEADER, SESSION_COOKIE, dumps

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.TOO_LARGE,
}

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def _error_response(err: CourtError) -> web.Response:
    return web.json_response(err.to_json(), status=err.http_status, dumps=dumps)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CourtError as err:
        return _error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, ErrorCode.BAD_REQUEST)
        message = "request body too large" if exc.status == 413 else (exc.reason or "error")
        return web.json_response(
            {"type": "error", "code": code.value, "message": message}, status=exc.status
        )
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error_response(CourtError(ErrorCode.INTERNAL, "internal error"))


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self)")
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    if request.app[CONFIG].server.secure_cookies:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        resolved = await request.app[AUTH].resolve(token)
        if resolved is not None:
            request[PRINCIPAL], request[CSRF_HASH] = resolved
    return await handler(request)


def _same_origin(request: web.Request, origin: str) -> bool:
    allowed = {str(request.url.origin()), request.app[CONFIG].server.base_url}
    return origin in allowed


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS:
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(request, origin):
            raise CourtError(ErrorCode.CSRF_FAILED, "cross-origin request refused")
        csrf_hash: bytes | None = request.get(CSRF_HASH)
        if csrf_hash is not None:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not tokens.same(tokens.digest(sent), csrf_hash):
                raise CourtError(ErrorCode.CSRF_FAILED, f"missing or wrong {CSRF_HEADER} header")
    return await handler(request)


MIDDLEWARES = [error_middleware, security_headers_middleware, session_middleware, csrf_middleware]
