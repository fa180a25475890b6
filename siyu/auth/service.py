"""Users, passwords and API keys.

Passwords are hashed with scrypt from the standard library (memory-hard, no extra
dependency) at OWASP's parameters, stored in the hash so that older hashes are recognised
and re-hashed at the next sign-in; API keys are random 32-byte tokens of which only the
SHA-256 is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from siyu.auth import sessions
from siyu.auth.errors import InvalidApiKey, InvalidUser, LoginFailed, UserExists, UserNotFound
from siyu.auth.models import API_SCOPES, ROLES, ApiKey, User
from siyu.auth.secrets import purpose_key as purpose_key  # the one way to a key
from siyu.config import get_settings
from siyu.db import utcnow

KEY_PREFIX = "sy_"
LOGIN_FAILED = "用户名或密码错误"

# What each role may do; the console and API check these names, not roles.
PERMISSIONS: dict[str, frozenset[str]] = {
    # Undoing a merge re-splits a customer's history: administrators only.
    "admin": frozenset({"customers.read", "customers.write", "pii.read", "users.manage",
                        "merges.undo", "audit.read", "customers.erase", "segments.read",
                        "segments.write", "service.agent", "analytics.read", "kb.write",
                        "points.write"}),
    "operator": frozenset({"customers.read", "customers.write", "segments.read",
                           "segments.write",
                           "analytics.read", "service.agent", "kb.write",
                           "points.write"}),
    "agent": frozenset({"customers.read", "service.agent"}),
    # Analysts read saved segments (人群) but do not create them.
    "analyst": frozenset({"customers.read", "analytics.read", "segments.read"}),
}


@dataclass(frozen=True)
class ScryptParams:
    log2n: int
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        # scrypt needs 128 * r * N * p bytes; OpenSSL refuses more than 32 MiB unless told.
        return 2 * 128 * self.r * (2 ** self.log2n) * self.p

    def encode(self) -> str:
        return f"ln={self.log2n},r={self.r},p={self.p}"

    @classmethod
    def decode(cls, text: str) -> ScryptParams | None:
        match = re.fullmatch(r"ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})", text)
        if match is None:
            return None
        log2n, r, p = (int(g) for g in match.groups())
        if not (10 <= log2n <= 22 and 1 <= r <= 32 and 1 <= p <= 16):
            return None
        return cls(log2n, r, p)


# Hashes written before the parameters were stored in them ("scrypt$salt$digest").
LEGACY_SCRYPT = ScryptParams(14)


def scrypt_params() -> ScryptParams:
    """The parameters new hashes get: N=2^SIYU_PASSWORD_SCRYPT_LOG2N (17, OWASP), r=8, p=1."""
    return ScryptParams(get_settings().password_scrypt_log2n)


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2 ** params.log2n, r=params.r,
                          p=params.p, maxmem=params.maxmem, dklen=64)


def hash_password(password: str, params: ScryptParams | None = None) -> str:
    params = params or scrypt_params()
    salt = secrets.token_bytes(16)
    return f"scrypt${params.encode()}${salt.hex()}${_scrypt(password, salt, params).hex()}"


def _parse_hash(stored: str) -> tuple[ScryptParams, bytes, str] | None:
    parts = stored.split("$")
    try:
        if len(parts) == 3 and parts[0] == "scrypt":
            return LEGACY_SCRYPT, bytes.fromhex(parts[1]), parts[2]
        if len(parts) == 4 and parts[0] == "scrypt":
            params = ScryptParams.decode(parts[1])
            if params is not None:
                return params, bytes.fromhex(parts[2]), parts[3]
    except ValueError:
        return None
    return None


def verify_password(password: str, stored: str) -> bool:
    parsed = _parse_hash(stored)
    if parsed is None:
        return False
    params, salt, digest_hex = parsed
    digest = _scrypt(password, salt, params)
    return hmac.compare_digest(digest.hex(), digest_hex)


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with other parameters than new hashes get."""
    parsed = _parse_hash(stored)
    return parsed is None or parsed[0] != scrypt_params()


def create_user(
    session: Session, username: str, password: str, role: str, display_name: str | None = None
) -> User:
    """Create a staff user; usernames are 3-60 letters, digits, '.', '_' or '-'."""
    if not re.fullmatch(r"[A-Za-z0-9._-]{3,60}", username):
        raise InvalidUser("用户名：需为 3-60 位英文字母、数字或 . _ -（username must be 3-60 "
                          "letters, digits, '.', '_' or '-'）",
                          details={"field": "username", "reason": "format"})
    if role not in ROLES:
        raise InvalidUser(f"角色：必须是 {'、'.join(ROLES)} 之一（role must be one of "
                          f"{', '.join(ROLES)}）",
                          details={"field": "role", "reason": "unknown role"})
    if display_name is not None and len(display_name) > 60:
        raise InvalidUser("显示名称：最多 60 个字符（display name: at most 60 characters）",
                          details={"field": "display_name", "reason": "too long"})
    if len(password) < 8:
        raise InvalidUser("密码：至少需要 8 个字符（password must be at least 8 characters）",
                          details={"field": "password", "reason": "too short"})
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserExists(f"用户名：{username} 已被使用（user {username!r} already exists）",
                         details={"field": "username", "reason": "already exists"})
    user = User(username=username, display_name=display_name or username, role=role,
                password_hash=hash_password(password), is_active=True)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> User:
    """Replace a user's password (at least 8 characters)."""
    if len(password) < 8:
        raise InvalidUser("密码：至少需要 8 个字符（password must be at least 8 characters）",
                          details={"field": "password", "reason": "too short"})
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserNotFound(f"user {username!r} not found")
    user.password_hash = hash_password(password)
    # Whoever knew the old password is signed out everywhere.
    sessions.end_all(session, user.id)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


_dummy: dict[ScryptParams, str] = {}


def dummy_hash() -> str:
    """A hash of a random password with the current parameters, made once per process:
    unknown names are checked against it so that they cost the same hashing work as a
    wrong password."""
    params = scrypt_params()
    if params not in _dummy:
        _dummy[params] = hash_password(secrets.token_urlsafe(16), params)
    return _dummy[params]


def check_credentials(session: Session, username: str, password: str
                      ) -> tuple[User | None, str]:
    """``(user, "ok")`` for the right password of an active user, else ``(user or None,
    reason)`` with reason ``unknown_user``, ``disabled`` or ``wrong_password``. Every case
    does the same hashing work: an unknown name is checked against :func:`dummy_hash`.
    A right password whose hash has older parameters is re-hashed."""
    user = session.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None else dummy_hash()
    matches = verify_password(password, stored)
    if user is None:
        return None, "unknown_user"
    if not matches:
        return user, "wrong_password"
    if not user.is_active:
        return user, "disabled"
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user, "ok"


def authenticate(session: Session, username: str, password: str) -> User:
    """The user whose name and password these are. An unknown name, a disabled user and a
    wrong password get the same answer after the same hashing work (no user enumeration).
    The console signs in through :func:`siyu.auth.login.sign_in`, which adds throttling,
    the second factor and the audit log."""
    user, outcome = check_credentials(session, username, password)
    if user is None or outcome != "ok":
        raise LoginFailed(LOGIN_FAILED)
    user.last_login_at = utcnow()
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise UserNotFound(f"user {user_id} not found")
    return user


def display_name(session: Session, user_id: int | None) -> str | None:
    """A staff member's display name (e.g. a customer's advisor), or None."""
    if user_id is None:
        return None
    name: str | None = session.scalar(select(User.display_name).where(User.id == user_id))
    return name


def can(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


@dataclass
class NewApiKey:
    id: int
    name: str
    key: str
    scopes: tuple[str, ...] | None
    expires_at: dt.datetime | None


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


LAST_USED_EVERY = dt.timedelta(minutes=1)  # last_used_at is written at most this often
_DURATION = re.compile(r"(\d{1,5})([dhw])")


def parse_expiry(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``90d``, ``12h``, ``2w`` from now, or a date ``2027-03-01`` (the key expires at 00:00
    UTC that day) or an ISO timestamp; it must lie in the future."""
    now = now or utcnow()
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if match:
        amount, unit = int(match[1]), match[2]
        if amount == 0:
            raise InvalidUser("expires must be in the future",
                              details={"field": "expires", "reason": "not in the future"})
        days = {"d": amount, "w": 7 * amount, "h": 0}[unit]
        return now + dt.timedelta(days=days, hours=amount if unit == "h" else 0)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidUser("expires must be a duration (90d, 12h, 2w) or a date (2027-03-01)",
                          details={"field": "expires", "reason": "format"}) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if when <= now:
        raise InvalidUser("expires must be in the future",
                          details={"field": "expires", "reason": "not in the future"})
    return when


def create_api_key(session: Session, name: str, scopes: Sequence[str] | None = None,
                   expires_at: dt.datetime | None = None) -> NewApiKey:
    """Create a key; the returned ``key`` is shown once and never stored. Without
    ``scopes`` the key has full access (as every key had before scopes existed)."""
    name = name.strip()
    if not 1 <= len(name) <= 60:
        raise InvalidUser("API key name must be 1-60 characters",
                          details={"field": "name", "reason": "length"})
    chosen: tuple[str, ...] | None = None
    if scopes is not None:
        unknown = [s for s in scopes if s not in API_SCOPES]
        if unknown or not scopes:
            raise InvalidUser(f"scope must be one of {', '.join(API_SCOPES)}",
                              details={"field": "scope", "reason": "unknown scope"})
        chosen = tuple(s for s in API_SCOPES if s in scopes)  # canonical order, no repeats
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:10], key_hash=_key_hash(key),
                 scopes=" ".join(chosen) if chosen is not None else None, expires_at=expires_at)
    session.add(row)
    session.flush()
    return NewApiKey(id=row.id, name=name, key=key, scopes=chosen, expires_at=expires_at)


def check_api_key(session: Session, key: str, now: dt.datetime | None = None) -> ApiKey:
    """The active (not revoked, not expired) key with this value."""
    now = now or utcnow()
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _key_hash(key)))
    if row is None or row.revoked_at is not None:
        raise InvalidApiKey("invalid or revoked API key")
    if row.expires_at is not None and row.expires_at <= now:
        raise InvalidApiKey("API key expired")
    return row


def use_is_due(row: ApiKey, now: dt.datetime | None = None) -> bool:
    """Whether the key's last use is older than :data:`LAST_USED_EVERY` (or never noted)."""
    return row.last_used_at is None or (now or utcnow()) - row.last_used_at >= LAST_USED_EVERY


def note_api_key_use(session: Session, key_id: int, now: dt.datetime | None = None) -> bool:
    """Record that the key was used now, unless another request (of any process) did so
    less than a minute ago: one conditional UPDATE, so concurrent requests write once."""
    now = now or utcnow()
    result = session.execute(
        update(ApiKey).where(ApiKey.id == key_id,
                             or_(ApiKey.last_used_at.is_(None),
                                 ApiKey.last_used_at <= now - LAST_USED_EVERY))
        .values(last_used_at=now).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


def revoke_api_key(session: Session, key_id: int) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise UserNotFound(f"API key {key_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))
