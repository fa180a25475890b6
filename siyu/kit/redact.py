"""Keep secrets out of log lines that third-party libraries write.

``httpx`` and ``httpcore`` log each request URL at INFO/DEBUG, and the WeCom and official
account APIs take their secret and access token as query parameters. :func:`redact_http_logs`
installs, once, a filter on those loggers that blanks the values of the sensitive query
parameters (``secret``, ``corpsecret``, ``access_token`` and the like) before any handler
sees the record.
"""

from __future__ import annotations

import logging
import re

__all__ = ["SENSITIVE_QUERY_PARAMS", "RedactQuerySecrets", "redact", "redact_http_logs"]

SENSITIVE_QUERY_PARAMS = ("secret", "corpsecret", "access_token", "token", "password",
                          "api_key", "key", "sig", "signature", "msg_signature")
_PATTERN = re.compile(
    r"((?<![A-Za-z0-9_])(?:" + "|".join(SENSITIVE_QUERY_PARAMS) + r")=)[^&\s\"']+")


def redact(text: str) -> str:
    """``text`` with the values of sensitive query parameters replaced by ``***``."""
    return _PATTERN.sub(r"\1***", text)


class RedactQuerySecrets(logging.Filter):
    """Rewrites a record whose message carries a sensitive query value."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def redact_http_logs() -> None:
    """Install :class:`RedactQuerySecrets` on the HTTP client loggers (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuerySecrets) for f in logger.filters):
            logger.addFilter(RedactQuerySecrets())
