"""The referral rules are settings: SIYU_REFERRAL_WINDOW_DAYS, SIYU_REFERRAL_REFERRER_POINTS
and SIYU_REFERRAL_REFERRED_POINTS; a bad value is refused at start-up naming the variable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.app import create_app
from siyu.config import Settings
from siyu.points import service as points
from siyu.referrals import service as referrals
from siyu.referrals.config import ReferralSettingsError, get_referral_settings
from siyu.referrals.models import ReferralAttribution
from tests.referrals.test_referrals import _customer, _order


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_referral_settings.cache_clear()
    yield
    get_referral_settings.cache_clear()


def test_the_defaults_are_30_days_100_and_50_points() -> None:
    assert referrals.Rules.from_settings() == referrals.Rules(30, 100, 50)


def test_a_window_of_3_days_refuses_a_first_order_on_day_4(
        sessions: sessionmaker[Session], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_REFERRAL_WINDOW_DAYS", "3")
    with sessions() as s:
        referrals.create_channel_code(s, "门店", state="store_w3")
        s.commit()
    now = dt.datetime.now(dt.UTC)
    late = _customer(sessions, settings, "C-DAY4", "13800000051")
    in_time = _customer(sessions, settings, "C-DAY3", "13800000052")
    with sessions() as s:
        referrals.attribute(s, late, state="store_w3", at=now - dt.timedelta(days=3, hours=1))
        referrals.attribute(s, in_time, state="store_w3",
                            at=now - dt.timedelta(days=2, hours=23))
        s.commit()
    _order(sessions, settings, "C-DAY4", "O-DAY4")
    _order(sessions, settings, "C-DAY3", "O-DAY3")
    with sessions() as s:
        status = dict(s.execute(select(ReferralAttribution.referred_id,
                                       ReferralAttribution.status)).all())
        reason = s.scalar(select(ReferralAttribution.reason).where(
            ReferralAttribution.referred_id == late))
        assert status == {late: "expired", in_time: "qualified"}
        assert reason == "first paid order after 3 days"
        assert points.balance(s, late) == 0 and points.balance(s, in_time) == 50


def test_custom_points_land_on_both_sides(sessions: sessionmaker[Session], settings: Settings,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_REFERRAL_REFERRER_POINTS", "300")
    monkeypatch.setenv("SIYU_REFERRAL_REFERRED_POINTS", "120")
    sharer = _customer(sessions, settings, "C-SH", "13800000061")
    friend = _customer(sessions, settings, "C-FR", "13800000062")
    with sessions() as s:
        code = referrals.personal_code(s, sharer).code
        referrals.attribute(s, friend, code=code)
        assert referrals.invite_page(s, code)["referrer_points"] == 300
        s.commit()
    _order(sessions, settings, "C-FR", "O-FR")
    _order(sessions, settings, "C-FR", "O-FR")  # retried: still once
    with sessions() as s:
        assert points.balance(s, sharer) == 300 and points.balance(s, friend) == 120


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("SIYU_REFERRAL_WINDOW_DAYS", "0", "greater than or equal to 1"),
    ("SIYU_REFERRAL_WINDOW_DAYS", "thirty", "valid integer"),
    ("SIYU_REFERRAL_REFERRER_POINTS", "-5", "greater than or equal to 0"),
    ("SIYU_REFERRAL_REFERRED_POINTS", "1000001", "less than or equal to 100000"),
])
def test_a_bad_value_is_refused_at_start_up_naming_the_variable(
        settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch,
        name: str, value: str, reason: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ReferralSettingsError) as err:
        create_app(settings, engine=engine)
    assert name in str(err.value) and reason in str(err.value)
