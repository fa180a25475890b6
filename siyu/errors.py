"""The error base every domain error derives from; one handler renders them all."""

from __future__ import annotations

from typing import Any


class SiyuError(Exception):
    """An expected failure with an HTTP status and a message fit to show a user."""

    status_code = 400
    code = "error"

    def __init__(self, message: str, *, details: Any = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if status_code is not None:
            self.status_code = status_code

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class NotFound(SiyuError):
    status_code = 404
    code = "not_found"


class InvalidInput(SiyuError):
    """Input that fails validation; ``details`` names each bad field and the reason."""

    status_code = 422
    code = "invalid_input"


class Conflict(SiyuError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(SiyuError):
    status_code = 413
    code = "payload_too_large"


class Unauthorized(SiyuError):
    status_code = 401
    code = "unauthorized"


class Forbidden(SiyuError):
    status_code = 403
    code = "forbidden"
