"""The HTTP client loggers never carry a secret or token from a query string."""

from __future__ import annotations

import logging

import pytest

from siyu.kit.redact import redact, redact_http_logs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET https://x/cgi-bin/gettoken?corpid=ww1&corpsecret=S3cr3t-value HTTP/1.1",
         "GET https://x/cgi-bin/gettoken?corpid=ww1&corpsecret=*** HTTP/1.1"),
        ("GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=abc",
         "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=***"),
        ("POST /message/send?access_token=TOK123&debug=1",
         "POST /message/send?access_token=***&debug=1"),
        ("nothing to hide here", "nothing to hide here"),
    ],
)
def test_redact_blanks_sensitive_query_values(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_filter_on_httpx_logger_rewrites_records(caplog: pytest.LogCaptureFixture) -> None:
    redact_http_logs()
    redact_http_logs()  # idempotent: one filter, not two
    logger = logging.getLogger("httpx")
    assert sum(type(f).__name__ == "RedactQuerySecrets" for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="httpx"):
        logger.info('HTTP Request: %s "%s"', "GET",
                    "https://qyapi/cgi-bin/gettoken?corpid=a&corpsecret=TOPSECRET")
    assert "TOPSECRET" not in caplog.text
    assert "corpsecret=***" in caplog.text
