"""Sign-in throttling, counted in the database so that every server process agrees.

Failures are counted per account name and per client address, whether or not the name
exists (so a refusal tells nothing about which names do). After
``SIYU_LOGIN_DELAY_AFTER`` failures in a row the next attempt must wait 1 s, then 2, 4, 8
... s; after ``SIYU_LOGIN_LOCK_AFTER`` the name is locked for ``SIYU_LOGIN_LOCK_MINUTES``
(addresses have their own, larger limits). Attempts made while locked are refused without
checking the password, and count as failures. A success clears the name's count (not the
address's). A count goes back to zero once ``SIYU_LOGIN_LOCK_MINUTES`` pass without a
failure. ``siyu user unlock NAME`` clears a name at once.

Names and addresses are stored as HMACs under the install's ``login-throttle`` key: what
was typed as a name may be anything, a password included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.auth.errors import LoginThrottled
from siyu.auth.models import LoginThrottle
from siyu.auth.secrets import purpose_key
from siyu.config import Settings

ACCOUNT = "account"
ADDRESS = "address"


@dataclass(frozen=True)
class Limits:
    delay_after: int
    lock_after: int
    lock: dt.timedelta

    def wait(self, failures: int) -> dt.timedelta:
        """How long the next attempt must wait after ``failures`` failures in a row."""
        if failures < self.delay_after:
            return dt.timedelta(0)
        if failures >= self.lock_after:
            return self.lock
        return min(dt.timedelta(seconds=2 ** (failures - self.delay_after)), self.lock)


def limits(settings: Settings, scope: str) -> Limits:
    lock = dt.timedelta(minutes=settings.login_lock_minutes)
    if scope == ACCOUNT:
        return Limits(settings.login_delay_after, settings.login_lock_after, lock)
    return Limits(settings.login_address_delay_after, settings.login_address_lock_after, lock)


def _key(settings: Settings, scope: str, value: str) -> str:
    text = value.strip().lower() if scope == ACCOUNT else value.strip()
    return hmac.new(purpose_key(settings, "login-throttle"), f"{scope}:{text}".encode(),
                    hashlib.sha256).hexdigest()


def _keys(settings: Settings, username: str, address: str | None) -> list[tuple[str, str]]:
    keys = [(ACCOUNT, _key(settings, ACCOUNT, username))]
    if address:
        keys.append((ADDRESS, _key(settings, ADDRESS, address)))
    return keys


def remaining_lock(session: Session, settings: Settings, username: str, address: str | None,
                   now: dt.datetime) -> dt.timedelta:
    """How long the name or the address is still locked (zero: an attempt may be made)."""
    longest = dt.timedelta(0)
    for scope, key in _keys(settings, username, address):
        until = session.scalar(select(LoginThrottle.locked_until).where(
            LoginThrottle.scope == scope, LoginThrottle.key_hash == key))
        if until is not None and until > now:
            longest = max(longest, until - now)
    return longest


def _row_for_update(session: Session, scope: str, key: str, now: dt.datetime) -> LoginThrottle:
    values = {"scope": scope, "key_hash": key, "failures": 0, "last_failure_at": now}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Two processes counting the first failure of a name at once: one row, both counted.
    session.execute(insert(LoginThrottle).values(**values).on_conflict_do_nothing(
        index_elements=["scope", "key_hash"]))
    row = session.scalar(select(LoginThrottle).where(
        LoginThrottle.scope == scope, LoginThrottle.key_hash == key)
        .with_for_update().execution_options(populate_existing=True))
    assert row is not None
    return row


def record_failure(session: Session, settings: Settings, username: str, address: str | None,
                   now: dt.datetime) -> dt.timedelta:
    """Count one failed (or refused) attempt; returns how long the next one must wait."""
    longest = dt.timedelta(0)
    for scope, key in _keys(settings, username, address):
        rule = limits(settings, scope)
        row = _row_for_update(session, scope, key, now)
        locked = row.locked_until is not None and row.locked_until > now
        if not locked and now - row.last_failure_at >= rule.lock:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        wait = rule.wait(row.failures)
        if wait:
            until = now + wait
            row.locked_until = until if row.locked_until is None else max(row.locked_until,
                                                                          until)
            longest = max(longest, row.locked_until - now)
    session.flush()
    return longest


def record_success(session: Session, settings: Settings, username: str) -> None:
    """A right password (and second factor): the name's count starts again."""
    clear(session, settings, username)


def clear(session: Session, settings: Settings, username: str,
          address: str | None = None) -> int:
    """Remove the name's count and lock (and the address's, when given)."""
    removed = 0
    for scope, key in _keys(settings, username, address):
        result = session.execute(delete(LoginThrottle).where(
            LoginThrottle.scope == scope, LoginThrottle.key_hash == key))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed


def refusal(wait: dt.timedelta) -> LoginThrottled:
    """The 429 shown for a locked name or address: the same words for every name."""
    seconds = max(1, math.ceil(wait.total_seconds()))
    when = f"{seconds} 秒" if seconds < 60 else f"{math.ceil(seconds / 60)} 分钟"
    error = LoginThrottled(f"登录失败次数过多，请 {when}后再试。如需立即解锁，请联系管理员。",
                           details={"retry_after": seconds})
    return error
