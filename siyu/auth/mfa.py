"""The optional TOTP second factor (RFC 6238, through ``pyotp``).

A user enrols by scanning the ``otpauth://`` link (or typing the key) into an
authenticator app and entering a first code, which confirms it. The secret is stored
encrypted (AES-GCM) with the install's ``totp`` key, a purpose key that is never rotated:
rotating the session key signs everyone out but leaves second factors working. A code is
accepted once (the time step used is kept) and one step either side of now.
``SIYU_REQUIRE_MFA=admin`` requires it of administrators (``all``: of everyone); they
enrol at their next sign-in. ``siyu user mfa-reset NAME`` removes a lost factor.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import os

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from siyu.auth.errors import InvalidTotp
from siyu.auth.models import User
from siyu.auth.secrets import purpose_key
from siyu.config import Settings
from siyu.db import utcnow

ISSUER = "私域客户平台"
_VERSION = "v1:"


def required_for(settings: Settings, role: str) -> bool:
    """Whether ``role`` must sign in with a second factor."""
    return settings.require_mfa == "all" or (settings.require_mfa == "admin"
                                             and role == "admin")


def enabled(user: User) -> bool:
    return user.totp_secret is not None and user.totp_confirmed_at is not None


def _cipher(settings: Settings) -> AESGCM:
    return AESGCM(purpose_key(settings, "totp"))


def _seal(settings: Settings, user_id: int, secret: str) -> str:
    nonce = os.urandom(12)
    sealed = _cipher(settings).encrypt(nonce, secret.encode(), f"user:{user_id}".encode())
    return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()


def _open(settings: Settings, user: User) -> str:
    stored = user.totp_secret or ""
    if not stored.startswith(_VERSION):
        raise InvalidTotp("两步验证数据无法读取，请联系管理员重置",
                          details={"field": "totp", "reason": "unreadable"})
    raw = base64.urlsafe_b64decode(stored[len(_VERSION):].encode())
    try:
        return _cipher(settings).decrypt(raw[:12], raw[12:], f"user:{user.id}".encode()).decode()
    except InvalidTag:
        raise InvalidTotp("两步验证数据无法读取，请联系管理员重置",
                          details={"field": "totp", "reason": "unreadable"}) from None


def begin_enrolment(session: Session, settings: Settings, user: User) -> str:
    """Give ``user`` a new, not yet confirmed secret; returns the ``otpauth://`` link.
    An enrolled user must turn the factor off first."""
    if enabled(user):
        raise InvalidTotp("已开启两步验证；如需更换，请先关闭",
                          details={"field": "totp", "reason": "already enrolled"})
    secret = pyotp.random_base32()
    user.totp_secret = _seal(settings, user.id, secret)
    user.totp_confirmed_at = None
    user.totp_last_step = None
    session.flush()
    return provisioning_uri(settings, user)


def provisioning_uri(settings: Settings, user: User) -> str:
    """The pending (or confirmed) secret as an ``otpauth://`` link for authenticator apps."""
    return str(pyotp.TOTP(_open(settings, user)).provisioning_uri(name=user.username,
                                                                  issuer_name=ISSUER))


def pending_secret(settings: Settings, user: User) -> str | None:
    """The key to type into an app while enrolling (None once confirmed or not started)."""
    if user.totp_secret is None or user.totp_confirmed_at is not None:
        return None
    return _open(settings, user)


def _accepted_step(settings: Settings, user: User, code: str, now: dt.datetime) -> int | None:
    code = code.strip().replace(" ", "")
    if user.totp_secret is None or len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(_open(settings, user))
    current = int(totp.timecode(now))
    for step in (current, current - 1, current + 1):
        if user.totp_last_step is not None and step <= user.totp_last_step:
            continue
        if hmac.compare_digest(str(totp.generate_otp(step)), code):
            return step
    return None


def verify(session: Session, settings: Settings, user: User, code: str,
           *, now: dt.datetime | None = None) -> bool:
    """Whether ``code`` is a current code of the user's confirmed factor (used up if so)."""
    if not enabled(user):
        return False
    step = _accepted_step(settings, user, code, now or utcnow())
    if step is None:
        return False
    user.totp_last_step = step
    session.flush()
    return True


def confirm_enrolment(session: Session, settings: Settings, user: User, code: str,
                      *, now: dt.datetime | None = None) -> None:
    """Turn the pending factor on with a first code from the app."""
    if user.totp_secret is None or user.totp_confirmed_at is not None:
        raise InvalidTotp("没有待确认的两步验证，请重新开始",
                          details={"field": "totp", "reason": "nothing pending"})
    now = now or utcnow()
    step = _accepted_step(settings, user, code, now)
    if step is None:
        raise InvalidTotp("验证码不正确，请输入验证器 App 中当前的 6 位数字",
                          details={"field": "code", "reason": "wrong code"})
    user.totp_last_step = step
    user.totp_confirmed_at = now
    session.flush()


def remove(session: Session, user: User) -> bool:
    """Turn the user's factor off (or drop a pending one); returns whether one was there."""
    had = user.totp_secret is not None
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    session.flush()
    return had
