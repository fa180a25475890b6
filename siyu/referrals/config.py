"""Referral qualification settings (``SIYU_`` prefix):

* ``SIYU_REFERRAL_WINDOW_DAYS`` (default 30, 1 to 365): a referral qualifies when the
  referred customer's first paid order lands within this many days of the attribution;
  a later first order makes it ``expired``.
* ``SIYU_REFERRAL_REFERRER_POINTS`` (default 100; 0: none, up to 100,000): points the
  sharer gets when their referral qualifies.
* ``SIYU_REFERRAL_REFERRED_POINTS`` (default 50; 0: none, up to 100,000): points the new
  customer gets for their qualifying first order.

They are read once per process and checked when the app starts (:func:`check`): a bad
value is refused naming the variable and the reason.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReferralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=None, extra="ignore")

    referral_window_days: int = Field(default=30, ge=1, le=365)
    referral_referrer_points: int = Field(default=100, ge=0, le=100_000)
    referral_referred_points: int = Field(default=50, ge=0, le=100_000)


class ReferralSettingsError(ValueError):
    """A referral setting has a bad value; the message names the variable."""


@lru_cache
def get_referral_settings() -> ReferralSettings:
    try:
        return ReferralSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"SIYU_{str(err['loc'][0]).upper() if err['loc'] else '?'}: {err['msg']}"
            for err in exc.errors())
        raise ReferralSettingsError(f"invalid referral setting: {problems}") from None


def check() -> None:
    """Refuse bad referral settings now (at start-up) rather than at the first order."""
    get_referral_settings()
