"""Web plumbing of the auth domain: the console's signed session cookie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import itsdangerous
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp


class KeyedSessionMiddleware(SessionMiddleware):
    """Starlette's signed-cookie session, signed with the install's current ``session``
    key (looked up per request, so a rotation reaches running processes within seconds)."""

    def __init__(self, app: ASGIApp, key: Callable[[], bytes], session_cookie: str,
                 max_age: int, same_site: Literal["lax", "strict", "none"] = "lax",
                 https_only: bool = False):
        self._key = key
        self._signers: dict[bytes, itsdangerous.TimestampSigner] = {}
        super().__init__(app, secret_key="(per-request)", session_cookie=session_cookie,
                         max_age=max_age, same_site=same_site, https_only=https_only)

    @property  # type: ignore[override]
    def signer(self) -> itsdangerous.TimestampSigner:
        key = self._key()
        signer = self._signers.get(key)
        if signer is None:
            self._signers = {key: itsdangerous.TimestampSigner(key.hex())}
            signer = self._signers[key]
        return signer

    @signer.setter
    def signer(self, _value: Any) -> None:
        # SessionMiddleware.__init__ assigns a signer from its fixed secret; ignored.
        pass
