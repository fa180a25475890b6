"""The official account's server API over HTTP: the access token and customer-service messages.

* ``GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`` gives a token valid
  ``expires_in`` seconds; it is kept in the database and shared by every worker
  (:mod:`.tokens`). A call answered with errcode 40001 / 40014 / 42001 / 41001 (token invalid,
  expired or missing) refreshes it once and is retried.
* ``POST /cgi-bin/message/custom/send`` sends a customer-service message to a follower, which
  the platform allows for 48 hours after the follower's last message, a few messages per
  window (errcode 45015 outside it or after an unfollow, 45047 over the cap).

Errors are :class:`OaApiError` with ``retryable`` (refused or never arrived: safe to send
again), ``ambiguous`` (may have been processed: a read timeout) and ``window_closed``.
Neither messages nor logs carry the secret or the token: ``httpx`` logs request URLs, so a
filter on its logger blanks the ``secret`` and ``access_token`` query values.
"""

from __future__ import annotations

from typing import Any

import httpx

from siyu.channels.oa.tokens import SharedTokenStore, credentials_key
from siyu.errors import SiyuError
from siyu.kit.redact import redact_http_logs

__all__ = ["OaApiError", "OaClient"]

TOKEN_ERRCODES = frozenset({40001, 40014, 41001, 42001})
RETRYABLE_ERRCODES = frozenset({-1, 45009, 45011, 50001})
WINDOW_ERRCODES = {45015: "客户超过 48 小时未互动或已取消关注，客服消息窗口已关闭",
                   45047: "本窗口内客服消息条数已达上限，需等客户再次发消息"}


redact_http_logs()


class OaApiError(SiyuError):
    """An official account API call failed; ``errcode`` is the platform's (``None`` for
    transport errors)."""

    status_code = 502
    code = "oa_api_error"

    def __init__(self, message: str, *, errcode: int | None = None, retryable: bool = False,
                 ambiguous: bool = False) -> None:
        super().__init__(message, details={"errcode": errcode})
        self.errcode = errcode
        self.retryable = retryable
        self.ambiguous = ambiguous

    @property
    def window_closed(self) -> bool:
        return self.errcode in WINDOW_ERRCODES


class OaClient:
    """Calls the official account API with one app id and secret.

    Args:
        api_base: ``https://api.weixin.qq.com`` (``SIYU_OA_API_BASE``) or a test server.
        appid, secret: ``SIYU_OA_APPID`` / ``SIYU_OA_SECRET``.
        tokens: Where the access token is shared between workers.
        http: The ``httpx.Client`` to use (not closed here).
    """

    def __init__(self, *, api_base: str, appid: str, secret: str, tokens: SharedTokenStore,
                 http: httpx.Client) -> None:
        if not appid or not secret:
            raise OaApiError("the official account API needs SIYU_OA_APPID and SIYU_OA_SECRET")
        self._base = api_base.rstrip("/")
        self._appid = appid
        self._secret = secret
        self._tokens = tokens
        self._http = http
        self._key = credentials_key("oa", appid, secret)

    def __repr__(self) -> str:
        return f"OaClient(api_base={self._base!r}, appid={self._appid!r})"

    def _request(self, method: str, path: str, *, params: dict[str, str],
                 json: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self._http.request(method, f"{self._base}{path}", params=params,
                                          json=json)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise OaApiError(f"official account API unreachable ({type(exc).__name__})",
                             retryable=True) from None
        except httpx.TransportError as exc:
            raise OaApiError(f"official account API did not answer ({type(exc).__name__})",
                             retryable=True, ambiguous=True) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise OaApiError(f"official account API answered HTTP {response.status_code}",
                             retryable=True)
        if response.status_code != 200:
            raise OaApiError(f"official account API answered HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OaApiError("official account API answered something that is not a JSON "
                             "object", retryable=True, ambiguous=True)
        return data

    @staticmethod
    def _check(data: dict[str, Any], what: str) -> dict[str, Any]:
        errcode = data.get("errcode", 0)
        if errcode in (0, None):
            return data
        code = int(errcode)
        errmsg = str(data.get("errmsg", ""))[:200]
        message = WINDOW_ERRCODES.get(code) or f"official account {what} failed: errcode " \
                                               f"{code} {errmsg}".strip()
        raise OaApiError(message, errcode=code, retryable=code in RETRYABLE_ERRCODES)

    def _fetch(self) -> tuple[str, float]:
        data = self._check(self._request("GET", "/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": self._appid, "secret": self._secret}),
            "token")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise OaApiError("official account token answer has no access_token",
                             retryable=True)
        expires_in = data.get("expires_in", 7200)
        return token, float(expires_in) if isinstance(expires_in, int | float) else 7200.0

    def access_token(self, *, invalid: str | None = None) -> str:
        """The shared valid token (fetched by one worker when none is)."""
        from siyu.channels.oa.tokens import TokenUnavailable

        try:
            return self._tokens.get(self._key, self._fetch, invalid=invalid)
        except TokenUnavailable as exc:
            raise OaApiError(str(exc), retryable=True) from None

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` with the access token; refresh it once if the platform refuses it."""
        token = self.access_token()
        data = self._request("POST", path, params={"access_token": token}, json=body)
        if data.get("errcode") in TOKEN_ERRCODES:
            token = self.access_token(invalid=token)
            data = self._request("POST", path, params={"access_token": token}, json=body)
        return self._check(data, path.rsplit("/", 1)[-1])

    def send_text(self, openid: str, content: str) -> dict[str, Any]:
        """Send a customer-service text message to a follower."""
        return self.call("/cgi-bin/message/custom/send",
                         {"touser": openid, "msgtype": "text", "text": {"content": content}})
