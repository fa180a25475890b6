"""Access tokens shared by every worker, kept in the database (``channel_access_tokens``).

The official account's ``cgi-bin/token`` gives a token for 7200 s, and fetching a new one
retires the previous one a few minutes later: workers that each fetched their own would keep
invalidating each other's (and the call is rate-limited per day). So the token lives in one
row per set of credentials, and one worker at a time refreshes it:

1. read the row; a token that is still valid (its stated lifetime minus a margin) is used;
2. otherwise claim the refresh with a conditional update (``WHERE version = <read>``, and no
   unexpired lease): exactly one worker's update matches, whatever the store;
3. the winner calls the platform, stores the token (encrypted) and releases the lease; the
   others poll the row until the new token is there. A winner that dies leaves a lease that
   expires after ``lease_seconds``, and the next worker takes over.

A token the platform calls invalid is forgotten only if the row still holds that very token
(another worker may have refreshed already), again by a conditional update.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.models import AccessToken
from siyu.db import utcnow

__all__ = ["SharedTokenStore", "TokenUnavailable", "credentials_key"]

Fetch = Callable[[], tuple[str, float]]


class TokenUnavailable(Exception):
    """No token could be had in time (another worker holds the refresh, or it failed)."""


def credentials_key(provider: str, appid: str, secret: str) -> str:
    """The row key of a set of credentials: names the app, never reveals the secret."""
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]
    return f"{provider}:{appid}:{digest}"[:120]


class SharedTokenStore:
    """Tokens in the database, refreshed by one worker for all (see the module notes).

    Args:
        sessions: Makes sessions on the store; each step is its own short transaction.
        secret_key: Encrypts the stored token (AES-GCM under a key derived from it).
        margin_seconds: Refresh this long before the platform's stated expiry.
        lease_seconds: How long a refreshing worker holds the claim.
        wait_seconds: How long another worker waits for that refresh before giving up.
    """

    def __init__(self, sessions: sessionmaker[Session], *, secret_key: str,
                 margin_seconds: float = 300.0, lease_seconds: float = 30.0,
                 wait_seconds: float = 15.0, poll_seconds: float = 0.05,
                 now: Callable[[], dt.datetime] = utcnow) -> None:
        self._sessions = sessions
        self._aead = AESGCM(hmac.new(secret_key.encode("utf-8"), b"channel-access-token",
                                     hashlib.sha256).digest())
        self.margin_seconds = margin_seconds
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self._now = now

    def _seal(self, token: str) -> str:
        nonce = secrets.token_bytes(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, token.encode(), None)
                                ).decode("ascii")

    def _open(self, sealed: str | None) -> str | None:
        if not sealed:
            return None
        try:
            data = base64.b64decode(sealed)
            return self._aead.decrypt(data[:12], data[12:], None).decode("utf-8")
        except (InvalidTag, ValueError):
            return None  # sealed under another secret key: as good as no token

    def _row(self, session: Session, key: str) -> AccessToken | None:
        return session.scalars(select(AccessToken).where(AccessToken.key == key)).first()

    def peek(self, key: str) -> str | None:
        """The stored token if it is still valid (no refresh)."""
        with self._sessions() as session:
            row = self._row(session, key)
            if row is None or row.expires_at is None or row.expires_at <= self._now():
                return None
            return self._open(row.token_enc)

    def get(self, key: str, fetch: Fetch, *, invalid: str | None = None) -> str:
        """A valid token for ``key``; ``fetch()`` returns ``(token, expires_in)`` and is called
        by at most one worker at a time. ``invalid``: a token the platform just refused.

        Raises:
            TokenUnavailable: when another worker's refresh did not finish in time.
            Exception: whatever ``fetch`` raised, when this worker was the one refreshing.
        """
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_seconds
        while True:
            with self._sessions() as session:
                row = self._row(session, key)
                if row is None:
                    try:
                        session.add(AccessToken(key=key, version=0, refreshes=0))
                        session.commit()
                    except IntegrityError:  # another worker created it first
                        session.rollback()
                    continue
                now = self._now()
                token = self._open(row.token_enc)
                if token is not None and invalid is not None and hmac.compare_digest(
                        token.encode(), invalid.encode()):
                    session.execute(update(AccessToken)
                                    .where(AccessToken.key == key,
                                           AccessToken.version == row.version)
                                    .values(expires_at=None, version=row.version + 1))
                    session.commit()
                    invalid = None
                    continue
                if token is not None and row.expires_at is not None and row.expires_at > now:
                    return token
                if row.lease_until is None or row.lease_until <= now:
                    claimed = session.execute(
                        update(AccessToken)
                        .where(AccessToken.key == key, AccessToken.version == row.version)
                        .values(lease_until=now + dt.timedelta(seconds=self.lease_seconds),
                                lease_owner=owner, version=row.version + 1))
                    session.commit()
                    if claimed.rowcount == 1:  # type: ignore[attr-defined]
                        break
            if time.monotonic() > deadline:
                raise TokenUnavailable("another worker is refreshing the access token")
            time.sleep(self.poll_seconds)
        return self._refresh(key, owner, fetch)

    def _refresh(self, key: str, owner: str, fetch: Fetch) -> str:
        mine = (AccessToken.key == key, AccessToken.lease_owner == owner)
        try:
            value, expires_in = fetch()
        except BaseException:
            with self._sessions() as session:
                session.execute(update(AccessToken).where(*mine).values(
                    lease_until=None, lease_owner=None, version=AccessToken.version + 1))
                session.commit()
            raise
        ttl = max(expires_in - self.margin_seconds, expires_in / 2)
        with self._sessions() as session:
            session.execute(update(AccessToken).where(*mine).values(
                token_enc=self._seal(value),
                expires_at=self._now() + dt.timedelta(seconds=ttl),
                lease_until=None, lease_owner=None, version=AccessToken.version + 1,
                refreshes=AccessToken.refreshes + 1))
            session.commit()
        return value
