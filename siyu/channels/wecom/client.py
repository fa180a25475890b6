"""WeCom (企业微信) server API over HTTP: access tokens and sending messages.

* ``GET /cgi-bin/gettoken?corpid=&corpsecret=`` gives an access token valid ``expires_in``
  seconds (7200); tokens are cached per (API base, corp id, secret) in the process and
  refreshed a little before they expire, as WeCom asks (the call is rate limited).
* A call answered with errcode 42001 (expired), 40014 (invalid) or 41001 (missing token)
  refreshes the token and is retried once.
* ``POST /cgi-bin/message/send`` sends an app message to members (``wecom_userid``);
  ``POST /cgi-bin/kf/send_msg`` answers external WeChat users through a 微信客服 account
  (``wecom_external_userid``), the API meant for conversational service replies (the 客户联系
  ``add_msg_template`` mass-send needs a member to confirm each send, so a bot cannot use it).

Errors are :class:`WeComApiError` with ``retryable`` (safe to send again later: the request
was refused or never arrived) and ``ambiguous`` (the request may have been processed: a read
timeout). Neither messages nor logs carry the secret or the access token: ``httpx`` logs
request URLs, so a filter on its logger redacts the two query parameters.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from siyu.errors import SiyuError
from siyu.kit.redact import redact_http_logs

__all__ = ["TOKEN_CACHE", "TokenCache", "WeComApiError", "WeComClient"]

TOKEN_ERRCODES = frozenset({40014, 41001, 42001})
# Busy / rate-limited / internal errors that WeCom documents as transient.
RETRYABLE_ERRCODES = frozenset({-1, 45009, 45033, 45035, 50001, 95007})
# Refresh this long before WeCom's stated expiry, so a token never dies mid-request.
_EXPIRY_MARGIN = 300.0


redact_http_logs()


class WeComApiError(SiyuError):
    """A WeCom API call failed; ``errcode`` is WeCom's (``None`` for transport errors)."""

    status_code = 502
    code = "wecom_api_error"

    def __init__(self, message: str, *, errcode: int | None = None, retryable: bool = False,
                 ambiguous: bool = False) -> None:
        super().__init__(message, details={"errcode": errcode})
        self.errcode = errcode
        self.retryable = retryable
        self.ambiguous = ambiguous


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Access tokens by credentials, shared by every client in the process (thread-safe)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self._clock = clock

    @staticmethod
    def key(api_base: str, corp_id: str, secret: str) -> str:
        digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
        return f"{api_base}|{corp_id}|{digest}"

    def get(self, key: str) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.expires_at <= self._clock():
                return None
            return token.value

    def put(self, key: str, value: str, expires_in: float) -> None:
        with self._lock:
            ttl = max(expires_in - _EXPIRY_MARGIN, expires_in / 2)
            self._tokens[key] = _Token(value, self._clock() + ttl)

    def drop(self, key: str, value: str) -> None:
        """Forget ``value`` if it is still the cached token (another thread may have
        refreshed it already)."""
        with self._lock:
            token = self._tokens.get(key)
            if token is not None and token.value == value:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKEN_CACHE = TokenCache()


class WeComClient:
    """Calls WeCom's server API with one corp id and secret.

    Args:
        api_base: ``https://qyapi.weixin.qq.com`` (``SIYU_WECOM_API_BASE``), or a test server.
        corp_id: The corp id (``SIYU_WECOM_CORP_ID``).
        secret: The app's (or 微信客服's) secret.
        timeout: Seconds for each HTTP request.
        http: An ``httpx.Client`` to reuse; one is created (and closed by :meth:`close`)
            otherwise.
        cache: Where tokens are kept; the process-wide cache by default.
    """

    def __init__(self, *, api_base: str, corp_id: str, secret: str, timeout: float = 10.0,
                 http: httpx.Client | None = None, cache: TokenCache | None = None) -> None:
        if not corp_id or not secret:
            raise WeComApiError("WeCom API needs SIYU_WECOM_CORP_ID and a secret "
                                "(SIYU_WECOM_CORP_SECRET)", retryable=False)
        self._base = api_base.rstrip("/")
        self._corp_id = corp_id
        self._secret = secret
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout)
        self._cache = cache or TOKEN_CACHE
        self._key = TokenCache.key(self._base, corp_id, secret)

    def __repr__(self) -> str:
        return f"WeComClient(api_base={self._base!r}, corp_id={self._corp_id!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict[str, str],
                 json: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self._base}{path}"
        try:
            response = self._http.request(method, url, params=params, json=json)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never reached WeCom: sending again cannot duplicate anything.
            raise WeComApiError(f"WeCom API unreachable ({type(exc).__name__})",
                                retryable=True) from None
        except httpx.TransportError as exc:
            # Sent but no (complete) answer: WeCom may have acted on it.
            raise WeComApiError(f"WeCom API did not answer ({type(exc).__name__})",
                                retryable=True, ambiguous=True) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise WeComApiError(f"WeCom API answered HTTP {response.status_code}",
                                retryable=True)
        if response.status_code != 200:
            raise WeComApiError(f"WeCom API answered HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise WeComApiError("WeCom API answered something that is not JSON",
                                retryable=True, ambiguous=True) from None
        if not isinstance(data, dict):
            raise WeComApiError("WeCom API answered a JSON value that is not an object",
                                retryable=True, ambiguous=True)
        return data

    @staticmethod
    def _check(data: dict[str, Any], what: str) -> dict[str, Any]:
        errcode = data.get("errcode", 0)
        if errcode in (0, None):
            return data
        errmsg = str(data.get("errmsg", ""))[:200]
        raise WeComApiError(f"WeCom {what} failed: errcode {errcode} {errmsg}".strip(),
                            errcode=int(errcode), retryable=errcode in RETRYABLE_ERRCODES)

    # -- tokens ------------------------------------------------------------------------------

    def access_token(self, *, refresh: bool = False) -> str:
        """A valid access token: the cached one, or a fresh one from ``gettoken``."""
        if not refresh:
            cached = self._cache.get(self._key)
            if cached is not None:
                return cached
        data = self._check(
            self._request("GET", "/cgi-bin/gettoken",
                          params={"corpid": self._corp_id, "corpsecret": self._secret}),
            "gettoken",
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComApiError("WeCom gettoken answered without an access_token",
                                retryable=True)
        expires_in = data.get("expires_in", 7200)
        self._cache.put(self._key, token,
                        float(expires_in) if isinstance(expires_in, int | float) else 7200.0)
        return token

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` with the access token; refresh it once if WeCom says it
        expired. Returns the JSON answer (errcode 0)."""
        token = self.access_token()
        data = self._request("POST", path, params={"access_token": token}, json=body)
        if data.get("errcode") in TOKEN_ERRCODES:
            self._cache.drop(self._key, token)
            token = self.access_token(refresh=True)
            data = self._request("POST", path, params={"access_token": token}, json=body)
        return self._check(data, path.rsplit("/", 1)[-1])

    # -- messages ----------------------------------------------------------------------------

    def send_app_text(self, *, agent_id: str, touser: str, content: str,
                      duplicate_check: bool = False) -> dict[str, Any]:
        """Send a text app message to one member (``message/send``).

        With ``duplicate_check`` WeCom drops a message identical to one sent to the same
        member within four hours: used only when re-sending after an unknown outcome.

        Raises:
            WeComApiError: also when WeCom accepted the call but reports the user invalid.
        """
        try:
            agent = int(agent_id)
        except ValueError:
            raise WeComApiError(f"WeCom agent id must be a number, got {agent_id!r}") from None
        body: dict[str, Any] = {"touser": touser, "msgtype": "text", "agentid": agent,
                                "text": {"content": content}, "safe": 0}
        if duplicate_check:
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = 4 * 3600
        data = self.call("/cgi-bin/message/send", body)
        invalid = str(data.get("invaliduser") or "")
        if touser in invalid.split("|"):
            raise WeComApiError(f"WeCom does not know member {touser!r} (invaliduser)",
                                errcode=0)
        return data

    def send_kf_text(self, *, open_kfid: str, touser: str, content: str,
                     msgid: str | None = None) -> dict[str, Any]:
        """Answer an external WeChat user through a 微信客服 account (``kf/send_msg``)."""
        body: dict[str, Any] = {"touser": touser, "open_kfid": open_kfid, "msgtype": "text",
                                "text": {"content": content}}
        if msgid:
            body["msgid"] = msgid
        return self.call("/cgi-bin/kf/send_msg", body)
