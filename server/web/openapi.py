"""OpenAPI 3.1 document built from the endpoint table and the pydantic models."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from server import __version__
from server.web.endpoint import Endpoint
from server.web.http import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from server.web.schemas import ErrorOut

_PARAM = re.compile(r"{(\w+)}")
# Path parameters are UUIDs unless named here.
_PARAM_SCHEMAS: dict[str, dict[str, Any]] = {"stream_id": {"type": "integer", "minimum": 1}}
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

DESCRIPTION = f"""\
Sessions: a login (`/api/auth/login`, `/api/auth/station`, `/api/invitations/redeem`) sets the
HttpOnly session cookie `{SESSION_COOKIE}` and answers `csrf_token` (also in the readable cookie
`{CSRF_COOKIE}`).

Writes (every method but GET, HEAD, OPTIONS) made with a session must send that token in the
`{CSRF_HEADER}` header, or they are refused with 403 `CSRF_FAILED`. A write whose `Origin`
header is present and not this server's own origin (including `Origin: null`) is refused the
same way, with or without a session; a write without `Origin` is accepted (browsers always send
it on cross-site and on scripted same-site writes; non-browser clients such as the station
send none, and the token still guards them). Bodies are JSON (`application/json`).

Invitation links: issuing a new link for a participant revokes their earlier links and ends
every session and signaling connection opened with them; revoking a link does the same. A link
may be redeemed again (a new device) while it is valid: the sessions opened with it before are
ended. A participant coming back on a new session goes through the waiting room.

Signaling: `GET /ws` upgrades to the WebSocket protocol of docs/signaling.md (same cookie).
"""


def _security(ep: Endpoint) -> list[dict[str, list[str]]]:
    """Public endpoints need nothing; the others the session cookie, and writes its CSRF token
    too (both at once: one requirement object)."""
    if ep.public:
        return []
    if ep.method in _SAFE:
        return [{"session": []}]
    return [{"session": [], "csrf": []}]


def build_openapi(endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    endpoints = list(endpoints)
    models: set[type[BaseModel]] = {ErrorOut}
    for ep in endpoints:
        if ep.request is not None:
            models.add(ep.request)
        if ep.response is not None:
            models.add(ep.response)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, top = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    schemas = top.get("$defs", {})

    def ref(model: type[BaseModel]) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    error = {"application/json": {"schema": ref(ErrorOut)}}
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": ep.handler.__name__,
            "security": _security(ep),
            "parameters": [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": _PARAM_SCHEMAS.get(name, {"type": "string", "format": "uuid"}),
                }
                for name in _PARAM.findall(ep.path)
            ],
            "responses": {"4XX": {"description": "error", "content": error}},
        }
        if ep.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(ep.request)}},
            }
        if ep.response is not None:
            schema: dict[str, Any] = ref(ep.response)
            if ep.many:
                schema = {"type": "array", "items": schema}
            op["responses"][str(ep.status)] = {
                "description": "ok",
                "content": {"application/json": {"schema": schema}},
            }
        elif ep.media_type is not None:
            op["responses"][str(ep.status)] = {
                "description": "ok",
                "content": {ep.media_type: {"schema": {"type": "string", "format": "binary"}}},
            }
        else:
            op["responses"][str(ep.status)] = {"description": "ok"}
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "shared-court", "version": __version__, "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": CSRF_HEADER,
                    "description": "the session's csrf_token, on every write made with a session",
                },
            },
        },
    }
