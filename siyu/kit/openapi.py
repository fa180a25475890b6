"""What the OpenAPI spec says of errors and of routes without an API key, declared once.

Every error siyu answers has one body (:class:`ErrorOut`, rendered by the app's handlers
from :class:`siyu.errors.SiyuError` and request validation). The API routers pass
:data:`API_ERRORS` as their ``responses=``; the channels' callbacks, which platforms call
with their own signatures rather than a bearer key, pass :func:`error_responses` of the
statuses they answer and :data:`NO_BEARER` as ``openapi_extra`` (the spec's default
security is the bearer key). The schemathesis run (tests/test_api_fuzz.py) fails on any
status an operation does not document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# One description per status; a route may name its own with error_responses(...).
_DESCRIPTIONS: dict[int, str] = {
    400: "malformed request (a body that is not JSON, an unreadable callback)",
    401: "missing or invalid credentials (API key or signature headers)",
    403: "the caller may not do this (key scope, role, forged signature)",
    404: "nothing by that id or name",
    409: "conflicts with the current state",
    413: "request body too large",
    422: "invalid input: details name each field and the reason",
    429: "too many requests: retry later",
    502: "the channel platform's API failed",
    503: "the channel is not configured on this install",
}


class ErrorOut(BaseModel):
    """The body of every error: a stable code, a message fit to show, and the details."""

    error: str
    message: str
    details: Any = None


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` documenting ``statuses`` with the error body; a keyword ``s401="..."``
    replaces a status's description."""
    # Always JSON, also on routes that answer plain text or HTML (FastAPI would document a
    # ``model`` under the route's own media type); the app puts ErrorOut in the components.
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    return {status: {"description": descriptions.get(f"s{status}", _DESCRIPTIONS[status]),
                     "content": content} for status in statuses}


# The errors any /api/v1 route may answer: a malformed body, no or a bad key, a key or
# role without the permission, an unknown id, a write that conflicts with the state (a
# name taken, a merge already undone, a slot booked), a body over SIYU_MAX_BODY_BYTES, bad
# input. tests/test_api_fuzz.py checks that every /api/v1 operation documents them.
API_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422)

# ``responses=`` of a CSV export (with ``response_class=StreamingResponse``).
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {
    "description": "CSV, UTF-8 with a byte-order mark; formula cells neutralised",
    "content": {"text/csv": {"schema": {"type": "string"}}}}}

# ``openapi_extra`` of a route that takes no bearer key (the platform signs its callbacks).
NO_BEARER: dict[str, Any] = {"security": []}
